"""Connection limits shared by one service's sessions (Set-ImapSettings'
MaxConnections, MaxConnectionFromSingleIP and MaxConnectionsPerUser)."""

from __future__ import annotations

from collections import Counter


class ConnectionLimits:
    """Counts open connections in total, per client address and per user.

    A limit of 0 means no limit.  Sessions call :meth:`admit` when they
    connect and :meth:`admit_user` when they log in, and the matching
    ``release`` methods when they end; a refused admission counts nothing.
    """

    def __init__(self, total: int, per_ip: int, per_user: int) -> None:
        self.total, self.per_ip, self.per_user = total, per_ip, per_user
        self.connections = 0
        self._by_ip: Counter[str] = Counter()
        self._by_user: Counter[str] = Counter()

    def admit(self, ip: str) -> str | None:
        """Count a new connection from ``ip``; or the reason it is refused."""
        if self.total and self.connections >= self.total:
            return "Too many connections to the server"
        if self.per_ip and self._by_ip[ip] >= self.per_ip:
            return "Too many connections from your address"
        self.connections += 1
        self._by_ip[ip] += 1
        return None

    def release(self, ip: str) -> None:
        """Forget a connection that :meth:`admit` counted."""
        self.connections -= 1
        self._by_ip[ip] -= 1
        if self._by_ip[ip] <= 0:
            del self._by_ip[ip]

    def admit_user(self, user: str) -> bool:
        """Count a logged-in session of ``user``, unless that passes the limit."""
        if self.per_user and self._by_user[user] >= self.per_user:
            return False
        self._by_user[user] += 1
        return True

    def release_user(self, user: str) -> None:
        """Forget a session that :meth:`admit_user` counted."""
        self._by_user[user] -= 1
        if self._by_user[user] <= 0:
            del self._by_user[user]


class Admission:
    """One session's share of a :class:`ConnectionLimits`: what it was
    admitted with, so that :meth:`release` gives back exactly that."""

    def __init__(self, limits: ConnectionLimits) -> None:
        self.limits = limits
        self.ip: str | None = None
        self.user: str | None = None

    def admit(self, ip: str) -> str | None:
        """Admit the connection from ``ip``; or the reason it is refused."""
        refused = self.limits.admit(ip)
        if refused is None:
            self.ip = ip
        return refused

    def admit_user(self, user: str) -> bool:
        """Count the session as one of ``user``'s, unless that passes the limit."""
        admitted = self.limits.admit_user(user)
        if admitted:
            self.user = user
        return admitted

    def release(self) -> None:
        """Give back the user and connection slots (at connection loss)."""
        if self.user is not None:
            self.limits.release_user(self.user)
            self.user = None
        if self.ip is not None:
            self.limits.release(self.ip)
            self.ip = None

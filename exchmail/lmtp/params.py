"""The parameters of LMTP's MAIL and RCPT commands (RFC 5321 4.1.2, 4.1.1.11).

Twisted's parser reads the path and ignores what follows it; a server must
answer parameters it did not announce (or values it cannot take) with an
error instead of accepting them silently: 555 for an unknown or
unannounced parameter, 501 for a malformed one.
"""

from __future__ import annotations

import re

__all__ = ["ParameterError", "mail_parameters", "rcpt_parameters"]

# The path after FROM: or TO: -- <...> with quoted strings inside, or a bare
# word (some clients omit the brackets; Twisted accepts that too).
_PATH = re.compile(rb'\s*(?:FROM|TO)\s*:\s*(?:<(?:"(?:[^"\\]|\\.)*"|[^">])*>|[^\s<>]+)', re.I)
# esmtp-param = esmtp-keyword ["=" esmtp-value]; esmtp-value excludes "=", SP and controls.
_PARAM = re.compile(rb"([A-Za-z0-9][A-Za-z0-9-]*)(?:=([\x21-\x3c\x3e-\x7e]+))?\Z")
#: BODY values for the 8BITMIME extension we announce (RFC 6152).
_BODY_TYPES = frozenset({b"7BIT", b"8BITMIME"})


class ParameterError(Exception):
    """A parameter to refuse: ``code`` and ``text`` make the reply."""

    def __init__(self, code: int, text: str) -> None:
        super().__init__(text)
        self.code = code
        self.text = text


def _split(rest: bytes) -> list[tuple[bytes, bytes | None]] | None:
    """``(KEYWORD, value)`` of each parameter after the path; None if there
    is no path to find (Twisted answers the syntax error then)."""
    path = _PATH.match(rest)
    if path is None:
        return None
    found = []
    for word in rest[path.end() :].split():
        param = _PARAM.match(word)
        if param is None:
            raise ParameterError(501, "5.5.4 Syntax error in parameters")
        found.append((param.group(1).upper(), param.group(2)))
    return found


def mail_parameters(rest: bytes, max_size: int) -> None:
    """Check MAIL FROM's parameters: SIZE (RFC 1870) and BODY (RFC 6152) only."""
    for keyword, value in _split(rest) or ():
        if keyword == b"SIZE":
            if value is None or not value.isdigit() or len(value) > 20:
                raise ParameterError(501, "5.5.4 SIZE takes a number of octets")
            if int(value) > max_size:
                raise ParameterError(552, "5.3.4 Message too big for this server")
        elif keyword == b"BODY":
            if value is None or value.upper() not in _BODY_TYPES:
                raise ParameterError(501, "5.5.4 BODY is 7BIT or 8BITMIME")
        else:
            raise ParameterError(555, f"5.5.4 Unsupported parameter {keyword.decode('ascii')}")


def rcpt_parameters(rest: bytes) -> None:
    """RCPT TO takes no parameters here (no DSN is announced)."""
    for keyword, _ in _split(rest) or ():
        raise ParameterError(555, f"5.5.4 Unsupported parameter {keyword.decode('ascii')}")

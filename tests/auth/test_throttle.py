"""Failed-login throttling across sessions (exchmail.auth.throttle), beyond V0058.

Timing is measured with a task.Clock only; the real-socket test checks the
block and that another account is unaffected, never wall-clock times.
"""

from __future__ import annotations

import imaplib
import poplib

import pytest
from conftest import PASSWORD, start_server
from twisted.cred.credentials import UsernamePassword
from twisted.cred.error import UnauthorizedLogin
from twisted.internet import defer
from twisted.internet.task import Clock

from exchmail.auth.throttle import LoginThrottle, ThrottleSettings, guarded_login
from exchmail.errors import ConfigError, DirectoryUnavailable
from exchmail.service.config import load_config

SETTINGS = ThrottleSettings(window=600, ip_delay_after=100, ip_block_after=0,
                            account_delay_after=3, account_block_after=6, base_delay=1.0,
                            max_delay=8.0, block_duration=300)


def attempt(throttle: LoginThrottle, clock: Clock, outcome: object, ip: str = "10.0.0.1",
            user: str = "alice") -> tuple[float, list]:
    """One login through the throttle; (seconds until it was answered, [result or Failure])."""
    results: list = []

    def login() -> defer.Deferred:
        return defer.fail(outcome) if isinstance(outcome, Exception) else defer.succeed(outcome)

    start = clock.seconds()
    guarded_login(throttle, ip, UsernamePassword(user.encode(), b"x"), login).addBoth(
        results.append)
    while not results:
        clock.advance(0.25)
        assert clock.seconds() - start < 60, "never answered"
    return clock.seconds() - start, results


def test_V0058_throttle_delays_grow_then_block_across_sessions():
    clock = Clock()
    throttle = LoginThrottle(SETTINGS, clock)
    delays = [attempt(throttle, clock, UnauthorizedLogin())[0] for _ in range(6)]
    assert delays == [0, 0, 0, 1.0, 2.0, 4.0]  # growing once the budget of 3 is spent
    assert throttle.blocked("10.0.0.9", "ALICE")  # sixth failure: the account is blocked
    # A correct password is refused during the block, exactly like a wrong one.
    waited, results = attempt(throttle, clock, "alice")
    assert results[0].check(UnauthorizedLogin) and waited == SETTINGS.max_delay
    # Other accounts are unaffected.
    assert attempt(throttle, clock, "bob", user="bob") == (0, ["bob"])
    clock.advance(SETTINGS.block_duration)
    assert attempt(throttle, clock, "alice") == (0, ["alice"])


def test_throttle_per_ip_budget_and_success_resets_account():
    clock = Clock()
    throttle = LoginThrottle(ThrottleSettings(ip_delay_after=2, ip_block_after=4,
                                              account_delay_after=0, account_block_after=0,
                                              base_delay=0.5, max_delay=1.0,
                                              block_duration=60), clock)
    users = ["u1", "u2", "u3", "u4"]
    delays = [attempt(throttle, clock, UnauthorizedLogin(), user=u)[0] for u in users]
    assert delays == [0, 0, 0.5, 1.0]
    assert throttle.blocked("10.0.0.1", "someone-else")
    assert not throttle.blocked("10.0.0.2", "u1")
    # Success clears the account's record, never the address's.
    other = LoginThrottle(SETTINGS, clock)
    for _ in range(3):
        attempt(other, clock, UnauthorizedLogin())
    assert other.delay("10.0.0.1", "alice") == 1.0
    attempt(other, clock, "alice")
    assert other.delay("10.0.0.1", "alice") == 0


def test_throttle_window_forgets_old_failures_and_directory_errors_do_not_count():
    clock = Clock()
    throttle = LoginThrottle(SETTINGS, clock)
    for _ in range(3):
        attempt(throttle, clock, DirectoryUnavailable("down"))
    assert throttle.delay("10.0.0.1", "alice") == 0
    for _ in range(3):
        attempt(throttle, clock, UnauthorizedLogin())
    assert throttle.delay("10.0.0.1", "alice") == 1.0
    clock.advance(SETTINGS.window + 1)
    assert throttle.delay("10.0.0.1", "alice") == 0


def test_throttle_disabled_and_config(tmp_path):
    clock = Clock()
    off = LoginThrottle(ThrottleSettings(enabled=False), clock)
    for _ in range(50):
        assert attempt(off, clock, UnauthorizedLogin())[0] == 0
    path = tmp_path / "exchmail.toml"
    path.write_text("[throttle]\naccount_block_after = 3\nmax_delay = 2.5\n")
    config = load_config(path)
    assert config.throttle.account_block_after == 3 and config.throttle.max_delay == 2.5
    assert config.throttle.enabled
    path.write_text("[throttle]\nmax_delay = -1\n")
    with pytest.raises(ConfigError, match="throttle.max_delay"):
        load_config(path)
    path.write_text("[throttle]\nbogus = 1\n")
    with pytest.raises(ConfigError, match="throttle.bogus: unknown key"):
        load_config(path)


def test_V0058_throttle_blocks_on_the_wire(reactor_thread, tmp_path):
    """Wrong passwords across new sessions (IMAP and POP3) block the account, and then
    even the right password fails the same way; another account is unaffected."""
    settings = ThrottleSettings(window=600, ip_delay_after=0, ip_block_after=0,
                                account_delay_after=2, account_block_after=4, base_delay=0.01,
                                max_delay=0.05, block_duration=600)
    server = start_server(tmp_path, config_changes={"throttle": settings})
    try:
        texts = []
        for _ in range(2):
            imap = imaplib.IMAP4("127.0.0.1", server.imap_port, timeout=10)
            with pytest.raises(imaplib.IMAP4.error) as failure:
                imap.login("alice", "wrong")
            texts.append(str(failure.value))
            imap.shutdown()
        for _ in range(2):
            pop = poplib.POP3("127.0.0.1", server.pop3_port, timeout=10)
            pop.user("alice")
            with pytest.raises(poplib.error_proto) as pop_failure:
                pop.pass_("wrong")
            pop.close()
        imap = imaplib.IMAP4("127.0.0.1", server.imap_port, timeout=10)
        with pytest.raises(imaplib.IMAP4.error) as blocked:
            imap.login("alice", PASSWORD)  # blocked: the right password fails too
        assert str(blocked.value) == texts[0]
        imap.shutdown()
        pop = poplib.POP3("127.0.0.1", server.pop3_port, timeout=10)
        pop.user("alice")
        with pytest.raises(poplib.error_proto) as pop_blocked:
            pop.pass_(PASSWORD)
        assert pop_blocked.value.args == pop_failure.value.args
        pop.close()
        other = imaplib.IMAP4("127.0.0.1", server.imap_port, timeout=10)
        assert other.login("bob", PASSWORD)[0] == "OK"
        other.logout()
    finally:
        server.stop()

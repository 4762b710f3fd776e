"""Failed-login throttling across sessions (exchmail.auth.throttle), beyond V0058.

Budgets per (account, address), per address and per account; many client
addresses are simulated as 127.0.0.x.  Timing is measured with a
task.Clock only; the real-socket test checks the block and that another
account is unaffected, never wall-clock times.
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

SETTINGS = ThrottleSettings(
    window=600,
    pair_delay_after=3,
    pair_block_after=6,
    ip_delay_after=10,
    ip_block_after=20,
    account_delay_after=5,
    account_max_delay=4.0,
    base_delay=1.0,
    max_delay=8.0,
    block_duration=300,
    known_duration=3600,
)
WRONG = UnauthorizedLogin()


def attempt(
    throttle: LoginThrottle, clock: Clock, outcome: object, ip: str = "127.0.0.1", user: str = "alice"
) -> tuple[float, object]:
    """One login through the throttle; (seconds until it was answered, result or Failure)."""
    results: list = []

    def login() -> defer.Deferred:
        return defer.fail(outcome) if isinstance(outcome, Exception) else defer.succeed(outcome)

    start = clock.seconds()
    guarded_login(throttle, ip, UsernamePassword(user.encode(), b"x"), login).addBoth(results.append)
    for _ in range(400):  # bounded: 100 s of clock time
        if results:
            break
        clock.advance(0.25)
    assert results, "never answered"
    return clock.seconds() - start, results[0]


def failed(result: object) -> bool:
    return getattr(result, "check", lambda *_: None)(UnauthorizedLogin) is not None


def make() -> tuple[LoginThrottle, Clock]:
    clock = Clock()
    return LoginThrottle(SETTINGS, clock), clock


def test_V0058_throttle_delays_grow_then_block_the_pair():
    throttle, clock = make()
    delays = [attempt(throttle, clock, WRONG)[0] for _ in range(6)]
    assert delays == [0, 0, 0, 1.0, 2.0, 4.0]  # growing once the pair's budget of 3 is spent
    assert throttle.blocked("127.0.0.1", "ALICE")  # sixth failure: alice from this address
    # A correct password from here is refused during the block, exactly like a wrong one.
    waited, result = attempt(throttle, clock, "alice")
    assert failed(result) and waited == SETTINGS.max_delay
    # Other accounts from the same address are unaffected (its own budget is 20).
    assert attempt(throttle, clock, "bob", user="bob") == (0, "bob")
    clock.advance(SETTINGS.block_duration)
    waited, result = attempt(throttle, clock, "alice")  # the block is over; the account's
    assert result == "alice" and waited <= SETTINGS.account_max_delay  # budget may slow it


def test_attacker_cannot_lock_the_victim_out_from_another_address():
    throttle, clock = make()
    assert attempt(throttle, clock, "alice", ip="127.0.0.10") == (0, "alice")  # her laptop
    for _ in range(30):  # the attacker guesses on, and on, from 127.0.0.66
        attempt(throttle, clock, WRONG, ip="127.0.0.66")
    assert throttle.blocked("127.0.0.66", "alice")
    assert not throttle.blocked("127.0.0.10", "alice")
    assert not throttle.blocked("127.0.0.11", "alice")
    # Her known address is exempt from the account's budget: no delay at all.
    assert attempt(throttle, clock, "alice", ip="127.0.0.10") == (0, "alice")
    # A new, clean address of hers is only slowed (bounded), never refused.
    waited, result = attempt(throttle, clock, "alice", ip="127.0.0.11")
    assert result == "alice" and 0 < waited <= SETTINGS.account_max_delay


def test_spraying_many_accounts_from_one_address_gets_blocked():
    throttle, clock = make()
    assert attempt(throttle, clock, "carol", ip="127.0.0.1", user="carol")[1] == "carol"
    delays = [
        attempt(throttle, clock, WRONG, ip="127.0.0.1", user=f"user{i}")[0]
        for i in range(SETTINGS.ip_block_after)
    ]
    assert delays[: SETTINGS.ip_delay_after] == [0] * SETTINGS.ip_delay_after
    assert delays[SETTINGS.ip_delay_after : SETTINGS.ip_delay_after + 4] == [1.0, 2.0, 4.0, 8.0]
    assert max(delays) == SETTINGS.max_delay
    # Blocked for every account from there, with the wrong-password answer...
    waited, result = attempt(throttle, clock, "dave", ip="127.0.0.1", user="dave")
    assert failed(result) and waited == SETTINGS.max_delay
    # ...except one that logged in from there recently (a colleague behind the same NAT).
    assert attempt(throttle, clock, "carol", ip="127.0.0.1", user="carol") == (0, "carol")
    # Other addresses are unaffected.
    assert attempt(throttle, clock, "dave", ip="127.0.0.2", user="dave") == (0, "dave")
    clock.advance(SETTINGS.block_duration)
    assert not throttle.blocked("127.0.0.1", "dave")


def test_distributed_guessing_is_slowed_but_a_clean_address_still_logs_in():
    throttle, clock = make()
    delays = [attempt(throttle, clock, WRONG, ip=f"127.0.0.{n}")[0] for n in range(2, 62)]
    assert delays[: SETTINGS.account_delay_after] == [0] * SETTINGS.account_delay_after
    grown = delays[SETTINGS.account_delay_after :]
    assert grown[:3] == [1.0, 2.0, 4.0] and grown == sorted(grown)  # delays grow...
    assert max(grown) == SETTINGS.account_max_delay  # ...to the account's bound, no further
    assert not any(throttle.blocked(f"127.0.0.{n}", "alice") for n in range(2, 62))
    waited, result = attempt(throttle, clock, "alice", ip="127.0.0.200")
    assert result == "alice" and waited == SETTINGS.account_max_delay
    # Once she logged in from there, the address is known: no more delay for her.
    assert attempt(throttle, clock, "alice", ip="127.0.0.200") == (0, "alice")


def test_blocked_attempts_do_not_count_and_blocks_expire():
    throttle, clock = make()
    for _ in range(SETTINGS.pair_block_after):
        attempt(throttle, clock, WRONG)
    for _ in range(50):  # a client retrying while blocked: no password is checked
        assert failed(attempt(throttle, clock, WRONG)[1])
    assert throttle.delay("127.0.0.2", "bob") == 0  # the address budget did not grow
    clock.advance(SETTINGS.block_duration)
    assert not throttle.blocked("127.0.0.1", "alice")
    waited, result = attempt(throttle, clock, "alice")
    assert result == "alice" and waited <= SETTINGS.account_max_delay
    clock.advance(SETTINGS.window)  # and the window forgets the failures
    assert attempt(throttle, clock, "alice") == (0, "alice")


def test_success_clears_the_pair_only():
    throttle, clock = make()
    for n in range(SETTINGS.account_delay_after):
        attempt(throttle, clock, WRONG, ip=f"127.0.0.{n + 2}")
    for _ in range(3):
        attempt(throttle, clock, WRONG, ip="127.0.0.1", user="bob")
    assert throttle.delay("127.0.0.1", "bob") == 1.0
    attempt(throttle, clock, "bob", ip="127.0.0.1", user="bob")
    assert throttle.delay("127.0.0.1", "bob") == 0  # bob's pair is cleared
    attempt(throttle, clock, "alice", ip="127.0.0.100")
    # alice's success does not reset her account budget for unknown addresses.
    assert throttle.delay("127.0.0.101", "alice") == 1.0


def test_throttle_window_forgets_old_failures_and_directory_errors_do_not_count():
    throttle, clock = make()
    for _ in range(3):
        attempt(throttle, clock, DirectoryUnavailable("down"))
    assert throttle.delay("127.0.0.1", "alice") == 0
    for _ in range(3):
        attempt(throttle, clock, WRONG)
    assert throttle.delay("127.0.0.1", "alice") == 1.0
    clock.advance(SETTINGS.window + 1)
    assert throttle.delay("127.0.0.1", "alice") == 0


def test_records_are_bounded():
    clock = Clock()
    throttle = LoginThrottle(SETTINGS, clock)
    throttle.MAX_RECORDS = 50
    throttle._pairs.max_records = throttle._ips.max_records = throttle._accounts.max_records = 50
    for n in range(200):
        attempt(throttle, clock, WRONG, ip=f"10.0.{n // 250}.{n % 250}", user=f"u{n}")
        attempt(throttle, clock, f"u{n}", ip=f"10.1.{n // 250}.{n % 250}", user=f"u{n}")
    assert max(len(throttle._pairs), len(throttle._ips), len(throttle._accounts), len(throttle._known)) <= 50


def test_throttle_disabled_and_config(tmp_path):
    clock = Clock()
    off = LoginThrottle(ThrottleSettings(enabled=False), clock)
    for _ in range(50):
        assert attempt(off, clock, WRONG)[0] == 0
    path = tmp_path / "exchmail.toml"
    path.write_text(
        "[throttle]\npair_block_after = 3\nmax_delay = 2.5\naccount_max_delay = 1\nknown_duration = 0\n"
    )
    config = load_config(path)
    assert config.throttle.pair_block_after == 3 and config.throttle.max_delay == 2.5
    assert config.throttle.account_max_delay == 1.0 and config.throttle.known_duration == 0
    assert config.throttle.enabled and config.throttle.ip_block_after == 100
    path.write_text("[throttle]\nmax_delay = -1\n")
    with pytest.raises(ConfigError, match="throttle.max_delay"):
        load_config(path)
    path.write_text("[throttle]\nbogus = 1\n")
    with pytest.raises(ConfigError, match="throttle.bogus: unknown key"):
        load_config(path)
    path.write_text("[throttle]\naccount_block_after = 15\n")  # the old per-account block
    with pytest.raises(ConfigError, match="throttle.account_block_after: no longer supported"):
        load_config(path)


def test_V0058_throttle_blocks_on_the_wire(reactor_thread, tmp_path):
    """Wrong passwords across new sessions (IMAP and POP3) block the account from
    that address, and then even the right password fails the same way; another
    account from the same address is unaffected."""
    settings = ThrottleSettings(
        window=600,
        pair_delay_after=2,
        pair_block_after=4,
        ip_delay_after=0,
        ip_block_after=0,
        account_delay_after=0,
        base_delay=0.01,
        max_delay=0.05,
        block_duration=600,
    )
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

"""LDAPChecker against a real slapd: search-then-bind, TLS, groups, escaping,
outages and the positive cache."""

from __future__ import annotations

import time
from typing import Any

import pytest
from slapd_server import (  # noqa: F401 - slapd_fixture is the slapd fixture
    MAIL_GROUP,
    PASSWORDS,
    POP_GROUP,
    SERVICE_DN,
    Slapd,
    ldap_config,
    slapd_fixture,
)
from twisted.cred.checkers import ICredentialsChecker
from twisted.cred.credentials import UsernamePassword
from twisted.cred.error import UnauthorizedLogin
from twisted.internet import defer
from twisted.python.failure import Failure
from zope.interface.verify import verifyObject

from exchmail.auth.directory import DirectoryUser
from exchmail.auth.ldap import LDAPChecker
from exchmail.auth.ldapfilter import escape_filter_value, user_filter
from exchmail.errors import DirectoryUnavailable
from exchmail.interfaces import IDirectory

INJECTION = "*)(uid=*"


def outcome(checker: LDAPChecker, user: str | bytes, password: str | bytes) -> Any:
    """The avatar ID, or the Failure, of a synchronous login."""
    user_b = user.encode() if isinstance(user, str) else user
    password_b = password.encode() if isinstance(password, str) else password
    out: list[Any] = []
    checker.requestAvatarId(UsernamePassword(user_b, password_b)).addBoth(out.append)
    assert out, "a checker without run_blocking answers synchronously"
    return out[0]


def refused(result: Any) -> bool:
    return isinstance(result, Failure) and result.check(UnauthorizedLogin) is not None


def unavailable(result: Any) -> bool:
    return isinstance(result, Failure) and result.check(DirectoryUnavailable) is not None


def test_escape_filter_value_rfc4515() -> None:
    assert escape_filter_value(INJECTION) == "\\2a\\29\\28uid=\\2a"
    assert escape_filter_value("a\\b\x00(c)") == "a\\5cb\\00\\28c\\29"
    assert escape_filter_value("jürgen") == "jürgen"
    assert (
        user_filter("(&(objectClass=inetOrgPerson)(uid={user}))", "*")
        == "(&(objectClass=inetOrgPerson)(uid=\\2a))"
    )


def test_login_over_ldaps_search_then_bind(slapd: Slapd) -> None:
    checker = LDAPChecker(ldap_config(slapd, quota_attribute="employeeNumber"))
    assert verifyObject(ICredentialsChecker, checker)
    assert verifyObject(IDirectory, checker)
    user = outcome(checker, "alice", PASSWORDS["alice"])
    assert isinstance(user, DirectoryUser) and user == "alice"
    assert user.dn == "uid=alice,ou=people,dc=example,dc=org"
    assert user.mail == "alice@example.org"
    assert user.quota == 1048576
    assert user.protocols is None  # no group configured: no restriction
    # matched case-insensitively by the directory; the entry's spelling is canonical
    assert outcome(checker, "ALICE", PASSWORDS["alice"]) == "alice"
    assert checker.canonical_name("Alice") == "alice"


def test_start_tls(slapd: Slapd) -> None:
    checker = LDAPChecker(ldap_config(slapd, servers=(slapd.ldap_uri,), start_tls=True))
    assert outcome(checker, "bob", PASSWORDS["bob"]) == "bob"


def test_wrong_passwords_and_unknown_users_are_refused(slapd: Slapd) -> None:
    checker = LDAPChecker(ldap_config(slapd))
    assert refused(outcome(checker, "alice", "wrong"))
    assert refused(outcome(checker, "alice", PASSWORDS["bob"]))
    assert refused(outcome(checker, "nobody", "x"))
    # An empty password would be an unauthenticated bind that the directory
    # accepts without checking anything (RFC 4513 5.1.2).
    assert refused(outcome(checker, "alice", ""))
    assert refused(outcome(checker, "", "x"))
    assert refused(outcome(checker, "al\x00ice", "x"))
    assert refused(outcome(checker, b"\xff", "x"))
    # the connections stay usable after refusals
    assert outcome(checker, "alice", PASSWORDS["alice"]) == "alice"


@pytest.mark.parametrize("password", ["x", "alice pw", "bob pw", "*"])
@pytest.mark.parametrize(
    "name", [INJECTION, "*", "alice)(|(uid=*", "*)(|(objectClass=*", "alice*", "(uid=alice)"]
)
def test_filter_injection_logs_nobody_in(slapd: Slapd, name: str, password: str) -> None:
    checker = LDAPChecker(ldap_config(slapd))
    assert refused(outcome(checker, name, password))


def test_required_groups_per_protocol(slapd: Slapd) -> None:
    checker = LDAPChecker(ldap_config(slapd, imap_group=MAIL_GROUP, pop3_group=POP_GROUP))
    assert outcome(checker, "alice", PASSWORDS["alice"]).protocols == {"imap", "pop3"}
    assert outcome(checker, "bob", PASSWORDS["bob"]).protocols == {"imap"}
    carol = outcome(checker, "carol", PASSWORDS["carol"])
    assert carol == "carol" and carol.protocols == frozenset()
    only_pop = LDAPChecker(ldap_config(slapd, pop3_group=POP_GROUP))
    assert outcome(only_pop, "bob", PASSWORDS["bob"]).protocols == {"imap"}
    missing = LDAPChecker(ldap_config(slapd, imap_group="cn=nope,ou=groups,dc=example,dc=org"))
    assert outcome(missing, "alice", PASSWORDS["alice"]).protocols == {"pop3"}


def test_mailbox_attribute_names_the_mailbox(slapd: Slapd) -> None:
    checker = LDAPChecker(ldap_config(slapd, mailbox_attribute="description"))
    assert outcome(checker, "dave", PASSWORDS["dave"]) == "dave.mbox"
    assert outcome(checker, "bob", PASSWORDS["bob"]) == "bob"  # no attribute: login name


def test_anonymous_search(slapd: Slapd) -> None:
    checker = LDAPChecker(ldap_config(slapd, bind_dn="", bind_password=""))
    assert outcome(checker, "bob", PASSWORDS["bob"]) == "bob"
    assert refused(outcome(checker, "bob", "wrong"))


def test_bad_search_account_is_unavailable_not_wrong_password(slapd: Slapd) -> None:
    checker = LDAPChecker(ldap_config(slapd, bind_password="not the service password"))
    assert unavailable(outcome(checker, "alice", PASSWORDS["alice"]))


def test_tls_certificate_is_verified(slapd: Slapd) -> None:
    other_ca = LDAPChecker(ldap_config(slapd, ca_file=slapd.other_ca_file))
    assert unavailable(outcome(other_ca, "alice", PASSWORDS["alice"]))
    other_ca_starttls = LDAPChecker(
        ldap_config(slapd, servers=(slapd.ldap_uri,), start_tls=True, ca_file=slapd.other_ca_file)
    )
    assert unavailable(outcome(other_ca_starttls, "alice", PASSWORDS["alice"]))
    # The certificate names IP 127.0.0.1 only: "localhost" does not match it.
    by_name = f"ldaps://localhost:{slapd.ldaps_port}"
    mismatch = LDAPChecker(ldap_config(slapd, servers=(by_name,)))
    assert unavailable(outcome(mismatch, "alice", PASSWORDS["alice"]))
    unchecked = LDAPChecker(ldap_config(slapd, servers=(by_name,), verify_hostname=False))
    assert outcome(unchecked, "alice", PASSWORDS["alice"]) == "alice"


def test_failover_to_the_next_server(slapd: Slapd) -> None:
    from slapd_server import free_port

    dead = f"ldaps://127.0.0.1:{free_port()}"
    checker = LDAPChecker(ldap_config(slapd, servers=(dead, slapd.ldaps_uri)))
    assert outcome(checker, "alice", PASSWORDS["alice"]) == "alice"
    assert refused(outcome(checker, "alice", "wrong"))


def test_outage_is_temporary_and_recovers(slapd: Slapd) -> None:
    checker = LDAPChecker(ldap_config(slapd))
    assert outcome(checker, "alice", PASSWORDS["alice"]) == "alice"
    slapd.stop()
    assert unavailable(outcome(checker, "alice", PASSWORDS["alice"]))
    assert unavailable(outcome(checker, "alice", "wrong"))  # never "wrong password"
    slapd.start()
    # the pooled connections died with the old slapd: fresh ones are opened
    assert outcome(checker, "alice", PASSWORDS["alice"]) == "alice"
    assert refused(outcome(checker, "alice", "wrong"))


@pytest.mark.slow(waits=True)
def test_hung_directory_times_out(slapd: Slapd) -> None:
    checker = LDAPChecker(ldap_config(slapd, timeout=1.0, connect_timeout=1.0))
    assert outcome(checker, "alice", PASSWORDS["alice"]) == "alice"
    slapd.pause()
    try:
        started = time.monotonic()
        assert unavailable(outcome(checker, "alice", PASSWORDS["alice"]))
        assert time.monotonic() - started < 10
    finally:
        slapd.resume()
    assert outcome(checker, "alice", PASSWORDS["alice"]) == "alice"


def test_positive_cache_is_off_by_default(slapd: Slapd) -> None:
    checker = LDAPChecker(ldap_config(slapd))
    assert outcome(checker, "alice", PASSWORDS["alice"]) == "alice"
    slapd.stop()
    assert unavailable(outcome(checker, "alice", PASSWORDS["alice"]))


def test_positive_cache_never_outlives_its_ttl(slapd: Slapd) -> None:
    now = [1000.0]
    checker = LDAPChecker(ldap_config(slapd, cache_ttl=60.0), clock=lambda: now[0])
    user = outcome(checker, "alice", PASSWORDS["alice"])
    slapd.stop()
    now[0] += 30
    assert outcome(checker, "alice", PASSWORDS["alice"]) is user  # served from the cache
    assert outcome(checker, "Alice", PASSWORDS["alice"]) is user
    assert unavailable(outcome(checker, "alice", "other"))  # only the cached password
    assert unavailable(outcome(checker, "bob", PASSWORDS["bob"]))
    now[0] += 31  # 61 s after the login: expired, even though it was used at 30 s
    assert unavailable(outcome(checker, "alice", PASSWORDS["alice"]))


def test_user_exists_addresses_and_verified_logins(slapd: Slapd) -> None:
    from exchmail.auth.verified import VerifiedLogin

    checker = LDAPChecker(ldap_config(slapd))
    found: list[Any] = []
    checker.user_exists("bob").addBoth(found.append)
    checker.user_exists("nobody").addBoth(found.append)
    checker.user_exists(INJECTION).addBoth(found.append)
    checker.user_exists("").addBoth(found.append)  # no name: not asked
    assert found == [True, False, False, False]
    # LMTP's recipients: by mail attribute, then by login name; in the pool when there is one.
    pooled = LDAPChecker(ldap_config(slapd), run_blocking=lambda f, *args: defer.maybeDeferred(f, *args))
    addresses: list[Any] = []
    for address in ("bob@example.org", "carol@elsewhere.test", "nobody@example.org", "x\x00y@example.org"):
        pooled.mailbox_for_address(address).addBoth(addresses.append)
    assert addresses == ["bob", "carol", None, None]
    # GSSAPI or a bearer token proved who it is: the entry is found, never bound to.
    who: list[Any] = []
    for name in (b"alice", b"nobody", b"al\x00ice"):
        checker.requestAvatarId(VerifiedLogin(name, name.decode() + "@EXAMPLE.ORG", "GSSAPI")).addBoth(
            who.append
        )
    assert who[0] == "alice" and who[0].dn == "uid=alice,ou=people,dc=example,dc=org"
    assert refused(who[1]) and "no directory entry for 'nobody@EXAMPLE.ORG'" in who[1].getErrorMessage()
    assert refused(who[2]) and who[2].getErrorMessage() == "unusable account name"
    checker.close()
    pooled.close()


def test_service_dn_constant() -> None:
    assert SERVICE_DN.startswith("cn=exchmail,")


def test_waiting_logins_are_capped_with_a_temporary_failure() -> None:
    """A slow directory cannot queue logins without bound: past the cap the
    client is told to try again later (never "wrong password")."""
    from exchmail.auth.ldapconfig import LDAPConfig

    pending: list[defer.Deferred[Any]] = []

    def never_done(f: Any, *args: Any) -> defer.Deferred[Any]:
        d: defer.Deferred[Any] = defer.Deferred()
        pending.append(d)
        return d

    config = LDAPConfig(servers=("ldap://127.0.0.1:9",), base_dn="dc=example,dc=org", pool_size=1)
    checker = LDAPChecker(config, run_blocking=never_done)
    for _ in range(checker.max_waiting):
        checker.requestAvatarId(UsernamePassword(b"alice", b"pw"))
    refused = checker.requestAvatarId(UsernamePassword(b"alice", b"pw"))
    failures: list[Failure] = []
    refused.addErrback(failures.append)
    assert failures and failures[0].check(DirectoryUnavailable)
    assert len(pending) == checker.max_waiting
    pending[0].errback(DirectoryUnavailable("down"))  # one finishes: room for one more
    pending[0].addErrback(lambda f: None)
    checker.requestAvatarId(UsernamePassword(b"alice", b"pw"))
    assert len(pending) == checker.max_waiting + 1
    # Logins GSSAPI or a token proved wait in the same queue.
    from exchmail.auth.verified import VerifiedLogin

    verified = VerifiedLogin(b"alice", "alice@EXAMPLE.ORG", "GSSAPI")
    checker.requestAvatarId(verified).addErrback(failures.append)
    assert len(failures) == 2 and failures[1].check(DirectoryUnavailable)
    pending[1].errback(DirectoryUnavailable("down"))
    checker.requestAvatarId(verified)
    assert len(pending) == checker.max_waiting + 2
    for d in pending[1:]:
        d.addErrback(lambda f: None)


def test_entries_the_checker_cannot_use(slapd: Slapd) -> None:
    """One slapd for four directory shapes: the login is refused (and logged),
    or a temporary failure, never a wrong guess."""
    from twisted.logger import globalLogPublisher

    events: list[dict[str, Any]] = []
    globalLogPublisher.addObserver(events.append)
    try:
        # A filter that matches more than the user: nobody is picked.
        loose = LDAPChecker(ldap_config(slapd, user_filter="(|(uid={user})(objectClass=inetOrgPerson))"))
        assert refused(outcome(loose, "alice", PASSWORDS["alice"]))
        # The mailbox attribute holds a value that cannot name a mailbox (a DN).
        unsafe = LDAPChecker(ldap_config(slapd, mailbox_attribute="entryDN"))
        assert refused(outcome(unsafe, "alice", PASSWORDS["alice"]))
        # A quota attribute that is no number: the login goes on without a quota.
        wordy = LDAPChecker(ldap_config(slapd, quota_attribute="cn"))
        bob = outcome(wordy, "bob", PASSWORDS["bob"])
        assert bob == "bob" and bob.quota is None
        # A base DN that does not exist is the directory's problem, not the user's.
        missing = LDAPChecker(ldap_config(slapd, base_dn="ou=nobody,dc=example,dc=org"))
        failed = outcome(missing, "alice", PASSWORDS["alice"])
        assert unavailable(failed)
    finally:
        globalLogPublisher.removeObserver(events.append)
    logged = [e.get("log_format", "") for e in events if e.get("log_namespace", "").startswith("exchmail")]
    assert any("matches several entries" in text for text in logged)
    assert any("which is not a safe user name" in text for text in logged)
    assert any("is not an integer" in text for text in logged)
    assert any(e.get("name") == "uid=alice,ou=people,dc=example,dc=org" for e in events)
    for checker in (loose, unsafe, wordy, missing):
        checker.close()

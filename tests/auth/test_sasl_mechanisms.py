"""SASL mechanisms (exchmail.auth.sasl) and their use by IMAP AUTHENTICATE and POP3 AUTH,
without a reactor thread: in-memory sessions (tests/harness.py: StringTransport, task.Clock).

SCRAM-SHA-256 is driven by a real client library (scramp).
"""

from __future__ import annotations

import base64
from pathlib import Path

import pytest
from conftest import add_accounts
from harness import Connection, Harness
from scramp import ScramClient
from twisted.cred.checkers import InMemoryUsernamePasswordDatabaseDontUse
from twisted.cred.credentials import IUsernamePassword
from twisted.cred.portal import Portal
from zope.interface.verify import verifyObject

from exchmail.auth import sasl
from exchmail.auth.accounts import AccountsFile
from exchmail.auth.checker import AccountsChecker
from exchmail.auth.realm import MailRealm
from exchmail.interfaces import ISCRAMCredentials, ISCRAMKeys
from exchmail.store.memory import MemoryStore

PASSWORD = "secret pw"
SCRAM_ALL = {
    "imap.sasl_mechanisms": ["SCRAM-SHA-256", "PLAIN", "LOGIN"],
    "pop3.sasl_mechanisms": ["SCRAM-SHA-256", "PLAIN", "LOGIN"],
}


def b64(data: bytes | str) -> bytes:
    return base64.b64encode(data.encode() if isinstance(data, str) else data)


@pytest.fixture
def accounts(tmp_path: Path) -> AccountsChecker:
    users = tmp_path / "users"
    add_accounts(users, ["alice"], PASSWORD)
    add_accounts(users, ["bob"], "other pw")
    return AccountsChecker(users)


def portal_for(checker: object) -> Portal:
    return Portal(MailRealm(MemoryStore()), [checker])


# -- the mechanisms ------------------------------------------------------------------


def test_plain_parses_and_refuses_malformed():
    mech = sasl.Plain(None)
    assert mech.start(None) == sasl.Challenge(b"")
    outcome = mech.step(b"\0alice\0pw")
    assert isinstance(outcome, sasl.Outcome) and outcome.final is None
    assert IUsernamePassword.providedBy(outcome.credentials)
    assert (outcome.credentials.username, outcome.credentials.password) == (b"alice", b"pw")
    assert sasl.Plain(None).step(b"ALICE\0alice\0pw").credentials.username == b"alice"
    for bad in (b"alice\0pw", b"\0\0pw", b"a\0b\0c\0d", b"bob\0alice\0pw"):  # bob: proxy auth
        with pytest.raises(sasl.MalformedResponse):
            sasl.Plain(None).step(bad)
    with pytest.raises(sasl.MalformedResponse):  # wrong step count
        mech.step(b"\0alice\0pw")
    with pytest.raises(sasl.MalformedResponse):
        sasl.Plain(None).step(b"\0alice\0" + b"x" * (sasl.MAX_RESPONSE + 1))


def test_login_mechanism_steps():
    mech = sasl.Login(None)
    assert mech.start(None) == sasl.Challenge(b"Username:")
    assert mech.step(b"alice") == sasl.Challenge(b"Password:")
    outcome = mech.step(b"pw")
    assert (outcome.credentials.username, outcome.credentials.password) == (b"alice", b"pw")
    with_initial = sasl.Login(None)
    assert with_initial.start(b"alice") == sasl.Challenge(b"Password:")
    with pytest.raises(sasl.MalformedResponse):
        sasl.Login(None).start(b"")


def test_registry_filters_by_portal(accounts):
    memory = InMemoryUsernamePasswordDatabaseDontUse()
    names = ["SCRAM-SHA-256", "PLAIN", "LOGIN", "NTLM"]
    assert list(sasl.challengers(names, portal_for(accounts))) == [b"SCRAM-SHA-256", b"PLAIN", b"LOGIN"]
    # A checker without SCRAM keys (LDAP, custom): SCRAM is not offered.
    assert list(sasl.challengers(names, portal_for(memory))) == [b"PLAIN", b"LOGIN"]
    made = sasl.challengers(names, portal_for(accounts))
    assert sasl.is_plaintext(made[b"PLAIN"]) and not sasl.is_plaintext(made[b"SCRAM-SHA-256"])


def keys_of(checker: AccountsChecker, name: str) -> sasl.SCRAMKeys | None:
    """ISCRAMKeys.scram_keys is asynchronous; a checker without run_blocking fires at once."""
    out: list = []
    checker.scram_keys(name).addBoth(out.append)
    assert out, "the Deferred has not fired"
    return out[0]


def test_accounts_checker_provides_scram_keys(accounts, tmp_path):
    verifyObject(ISCRAMKeys, accounts)
    keys = keys_of(accounts, "ALICE")
    assert keys is not None and keys.iterations == sasl.SCRAM_ITERATIONS
    assert keys == sasl.scram_keys(PASSWORD, keys.salt, keys.iterations)
    text = (tmp_path / "users").read_text()
    assert PASSWORD not in text and keys.encode() in text
    assert sasl.SCRAMKeys.decode(keys.encode()) == keys
    assert keys_of(accounts, "carol") is None


def test_accounts_without_keys_get_them_from_set_password(tmp_path):
    users = tmp_path / "users"
    f = AccountsFile(users)
    f.add("alice", PASSWORD)
    name, encoded, _keys = users.read_text().strip().split(":")
    users.write_text(f"{name}:{encoded}:extra\n")  # an account from before SCRAM
    checker = AccountsChecker(users, check_interval=0)  # re-check the file every time
    assert keys_of(checker, "alice") is None
    f.set_password("alice", "new pw")
    fields = users.read_text().strip().split(":")
    assert fields[2].startswith("$scram-sha-256$") and fields[3] == "extra"  # extras kept
    keys = keys_of(checker, "alice")
    assert keys is not None and keys == sasl.scram_keys("new pw", keys.salt)


def test_saslprep():
    assert sasl.saslprep("I\u00adX") == "IX"  # soft hyphen mapped to nothing
    assert sasl.saslprep("a\u00a0b") == "a b"  # non-ASCII space
    assert sasl.saslprep("\u2168") == "IX"  # NFKC
    with pytest.raises(ValueError):
        sasl.saslprep("a\u0007b")


def run_scram(accounts: AccountsChecker, user: str, password: str):
    """Drive ScramSHA256 with scramp's client; the final step's outcome and the client."""
    client = ScramClient(["SCRAM-SHA-256"], user, password)
    mech = sasl.ScramSHA256(portal_for(accounts))
    assert mech.start(None) == sasl.Challenge(b"")
    results: list = []
    mech.step(client.get_client_first().encode()).addCallback(results.append)
    server_first = results[0]
    assert isinstance(server_first, sasl.Challenge)
    client.set_server_first(server_first.data.decode())
    outcome = mech.step(client.get_client_final().encode())
    return outcome, client


def test_scram_with_scramp_client(accounts):
    outcome, client = run_scram(accounts, "alice", PASSWORD)
    assert isinstance(outcome, sasl.Outcome)
    verifyObject(ISCRAMCredentials, outcome.credentials)
    ids: list = []
    accounts.requestAvatarId(outcome.credentials).addCallback(ids.append)
    assert ids == ["alice"]
    client.set_server_final(outcome.final.decode())  # scramp checks the server's signature


@pytest.mark.parametrize("user,password", [("alice", "wrong"), ("nobody", PASSWORD)])
def test_scram_wrong_password_or_unknown_user_fails_in_the_checker(accounts, user, password):
    outcome, _ = run_scram(accounts, user, password)
    failures: list = []
    accounts.requestAvatarId(outcome.credentials).addErrback(failures.append)
    assert failures and failures[0].type.__name__ == "UnauthorizedLogin"


def test_scram_malformed_messages(accounts):
    portal = portal_for(accounts)
    for first in (
        b"",
        b"p=tls-unique,,n=alice,r=abc",
        b"n,,r=abc",
        b"n,,n=alice",
        b"x,,n=alice,r=abc",
        b"n,a=bob,n=alice,r=abc",
        b"n,,n=al,ice,r=abc",
        b"n,,m=ext,n=alice,r=abc",
    ):
        with pytest.raises(sasl.MalformedResponse):
            sasl.ScramSHA256(portal).step(first)
    mech = sasl.ScramSHA256(portal)
    mech.step(b"n,,n=alice,r=abc")
    for final in (b"c=biws,r=abc", b"c=biws,r=wrongnonce,p=AAAA", b"c=eSws,r=abc,p=AAAA"):
        with pytest.raises(sasl.MalformedResponse):
            mech.step(final)


def test_scram_unknown_user_gets_a_stable_made_up_salt(accounts):
    def salt_of(user: bytes) -> bytes:
        out: list = []
        sasl.ScramSHA256(portal_for(accounts)).step(b"n,,n=" + user + b",r=abc").addCallback(out.append)
        return out[0].data.split(b",")[1]

    assert salt_of(b"nobody") == salt_of(b"nobody") != salt_of(b"someone")


# -- IMAP AUTHENTICATE on a StringTransport -------------------------------------------


def imap_session(
    checker: object,
    profile: str = "exchange2010",
    overrides: dict | None = None,
    login_type: str = "PlainTextLogin",
) -> Connection:
    """An IMAP connection of an in-memory harness whose portal uses ``checker``."""
    return Harness(profile, {**(overrides or {}), "login_type": login_type}, checker=checker).imap()


def test_imap_sasl_ir_accepted_but_not_advertised_by_exchange2010(accounts):
    s = imap_session(accounts)
    caps = s.send(b"c CAPABILITY\r\n")
    assert b"AUTH=PLAIN" in caps and b"SASL-IR" not in caps and b"SCRAM" not in caps
    assert (
        s.send(b"a AUTHENTICATE PLAIN " + b64("\0alice\0" + PASSWORD) + b"\r\n")
        == b"a OK AUTHENTICATE completed.\r\n"
    )


def test_imap_rfc3501_advertises_scram_and_sasl_ir(accounts):
    s = imap_session(accounts, "rfc3501")
    line = s.send(b"c CAPABILITY\r\n").split(b"\r\n")[0]
    assert line.startswith(b"* CAPABILITY IMAP4rev1 AUTH=SCRAM-SHA-256 AUTH=PLAIN SASL-IR ")


def test_imap_scram_before_tls_under_secure_login(accounts):
    s = imap_session(accounts, overrides=SCRAM_ALL, login_type="SecureLogin")
    caps = s.send(b"c CAPABILITY\r\n")
    assert b"AUTH=SCRAM-SHA-256" in caps and b"AUTH=PLAIN" not in caps
    assert b"AUTH=LOGIN" not in caps
    assert s.send(b"a AUTHENTICATE PLAIN\r\n").startswith(b"a NO ")
    assert s.send(b"b AUTHENTICATE LOGIN\r\n").startswith(b"b NO ")
    assert s.send(b"d AUTHENTICATE SCRAM-SHA-256\r\n") == b"+ \r\n"


def imap_scram(s: Connection, user: str, password: str, initial: bool = False) -> bytes:
    client = ScramClient(["SCRAM-SHA-256"], user, password)
    first = b64(client.get_client_first())
    if initial:
        out = s.send(b"a AUTHENTICATE SCRAM-SHA-256 " + first + b"\r\n")
    else:
        assert s.send(b"a AUTHENTICATE SCRAM-SHA-256\r\n") == b"+ \r\n"
        out = s.send(first + b"\r\n")
    assert out.startswith(b"+ "), out
    client.set_server_first(base64.b64decode(out[2:].strip()).decode())
    out = s.send(b64(client.get_client_final()) + b"\r\n")
    if not out.startswith(b"+ "):
        return out
    client.set_server_final(base64.b64decode(out[2:].strip()).decode())
    return s.send(b"\r\n")


def test_V0021_scram_no_security_layer(accounts):
    """SCRAM completes with the server's signature; the session then goes on in the clear."""
    s = imap_session(accounts, overrides=SCRAM_ALL)
    assert imap_scram(s, "alice", PASSWORD) == b"a OK AUTHENTICATE completed.\r\n"
    assert s.send(b"b NOOP\r\n") == b"b OK NOOP completed.\r\n"
    s2 = imap_session(accounts, overrides=SCRAM_ALL)
    assert imap_scram(s2, "alice", PASSWORD, initial=True) == b"a OK AUTHENTICATE completed.\r\n"


def test_imap_scram_wrong_password_is_no(accounts):
    s = imap_session(accounts, overrides=SCRAM_ALL)
    assert imap_scram(s, "alice", "wrong") == b"a NO [AUTHENTICATIONFAILED] Authentication failed.\r\n"
    assert s.session.login.failures == 1


def test_imap_scram_not_offered_without_keys():
    memory = InMemoryUsernamePasswordDatabaseDontUse()
    memory.addUser(b"alice", b"pw")
    s = imap_session(memory, overrides=SCRAM_ALL)
    assert b"SCRAM" not in s.send(b"c CAPABILITY\r\n")
    assert s.send(b"a AUTHENTICATE SCRAM-SHA-256\r\n") == b"a NO Unsupported authentication mechanism\r\n"


def test_imap_authenticate_errors(accounts):
    # each error's answer; that they count toward the failure limit is tested
    # with the limit on (tests/auth/test_sasl_sso_units.py)
    s = imap_session(accounts, overrides={**SCRAM_ALL, "max_failed_logins": 0})
    assert s.send(b"a AUTHENTICATE PLAIN\r\n") == b"+ \r\n"
    assert s.send(b"*\r\n") == b"a NO The AUTH protocol exchange was canceled by the client.\r\n"
    assert s.send(b"b AUTHENTICATE PLAIN\r\n") == b"+ \r\n"
    out = s.send(b"!!notbase64\r\n")
    assert out.startswith(b"b BAD Invalid SASL response: ") and b"invalid base64" in out
    assert s.send(b"c AUTHENTICATE PLAIN " + b64("no nuls") + b"\r\n").startswith(
        b"c BAD Invalid SASL response"
    )
    assert s.send(b"d AUTHENTICATE PLAIN\r\n") == b"+ \r\n"
    # SASL responses may be long (Kerberos tickets), but not longer than 64 KiB
    assert s.send(b"A" * 70000 + b"\r\n") == b"d BAD Response line too long\r\n"
    assert s.send(b"e AUTHENTICATE SCRAM-SHA-256 =\r\n").startswith(b"e BAD Invalid SASL")
    assert s.send(b"f AUTHENTICATE LOGIN\r\n") == b"+ " + b64("Username:") + b"\r\n"
    assert s.send(b64("alice") + b"\r\n") == b"+ " + b64("Password:") + b"\r\n"
    assert s.send(b64(PASSWORD) + b"\r\n") == b"f OK AUTHENTICATE completed.\r\n"


def test_imap_scram_final_must_be_answered_empty(accounts):
    s = imap_session(accounts, overrides=SCRAM_ALL)
    client = ScramClient(["SCRAM-SHA-256"], "alice", PASSWORD)
    out = s.send(b"a AUTHENTICATE SCRAM-SHA-256 " + b64(client.get_client_first()) + b"\r\n")
    client.set_server_first(base64.b64decode(out[2:].strip()).decode())
    assert s.send(b64(client.get_client_final()) + b"\r\n").startswith(b"+ ")
    assert s.send(b"*\r\n") == b"a NO The AUTH protocol exchange was canceled by the client.\r\n"
    assert s.session.state == "unauth" and s.session.account is None


# -- POP3 AUTH on a StringTransport ---------------------------------------------------


def pop3_session(
    checker: object, overrides: dict | None = None, login_type: str = "PlainTextLogin"
) -> Connection:
    """A POP3 connection of an in-memory harness whose portal uses ``checker``."""
    return Harness("exchange2010", {**(overrides or {}), "login_type": login_type}, checker=checker).pop3()


def pop3_scram(s: Connection, user: str, password: str) -> bytes:
    client = ScramClient(["SCRAM-SHA-256"], user, password)
    out = s.send(b"AUTH SCRAM-SHA-256 " + b64(client.get_client_first()) + b"\r\n")
    client.set_server_first(base64.b64decode(out[2:].strip()).decode())
    out = s.send(b64(client.get_client_final()) + b"\r\n")
    if not out.startswith(b"+ "):
        return out
    client.set_server_final(base64.b64decode(out[2:].strip()).decode())
    return s.send(b"\r\n")


def test_pop3_mechanisms_and_scram(accounts):
    s = pop3_session(accounts, SCRAM_ALL, login_type="SecureLogin")
    assert s.send(b"AUTH\r\n") == b"+OK\r\nSCRAM-SHA-256\r\n.\r\n"
    assert s.send(b"AUTH PLAIN\r\n") == b"-ERR Unrecognized authentication type.\r\n"
    assert pop3_scram(s, "alice", PASSWORD) == b"+OK User successfully logged on.\r\n"
    plain = pop3_session(accounts, SCRAM_ALL)
    assert plain.send(b"AUTH\r\n") == b"+OK\r\nSCRAM-SHA-256\r\nPLAIN\r\nLOGIN\r\n.\r\n"


def test_pop3_auth_errors(accounts):
    # each error's answer; the failure limit is tested in test_sasl_sso_units.py
    s = pop3_session(accounts, {**SCRAM_ALL, "max_failed_logins": 0})
    failed = b"-ERR [AUTH] Logon failure: unknown user name or bad password.\r\n"
    assert pop3_scram(s, "alice", "wrong") == failed
    assert s.send(b"AUTH LOGIN\r\n") == b"+ " + b64("Username:") + b"\r\n"
    assert s.send(b"*\r\n") == b"-ERR The AUTH protocol exchange was canceled by the client.\r\n"
    assert s.send(b"AUTH PLAIN\r\n") == b"+ \r\n"
    assert s.send(b"%%%\r\n") == b"-ERR Invalid base64 in the AUTH response.\r\n"
    assert s.send(b"AUTH PLAIN\r\n") == b"+ \r\n"
    # longer than MaxCommandSize is fine for a SASL response (RFC 5034 §4), 64 KiB is not
    assert s.send(b"A" * 70000 + b"\r\n") == b"-ERR AUTH response line too long.\r\n"
    assert s.send(b"AUTH SCRAM-SHA-256 " + b64("n,,bogus") + b"\r\n") == failed
    assert s.send(b"AUTH LOGIN " + b64("alice") + b"\r\n") == b"+ " + b64("Password:") + b"\r\n"
    assert s.send(b64(PASSWORD) + b"\r\n") == b"+OK User successfully logged on.\r\n"


def test_scram_waits_for_asynchronous_keys(accounts):
    """ISCRAMKeys.scram_keys returns a Deferred: the server-first message waits
    for it, and a client-final sent before it is a malformed response."""
    from twisted.internet import defer

    pending: list = []

    class SlowKeys:
        def __getattr__(self, name):
            return getattr(accounts, name)

        def scram_keys(self, name):
            d = defer.Deferred()
            pending.append((d, name))
            return d

    slow = SlowKeys()
    mech = sasl.ScramSHA256(None)
    mech._keys_source = slow  # as find_scram_keys would give it
    client = ScramClient(["SCRAM-SHA-256"], "alice", PASSWORD)
    results: list = []
    mech.step(client.get_client_first().encode()).addBoth(results.append)
    assert results == [] and [name for _, name in pending] == ["alice"]
    with pytest.raises(sasl.MalformedResponse, match="before the server-first"):
        mech.step(b"c=biws,r=x,p=AAAA")
    d, name = pending.pop()
    accounts.scram_keys(name).addCallback(d.callback)
    assert isinstance(results[0], sasl.Challenge)
    client.set_server_first(results[0].data.decode())
    outcome = mech.step(client.get_client_final().encode())
    ids: list = []
    accounts.requestAvatarId(outcome.credentials).addCallback(ids.append)
    assert ids == ["alice"]


# -- edge cases of the SCRAM pieces --------------------------------------------------


@pytest.mark.parametrize(
    "field",
    [
        "$pbkdf2$i=4096$AAAA$AAAA$AAAA",  # another scheme
        "$scram-sha-256$4096$AAAA$AAAA$AAAA",  # no i=
        "$scram-sha-256$i=4096$AAAA$AAAA",  # a part missing
        "$scram-sha-256$i=4096$!!!!$AAAA$AAAA",  # bad base64
        "$scram-sha-256$i=0$AAAA$" + "A" * 44 + "$" + "A" * 44,  # no iterations
        "$scram-sha-256$i=4096$AAAA$AAAA$" + "A" * 44,  # StoredKey not 32 octets
    ],
)
def test_scram_keys_field_malformed(field):
    with pytest.raises(ValueError, match=r"\$scram-sha-256\$"):
        sasl.SCRAMKeys.decode(field)


def test_saslprep_empty_and_bidirectional():
    assert sasl.saslprep("") == ""
    assert sasl.saslprep("\u00ad") == ""  # mapped to nothing: nothing left to check
    assert sasl.saslprep("\u0627\u0628") == "\u0627\u0628"  # right-to-left only: fine
    with pytest.raises(ValueError, match="bidirectional"):
        sasl.saslprep("\u0627a\u0628")  # mixes RandALCat and LCat
    with pytest.raises(ValueError, match="bidirectional"):
        sasl.saslprep("\u06271")  # RandALCat first but not last


def test_scram_proof_of_the_wrong_length_is_refused():
    keys = sasl.scram_keys(PASSWORD, b"salt", 4096)
    assert not sasl.SCRAMCredentials(b"alice", b"message", b"short").check_stored_key(keys.stored_key)


@pytest.mark.parametrize(
    ("first", "reason"),
    [
        (b"n,x=bob,n=alice,r=abc", "malformed GS2 authzid"),
        (b"n,,n=al=ice,r=abc", "malformed SCRAM user name"),  # "=" not as =2C or =3D
        (b"n,,n=alice,r=", "empty user name or nonce"),
        (b"n,,n=alice,r=abc,m=ext", "mandatory SCRAM extensions"),
        # Where RFC 5802 puts it (reserved-mext first): refused for that reason too.
        (b"n,,m=ext,n=alice,r=abc", "mandatory SCRAM extensions"),
        (b"n,,n=alice,x,r=abc", "malformed SCRAM attribute"),
    ],
)
def test_scram_client_first_refused_with_its_reason(accounts, first, reason):
    with pytest.raises(sasl.MalformedResponse, match=reason):
        sasl.ScramSHA256(portal_for(accounts)).step(first)


def test_scram_user_name_that_is_not_utf8_gets_a_made_up_salt(accounts):
    out: list = []
    sasl.ScramSHA256(portal_for(accounts)).step(b"n,,n=\xff\xfe,r=abc").addCallback(out.append)
    assert isinstance(out[0], sasl.Challenge) and out[0].data.startswith(b"r=abc")
    assert b",i=%d" % sasl.SCRAM_ITERATIONS in out[0].data


@pytest.mark.parametrize(
    ("final", "reason"),
    [
        (b"c=biws,r=abc", "missing client proof"),
        (b"r=abc,c=biws,p=AAAA", "expected c=...,r=...,p=..."),
        (b"c=!!!!,r=abc,p=AAAA", "bad base64"),
        (b"c=biws,r=abc,p=!!!!", "bad base64"),
    ],
)
def test_scram_client_final_refused_with_its_reason(accounts, final, reason):
    mech = sasl.ScramSHA256(portal_for(accounts))
    mech.step(b"n,,n=alice,r=abc")
    with pytest.raises(sasl.MalformedResponse, match=reason):
        mech.step(final)


# -- Twisted's IChallengeResponse challengers -----------------------------------------


def test_twisted_login_challenger_adapted_step_by_step():
    from twisted.mail import imap4

    mech = sasl.as_mechanism(imap4.LOGINCredentials())
    assert isinstance(mech, sasl.ChallengeResponseMechanism)
    assert mech.start(None) == sasl.Challenge(b"User Name\0")
    assert mech.step(b"alice") == sasl.Challenge(b"Password\0")
    outcome = mech.step(b"pw")
    assert isinstance(outcome, sasl.Outcome) and outcome.final is None
    assert (outcome.credentials.username, outcome.credentials.password) == (b"alice", b"pw")
    with pytest.raises(sasl.MalformedResponse, match="already complete"):
        mech.step(b"more")


def test_twisted_plain_challenger_initial_response_and_malformed():
    from twisted.mail import imap4

    outcome = sasl.as_mechanism(imap4.PLAINCredentials()).start(b"\0alice\0pw")
    assert (outcome.credentials.username, outcome.credentials.password) == (b"alice", b"pw")
    with pytest.raises(sasl.MalformedResponse, match="wrong number of parts"):
        sasl.as_mechanism(imap4.PLAINCredentials()).start(b"no separators")
    ours = sasl.Plain(None)
    assert sasl.as_mechanism(ours) is ours


def test_imap_authenticate_with_a_twisted_challenger():
    """A SessionContext may carry Twisted's challengers (taken as plaintext)."""
    from dataclasses import replace

    from twisted.mail import imap4

    h = Harness()
    h.contexts["imap"] = replace(h.contexts["imap"], mechanisms={b"LOGIN": imap4.LOGINCredentials})
    s = h.imap()
    assert b"AUTH=LOGIN" in s.send(b"c CAPABILITY\r\n")
    assert s.send(b"a AUTHENTICATE LOGIN\r\n") == b"+ " + b64("User Name\0") + b"\r\n"
    assert s.send(b64("alice") + b"\r\n") == b"+ " + b64("Password\0") + b"\r\n"
    assert s.send(b64("pw") + b"\r\n") == b"a OK AUTHENTICATE completed.\r\n"

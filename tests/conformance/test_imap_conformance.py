"""MS-STANXIMAP on the wire, part 1: connection, syntax, authentication, capabilities.

One or more tests per statement; each test's name contains the statement
ID.  Statements decided by a profile setting are checked under both
built-in profiles (``exchange2010`` and ``rfc3501``) with the exact
behaviour each must show; facts are checked under both too, to prove they
do not depend on the profile.  See docs/conformance-imap.md.
"""

from __future__ import annotations

import base64
import re

import pytest
from conftest import PASSWORD
from harness import Harness
from imap_conformance_support import (
    EXCHANGE_GREETING,
    PLAIN,
    PROFILES,
    Raw,
    append,
    capability_line,
    raw,
    running,
    settings,
)

from exchmail.service.config import load_config

pytestmark = pytest.mark.usefixtures("reactor_thread")

both = pytest.mark.parametrize("profile", PROFILES)

CAPS = {
    "exchange2010": b"* CAPABILITY IMAP4 IMAP4rev1 AUTH=PLAIN UIDPLUS IDLE NAMESPACE LITERAL+",
    "rfc3501": b"* CAPABILITY IMAP4rev1 AUTH=SCRAM-SHA-256 AUTH=PLAIN SASL-IR UIDPLUS CHILDREN "
    b"IDLE NAMESPACE LITERAL+",
}


# -- 2.1.1 port ---------------------------------------------------------------------


def test_2_1_1_config_accepts_port_143(tmp_path):
    """Any endpoint can be configured; the documented production port 143 is accepted."""
    path = tmp_path / "exchmail.toml"
    path.write_text('[imap]\nlisten = ["tcp:143", "tcp:1143:interface=127.0.0.1"]\n')
    config = load_config(path)
    assert config.imap.listen == ("tcp:143", "tcp:1143:interface=127.0.0.1")


@both
def test_2_1_1_listens_on_configured_endpoint(tmp_path, profile):
    with running(tmp_path, profile) as server, raw(server, None) as client:
        assert server.imap_port > 0
        assert client.greeting.startswith(b"* OK ")


# -- 2.1.5 LOGINDISABLED / STARTTLS / AUTH=PLAIN ---------------------------------------------


@both
def test_2_1_5_logindisabled_with_secure_login(tmp_path, profile):
    """login_type SecureLogin on plain TCP: LOGIN refused; LOGINDISABLED only when advertised."""
    with running(tmp_path, profile, login_type="SecureLogin") as server, raw(server, None) as c:
        caps = capability_line(c).split()[2:]
        assert (b"LOGINDISABLED" in caps) == settings(profile).advertise_logindisabled
        assert (b"LOGINDISABLED" in caps) == (profile == "rfc3501")
        done = c.login()
        assert done.startswith(b"NO"), done
        _, done = c.command(b"SELECT INBOX")
        assert done.startswith((b"NO", b"BAD")), done


@both
def test_2_1_5_auth_plain_and_no_logindisabled_with_plaintext_login(tmp_path, profile):
    """Default login_type PlainTextLogin: AUTH=PLAIN advertised, no LOGINDISABLED, LOGIN works."""
    with running(tmp_path, profile) as server, raw(server, None) as c:
        caps = capability_line(c).split()[2:]
        assert b"AUTH=PLAIN" in caps
        assert b"LOGINDISABLED" not in caps
        assert c.login().startswith(b"OK")


# -- 2.1.6 / 2.1.7 / V0003 whitespace ----------------------------------------------------------

LIBERAL_COMMANDS = [
    b'a1\tLOGIN\talice\t"' + PASSWORD.encode() + b'"',
    b"a2  SELECT \t INBOX",
    b"a3 FETCH\t1  (FLAGS\tUID)",
    b"a4 UID  SEARCH   ALL",
    b"a5\t\tNOOP",
]


@both
def test_2_1_7_tab_separators(tmp_path, profile):
    """TABs and runs of SP/TAB in place of one SP: OK (exchange2010), BAD (rfc3501)."""
    liberal = settings(profile).liberal_whitespace
    assert liberal == (profile == "exchange2010")
    with running(tmp_path, profile) as server:
        with raw(server) as setup:
            assert append(setup, PLAIN).startswith(b"OK")
        c = Raw(server.imap_port)
        try:
            for i, line in enumerate(LIBERAL_COMMANDS):
                tag = line[:2]
                c.send(line + b"\r\n")
                untagged, done = c.finish(tag)
                if liberal:
                    assert done.startswith(b"OK"), (line, done)
                    continue
                assert done.startswith(b"BAD"), (line, done)
                if i == 0:  # strict: log in and select properly, then go on
                    assert c.login().startswith(b"OK")
                    c.ok(b"SELECT INBOX")
            if liberal:
                untagged, _ = c.command(b"FETCH 1 (UID)")
                assert untagged == [b"* 1 FETCH (UID 1)"]
        finally:
            c.close()


@both
def test_2_1_6_V0003_extra_spaces_in_arguments(tmp_path, profile):
    """Two spaces between LOGIN arguments: OK (exchange2010), BAD (rfc3501)."""
    with running(tmp_path, profile) as server, raw(server, None) as c:
        _, done = c.command(b'LOGIN alice  "' + PASSWORD.encode() + b'"')
        if settings(profile).liberal_whitespace:
            assert done.startswith(b"OK"), done
        else:
            assert done.startswith(b"BAD"), done
            _, done = c.command(b"NOOP  ")
            assert done.startswith(b"BAD"), done
            _, done = c.command(b"CAPABILITY\t")
            assert done.startswith(b"BAD"), done


@both
def test_2_1_7_whitespace_kept_inside_quoted_strings_and_literals(tmp_path, profile):
    """Runs of whitespace are never collapsed inside a quoted string or a literal."""
    body = b"Subject: t\r\n\r\ntwo  spaces\tand a tab\r\n"
    with running(tmp_path, profile) as server, raw(server) as c:
        assert c.ok(b'CREATE "two  spaces"') == []
        lines = c.ok(b'LIST "" "two*"')
        assert len(lines) == 1 and lines[0].endswith(b' "/" "two  spaces"'), lines
        assert append(c, body).startswith(b"OK")
        c.ok(b"SELECT INBOX")
        (line,) = c.ok(b"FETCH 1 (BODY.PEEK[])")
        assert line == b"* 1 FETCH (BODY[] {%d}\r\n" % len(body) + body + b")"


@both
def test_2_1_6_responses_strict_single_spaces(tmp_path, profile):
    """Responses follow the ABNF strictly: single SP separators, no TAB, CRLF endings."""
    with running(tmp_path, profile) as server, raw(server) as c:
        append(c, PLAIN)
        c.ok(b"SELECT INBOX")
        c.ok(b"FETCH 1 (FLAGS UID RFC822.SIZE ENVELOPE)")
        c.ok(b'LIST "" "*"')
        c.ok(b"SEARCH ALL")
        for entry in c.transcript:
            if entry.startswith(b"S: "):
                line = entry[3:].split(b"\r\n", 1)[0]
                assert b"\t" not in line and b"  " not in line, line


# -- C0001 tags -----------------------------------------------------------------------------


@both
def test_C0001_tag_syntax(tmp_path, profile):
    """Tags with atom-specials: accepted (any_printable) or untagged BAD (rfc3501)."""
    any_printable = settings(profile).tag_syntax.value == "any_printable"
    assert any_printable == (profile == "exchange2010")
    with running(tmp_path, profile) as server, raw(server, None) as c:
        for tag in (b"a(1", b"a{1", b"a%1", b'a"1', b"a*1"):
            c.send(tag + b" NOOP\r\n")
            line = c.readline()
            if any_printable:
                assert line.startswith(tag + b" OK"), (tag, line)
            else:
                assert line.startswith(b"* BAD"), (tag, line)
        # Always accepted: ASTRING-CHARs, including ']' (resp-specials).
        for tag in (b"A.1", b"a]1", b"x-9_z"):
            c.send(tag + b" NOOP\r\n")
            assert c.readline().startswith(tag + b" OK"), tag
        # Never accepted: a tag starting with '+' or '*'.
        for tag in (b"+a", b"*a"):
            c.send(tag + b" NOOP\r\n")
            assert c.readline().startswith(b"* BAD"), tag
        # The session is still usable.
        assert c.login().startswith(b"OK")


# -- V0001 repeated tags ---------------------------------------------------------------------


@both
def test_V0001_repeated_tags(tmp_path, profile):
    with running(tmp_path, profile) as server, raw(server, None) as c:
        c.send(b'same LOGIN alice "' + PASSWORD.encode() + b'"\r\n')
        assert c.readline().startswith(b"same OK")
        for command in (b"NOOP", b"SELECT INBOX", b"NOOP"):
            _, done = c.command(command, tag=b"same")
            assert done.startswith(b"OK"), (command, done)


# -- V0002 / V0014 unsolicited responses -----------------------------------------------------


@pytest.mark.slow(waits=True)
@both
def test_V0002_V0014_unsolicited_exists(tmp_path, profile):
    """An idle selected client is told of new messages at once only under exchange2010."""
    pushed = settings(profile).unsolicited_exists
    assert pushed == (profile == "exchange2010")
    with running(tmp_path, profile) as server, raw(server) as watcher, raw(server) as other:
        watcher.ok(b"SELECT INBOX")
        assert append(other, PLAIN).startswith(b"OK")
        if pushed:
            lines = watcher.wait_for(rb"\* 1 EXISTS", 5)
            lines += watcher.silent_for(0.5)
            assert b"* 1 RECENT" in lines, lines
            assert all(re.fullmatch(rb"\* 1 (EXISTS|RECENT)", x) for x in lines), lines
            assert watcher.ok(b"NOOP") == []
        else:
            assert watcher.silent_for(3) == []
            untagged = watcher.ok(b"NOOP")
            assert b"* 1 EXISTS" in untagged and b"* 1 RECENT" in untagged, untagged


@pytest.mark.slow(waits=True)
@both
def test_V0014_no_unsolicited_expunge(tmp_path, profile):
    """EXPUNGE is never sent while no command is in progress (RFC 3501 5.3), in any profile."""
    with running(tmp_path, profile) as server, raw(server) as watcher, raw(server) as other:
        append(other, PLAIN)
        append(other, PLAIN)
        watcher.ok(b"SELECT INBOX")
        other.ok(b"SELECT INBOX")
        other.ok(b"STORE 1 +FLAGS.SILENT (\\Deleted)")
        other.ok(b"EXPUNGE")
        assert not any(b"EXPUNGE" in x for x in watcher.silent_for(2))
        assert b"* 1 EXPUNGE" in watcher.ok(b"NOOP")


# -- E0002 / V0015 timers ---------------------------------------------------------------------


@both
def test_E0002_preauthenticated_timeout(profile):
    """Unauthenticated sessions end after preauthenticated_timeout (60 s) idle; commands reset it."""
    limit = settings(profile).preauthenticated_timeout
    assert limit == 60
    s = Harness(profile).imap()
    try:
        s.clock.advance(limit - 10)
        assert s.send(b"a NOOP\r\n").startswith(b"a OK")
        s.clock.advance(limit - 1)
        assert s.take() == b"" and not s.closed
        s.clock.advance(1)
        assert s.take().startswith(b"* BYE")
        assert s.closed
    finally:
        s.close()


@both
def test_E0002_preauthenticated_timeout_override_on_wire(tmp_path, profile):
    """The timer can be set below 60 seconds; an idle client gets BYE and is disconnected."""
    with running(tmp_path, profile, preauthenticated_timeout=1) as server:
        c = Raw(server.imap_port)
        try:
            lines = c.read_to_eof(8)
            assert any(x.startswith(b"* BYE") for x in lines), lines
        finally:
            c.close()


@both
def test_V0015_authenticated_timeout(profile):
    """Authenticated sessions end after authenticated_timeout idle (default 30 minutes)."""
    limit = settings(profile).authenticated_timeout
    assert limit == 1800
    s = Harness(profile).imap()
    try:
        assert b"a OK" in s.send(b"a LOGIN alice pw\r\n")
        s.clock.advance(limit - 1)
        assert s.take() == b"" and not s.closed
        s.clock.advance(1)
        assert s.take().startswith(b"* BYE")
        assert s.closed
    finally:
        s.close()


@pytest.mark.slow(waits=True)
@both
def test_V0015_authenticated_timeout_below_30_minutes(tmp_path, profile):
    """The autologout timer can be configured below 30 minutes (on the wire: 2 s)."""
    with running(tmp_path, profile, authenticated_timeout=2) as server:
        c = Raw(server.imap_port)
        try:
            assert c.login().startswith(b"OK")
            lines = c.read_to_eof(8)
            assert any(x.startswith(b"* BYE") for x in lines), lines
        finally:
            c.close()


# -- V0016 / V0017 serial processing ---------------------------------------------------------


@both
def test_V0016_V0017_pipelined_commands_in_order(tmp_path, profile):
    """Pipelined commands complete one after another, in order, each seeing the previous."""
    with running(tmp_path, profile) as server, raw(server) as c:
        batch = (
            b"p1 APPEND INBOX {%d+}\r\n" % len(PLAIN) + PLAIN + b"\r\n"
            b"p2 SELECT INBOX\r\n"
            b"p3 FETCH 1 (UID)\r\n"
            b"p4 STORE 1 +FLAGS (\\Seen)\r\n"
            b"p5 FETCH 1 (FLAGS)\r\n"
            b"p6 SEARCH SEEN\r\n"
            b"p7 NOOP\r\n"
        )
        c.send(batch)
        lines = []
        while True:
            line = c.readline()
            lines.append(line)
            if line.startswith(b"p7 "):
                break
        tagged = [x.split(b" ", 2) for x in lines if re.match(rb"p\d ", x)]
        assert [t[0] for t in tagged] == [b"p1", b"p2", b"p3", b"p4", b"p5", b"p6", b"p7"]
        assert all(t[1] == b"OK" for t in tagged), tagged
        after = {t[0]: lines.index(b" ".join(t)) for t in tagged}
        fetch_uid = lines.index(b"* 1 FETCH (UID 1)")
        assert after[b"p2"] < fetch_uid < after[b"p3"]
        assert lines.index(b"* SEARCH 1") < after[b"p6"]
        assert after[b"p5"] > max(i for i, x in enumerate(lines) if b"\\Seen" in x and b"FETCH" in x)


# -- V0018 / V0019 no access without authentication --------------------------------------------


@both
def test_V0018_no_mailbox_access_before_login(tmp_path, profile):
    with running(tmp_path, profile) as server, raw(server, None) as c:
        for command in (
            b"SELECT INBOX",
            b"EXAMINE INBOX",
            b'LIST "" "*"',
            b"STATUS INBOX (MESSAGES)",
            b"CREATE x",
            b"FETCH 1 (FLAGS)",
        ):
            untagged, done = c.command(command)
            assert done.startswith((b"BAD", b"NO")), (command, done)
            assert untagged == [], (command, untagged)


@both
def test_V0019_no_anonymous(tmp_path, profile):
    with running(tmp_path, profile) as server, raw(server, None) as c:
        assert b"AUTH=ANONYMOUS" not in capability_line(c)
        _, done = c.command(b"AUTHENTICATE ANONYMOUS")
        assert done.startswith(b"NO"), done
        for password in (b"x", b'""', b"anonymous@example.com"):
            _, done = c.command(b"LOGIN anonymous " + password)
            assert done.startswith(b"NO"), done
        _, done = c.command(b"SELECT INBOX")
        assert done.startswith((b"BAD", b"NO")), done


# -- V0020 / V0050 / V0048 / V0049 greeting ----------------------------------------------------


@both
def test_V0020_V0050_capability_in_greeting(tmp_path, profile):
    with running(tmp_path, profile) as server, raw(server, None) as c:
        if settings(profile).capability_in_greeting:
            assert profile == "rfc3501"
            assert c.greeting == (
                b"* OK [CAPABILITY "
                + CAPS[profile][len(b"* CAPABILITY ") :]
                + b"] exchmail IMAP4rev1 server ready"
            )
        else:
            assert profile == "exchange2010"
            assert c.greeting == EXCHANGE_GREETING
        assert capability_line(c) == CAPS[profile]


@both
def test_V0048_greeting_plain_text(tmp_path, profile):
    """The untagged OK greeting is human-readable text; its only possible code is CAPABILITY."""
    with running(tmp_path, profile) as server, raw(server, None) as c:
        if profile == "exchange2010":
            assert c.greeting == b"* OK The Microsoft Exchange IMAP4 service is ready."
            assert b"[" not in c.greeting
        else:
            assert re.fullmatch(rb"\* OK \[CAPABILITY [^]]*\] [^[\]]+", c.greeting), c.greeting


@both
def test_V0049_no_preauth_greeting(tmp_path, profile):
    with running(tmp_path, profile) as server:
        for _ in range(2):
            with raw(server, None) as c:
                assert c.greeting.startswith(b"* OK ")
                assert b"PREAUTH" not in c.greeting
                _, done = c.command(b"SELECT INBOX")
                assert not done.startswith(b"OK")


# -- V0021 / V0022 / V0023 / V0024 authentication -------------------------------------------


def _authenticate_plain(c: Raw) -> bytes:
    tag = c.next_tag()
    c.send(tag + b" AUTHENTICATE PLAIN\r\n")
    line = c.readline()
    assert line.startswith(b"+"), line
    c.send(base64.b64encode(b"\0alice\0" + PASSWORD.encode()) + b"\r\n")
    _, done = c.read_until_tag(tag)
    return done


@both
def test_V0021_no_security_layer_after_authenticate(tmp_path, profile):
    """After AUTHENTICATE PLAIN the session continues in the clear."""
    with running(tmp_path, profile) as server, raw(server, None) as c:
        assert _authenticate_plain(c).startswith(b"OK")
        untagged = c.ok(b"SELECT INBOX")
        assert b"* 0 EXISTS" in untagged
        assert append(c, PLAIN).startswith(b"OK")
        assert c.ok(b"FETCH 1 (UID)") == [b"* 1 FETCH (UID 1)"]


@both
def test_V0022_secure_login_refuses_plaintext(tmp_path, profile):
    """With login_type SecureLogin no plaintext password is accepted over plain TCP."""
    with running(tmp_path, profile, login_type="SecureLogin") as server, raw(server, None) as c:
        caps = capability_line(c)
        assert b"AUTH=PLAIN" not in caps
        assert c.login().startswith(b"NO")
        _, done = c.command(b"AUTHENTICATE PLAIN")
        assert done.startswith(b"NO"), done


@both
def test_V0023_capability_in_authenticate_response(tmp_path, profile):
    with running(tmp_path, profile) as server, raw(server, None) as c:
        done = _authenticate_plain(c)
        if settings(profile).capability_in_login_response:
            assert profile == "rfc3501"
            caps = CAPS[profile][len(b"* CAPABILITY ") :]
            assert done == b"OK [CAPABILITY " + caps + b"] AUTHENTICATE completed.", done
        else:
            assert profile == "exchange2010"
            assert done == b"OK AUTHENTICATE completed.", done


@both
def test_V0024_capability_in_login_response(tmp_path, profile):
    with running(tmp_path, profile) as server, raw(server, None) as c:
        done = c.login()
        if settings(profile).capability_in_login_response:
            assert profile == "rfc3501"
            caps = CAPS[profile][len(b"* CAPABILITY ") :]
            assert done == b"OK [CAPABILITY " + caps + b"] LOGIN completed.", done
        else:
            assert profile == "exchange2010"
            assert done == b"OK LOGIN completed.", done


# -- V0045 capabilities and experimental commands --------------------------------------------


@both
def test_V0045_capability_list(tmp_path, profile):
    with running(tmp_path, profile) as server, raw(server, None) as c:
        assert capability_line(c) == CAPS[profile]
        assert c.login().startswith(b"OK")
        assert capability_line(c) == CAPS[profile]


@both
def test_V0045_no_experimental_commands(tmp_path, profile):
    with running(tmp_path, profile) as server, raw(server) as c:
        c.ok(b"SELECT INBOX")
        caps = capability_line(c)
        assert not re.search(rb" X", caps), caps
        for command in (
            b"XFOO",
            b'XLIST "" "*"',
            b"MOVE 1 Trash",
            b"ID NIL",
            b"UNSELECT",
            b"X-GM-EXT-1",
            b"XAPPLEPUSHSERVICE",
        ):
            _, done = c.command(command)
            assert done.startswith(b"BAD"), (command, done)


# -- V0046 / V0047 response codes ---------------------------------------------------------------


@both
def test_V0046_response_codes(tmp_path, profile):
    with running(tmp_path, profile) as server, raw(server) as c:
        done = append(c, PLAIN)
        assert re.fullmatch(rb"OK \[APPENDUID \d+ 1\] .*", done), done
        untagged, done = c.command(b"SELECT INBOX")
        assert done.startswith(b"OK [READ-WRITE]"), done
        assert any(re.fullmatch(rb"\* OK \[UIDVALIDITY \d+\] .*", x) for x in untagged), untagged
        assert any(re.fullmatch(rb"\* OK \[UIDNEXT 2\] .*", x) for x in untagged), untagged
        assert any(x.startswith(b"* OK [PERMANENTFLAGS (") for x in untagged), untagged
        assert any(re.fullmatch(rb"\* OK \[UNSEEN 1\] .*", x) for x in untagged), untagged
        done = append(c, PLAIN, b"Nonexistent")
        assert done.startswith(b"NO [TRYCREATE]"), done
        _, done = c.command(b"COPY 1 Nonexistent")
        assert done.startswith(b"NO [TRYCREATE]"), done
        c.ok(b"CREATE Dest")
        _, done = c.command(b"COPY 1 Dest")
        assert re.fullmatch(rb"OK \[COPYUID \d+ 1 1\] .*", done), done
        _, done = c.command(b"EXAMINE INBOX")
        assert done.startswith(b"OK [READ-ONLY]"), done


@both
def test_V0047_no_alert_or_parse_codes(tmp_path, profile):
    with running(tmp_path, profile) as server, raw(server, None) as c:
        c.command(b"SELECT INBOX")  # wrong state
        c.command(b"LOGIN alice wrongpw")
        c.command(b"BOGUS")
        c.login()
        for command in (
            b"SELECT Nope",
            b"FETCH 1 (FLAGS)",
            b'LIST "" "*"',
            b"CREATE INBOX",
            b"DELETE Nope",
            b"STATUS Nope (MESSAGES)",
            b"SEARCH ALL",
            b"SELECT INBOX",
            b"FETCH 1:* (BOGUS)",
            b"SEARCH BOGUS",
            b"STORE 1 +FLAGS (\\Bogus)",
            b"FETCH 99 (FLAGS)",
            b"COPY 5 Nope",
            b"UID FETCH x (FLAGS)",
            b'"unclosed',
            b"FETCH 1 BODY[",
            b"SEARCH CHARSET KOI8-R ALL",
        ):
            tag = c.next_tag()
            c.send(tag + b" " + command + b"\r\n")
            c.finish(tag)
        c.command(b"NOOP")
        server_lines = [x for x in c.transcript if x.startswith(b"S: ")]
        assert len(server_lines) > 15
        for line in server_lines:
            assert b"[ALERT]" not in line and b"[PARSE]" not in line, line


# -- V0058 failed logins ----------------------------------------------------------------------


@both
def test_V0058_failed_logins(tmp_path, profile):
    limit = settings(profile).max_failed_logins
    assert limit == {"exchange2010": 4, "rfc3501": 0}[profile]
    with running(tmp_path, profile) as server:
        c = Raw(server.imap_port)
        try:
            for _ in range(3):
                done = c.command(b"LOGIN alice wrong")[1]
                assert done.startswith(b"NO"), done
            c.send(b"f4 LOGIN alice wrong\r\n")
            if limit == 4:
                lines = c.read_to_eof(8)
                assert any(x.startswith(b"* BYE") for x in lines), lines
            else:
                assert c.readline().startswith(b"f4 NO")
                for _ in range(6):
                    assert c.command(b"LOGIN alice wrong")[1].startswith(b"NO")
                assert c.login().startswith(b"OK")
        finally:
            c.close()
        # No cross-session limit: a new connection can log in.
        with raw(server) as again:
            again.ok(b"SELECT INBOX")


@both
def test_V0058_failed_authenticate_counts(tmp_path, profile):
    limit = settings(profile).max_failed_logins
    with running(tmp_path, profile) as server:
        c = Raw(server.imap_port)
        try:
            bad = base64.b64encode(b"\0alice\0wrong")
            for i in range(4):
                c.send(b"a%d AUTHENTICATE PLAIN\r\n" % i)
                assert c.readline().startswith(b"+")
                c.send(bad + b"\r\n")
                if limit and i == limit - 1:
                    lines = c.read_to_eof(8)
                    assert any(x.startswith(b"* BYE") for x in lines), lines
                else:
                    assert c.readline().startswith(b"a%d NO" % i)
            if not limit:
                assert _authenticate_plain(c).startswith(b"OK")
        finally:
            c.close()


# -- 2.3 error handling ---------------------------------------------------------------------


@both
def test_2_3_status_ignores_unknown_items(tmp_path, profile):
    with running(tmp_path, profile) as server, raw(server) as c:
        append(c, PLAIN)
        untagged, done = c.command(b"STATUS INBOX (MESSAGES FOO)")
        if settings(profile).ignore_invalid_parameters:
            assert profile == "exchange2010"
            assert done.startswith(b"OK"), done
            assert untagged == [b'* STATUS "INBOX" (MESSAGES 1)'] or untagged == [
                b"* STATUS INBOX (MESSAGES 1)"
            ], untagged
        else:
            assert profile == "rfc3501"
            assert done.startswith(b"BAD"), done
            assert untagged == []

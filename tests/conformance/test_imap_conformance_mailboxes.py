"""MS-STANXIMAP on the wire, part 2: mailbox names, LIST, LSUB, CREATE, DELETE, SUBSCRIBE.

See test_imap_conformance.py for the conventions (statement ID in every
test name; settings checked under both built-in profiles).
"""

from __future__ import annotations

import re

import pytest
from imap_conformance_support import PLAIN, PROFILES, capability_line, list_lines, raw, running, settings

from exchmail.imap.folders import parse_default_folders

pytestmark = pytest.mark.usefixtures("reactor_thread")

both = pytest.mark.parametrize("profile", PROFILES)


def attrs(line: bytes) -> set[bytes]:
    m = re.match(rb"\* (?:LIST|LSUB) \(([^)]*)\) ", line)
    assert m, line
    return set(m.group(1).split())


def named(lines: list[bytes], name: bytes) -> list[bytes]:
    """The LIST/LSUB lines for the (quoted) mailbox ``name``."""
    return [x for x in lines if x.endswith(b' "/" "' + name + b'"')]


def no(done: tuple[list[bytes], bytes]) -> bool:
    return done[1].startswith(b"NO")


# -- 2.1.4 LSUB % --------------------------------------------------------------------------


@both
def test_2_1_4_lsub_percent_unsubscribed_parent(tmp_path, profile):
    with running(tmp_path, profile) as server, raw(server) as c:
        c.ok(b'CREATE "foo/bar"')
        c.ok(b'SUBSCRIBE "foo/bar"')
        star = [x for x in list_lines(c, cmd=b"LSUB") if b"foo" in x]
        assert star == [b'* LSUB () "/" "foo/bar"'], star
        percent = [x for x in list_lines(c, pattern=b'"%"', cmd=b"LSUB") if b"foo" in x]
        if settings(profile).lsub_percent_noselect_parent:
            assert profile == "rfc3501"
            assert percent == [b'* LSUB (\\Noselect) "/" "foo"'], percent
        else:
            assert profile == "exchange2010"
            assert percent == [], percent


# -- V0008 case ----------------------------------------------------------------------------


@both
def test_V0008_case_insensitive_names(tmp_path, profile):
    with running(tmp_path, profile) as server, raw(server) as c:
        c.ok(b'CREATE "Work"')
        select = c.command(b'SELECT "work"')
        create = c.command(b'CREATE "WORK"')
        inbox = c.command(b'SELECT "iNbOx"')
        assert inbox[1].startswith(b"OK"), inbox  # INBOX is case-insensitive everywhere
        names = [x for x in list_lines(c) if b'"Work"' in x or b'"WORK"' in x]
        if settings(profile).case_insensitive_names:
            assert profile == "exchange2010"
            assert select[1].startswith(b"OK"), select
            assert no(create), create
            assert len(names) == 1 and names[0].endswith(b'"Work"'), names
            c.ok(b'APPEND "WORK" {9+}\r\nSubject: ')
            assert c.ok(b'STATUS "work" (MESSAGES)')[0].endswith(b"(MESSAGES 1)")
        else:
            assert profile == "rfc3501"
            assert no(select), select
            assert create[1].startswith(b"OK"), create
            assert len(names) == 2, names


# -- V0009 / V0028 / V0031 backslash and atom-specials ---------------------------------------


@both
def test_V0009_V0028_backslash_name_in_list(tmp_path, profile):
    with running(tmp_path, profile) as server, raw(server) as c:
        c.ok(b'CREATE "a\\\\b"')
        lines = [x for x in list_lines(c) if b"a\\" in x]
        assert len(lines) == 1, lines
        if settings(profile).backslash_names_as_literal:
            assert profile == "exchange2010"
            assert lines[0].endswith(b' "/" {3}\r\na\\b'), lines
        else:
            assert profile == "rfc3501"
            assert lines[0].endswith(b' "/" "a\\\\b"'), lines
        c.ok(b'SELECT "a\\\\b"')


@both
def test_V0031_backslash_name_in_lsub(tmp_path, profile):
    with running(tmp_path, profile) as server, raw(server) as c:
        c.ok(b'CREATE "a\\\\b"')
        c.ok(b'SUBSCRIBE "a\\\\b"')
        lines = [x for x in list_lines(c, cmd=b"LSUB") if b"a\\" in x]
        if settings(profile).backslash_names_as_literal:
            assert lines == [b'* LSUB () "/" {3}\r\na\\b'], lines
        else:
            assert lines == [b'* LSUB () "/" "a\\\\b"'], lines


@both
def test_V0009_other_atom_specials_quoted(tmp_path, profile):
    """Names with atom-specials other than backslash are sent as quoted strings."""
    with running(tmp_path, profile) as server, raw(server) as c:
        for name in (b"a b", b"x(y)", b"q]r", b"u{v"):
            c.ok(b'CREATE "' + name + b'"')
            lines = named(list_lines(c), name)
            assert len(lines) == 1, (name, lines)
            assert b"{" not in lines[0].split(b' "/" ')[1][:1]


# -- V0010 wildcards -------------------------------------------------------------------------


@both
def test_V0010_wildcards_in_names(tmp_path, profile):
    with running(tmp_path, profile) as server, raw(server) as c:
        results = [c.command(b'CREATE "a*b"'), c.command(b'CREATE "c%d"')]
        lines = list_lines(c)
        if settings(profile).wildcards_in_names:
            assert profile == "exchange2010"
            assert all(r[1].startswith(b"OK") for r in results), results
            assert len(named(lines, b"a*b")) == 1 and len(named(lines, b"c%d")) == 1, lines
            c.ok(b'SELECT "a*b"')
        else:
            assert profile == "rfc3501"
            assert all(no(r) for r in results), results
            assert not named(lines, b"a*b") and not named(lines, b"c%d"), lines


# -- V0011 delimiter -------------------------------------------------------------------------


@both
def test_V0011_hierarchy_delimiter_slash(tmp_path, profile):
    with running(tmp_path, profile) as server, raw(server) as c:
        assert c.ok(b'LIST "" ""') == [b'* LIST (\\Noselect) "/" ""']
        assert c.ok(b"NAMESPACE") == [b'* NAMESPACE (("" "/")) NIL NIL']
        c.ok(b'CREATE "p/q"')
        lines = list_lines(c, pattern=b'"p/%"')
        assert len(lines) == 1 and lines[0].endswith(b' "/" "p/q"'), lines
        assert all(b' "/" ' in x for x in list_lines(c))


# -- V0012 '&' and '#' -----------------------------------------------------------------------


@both
def test_V0012_ampersand_and_hash(tmp_path, profile):
    with running(tmp_path, profile) as server, raw(server) as c:
        c.ok(b'CREATE "Tom &- Jerry"')
        c.ok(b'CREATE "Caf&AOk-"')
        c.ok(b'CREATE "#news"')
        _, done = c.command(b'CREATE "a&b"')
        assert done.startswith((b"NO", b"BAD")), done
        lines = list_lines(c)
        for name in (b"Tom &- Jerry", b"Caf&AOk-", b"#news"):
            assert len(named(lines, name)) == 1, (name, lines)
        assert not [x for x in lines if b"a&b" in x]
        c.ok(b'SELECT "Tom &- Jerry"')


# -- V0025 superiors -------------------------------------------------------------------------


@both
def test_V0025_create_makes_superiors(tmp_path, profile):
    with running(tmp_path, profile) as server, raw(server) as c:
        c.ok(b'CREATE "x/y/z"')
        lines = list_lines(c, pattern=b'"x*"')
        assert [len(named(lines, n)) for n in (b"x", b"x/y", b"x/y/z")] == [1, 1, 1], lines
        for name in (b"x", b"x/y", b"x/y/z"):
            assert b"\\Noselect" not in attrs(named(lines, name)[0])
            c.ok(b'SELECT "' + name + b'"')


# -- V0026 DELETE with inferiors -----------------------------------------------------------


@both
def test_V0026_delete_with_children(tmp_path, profile):
    with running(tmp_path, profile) as server, raw(server) as c:
        c.ok(b'CREATE "A/B"')
        done = c.command(b'DELETE "A"')
        lines = list_lines(c, pattern=b'"A*"')
        assert len(named(lines, b"A/B")) == 1, lines  # the inferior always stays
        if settings(profile).delete_with_children:
            assert profile == "rfc3501"
            assert done[1].startswith(b"OK"), done
            (parent,) = named(lines, b"A")
            assert b"\\Noselect" in attrs(parent), parent
            assert no(c.command(b'SELECT "A"'))
        else:
            assert profile == "exchange2010"
            assert no(done), done
            (parent,) = named(lines, b"A")
            assert b"\\Noselect" not in attrs(parent), parent
            c.ok(b'SELECT "A"')


# -- V0027 SUBSCRIBE -------------------------------------------------------------------------


@both
def test_V0027_subscribe_nonexistent(tmp_path, profile):
    with running(tmp_path, profile) as server, raw(server) as c:
        done = c.command(b'SUBSCRIBE "Nope"')
        lsub = [x for x in list_lines(c, cmd=b"LSUB") if b"Nope" in x]
        if settings(profile).subscribe_requires_existing:
            assert profile == "rfc3501"
            assert no(done), done
            assert lsub == []
        else:
            assert profile == "exchange2010"
            assert done[1].startswith(b"OK"), done
            assert lsub == [b'* LSUB (\\Noselect) "/" "Nope"'], lsub


# -- V0029 LIST reference without delimiter -----------------------------------------------------


@both
def test_V0029_list_reference_without_delimiter(tmp_path, profile):
    with running(tmp_path, profile) as server, raw(server) as c:
        c.ok(b'CREATE "Work/child"')
        untagged, done = c.command(b'LIST "Work" "%"')
        assert done.startswith(b"OK"), done
        if settings(profile).list_reference_without_delimiter.value == "no_results":
            assert profile == "exchange2010"
            assert untagged == [] and done == b"OK LIST completed.", (untagged, done)
        else:
            assert profile == "rfc3501"  # concatenated, as Dovecot and Cyrus do: "Work%"
            assert settings(profile).list_reference_without_delimiter.value == "concatenate"
            assert untagged == [b'* LIST (\\HasChildren) "/" "Work"'], untagged
            lines = list_lines(c, b'"Work"', b'"*"')
            assert [line.rsplit(b" ", 1)[1] for line in lines] == [b'"Work"', b'"Work/child"']
        # With the delimiter, the reference is a level in every profile.
        lines = list_lines(c, b'"Work/"', b'"%"')
        assert len(lines) == 1 and lines[0].endswith(b' "/" "Work/child"'), lines


# -- V0030 nothing hidden ----------------------------------------------------------------------


@both
def test_V0030_no_mailbox_hidden_from_wildcards(tmp_path, profile):
    names = (b".hidden", b"~tilde", b"#hash", b"_under", b"Trash")
    with running(tmp_path, profile) as server, raw(server) as c:
        for name in names:
            c.ok(b'CREATE "' + name + b'"')
        for pattern in (b'"*"', b'"%"'):
            lines = list_lines(c, pattern=pattern)
            for name in names + (b"INBOX",):
                assert len(named(lines, name)) == 1, (pattern, name, lines)


# -- V0032 LSUB attributes ------------------------------------------------------------------


@both
def test_V0032_lsub_attributes_differ_from_list(tmp_path, profile):
    with running(tmp_path, profile) as server, raw(server) as c:
        c.ok(b'CREATE "P/Q"')
        c.ok(b'CREATE "Gone"')
        for name in (b"P", b"P/Q", b"Gone"):
            c.ok(b'SUBSCRIBE "' + name + b'"')
        c.ok(b'DELETE "Gone"')  # the subscription stays (RFC 3501 6.3.9)
        lsub = list_lines(c, cmd=b"LSUB")
        assert named(lsub, b"P") == [b'* LSUB () "/" "P"'], lsub
        assert named(lsub, b"P/Q") == [b'* LSUB () "/" "P/Q"'], lsub
        assert named(lsub, b"Gone") == [b'* LSUB (\\Noselect) "/" "Gone"'], lsub
        lst = list_lines(c)
        assert named(lst, b"Gone") == []
        if settings(profile).list_children_attributes:
            assert named(lst, b"P") == [b'* LIST (\\HasChildren) "/" "P"'], lst


# -- V0051 LIST attributes -----------------------------------------------------------------


@both
def test_V0051_list_name_attributes(tmp_path, profile):
    with running(tmp_path, profile) as server, raw(server) as c:
        c.ok(b'CREATE "P/Q"')
        lines = sorted(list_lines(c))
        caps = capability_line(c).split()
        if settings(profile).list_children_attributes:
            assert profile == "rfc3501"
            assert b"CHILDREN" in caps
            assert lines == [
                b'* LIST (\\HasChildren) "/" "P"',
                b'* LIST (\\HasNoChildren) "/" "INBOX"',
                b'* LIST (\\HasNoChildren) "/" "P/Q"',
            ], lines
        else:
            assert profile == "exchange2010"
            assert b"CHILDREN" not in caps
            # Exchange's default folders are there too (imap.default_folders).
            defaults = [
                b'* LIST () "/" "%s"' % name.encode()
                for name, _ in parse_default_folders(settings(profile).default_folders)
            ]
            assert lines == sorted(
                [b'* LIST () "/" "INBOX"', b'* LIST () "/" "P"', b'* LIST () "/" "P/Q"', *defaults]
            ), lines
        for line in lines:
            assert not attrs(line) & {b"\\Noinferiors", b"\\Unmarked"}, line


@both
def test_V0051_marked_until_selected(tmp_path, profile):
    """\\Marked: a mailbox with messages no session has seen, until it is selected."""
    with running(tmp_path, profile) as server, raw(server) as c:
        c.ok(b'CREATE "Box"')
        c.ok(b'APPEND "Box" {%d+}\r\n' % len(PLAIN) + PLAIN)
        (line,) = [entry for entry in list_lines(c) if entry.endswith(b'"Box"')]
        assert b"\\Marked" in attrs(line), line
        c.ok(b'SELECT "Box"')
        (line,) = [entry for entry in list_lines(c) if entry.endswith(b'"Box"')]
        assert b"\\Marked" not in attrs(line), line

"""LIST references, LIST-EXTENDED, LIST-STATUS, SPECIAL-USE, CREATE-SPECIAL-USE,
default folders and \\Recent, in memory."""

from __future__ import annotations

import pytest
from harness import Harness
from zope.interface import implementer

from exchmail.imap.folders import parse_default_folders
from exchmail.imap.listext import Query, join_reference, select_entries
from exchmail.interfaces import IStoreAccount
from exchmail.profile.settings import ListReference
from exchmail.store.memory import MemoryStore
from exchmail.store.retention import RetentionPolicy, apply_retention
from exchmail.testing import result

MESSAGE = b"From: a@example.com\r\nSubject: hi\r\n\r\nhello\r\n"


def connect(profile: str = "modern", store=None, **overrides):
    harness = Harness(profile, overrides, store=store)
    connection = harness.imap()
    connection.login()
    return harness, connection


def names_of(output: bytes) -> list[bytes]:
    return [line.split(b'"/" ', 1)[1] for line in output.split(b"\r\n") if line.startswith(b"* LIST")]


# -- references (V0029) ----------------------------------------------------------------------------
@pytest.mark.parametrize(
    "reference, pattern, rule, expected",
    [
        ("", "%", ListReference.NO_RESULTS, "%"),
        ("a/", "%", ListReference.NO_RESULTS, "a/%"),
        ("a/", "/b", ListReference.CONCATENATE, "a/b"),
        ("a", "%", ListReference.NO_RESULTS, None),
        ("a", "%", ListReference.JOIN, "a/%"),
        ("a", "/b", ListReference.JOIN, "a/b"),
        ("a", "*", ListReference.CONCATENATE, "a*"),
        ("__imapclient", "*", ListReference.CONCATENATE, "__imapclient*"),
    ],
)
def test_join_reference(reference, pattern, rule, expected):
    assert join_reference(reference, pattern, rule) == expected


@pytest.mark.parametrize(
    "profile, expected",
    [
        ("modern", [b'"__imapclient"', b'"__imapclient/sub"', b'"__imapclientx"']),
        ("rfc3501", [b'"__imapclient"', b'"__imapclient/sub"', b'"__imapclientx"']),
        ("exchange2010", []),
    ],
)
def test_list_reference_without_delimiter(profile, expected):
    """IMAPClient's live tests list their folder with LIST "__imapclient" "*"."""
    harness, c = connect(profile)
    for name in ("__imapclient/sub", "__imapclientx"):
        c.line(f"c1 CREATE {name}")
    assert names_of(c.line('l1 LIST "__imapclient" "*"')) == expected


def test_list_pattern_not_modified_utf7_lists_nothing():
    """imaptest's atoms script: such a pattern matches no mailbox, and LIST is OK."""
    harness, c = connect()
    out = c.line('l1 LIST "" !#$&\'+,-.0123456789:;<=>?@^_`|[}%*')
    assert out == b"l1 OK LIST completed.\r\n"


# -- select_entries (RFC 5258 sections 3.4, 3.5) ---------------------------------------------------
EXISTING = ["INBOX", "a", "a/b", "a/c", "d"]


def entries(query, subscribed=()):
    return [(e.name, e.attributes, e.childinfo) for e in select_entries(query, EXISTING, subscribed)]


def test_subscribed_selection_marks_nonexistent():
    query = Query(("*",), subscribed_only=True, show_subscribed=True)
    assert entries(query, {"a/b", "gone"}) == [
        ("a/b", (b"\\Subscribed",), False),
        ("gone", (b"\\NonExistent", b"\\Subscribed"), False),
    ]


def test_recursivematch_childinfo_only_for_unmatched_descendants():
    query = Query(("%",), subscribed_only=True, recursive=True, show_subscribed=True)
    assert entries(query, {"a/b"}) == [("a", (), True)]
    query = Query(("*",), subscribed_only=True, recursive=True, show_subscribed=True)
    assert entries(query, {"a/b"}) == [("a/b", (b"\\Subscribed",), False)]
    query = Query(("a", "a/c"), subscribed_only=True, recursive=True, show_subscribed=True)
    assert entries(query, {"a", "a/b"}) == [("a", (b"\\Subscribed",), True)]


def test_special_use_selection_and_children():
    query = Query(("*",), special_only=True, children=True, special={"d": frozenset({"\\Sent"})})
    assert entries(query) == [("d", (b"\\HasNoChildren", b"\\Sent"), False)]


# -- LIST-EXTENDED on the wire ---------------------------------------------------------------------
def test_list_extended_subscribed_and_children():
    harness, c = connect(**{"imap.default_folders": []})
    for command in (
        "c1 CREATE a/b",
        "c2 CREATE d",
        "c3 CREATE gone",
        "s1 SUBSCRIBE a/b",
        "s2 SUBSCRIBE gone",
        "d1 DELETE gone",
    ):
        assert b" OK " in c.line(command)
    out = c.line('l1 LIST (SUBSCRIBED) "" "*" RETURN (CHILDREN)')
    assert out == (
        b'* LIST (\\Subscribed \\HasNoChildren) "/" "a/b"\r\n'
        b'* LIST (\\NonExistent \\Subscribed) "/" "gone"\r\n'
        b"l1 OK LIST completed.\r\n"
    )
    out = c.line('l2 LIST (SUBSCRIBED RECURSIVEMATCH) "" "%"')
    assert out == (
        b'* LIST () "/" "a" ("CHILDINFO" ("SUBSCRIBED"))\r\n'
        b'* LIST (\\NonExistent \\Subscribed) "/" "gone"\r\nl2 OK LIST completed.\r\n'
    )
    out = c.line('l3 LIST "" (INBOX d) RETURN (SUBSCRIBED)')
    assert names_of(out) == [b'"INBOX"', b'"d"']
    assert c.line('l4 LIST (REMOTE) "" d') == b'* LIST (\\HasNoChildren) "/" "d"\r\nl4 OK LIST completed.\r\n'


@pytest.mark.parametrize(
    "command, reason",
    [
        (b'LIST (IMAPTEST) "" ""', b"unknown LIST selection option IMAPTEST"),
        (b'LIST (RECURSIVEMATCH) "" ""', b"RECURSIVEMATCH needs another selection option"),
        (b'LIST (RECURSIVEMATCH REMOTE) "" ""', b"RECURSIVEMATCH needs another selection option"),
        (b'LIST "" "" RETURN (IMAPTEST)', b"unknown LIST return option IMAPTEST"),
        (b'LIST "" "" RETURN (STATUS)', b"RETURN (STATUS ...) needs a list of STATUS items"),
        (b'LIST "" "" RETURN (STATUS (BOGUS))', b"invalid STATUS item"),
        (b'LIST "" ()', b"LIST takes a reference and a pattern"),
        (b'LIST ""', b"missing argument"),
        (b'LIST x "" "" ""', b"too many arguments"),
    ],
)
def test_list_extended_bad_input(command, reason):
    harness, c = connect()
    out = c.line(b"l1 " + command)
    assert out.startswith(b"l1 BAD " + reason), out
    assert c.line("n1 NOOP") == b"n1 OK NOOP completed.\r\n"


@pytest.mark.parametrize(
    "command", [b'LIST (SUBSCRIBED) "" "*"', b'LIST "" (a b)', b'LIST "" "*" RETURN (CHILDREN)']
)
def test_list_extended_syntax_is_bad_where_off(command):
    harness, c = connect("rfc3501")
    assert c.line(b"l1 " + command).startswith(b"l1 BAD ")


def test_list_status_after_each_selectable_mailbox():
    harness, c = connect(**{"imap.default_folders": []})
    c.line("c1 CREATE p/q")
    c.line("d1 DELETE p")  # p stays as a \Noselect superior (delete_with_children)
    harness.deliver(MESSAGE)
    out = c.line('l1 LIST "" "*" RETURN (STATUS (MESSAGES UNSEEN SIZE))')
    assert out.split(b"\r\n") == [
        b'* LIST (\\Marked \\HasNoChildren) "/" "INBOX"',
        b'* STATUS "INBOX" (MESSAGES 1 UNSEEN 1 SIZE %d)' % len(MESSAGE),
        b'* LIST (\\Noselect \\HasChildren) "/" "p"',
        b'* LIST (\\HasNoChildren) "/" "p/q"',
        b'* STATUS "p/q" (MESSAGES 0 UNSEEN 0 SIZE 0)',
        b"l1 OK LIST completed.",
        b"",
    ]


def test_list_status_alone_where_list_extended_is_off():
    harness, c = connect(**{"imap.list_extended": False})
    assert b"LIST-EXTENDED" not in c.line("c1 CAPABILITY")
    out = c.line('l1 LIST "" INBOX RETURN (STATUS (MESSAGES))')
    assert b'* STATUS "INBOX" (MESSAGES 0)' in out
    assert c.line('l2 LIST (SUBSCRIBED) "" INBOX').startswith(b"l2 BAD ")


# -- SPECIAL-USE and CREATE-SPECIAL-USE (RFC 6154) -------------------------------------------------
def test_modern_default_folders_with_special_use():
    harness, c = connect()
    out = c.line('l1 LIST "" "*"')
    assert out.split(b"\r\n")[:-2] == [
        b'* LIST (\\HasNoChildren) "/" "INBOX"',
        b'* LIST (\\HasNoChildren \\Archive) "/" "Archive"',
        b'* LIST (\\HasNoChildren \\Drafts) "/" "Drafts"',
        b'* LIST (\\HasNoChildren \\Junk) "/" "Junk"',
        b'* LIST (\\HasNoChildren \\Sent) "/" "Sent"',
        b'* LIST (\\HasNoChildren \\Trash) "/" "Trash"',
    ]
    assert names_of(c.line('l2 LIST (SPECIAL-USE) "" "*"')) == [
        b'"Archive"',
        b'"Drafts"',
        b'"Junk"',
        b'"Sent"',
        b'"Trash"',
    ]
    assert b"\\Sent" in c.line('l3 LIST "" Sent RETURN (SPECIAL-USE)')


def test_create_special_use_kept_across_rename_and_dropped_by_delete():
    harness, c = connect()
    assert c.line("c1 CREATE Old (USE (\\Archive))") == b"c1 OK CREATE completed.\r\n"
    assert c.line('l1 LIST "" Old') == (
        b'* LIST (\\HasNoChildren \\Archive) "/" "Old"\r\nl1 OK LIST completed.\r\n'
    )
    c.line("r1 RENAME Old New")
    assert b"\\Archive" in c.line('l2 LIST "" New')
    c.line("d1 DELETE New")
    c.line("c2 CREATE New")
    assert b"\\Archive" not in c.line('l3 LIST "" New')


def test_create_special_use_errors():
    harness, c = connect()
    assert c.line("c1 CREATE Box (USE (\\Bogus))") == b"c1 NO [USEATTR] Unsupported special-use attribute\r\n"
    assert c.line("c2 CREATE Box (USE)").startswith(b"c2 BAD CREATE takes (USE (attributes))")
    assert c.line('c3 CREATE Box (USE ("x"))').startswith(b"c3 BAD special-use attributes are atoms")
    assert c.line("c4 CREATE Sent (USE (\\Sent))").startswith(b"c4 NO [ALREADYEXISTS]")
    assert b'"Box"' not in c.line('l1 LIST "" "*"')
    harness, c = connect("rfc3501")
    assert c.line("c5 CREATE Box (USE (\\Sent))") == b"c5 BAD CREATE takes one mailbox name\r\n"


def test_create_special_use_needs_a_store_that_keeps_it():
    @implementer(IStoreAccount)
    class PlainAccount:  # an account without ISpecialUseMailboxes
        def __init__(self, wrapped):
            self.wrapped = wrapped

        def __getattr__(self, name):
            return getattr(self.wrapped, name)

    class Plain(MemoryStore):
        def account(self, name):
            return super().account(name).addCallback(PlainAccount)

    harness, c = connect(store=Plain())
    out = c.line("c1 CREATE Box (USE (\\Sent))")
    assert out == b"c1 NO [USEATTR] This mail store cannot keep special-use attributes\r\n"
    assert b'"Box"' not in c.line('l1 LIST "" "*"')


# -- default folders -------------------------------------------------------------------------------
EXCHANGE_FOLDERS = [
    b'"Calendar"',
    b'"Contacts"',
    b'"Deleted Items"',
    b'"Drafts"',
    b'"Journal"',
    b'"Junk E-Mail"',
    b'"Notes"',
    b'"Outbox"',
    b'"Sent Items"',
    b'"Tasks"',
]


def test_exchange2010_default_folders_without_attributes():
    harness, c = connect("exchange2010")
    out = c.line('l1 LIST "" "*"')
    assert names_of(out) == [b'"INBOX"', *EXCHANGE_FOLDERS]
    assert b"\\Sent" not in out and b"SPECIAL-USE" not in c.line("c1 CAPABILITY")


def test_exchange2016_default_folders():
    harness, c = connect("exchange2016")
    assert b'"Junk Email"' in names_of(c.line('l1 LIST "" "*"'))


def test_special_use_turned_on_in_exchange2010():
    harness, c = connect("exchange2010", **{"imap.special_use": True})
    assert b" SPECIAL-USE" in c.line("c1 CAPABILITY")
    out = c.line('l1 LIST "" "*"')
    assert b'* LIST (\\Sent) "/" "Sent Items"' in out and b'* LIST (\\Trash) "/" "Deleted Items"' in out


def test_default_folders_never_touch_existing_ones():
    store = MemoryStore()
    account = result(store.account("alice"))
    result(account.create("sent items"))  # an old client's folder, in another case
    box = result(account.mailbox("sent items"))
    result(box.append(MESSAGE))
    harness, c = connect("exchange2010", store=store)
    listed = names_of(c.line('l1 LIST "" "*"'))
    assert b'"sent items"' in listed and b'"Sent Items"' not in listed  # V0008: same folder
    assert len(box.uids()) == 1
    harness, c = connect("modern", store=store)  # case-sensitive: Sent is another folder
    assert b'"Sent"' in names_of(c.line('l2 LIST "" "*"'))


def test_special_use_follows_the_existing_spelling_where_names_ignore_case():
    store = MemoryStore()
    result(result(store.account("alice")).create("sent items"))
    harness, c = connect("exchange2010", store=store, **{"imap.special_use": True})
    assert b'* LIST (\\Sent) "/" "sent items"' in c.line('l1 LIST "" "*"')


def test_default_folders_are_made_once_per_server_start():
    """A login after the first costs no listing; a folder the user deleted
    stays deleted until the server starts again (see the Maildir restart test)."""
    harness, c = connect()
    c.line("d1 DELETE Junk")
    again = harness.imap()
    again.login()
    assert b'"Junk"' not in names_of(again.line('l1 LIST "" "*"'))


def test_rfc3501_makes_no_default_folders():
    harness, c = connect("rfc3501")
    assert names_of(c.line('l1 LIST "" "*"')) == [b'"INBOX"']


def test_parse_default_folders():
    assert parse_default_folders(["Sent Items=\\Sent", "a=b", "Drafts=\\drafts", "x/", ""]) == [
        ("Sent Items", "\\Sent"),
        ("a=b", None),
        ("Drafts", "\\Drafts"),
        ("x", None),
    ]


def test_retention_names_a_default_folder():
    harness, c = connect("exchange2010")
    box = harness.mailbox(name="Deleted Items")
    result(box.append(MESSAGE, frozenset(), 1000.0))
    removed = result(
        apply_retention(harness.store, ["alice"], RetentionPolicy({"deleted items": 60.0}), now=10000.0)
    )
    assert removed == {("alice", "Deleted Items"): [1]}


# -- \Recent (RFC 3501 section 2.3.2) --------------------------------------------------------------
def test_examine_reports_recent_without_claiming():
    """imaptest's select script: EXAMINE, then SELECT, both see 2 RECENT."""
    harness, c = connect()
    harness.deliver(MESSAGE)
    harness.deliver(MESSAGE)
    assert b"* 2 RECENT\r\n" in c.line("e1 EXAMINE INBOX")
    assert b"\\Recent" in c.line("f1 FETCH 1 FLAGS")
    c.line("c1 CLOSE")
    assert b"* 2 RECENT\r\n" in c.line("s1 SELECT INBOX")
    c.line("c2 CLOSE")
    assert c.line("s2 STATUS INBOX (RECENT)").startswith(b'* STATUS "INBOX" (RECENT 0)')


@pytest.mark.parametrize("profile", ["exchange2010", "rfc3501", "modern"])
def test_message_delivered_while_selected_is_recent(profile):
    harness, c = connect(profile)
    c.line("s1 SELECT INBOX")
    harness.deliver(MESSAGE)
    out = c.take() + c.line("n1 NOOP")
    assert b"* 1 EXISTS\r\n* 1 RECENT\r\n" in out
    assert c.line("f1 FETCH 1 FLAGS").startswith(b"* 1 FETCH (FLAGS (\\Recent))")
    other = harness.imap()
    other.login()
    assert b"* 0 RECENT" in other.line("s2 SELECT INBOX")


def test_examine_sees_new_recent_messages_without_claiming():
    harness, c = connect()
    c.line("e1 EXAMINE INBOX")
    harness.deliver(MESSAGE)
    assert b"* 1 RECENT" in c.line("n1 NOOP")
    other = harness.imap()
    other.login()
    assert b"* 1 RECENT" in other.line("s1 SELECT INBOX")


def test_list_extended_after_enable_utf8_accept():
    """LIST's patterns and names are UTF-8 once the client enabled UTF8=ACCEPT."""
    harness, c = connect(**{"imap.default_folders": []})
    c.line("c1 CREATE Entw&APw-rfe")  # "Entwürfe" in modified UTF-7
    assert c.line("e1 ENABLE UTF8=ACCEPT").startswith(b"* ENABLED UTF8=ACCEPT")
    out = c.line('l1 LIST "" ("Entw\xc3\xbc*" INBOX) RETURN (STATUS (MESSAGES))'.encode("latin-1"))
    assert b'* LIST (\\HasNoChildren) "/" "Entw\xc3\xbcrfe"' in out
    assert b'* STATUS "Entw\xc3\xbcrfe" (MESSAGES 0)' in out and out.endswith(b"l1 OK LIST completed.\r\n")

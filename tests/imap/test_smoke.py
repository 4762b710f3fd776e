import imaplib

from conftest import PASSWORD


def test_login_select_append_fetch(server):
    client = imaplib.IMAP4("127.0.0.1", server.imap_port)
    print(client.welcome)
    print(client.capabilities)
    print(client.login("alice", PASSWORD))
    print(client.create("Work/Projects"))
    print(client.list())
    print(client.append("INBOX", "(\\Seen)", None, b"Subject: hi\r\nFrom: a@b.c\r\n\r\nhello\r\n"))
    print(client.select("INBOX"))
    print(client.fetch("1", "(UID FLAGS RFC822.SIZE ENVELOPE BODYSTRUCTURE BODY[])"))
    print(client.search(None, "ALL"))
    print(client.logout())

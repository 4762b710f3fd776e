"""The 7-bit view of 8-bit messages (V0007): pure unit tests."""

import email
import email.policy

from exchmail.mime.sevenbit import has_8bit, to_seven_bit

UTF8 = ("From: Émile Zola <emile@example.fr>, plain@example.org\r\n"
        "Subject: Crème brûlée\r\n"
        "Content-Type: text/plain; charset=utf-8\r\n"
        "Content-Transfer-Encoding: 8bit\r\n"
        "\r\n"
        "Crème brûlée au café\r\n"
        "second line\r\n").encode()

MULTIPART = (b"MIME-Version: 1.0\r\n"
             b"Content-Type: multipart/mixed; boundary=XX\r\n"
             b"\r\n"
             b"--XX\r\n"
             b"Content-Type: text/plain; charset=utf-8\r\n"
             b"\r\n"
             b"7-bit part stays\r\n"
             b"--XX\r\n"
             b"Content-Type: text/plain; charset=iso-8859-1\r\n"
             b"Content-Transfer-Encoding: 8bit\r\n"
             b"\r\n"
             b"h\xe9llo\r\n"
             b"--XX\r\n"
             b"Content-Type: application/octet-stream\r\n"
             b"\r\n"
             b"\xff\xfe\x00\x01\r\n"
             b"--XX--\r\n")


def test_seven_bit_messages_pass_unchanged():
    data = b"Subject: plain\r\n\r\nhello\r\n"
    assert to_seven_bit(data) is data
    assert not has_8bit(data)


def test_8bit_text_body_becomes_quoted_printable_with_same_content():
    out = to_seven_bit(UTF8)
    assert not has_8bit(out)
    message = email.message_from_bytes(out, policy=email.policy.default)
    assert message["Content-Transfer-Encoding"] == "quoted-printable"
    assert message.get_content() == "Crème brûlée au café\r\nsecond line\r\n"
    assert str(message["Subject"]) == "Crème brûlée"
    assert b"\r\n" in out and b"\n" not in out.replace(b"\r\n", b"")


def test_address_headers_keep_addresses_and_encode_names():
    out = to_seven_bit(UTF8)
    from_line = next(line for line in out.split(b"\r\n") if line.startswith(b"From:"))
    assert b"<emile@example.fr>" in from_line and b"plain@example.org" in from_line
    assert b"=?utf-8?" in from_line
    message = email.message_from_bytes(out, policy=email.policy.default)
    assert message["From"].addresses[0].display_name == "Émile Zola"


def test_multipart_reencodes_only_8bit_parts():
    out = to_seven_bit(MULTIPART)
    assert not has_8bit(out)
    parts = list(email.message_from_bytes(out).walk())[1:]
    assert parts[0].get_payload() == "7-bit part stays"
    assert "Content-Transfer-Encoding" not in parts[0]
    assert parts[1]["Content-Transfer-Encoding"] == "quoted-printable"
    assert parts[1].get_payload(decode=True) == b"h\xe9llo"
    assert parts[2]["Content-Transfer-Encoding"] == "base64"
    assert parts[2].get_payload(decode=True) == b"\xff\xfe\x00\x01"

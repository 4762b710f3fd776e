"""The 7-bit view of 8-bit messages (V0007): pure unit tests."""

import email
import email.policy

from exchmail.mime.sevenbit import has_8bit, to_seven_bit

UTF8 = (
    "From: Émile Zola <emile@example.fr>, plain@example.org\r\n"
    "Subject: Crème brûlée\r\n"
    "Content-Type: text/plain; charset=utf-8\r\n"
    "Content-Transfer-Encoding: 8bit\r\n"
    "\r\n"
    "Crème brûlée au café\r\n"
    "second line\r\n"
).encode()

MULTIPART = (
    b"MIME-Version: 1.0\r\n"
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
    b"--XX--\r\n"
)


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


def test_7bit_parts_and_fields_are_copied_octet_for_octet():
    out = to_seven_bit(MULTIPART)
    assert out.startswith(b"MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=XX\r\n\r\n--XX\r\n")
    assert b"--XX\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n7-bit part stays\r\n--XX\r\n" in out
    assert out.endswith(b"--XX--\r\n")


def test_8bit_outside_parts_becomes_question_marks():
    data = (
        b"Content-Type: multipart/mixed; boundary=b\r\n\r\npre\xe9amble\r\n"
        b"--b\r\n\r\nplain\r\n--b--\r\nepi\xc3\xa9\r\n"
    )
    out = to_seven_bit(data)
    assert b"pre?amble" in out and b"epi??" in out
    assert b"\r\n\r\nplain\r\n--b--" in out


def test_encapsulated_message_is_reencoded_inside():
    data = (
        b"Content-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\nContent-Type: message/rfc822\r\n\r\n"
        b"Subject: Gr\xc3\xbc\xc3\x9fe\r\n\r\nK\xc3\xb6ln\r\n--b--\r\n"
    )
    out = to_seven_bit(data)
    assert not has_8bit(out)
    outer = email.message_from_bytes(out, policy=email.policy.default)
    inner = next(part for part in outer.walk() if part.get_content_type() == "message/rfc822").get_payload(0)
    assert str(inner["Subject"]) == "Grüße"
    assert inner["Content-Transfer-Encoding"] == "quoted-printable"
    assert inner.get_payload(decode=True) == "Köln".encode()


def test_large_8bit_bodies_in_chunks():
    text = ("é" * 100_000 + "\r\nshort line\r\n").encode() * 3  # lines longer than a chunk
    blob = bytes(range(256)) * 2000
    data = (
        b"Content-Type: multipart/mixed; boundary=b\r\n\r\n"
        b"--b\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n" + text + b"\r\n"
        b"--b\r\nContent-Type: application/octet-stream\r\nContent-Transfer-Encoding: binary\r\n\r\n"
        + blob
        + b"\r\n--b--\r\n"
    )
    out = to_seven_bit(data)
    assert not has_8bit(out)
    assert max(len(line) for line in out.split(b"\r\n")) <= 76
    first, second = list(email.message_from_bytes(out).walk())[1:]
    assert first.get_payload(decode=True) == text.replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")
    assert second.get_payload(decode=True) == blob
    assert second["Content-Transfer-Encoding"] == "base64"


def test_has_8bit_in_windows():
    assert not has_8bit(b"")
    assert has_8bit(b"a" * (3 << 20) + b"\x80")
    assert has_8bit(memoryview(b"\xff"))

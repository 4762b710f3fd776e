"""A deterministic mail corpus written by Python's ``mailbox`` module.

Like ``shared/tools/load/make-corpus.py`` but small and quick: plain text
(7-bit, quoted-printable, 8-bit UTF-8), HTML alternatives, multipart/mixed
with base64 attachments (a few of them large), forwarded message/rfc822,
RFC 2047 subjects, bodies with "From " lines.  Flags go into Status and
X-Status (``mboxMessage.set_flags``), keywords into X-Keywords, dates into
the ``From `` line.
"""

from __future__ import annotations

import base64
import mailbox
import random
import time
from pathlib import Path

WORDS = (
    "mail server folder message flag seen answered draft search fetch append idle quota "
    "meeting agenda budget report review deadline release build deploy invoice travel "
    "lunch tomorrow please thanks regards attached question answer ticket patch"
).split()
UTF8 = [
    "Grüße aus München, die Übersicht ist fertig.",
    "Réunion déplacée à jeudi, merci.",
    "Привет! Встреча завтра в 10:00.",
    "日本語のメッセージです。",
    "½ € ✓ — naïve café",
]


def _text(rng: random.Random, lines: int) -> str:
    return "\n".join(" ".join(rng.choice(WORDS) for _ in range(rng.randint(5, 12))) for _ in range(lines))


def _attachment(rng: random.Random, size: int) -> str:
    data = rng.randbytes(size)
    encoded = base64.encodebytes(data).decode("ascii")
    return encoded


def message(rng: random.Random, index: int, big: bool) -> bytes:
    """One message (LF line ends), kind chosen by ``rng``."""
    kind = rng.choice(["plain", "qp", "8bit", "html", "mixed", "forward"])
    subject = f"Message {index} {rng.choice(WORDS)}"
    if kind == "8bit":
        subject = f"=?utf-8?b?{base64.b64encode(f'Grüße {index}'.encode()).decode()}?="
    head = (
        f"From: User {index % 37} <user{index % 37}@example.com>\n"
        f"To: alice@example.org\nSubject: {subject}\n"
        f"Date: {time.strftime('%a, %d %b %Y %H:%M:%S +0000', time.gmtime(1.7e9 + index * 3600))}\n"
        f"Message-ID: <corpus-{index}@example.com>\nMIME-Version: 1.0\n"
    )
    body = _text(rng, rng.randint(2, 20))
    if rng.random() < 0.1:
        body += "\nFrom here on, a line that mbox writers quote.\n"
    if kind == "plain":
        text = head + "Content-Type: text/plain; charset=us-ascii\n\n" + body + "\n"
    elif kind == "qp":
        text = (
            head + "Content-Type: text/plain; charset=iso-8859-1\n"
            "Content-Transfer-Encoding: quoted-printable\n\n" + body + "\nCaf=E9 =3D ok\n"
        )
    elif kind == "8bit":
        text = (
            head
            + "Content-Type: text/plain; charset=utf-8\nContent-Transfer-Encoding: 8bit\n\n"
            + rng.choice(UTF8)
            + "\n"
            + body
            + "\n"
        )
    elif kind == "html":
        text = (
            head + 'Content-Type: multipart/alternative; boundary="alt"\n\n--alt\n'
            "Content-Type: text/plain\n\n" + body + "\n--alt\nContent-Type: text/html\n\n"
            "<html><body><p>" + body.replace("\n", "</p><p>") + "</p></body></html>\n--alt--\n"
        )
    elif kind == "mixed":
        size = 2 * 1024 * 1024 if big else rng.randint(1024, 64 * 1024)
        text = (
            head + 'Content-Type: multipart/mixed; boundary="mix"\n\n--mix\n'
            "Content-Type: text/plain\n\n" + body + "\n--mix\n"
            f'Content-Type: application/octet-stream; name="file{index}.bin"\n'
            "Content-Transfer-Encoding: base64\n"
            f'Content-Disposition: attachment; filename="file{index}.bin"\n\n'
            + _attachment(rng, size)
            + "--mix--\n"
        )
    else:
        inner = (
            "From: someone@example.net\nSubject: the original\n"
            "Content-Type: text/plain; charset=utf-8\n\n" + rng.choice(UTF8) + "\n"
        )
        text = (
            head + 'Content-Type: multipart/mixed; boundary="fwd"\n\n--fwd\n'
            "Content-Type: text/plain\n\nForwarded:\n--fwd\nContent-Type: message/rfc822\n\n"
            + inner
            + "--fwd--\n"
        )
    return text.encode("utf-8")


def make_mbox(path: Path, count: int = 2000, seed: int = 20261207, big: int = 4) -> list[bytes]:
    """Write ``count`` messages to the mbox ``path``; return the Message-IDs in order.

    ``big`` messages (spread through the file) carry a 2 MB attachment.
    """
    rng = random.Random(seed)
    big_ones = set(rng.sample(range(count), big)) if big else set()
    box = mailbox.mbox(str(path), create=True)
    box.lock()
    try:
        for index in range(count):
            msg = mailbox.mboxMessage(message(rng, index, index in big_ones))
            msg.set_from("user@example.com", time.gmtime(1_700_000_000 + index * 3600))
            msg.set_flags("".join(f for f in "ROFAD" if rng.random() < 0.3))
            if rng.random() < 0.1:
                msg["X-Keywords"] = rng.choice(["$Label1", "work", "$Label1 work"])
            box.add(msg)
        box.flush()
    finally:
        box.unlock()
        box.close()
    return [f"<corpus-{i}@example.com>".encode() for i in range(count)]

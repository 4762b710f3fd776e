"""Edge-case messages (RFC 2045/2046/2231/5322) whose FETCH rendering is
compared with Dovecot's (see make_dovecot_fixtures.py)."""

# ruff: noqa: E501  (message literals are data)
from __future__ import annotations

H = b"From: a@b.c\r\nSubject: s\r\n"


def mp(ct: bytes, body: bytes, extra: bytes = b"") -> bytes:
    return H + b"MIME-Version: 1.0\r\nContent-Type: " + ct + b"\r\n" + extra + b"\r\n" + body


CASES: dict[str, bytes] = {
    "no_boundary_param": mp(b"multipart/mixed", b"abc\r\n"),
    "boundary_never_found": mp(b"multipart/mixed; boundary=zz", b"--other\r\ntext\r\n"),
    "unclosed": mp(b"multipart/mixed; boundary=u", b"--u\r\n\r\nabc\r\n"),
    "unclosed_two": mp(b"multipart/mixed; boundary=x", b"--x\r\n\r\none\r\n--x\r\n\r\ntwo\r\n"),
    "preamble_epilogue": mp(
        b"multipart/mixed; boundary=b",
        b"pre\r\namble\r\n--b\r\nContent-Type: text/plain\r\n\r\nbody\r\n--b--\r\nepi\r\nlogue\r\n",
    ),
    "no_preamble_crlf": mp(b"multipart/mixed; boundary=b", b"--b\r\n\r\nx\r\n--b--"),
    "close_no_eol": mp(b"multipart/mixed; boundary=b", b"--b\r\n\r\nx\r\n--b--"),
    "delim_at_eof_no_eol": mp(b"multipart/mixed; boundary=b", b"--b\r\n\r\nx\r\n--b"),
    "delim_at_eof_eol": mp(b"multipart/mixed; boundary=b", b"--b\r\n\r\nx\r\n--b\r\n"),
    "padding": mp(b"multipart/mixed; boundary=e", b"--e  \r\n--e\r\n\r\n--e--  \r\n"),
    "prefix_match_outer": mp(
        b"multipart/mixed; boundary=ab",
        b"--ab\r\nContent-Type: multipart/mixed; boundary=abc\r\n\r\n--abc\r\n\r\ninner\r\n--abc--\r\n--ab--\r\n",
    ),
    "prefix_match_inner_shorter": mp(
        b"multipart/mixed; boundary=abc",
        b"--abc\r\nContent-Type: multipart/mixed; boundary=ab\r\n\r\n--ab\r\n\r\ninner\r\n--abc--\r\n",
    ),
    "same_boundary_nested": mp(
        b"multipart/mixed; boundary=s",
        b"--s\r\nContent-Type: multipart/mixed; boundary=s\r\n\r\n--s\r\n\r\ninner\r\n--s--\r\nmid\r\n--s\r\n\r\nlast\r\n--s--\r\n",
    ),
    "outer_ends_inner": mp(
        b"multipart/mixed; boundary=o",
        b"--o\r\nContent-Type: multipart/alternative; boundary=i\r\n\r\n--i\r\n\r\na\r\n--i\r\n\r\nb\r\n--o\r\n\r\nc\r\n--o--\r\n",
    ),
    "delimiter_with_text": mp(
        b"multipart/mixed; boundary=q", b"--q\r\n\r\nsee --q here\r\n--qfoo\r\nmore\r\n--q--\r\n"
    ),
    "boundary_in_header": mp(
        b"multipart/mixed; boundary=h",
        b"--h\r\nContent-Type: text/plain\r\n--h\r\nX-A: b\r\n\r\nz\r\n--h--\r\n",
    ),
    "empty_header_part": mp(b"multipart/mixed; boundary=h", b"--h\r\n\r\n\r\n--h--\r\n"),
    "folded_boundary": mp(
        b'multipart/mixed; boundary="foo\r\n bar"', b"--foo bar\r\n\r\nx\r\n--foo bar--\r\n"
    ),
    "quoted_boundary_specials": mp(
        b'multipart/mixed; boundary="a b:c=d?e"', b"--a b:c=d?e\r\n\r\nx\r\n--a b:c=d?e--\r\n"
    ),
    "long_boundary": mp(
        b"multipart/mixed; boundary=" + b"L" * 100,
        b"--" + b"L" * 100 + b"\r\n\r\nx\r\n--" + b"L" * 100 + b"--\r\n",
    ),
    "rfc2231_boundary": mp(
        b"multipart/mixed; boundary*0=ab; boundary*1=cd", b"--abcd\r\n\r\nx\r\n--abcd--\r\n"
    ),
    "rfc2231_boundary_ext": mp(b"multipart/mixed; boundary*=''abcd", b"--abcd\r\n\r\nx\r\n--abcd--\r\n"),
    "rfc2231_filename": H
    + b"Content-Type: application/octet-stream; name*0*=utf-8''%C3%A9t; name*1=e.txt\r\nContent-Disposition: attachment; filename*=utf-8''%C3%A9t%C3%A9.txt\r\n\r\nx",
    "rfc2231_missing_index": H + b"Content-Type: text/plain; title*0=a; title*2=c\r\n\r\nx",
    "rfc2231_mixed_case": H + b"Content-Type: text/plain; Title*0=a; title*1=b; x=1\r\n\r\nx",
    "params_broken": H + b'Content-Type: text/plain; charset=utf-8; broken; name="q; x"; =y; z=\r\n\r\nx',
    "param_eq_workaround": H + b"Content-Type: text/plain; name==?utf-8?b?w6k=?=; charset=us-ascii\r\n\r\nx",
    "charset_param_upper": H + b"Content-Type: text/plain; CHARSET=iso-8859-1; format=flowed\r\n\r\nx\r\n",
    "text_no_charset_other_param": H + b"Content-Type: text/plain; format=flowed\r\n\r\nx\r\n",
    "garbage_ct": H + b"Content-Type: garbage\r\n\r\nx",
    "ct_text_only": H + b"Content-Type: text\r\n\r\nx\r\n",
    "ct_multipart_only": H + b"Content-Type: multipart\r\n\r\nx\r\n",
    "ct_trailing_garbage": H
    + b"Content-Type: multipart/mixed garbage; boundary=b\r\n\r\n--b\r\n\r\nx\r\n--b--\r\n",
    "ct_comments": H
    + b"Content-Type: (c) text (d) / (e) html (f) ; (g) charset (h) = (i) utf-8 (j)\r\n\r\nx\r\n",
    "ct_empty": H + b"Content-Type:\r\n\r\nx\r\n",
    "two_content_types": H + b"Content-Type: text/html\r\nContent-Type: text/plain\r\n\r\nx\r\n",
    "no_mime_version_ct": b"Subject: s\r\nContent-Type: text/html\r\n\r\nx\r\n",
    "no_mime_cte_only": b"Subject: s\r\nContent-Transfer-Encoding: base64\r\nContent-ID: <x>\r\n\r\neA==\r\n",
    "cte_junk": H + b"Content-Type: text/plain\r\nContent-Transfer-Encoding: base64 junk\r\n\r\neA==\r\n",
    "cte_comment": H
    + b"Content-Type: text/plain\r\nContent-Transfer-Encoding: (x) Quoted-Printable (y)\r\n\r\nx\r\n",
    "disposition_variants": H
    + b"Content-Type: text/plain\r\nContent-Disposition: inline\r\nContent-Disposition: attachment; filename=a.txt\r\n\r\nx\r\n",
    "disposition_first_params": H
    + b"Content-Type: text/plain\r\nContent-Disposition: attachment; filename=a.txt\r\nContent-Disposition: inline\r\n\r\nx\r\n",
    "disposition_empty_token": H
    + b"Content-Type: text/plain\r\nContent-Disposition: ; filename=a.txt\r\n\r\nx\r\n",
    "language_location_md5": H
    + b"Content-Type: image/png\r\nContent-Language: en, de-DE , (c) fr\r\nContent-Location: http://x/y \r\nContent-MD5: abc==\r\nContent-ID:  <id@x> \r\nContent-Description: a\r\n  folded description\r\n\r\nx",
    "digest": mp(
        b"multipart/digest; boundary=d",
        b"--d\r\n\r\nSubject: one\r\n\r\nfirst\r\n--d\r\nContent-Type: text/plain\r\n\r\nnot a message\r\n--d\r\nContent-Type: message/rfc822\r\n\r\nSubject: three\r\n\r\nthird\r\n--d--\r\n",
    ),
    "nested_rfc822": mp(
        b"multipart/mixed; boundary=n",
        b"--n\r\nContent-Type: message/rfc822\r\n\r\nFrom: x@y\r\nSubject: inner\r\nMIME-Version: 1.0\r\nContent-Type: multipart/alternative; boundary=m\r\n\r\n--m\r\n\r\nplain\r\n--m\r\nContent-Type: message/rfc822\r\n\r\nSubject: deepest\r\n\r\nd\r\n--m--\r\n\r\n--n--\r\n",
    ),
    "rfc822_inner_unterminated_multipart": mp(
        b"multipart/mixed; boundary=n",
        b"--n\r\nContent-Type: message/rfc822\r\n\r\nContent-Type: multipart/mixed; boundary=m\r\n\r\n--m\r\n\r\nplain\r\n--n\r\n\r\nafter\r\n--n--\r\n",
    ),
    "rfc822_inner_no_blank": mp(
        b"multipart/mixed; boundary=n", b"--n\r\nContent-Type: message/rfc822\r\n\r\nSubject: x\r\n--n--\r\n"
    ),
    "rfc822_empty": mp(
        b"multipart/mixed; boundary=n", b"--n\r\nContent-Type: message/rfc822\r\n\r\n--n--\r\n"
    ),
    "rfc822_root": b"Content-Type: message/rfc822\r\n\r\nSubject: in\r\nContent-Type: text/html\r\n\r\nhello\r\n",
    "rfc822_root_inner_ct_no_mv": b"MIME-Version: 1.0\r\nContent-Type: message/rfc822\r\n\r\nSubject: in\r\nContent-Transfer-Encoding: base64\r\n\r\naGk=\r\n",
    "message_partial": H + b"Content-Type: message/partial; id=x; number=1\r\n\r\nx\r\n",
    "message_delivery_status": H + b"Content-Type: message/delivery-status\r\n\r\nx\r\n",
    "empty_message": b"",
    "only_header_no_blank": b"Subject: x\r\nFrom: a@b",
    "only_blank": b"\r\n",
    "header_no_colon_lines": b"Subject: x\r\nnot a header\r\n leading ws\r\nFrom: a@b\r\n\r\nbody",
    "header_space_before_colon": b"Subject : x\r\nContent-Type : text/html\r\n\r\nbody",
    "body_no_final_eol": b"Subject: x\r\n\r\nline1\r\nline2",
    "envelope_dupes": b"Date: first\r\nDate: second\r\nSubject: one\r\nSubject: two\r\nMessage-ID: <a>\r\nMessage-ID: <b>\r\nFrom: a@b\r\nFrom: c@d\r\nIn-Reply-To: <x>\r\n\r\nx",
    "envelope_spaces": b'Date:   Mon, 1 Jan 2001 00:00:00 +0000  \r\nSubject:   lots   of\r\n\t  space  \r\nMessage-ID:\r\n <folded@id>\r\nFrom: "  Spaced   Name  " <a@b>\r\n\r\nx',
    "envelope_empty": b"Date:\r\nSubject: \r\nFrom:\r\nTo:\r\nIn-Reply-To:\r\nMessage-ID:   \r\n\r\n",
    "envelope_8bit": b'Subject: caf\xc3\xa9 "q"\r\nFrom: "Doe, \\"J\\"" <j@x>\r\nTo: J\xc3\xb6rg <j@x>\r\n\r\n',
    "envelope_encoded": b"Subject: =?utf-8?q?Gr=C3=BC=C3=9Fe?=\r\nFrom: =?utf-8?q?J=C3=B6rg?= <joerg@example.de>\r\n\r\n",
    "envelope_sender_empty": b"From: a@b\r\nSender: \r\nReply-To: ,\r\n\r\n",
    "nul_in_header": b'Subject: a\x00b\r\nFrom: "n\x00m" <a@b>\r\nContent-Type: text/plain; name="x\x00y"\r\n\r\nbody',
    "cr_inside_value": b"Subject: a\rb\r\nMessage-ID: <a\rb>\r\n\r\nbody",
    "base64_attachment": mp(
        b"multipart/mixed; boundary=z",
        b'--z\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\ncaf=C3=A9\r\n--z\r\nContent-Type: application/pdf; name="r.pdf"\r\nContent-Transfer-Encoding: base64\r\nContent-Disposition: attachment;\r\n\tfilename="r.pdf"\r\n\r\nJVBERi0xLjQK\r\nJVBERi0xLjQK\r\n--z--\r\n',
    ),
    "ct_case": H + b'Content-Type: TEXT/HTML; CHARSET="UTF-8"\r\n\r\nx\r\n',
    "mixed_lf_in_body": H + b"Content-Type: text/plain\r\n\r\na\nb\r\nc\n",
    "crlf_crlf_before_delim": mp(b"multipart/mixed; boundary=b", b"--b\r\n\r\nx\r\n\r\n\r\n--b--\r\n"),
    "delim_lf_only": mp(b"multipart/mixed; boundary=b", b"--b\n\nx\n--b--\n"),
    "multipart_no_children_closed": mp(b"multipart/mixed; boundary=b", b"pre\r\n--b--\r\nepi\r\n"),
    "multipart_header_eof": b"Content-Type: multipart/mixed; boundary=b",
    "part_header_eof": mp(b"multipart/mixed; boundary=b", b"--b\r\nContent-Type: text/plain"),
    "inner_multipart_ended_by_header_delim": mp(
        b"multipart/mixed; boundary=b",
        b"--b\r\nContent-Type: multipart/mixed; boundary=c\r\n--b\r\n\r\nx\r\n--b--\r\n",
    ),
}


def _deep_multipart(n: int) -> bytes:
    data = b""
    for level in range(n):
        data += b"Content-Type: multipart/mixed; boundary=b%d\r\n\r\n--b%d\r\n" % (level, level)
    data += b"\r\nleaf\r\n"
    for level in reversed(range(n)):
        data += b"--b%d--\r\n" % level
    return data


def _deep_rfc822(n: int) -> bytes:
    data = b"Subject: leaf\r\n\r\nleaf\r\n"
    for _ in range(n):
        data = b"Content-Type: message/rfc822\r\n\r\n" + data
    return data


CASES["deep_multipart_120"] = _deep_multipart(120)
CASES["deep_rfc822_120"] = _deep_rfc822(120)
CASES["many_parts"] = mp(
    b"multipart/mixed; boundary=p", b"".join(b"--p\r\n\r\n%d\r\n" % i for i in range(10010)) + b"--p--\r\n"
)

#: Cases Dovecot cannot store or shows differently by design: an empty
#: message (APPEND refuses it) and bare LF line ends (Dovecot sends CRLF).
NOT_COMPARABLE = frozenset({"empty_message", "mixed_lf_in_body", "delim_lf_only"})


#: Header blocks at the edges of RFC 5322's field syntax, for the fast
#: field finders (``field_values``, ``select_fields``) checked against the parser.
HEADER_EDGES: list[bytes] = [
    b"Subject: one\r\n folded\r\n\ttwice\r\nsubject : two\r\nSubject:\r\n\r\nSubject: body\r\n",
    b"Subject:  lead\nSUBJECT:\n X-A: not a field start\nx-a:z\n\nbody",
    b"\r\nSubject: after the empty header\r\n",
    b"Subject: no blank line and no line end",
    b"From: a\r\r\nSubject: cr\r\r\n\r\n",
    b"subject-x: nope\r\nsubjectx: nope\r\n subject: continuation\r\n\r\n",
    b"Subject\t \t: tabs\r\n" * 3 + b"\r\n",
    b"From: a\x00b\r\nSubject: nul\r\n\r\nbody\x00\r\n",
    b"X-A: x\r\nx-a-b: y\r\nX-A\t: z\r\n\r\n",
    b"From: a\r\nSubject: x\r\n",  # no blank line, last line ended
    b"",
]

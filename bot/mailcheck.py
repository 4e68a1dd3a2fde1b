"""Checks on untrusted mail before b4 sees it: bounded headers, trailer-shaped lines b4's
trailer parser can digest, headers Python's parser can read, patch text taken exactly."""

from __future__ import annotations

import re
from email.message import EmailMessage

from mmuci.errors import MmuCiError

MAX_HEADERS = 1000  # header fields per message
# b4's trailer parser is cubic in the longest run of non-blank characters of a line shaped
# like "Name: value" (600 characters: seconds). Real trailers (Link:, Fixes:) stay far below.
MAX_TRAILER_WORD = 200
_TRAILER = re.compile(rb"^\s*\w\S+:\s+\S")
_LONG_WORD = re.compile(rb"\S{%d}" % (MAX_TRAILER_WORD + 1))
_MSGID_HEADERS = (b"message-id", b"in-reply-to", b"references")


class MailError(MmuCiError):
    """A message that mmu-ci will not read (one line, exit status 2)."""


def _split_header(raw: bytes) -> tuple[bytes, bytes, bytes]:
    m = re.search(rb"\r?\n\r?\n", raw)
    if m is None:
        return raw, b"", b""
    return raw[: m.start()], raw[m.start() : m.end()], raw[m.end() :]


def check_headers(raw: bytes, max_bytes: int, what: str) -> bytes:
    """``raw`` with bounded header fields; a message-id folded inside its angle brackets
    (``<\\n id>``, which Python's header parser trips on) is unfolded."""
    head, sep, body = _split_header(raw)
    fields: list[list[bytes]] = []
    for line in head.split(b"\n"):
        if line[:1] in (b" ", b"\t") and fields:
            fields[-1].append(line)
        else:
            fields.append([line])
    if len(fields) > MAX_HEADERS:
        raise MailError(f"{what}: {len(fields)} header fields, more than {MAX_HEADERS}")
    out = []
    for f in fields:
        size = sum(len(x) + 1 for x in f)
        name = f[0].split(b":", 1)[0].strip()
        if size > max_bytes:
            shown = name[:40].decode("ascii", "replace")
            raise MailError(
                f"{what}: header {shown!r} is {size:,} bytes, more than "
                f"intake.max_header_bytes ({max_bytes:,})"
            )
        if name.lower() in _MSGID_HEADERS:
            one = b" ".join([f[0].rstrip(b"\r"), *(x.strip() for x in f[1:])])
            one = re.sub(rb"<\s+", b"<", re.sub(rb"\s+>", b">", one))
            f = [one]
        out += f
    return b"\n".join(out) + sep + body


def _text_parts(m: EmailMessage) -> list[EmailMessage]:
    return [p for p in m.walk() if not p.is_multipart() and p.get_content_maintype() == "text"]


def check_parsed(m: EmailMessage, what: str) -> None:
    """Every header readable, every text part decodable, no trailer-shaped line b4 would
    take seconds over."""
    for name in set(m.keys()):
        try:
            for v in m.get_all(name) or ():
                str(v)
        except Exception as e:  # noqa: BLE001 - the header parser's failure on this input
            raise MailError(f"{what}: unreadable {name[:40]!r} header ({type(e).__name__})") from e
    for name in ("Message-ID", "In-Reply-To", "Subject", "From"):
        if len(m.get_all(name) or ()) > 1:
            raise MailError(f"{what}: more than one {name} header")
    for part in _text_parts(m):
        try:
            payload = part.get_payload(decode=True) or b""
        except Exception as e:  # noqa: BLE001
            raise MailError(f"{what}: undecodable body ({type(e).__name__})") from e
        if not isinstance(payload, bytes):
            continue
        for n, line in enumerate(payload.split(b"\n"), 1):
            if len(line) > MAX_TRAILER_WORD and _TRAILER.match(line) and _LONG_WORD.search(line):
                raise MailError(
                    f"{what}: body line {n} looks like a trailer with a value of more than "
                    f"{MAX_TRAILER_WORD} characters without a space; mmu-ci does not read it"
                )


def check_exact_text(m: EmailMessage, what: str) -> None:
    """Refuse a patch whose text is not valid in its declared charset: b4 would replace
    the bad bytes and mmu-ci would check another patch than the one sent."""
    for part in _text_parts(m):
        raw = part.get_payload(decode=True) or b""
        if not isinstance(raw, bytes):
            continue
        charset = part.get_content_charset() or "utf-8"
        if charset in ("unknown-8bit", "x-unknown", "8bit"):
            charset = "utf-8"
        try:
            raw.decode(charset)
        except LookupError:
            what_cs = f"unknown charset {charset[:40]!r}"
            raise MailError(f"{what}: {what_cs}; resend it as UTF-8") from None
        except UnicodeDecodeError as e:
            line = raw[: e.start].count(b"\n") + 1
            raise MailError(
                f"{what}: line {line} holds bytes that are not valid {charset} "
                f"(0x{raw[e.start]:02x}); mmu-ci checks the exact patch sent or none: "
                "resend it as UTF-8 text"
            ) from None

"""The message a reply answers, read from the list archive (public-inbox `<msgid>/raw`)."""

from __future__ import annotations

import email
import email.policy
import urllib.parse
from dataclasses import dataclass
from email.utils import getaddresses

from bot import fetch
from mmuci.errors import MmuCiError

_MID_SAFE = "@!$&'()*+,;=:.-_~"


class ArchiveError(MmuCiError):
    """The list archive could not be asked."""


def raw_url(inbox_url: str, msgid: str) -> str:
    mid = msgid.strip().removeprefix("<").removesuffix(">")
    return f"{inbox_url.rstrip('/')}/{urllib.parse.quote(mid, safe=_MID_SAFE)}/raw"


def lookup(inbox_url: str, msgid: str, timeout: float = 30.0) -> bytes | None:
    """The archived message, or None when the archive does not have it (404)."""
    url = raw_url(inbox_url, msgid)
    answer = fetch.get(url, timeout=timeout, max_bytes=16 << 20)
    if answer.status == 404:
        return None
    if answer.status != 200:
        raise ArchiveError(f"{url}: HTTP {answer.status}; is {inbox_url} a public-inbox?")
    return answer.body


@dataclass(frozen=True)
class Original:
    msgid: str  # without angle brackets
    subject: str
    author: str  # "Name <addr>"
    to: tuple[str, ...]
    cc: tuple[str, ...]
    references: tuple[str, ...]  # with angle brackets


def parse(raw: bytes) -> Original:
    msg = email.message_from_bytes(raw, policy=email.policy.default)

    def addrs(name: str) -> tuple[str, ...]:
        pairs = getaddresses([str(v) for v in msg.get_all(name, [])])
        return tuple(email.utils.formataddr(p) for p in pairs if p[1])

    mid = str(msg.get("Message-ID", "")).strip().strip("<>")
    refs = str(msg.get("References", "")).split()
    return Original(
        mid,
        " ".join(str(msg.get("Subject", "")).split()),
        (addrs("From") or ("",))[0],
        addrs("To"),
        addrs("Cc"),
        tuple(refs),
    )


def fetch_original(inbox_url: str | None, msgid: str, timeout: float = 30.0) -> Original:
    if not inbox_url:
        raise MmuCiError(
            "cannot thread a reply: the report's series was read from a file, not a list; "
            "check it by its message-id instead, with --post"
        )
    raw = lookup(inbox_url, msgid, timeout)
    if raw is None:
        raise ArchiveError(f"{raw_url(inbox_url, msgid)}: not in the archive; nothing to reply to")
    return parse(raw)

"""The mail as it arrives: a series reference parsed, its thread fetched, an mbox cut into
checked messages, and those messages read by b4 into its mailbox.

The mail is untrusted: every input is bounded (`Limits`: lore.* and intake.* settings),
each message checked before b4 sees it (bot/mailcheck.py); the thread is fetched by
bot/fetch.py (deadline, size cap). Every way a thread can be unusable ends in
`IntakeError` with a one-line reason. What the messages say as a series is
bot/series.py's; bot/intake.py ties both together in a worker.
"""

from __future__ import annotations

import hashlib
import re
import urllib.parse
from dataclasses import dataclass
from email.message import EmailMessage
from typing import Any

from bot import fetch, mailcheck
from mmuci.errors import MmuCiError

_PATCH_SUBJECT = re.compile(rb"(?im)^subject:[^\n]*\[[^\]\n]*PATCH")


class IntakeError(MmuCiError):
    """The series could not be fetched or is unusable as a series (exit status 2)."""


MAX_REF = 2048  # a message-id, a URL or a path longer than this is not one


@dataclass(frozen=True)
class Limits:
    """Bounds on everything intake reads (settings lore.* and intake.*)."""

    fetch_timeout: float = 60.0
    max_fetch_bytes: int = 64 << 20
    timeout: float = 30.0
    max_messages: int = 500
    max_patches: int = 100
    max_message_bytes: int = 8 << 20
    max_header_bytes: int = 16384

    @classmethod
    def from_config(cls, cfg: Any) -> Limits:
        i = "intake"
        return cls(
            fetch_timeout=float(cfg.get("lore", "timeout")),
            max_fetch_bytes=int(cfg.get("lore", "max_bytes")),
            timeout=float(cfg.get(i, "timeout")),
            max_messages=int(cfg.get(i, "max_messages")),
            max_patches=int(cfg.get(i, "max_patches")),
            max_message_bytes=int(cfg.get(i, "max_message_bytes")),
            max_header_bytes=int(cfg.get(i, "max_header_bytes")),
        )


def parse_ref(ref: str, lore_url: str) -> tuple[str, str]:
    """(message-id, inbox base URL) from a bare/angle-bracketed message-id or a lore URL
    (``https://lore.kernel.org/kvm/<msgid>/``, also with ``/T/#t``, ``/raw``, ...)."""
    ref = ref.strip()
    if len(ref) > MAX_REF:
        raise IntakeError(f"{ref[:60]!r}... is {len(ref)} characters long: not a message-id or URL")
    if ref.startswith(("http://", "https://")):
        try:
            u = urllib.parse.urlsplit(ref)
            u.port  # noqa: B018 - raises ValueError on a bad port
        except ValueError as e:
            raise IntakeError(f"{ref!r} is not a valid URL ({e})") from e
        parts = [urllib.parse.unquote(x) for x in u.path.split("/")]
        at = next((i for i, x in enumerate(parts) if "@" in x), None)
        if at is None:
            raise IntakeError(f"{ref!r} is not a lore-style URL (https://HOST/LIST/MESSAGE-ID/)")
        base = f"{u.scheme}://{u.netloc}" + "/".join(parts[:at])
        return parts[at], base.rstrip("/")
    msgid = ref.strip("<>").removeprefix("id:")
    if "@" not in msgid or any(c.isspace() for c in msgid):
        raise IntakeError(
            f"{ref!r} is neither a message-id, a lore URL, nor an existing mbox/.patch file"
        )
    return msgid, lore_url.rstrip("/")


def _one_message(raw: bytes, n: int, origin: str, limits: Limits) -> EmailMessage:
    what = f"{origin}: message {n}"
    if len(raw) > limits.max_message_bytes:
        raise IntakeError(
            f"{what} is {len(raw):,} bytes, more than "
            f"intake.max_message_bytes ({limits.max_message_bytes:,})"
        )
    import liblore.utils  # the mail parsers only where mail is read: a warm run needs none

    m = liblore.utils.parse_message(mailcheck.check_headers(raw, limits.max_header_bytes, what))
    mailcheck.check_parsed(m, what)
    return m


def split_mbox(
    data: bytes, origin: str, limits: Limits, skipped: list[str] | None = None
) -> list[EmailMessage]:
    """The messages of an mbox (or one message), every input bound checked first. A
    message that is not a patch and fails a check is left out, its reason in ``skipped``."""
    skipped = [] if skipped is None else skipped
    if data[:2] == fetch.GZIP_MAGIC:
        try:
            data = fetch.gunzip(data, limits.max_fetch_bytes, origin)
        except fetch.FetchError as e:
            raise IntakeError(str(e)) from e
    if b"\0" in data[:4096]:
        raise IntakeError(f"{origin}: binary data, not an mbox or .patch file")
    if not data.startswith(b"From "):
        # A single message without the mbox "From " line (e.g. a saved .eml).
        if not re.match(rb"^[A-Za-z-]+:", data):
            raise IntakeError(f"{origin}: not an mbox (no 'From ' line, no mail headers)")
        data = b"From mmu-ci@z Thu Jan  1 00:00:00 1970\n" + data
    import liblore.utils

    raws = liblore.utils.split_mbox_as_bytes(data)
    msgs: list[EmailMessage] = []
    if len(raws) > limits.max_messages:
        raise IntakeError(
            f"{origin}: {len(raws)} messages, more than intake.max_messages "
            f"({limits.max_messages}); give the message-id of the series itself"
        )
    for n, raw in enumerate(raws, 1):
        try:
            m = _one_message(raw, n, origin, limits)
        except MmuCiError as e:
            if _PATCH_SUBJECT.search(raw[: limits.max_header_bytes * 4]):
                raise IntakeError(str(e)) from e
            skipped.append(str(e))  # a reply nobody can read must not block the series
            continue
        if m.get("Subject") or m.get("Message-ID"):
            msgs.append(m)
    if not msgs and skipped:
        raise IntakeError(skipped[0])
    if not msgs:
        raise IntakeError(f"{origin}: not an mbox (no message with a Subject or Message-ID)")
    for m in msgs:
        if not m.get("Message-ID"):
            # A plain `git format-patch` file has none; b4 needs one to thread by.
            digest = hashlib.sha256(m.as_bytes()).hexdigest()[:16]
            del m["Message-ID"]  # an empty one
            m["Message-ID"] = f"<{digest}@mmu-ci.local>"
    return msgs


def fetch_thread(ref: str, lore_url: str, limits: Limits | None = None) -> tuple[str, str, bytes]:
    """Fetch the thread holding message ``ref`` from the inbox: (msgid, url, mbox bytes)."""
    limits = limits or Limits()
    msgid, url = parse_ref(ref, lore_url)
    try:
        ans = fetch.get(
            f"{url}/{urllib.parse.quote_plus(msgid)}/t.mbox.gz",
            timeout=limits.fetch_timeout,
            max_bytes=limits.max_fetch_bytes,
        )
    except fetch.FetchError as e:
        raise IntakeError(f"could not fetch <{msgid}> from {url}: {e}") from e
    if ans.status == 404 or (ans.status == 200 and not ans.body):
        raise IntakeError(f"message <{msgid}> not found on {url}")
    if ans.status != 200:
        raise IntakeError(f"could not fetch <{msgid}> from {url}: HTTP status {ans.status}")
    return msgid, url, ans.body


def lore_mailbox(b4: Any, msgs: list[EmailMessage]) -> Any:
    """b4's LoreMailbox (inside ``b4box.isolated``) of these messages; a message b4 cannot
    read is an IntakeError that names it."""
    lmbx = b4.LoreMailbox()
    for m in msgs:
        try:
            lmbx.add_message(m)
        except Exception as e:  # b4 trips on some malformed headers: name the message
            subj = str(m.get("Subject", "(no subject)"))[:60]
            raise IntakeError(f"malformed message {subj!r}: {type(e).__name__}: {e}") from e
    return lmbx

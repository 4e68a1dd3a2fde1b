"""Intake: a series reference (message-id, lore URL, mbox or .patch file) -> `Series`.

b4 does the mail work (revision grouping, trailers, am-ready messages), configured for
one inbox and without network of its own (bot/b4box.py); the thread is fetched by
bot/fetch.py (deadline, size cap). The mail is untrusted: every input is bounded
(`Limits`: lore.* and intake.* settings), checked before b4 sees it (bot/mailcheck.py),
and read in a worker killed at intake.timeout (bot/worker.py). Every way a thread can be
unusable ends in `IntakeError` with a one-line reason.
"""

from __future__ import annotations

import base64
import hashlib
import re
import urllib.parse
from dataclasses import asdict, dataclass, replace
from email.message import EmailMessage
from pathlib import Path
from typing import TYPE_CHECKING, Any

from bot import fetch, mailcheck
from bot.worker import WorkerError, with_deadline
from mmuci.errors import MmuCiError

if TYPE_CHECKING:
    from bot.memo import Memo

# "no functional change", "No functional change intended", "NFC" (case-insensitive).
NFC_RE = re.compile(r"\bno functional changes?\b|\bNFCI?\b", re.I)
_BASE_RE = re.compile(r"^base-commit:\s*([0-9a-f]{7,40})\s*$", re.M | re.I)
_CHANGE_RE = re.compile(r"^change-id:\s*(\S+)\s*$", re.M | re.I)
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


@dataclass(frozen=True)
class Patch:
    """One patch of a series, ready for `git am`."""

    index: int  # 1-based position in the series
    subject: str  # without the [PATCH vN i/n] prefix
    msgid: str
    author: str  # "Name <email>"
    mbox: bytes  # the am-ready message (trailers collected from replies), mbox format
    commit_message: str  # subject + body, without the diff
    diff: str
    trailers: tuple[str, ...] = ()
    nfc_claim: bool = False


@dataclass(frozen=True)
class Series:
    """A patch series as posted (one revision of a thread)."""

    source: str  # what the user gave: message-id, URL or file path
    msgid: str | None  # the message-id to reproduce the fetch with (None for a file)
    subject: str
    cover_subject: str | None
    cover_body: str
    revision: int
    revisions: tuple[int, ...]  # every revision seen in the thread
    author: str
    patches: tuple[Patch, ...]
    msgids: tuple[str, ...]
    base_commit: str | None = None
    change_id: str | None = None
    lore_url: str | None = None
    skipped: tuple[str, ...] = ()  # messages of the thread left out, and why


def nfc_claim(commit_message: str) -> bool:
    """True when a commit message claims no functional change."""
    return bool(NFC_RE.search(commit_message))


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


def _split_mbox(
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


def _has_binary_part(msg: EmailMessage) -> bool:
    for part in msg.walk():
        if part.is_multipart():
            continue
        ctype = part.get_content_type()
        if not ctype.startswith("text/") and ctype != "message/rfc822":
            return True
    return False


def _commit_message(body: str) -> tuple[str, str]:
    """Split an am-ready body into (commit message, diff)."""
    m = re.search(r"^(---\s*$|diff --git )", body, re.M)
    if not m:
        return body.strip(), ""
    msg = body[: m.start()]
    d = re.search(r"^diff --git ", body[m.start() :], re.M)
    diff = body[m.start() + d.start() :] if d else ""
    return msg.strip(), diff


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


def build_series(
    msgs: list[EmailMessage],
    source: str,
    *,
    msgid: str | None = None,
    lore_url: str | None = None,
    revision: int | None = None,
    limits: Limits | None = None,
) -> Series:
    """Group the messages with b4 and return one revision of the series (newest by default)."""
    limits = limits or Limits()
    from bot import b4box

    with b4box.isolated(lore_url or "http://127.0.0.1/none") as b4:
        lmbx = lore_mailbox(b4, msgs)
        if not lmbx.series:
            what = f"thread of <{msgid}>" if msgid else source
            raise IntakeError(
                f"{what} holds no patches ({len(msgs)} message(s), e.g. review replies); "
                "give the message-id of a patch or its cover letter"
            )
        revisions = tuple(sorted(lmbx.series))
        if revision is not None and revision not in lmbx.series:
            raise IntakeError(f"revision v{revision} is not in the thread (found {revisions})")
        try:
            lser = lmbx.get_series(revision, codereview_trailers=False)
        except SystemExit as e:  # b4 exits on suspicious unicode in a body
            raise IntakeError(f"b4 refused the series (exit {e.code})") from e
        if lser is None:
            raise IntakeError(f"b4 found no usable series in {source}")
        if lser.expected > limits.max_patches:
            raise IntakeError(
                f"series v{lser.revision} has {lser.expected} patches, more than "
                f"intake.max_patches ({limits.max_patches})"
            )
        missing = [i for i in range(1, lser.expected + 1) if lser.patches[i] is None]
        if missing:
            nums = ", ".join(f"{i}/{lser.expected}" for i in missing)
            raise IntakeError(
                f"series v{lser.revision} is incomplete: patch {nums} missing from the thread; "
                "wait for the rest or resend"
            )
        patches = []
        for i in range(1, lser.expected + 1):
            lmsg = lser.patches[i]
            if _has_binary_part(lmsg.msg):
                raise IntakeError(
                    f"patch {i}/{lser.expected} {lmsg.subject!r} carries a binary attachment; "
                    "send it inline as text"
                )
            mailcheck.check_exact_text(lmsg.msg, f"patch {i}/{lser.expected} {lmsg.subject!r}")
            try:
                am = lmsg.get_am_message(add_trailers=True)
            except SystemExit as e:
                raise IntakeError(f"b4 refused patch {i}/{lser.expected} (exit {e.code})") from e
            except Exception as e:
                raise IntakeError(
                    f"malformed patch {i}/{lser.expected} {lmsg.subject!r}: {e}"
                ) from e
            body = am.get_payload(decode=True).decode("utf-8", errors="replace")
            message, diff = _commit_message(body)
            if "GIT binary patch" in diff:
                raise IntakeError(
                    f"patch {i}/{lser.expected} {lmsg.subject!r} is a binary patch; "
                    "mmu-ci checks C source changes only"
                )
            commit_message = f"{lmsg.subject}\n\n{message}".strip()
            patches.append(
                Patch(
                    index=i,
                    subject=lmsg.subject,
                    msgid=lmsg.msgid,
                    author=f"{lmsg.fromname} <{lmsg.fromemail}>",
                    mbox=b4box.am_mbox(am),
                    commit_message=commit_message,
                    diff=diff,
                    trailers=tuple(f"{t.name}: {t.value}" for t in lmsg.trailers),
                    nfc_claim=nfc_claim(commit_message),
                )
            )
        cover = lser.patches[0]
        texts = ([cover.body] if cover is not None else []) + [p.diff for p in patches[-1:]]
        texts += [lm.body for lm in lser.patches[1:] if lm is not None]
        base = next((b.group(1) for t in texts if (b := _BASE_RE.search(t))), None)
        change = next((c.group(1) for t in texts if (c := _CHANGE_RE.search(t))), None)
        return Series(
            source=source,
            msgid=msgid,
            subject=cover.subject if cover is not None else patches[0].subject,
            cover_subject=cover.subject if cover is not None else None,
            cover_body=cover.body if cover is not None else "",
            revision=lser.revision,
            revisions=revisions,
            author=f"{lser.fromname} <{lser.fromemail}>",
            patches=tuple(patches),
            msgids=tuple(([cover.msgid] if cover is not None else []) + [p.msgid for p in patches]),
            base_commit=lser.base_commit or base,
            change_id=lser.change_id or change,
            lore_url=lore_url,
        )


def load(
    ref: str,
    lore_url: str,
    revision: int | None = None,
    limits: Limits | None = None,
    memo: Memo | None = None,
) -> Series:
    """A Series from a message-id, a lore URL, or a path to an mbox/.patch file; with
    ``memo``, a thread read before (the same bytes) is not parsed again."""
    limits = limits or Limits()
    if len(ref) > MAX_REF:
        raise IntakeError(f"{ref[:60]!r}... is {len(ref)} characters long: not a series reference")
    p = Path(ref).expanduser()
    try:
        exists, is_file = p.exists(), p.is_file()
    except (OSError, ValueError) as e:
        raise IntakeError(f"{ref[:200]!r}: not a usable path ({e})") from e
    if "@" not in ref or exists:
        if is_file:
            size = p.stat().st_size
            if size > limits.max_fetch_bytes:
                raise IntakeError(
                    f"{p}: {size:,} bytes, more than lore.max_bytes ({limits.max_fetch_bytes:,})"
                )
            return parse(p.read_bytes(), str(p), revision=revision, limits=limits, memo=memo)
        if exists:
            raise IntakeError(f"{p} is not a file: give an mbox or .patch file")
        if not ref.startswith(("http://", "https://")) and "@" not in ref:
            raise IntakeError(f"{ref!r}: no such file, and not a message-id or lore URL")
    msgid, url, raw = fetch_thread(ref, lore_url, limits)
    return parse(
        raw, ref, origin=f"thread of <{msgid}>", msgid=msgid, lore_url=url, revision=revision,
        limits=limits, memo=memo,
    )  # fmt: skip


def parse(
    data: bytes, source: str, *, origin: str | None = None, msgid: str | None = None,
    lore_url: str | None = None, revision: int | None = None, limits: Limits | None = None,
    memo: Memo | None = None,
) -> Series:  # fmt: skip
    """Mbox bytes -> Series, in a worker process killed at intake.timeout: untrusted mail
    meets b4's and Python's parsers there. Any failure is one IntakeError line. With
    ``memo`` the Series read from the same bytes, arguments and intake code is reused (a
    failure is not remembered)."""
    limits = limits or Limits()
    if memo is not None:
        from mmuci.owncode import code_version

        digest = hashlib.sha256(data).hexdigest()
        args = [source, origin, msgid, lore_url, revision, limits]
        key = ("thread", digest, repr(args), code_version("bot"))
        known = memo.get(key)
        if isinstance(known, dict):
            return _from_json(known)
        series = parse(
            data, source, origin=origin, msgid=msgid, lore_url=lore_url, revision=revision,
            limits=limits,
        )  # fmt: skip
        memo.put(key, _to_json(series))
        return series

    what = origin or source

    def work() -> dict[str, Any]:
        skipped: list[str] = []
        msgs = _split_mbox(data, what, limits, skipped)
        s = build_series(
            msgs, source, msgid=msgid, lore_url=lore_url, revision=revision, limits=limits
        )
        return _to_json(replace(s, skipped=tuple(skipped)))

    try:
        return _from_json(with_deadline(work, limits.timeout, f"{what}: reading the mail"))
    except WorkerError as e:
        raise IntakeError(str(e)) from e


def _to_json(s: Series) -> dict[str, Any]:
    d = asdict(s)
    for p in d["patches"]:
        p["mbox"] = base64.b64encode(p["mbox"]).decode()
    return d


def _from_json(d: dict[str, Any]) -> Series:
    patches = tuple(
        Patch(**{**p, "mbox": base64.b64decode(p["mbox"]), "trailers": tuple(p["trailers"])})
        for p in d["patches"]
    )
    tuples = {k: tuple(d[k]) for k in ("revisions", "msgids", "skipped")}
    return Series(**{**d, "patches": patches, **tuples})

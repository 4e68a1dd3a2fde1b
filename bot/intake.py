"""Intake: a series reference (message-id, lore URL, mbox or .patch file) -> `Series`.

b4 does the mail work (thread fetch, revision grouping, trailers, am-ready messages);
we only point it at the configured public-inbox and shield it from the user's git
config. Every way a thread can be unusable ends in `IntakeError` with a one-line reason.
"""

from __future__ import annotations

import contextlib
import copy
import gzip
import hashlib
import io
import logging
import os
import re
import urllib.parse
from collections.abc import Iterator
from dataclasses import dataclass
from email.message import EmailMessage
from pathlib import Path

import b4
import liblore
import liblore.utils

from mmucore.errors import MmuCiError

# "no functional change", "No functional change intended", "NFC" (case-insensitive).
NFC_RE = re.compile(r"\bno functional changes?\b|\bNFCI?\b", re.I)
_BASE_RE = re.compile(r"^base-commit:\s*([0-9a-f]{7,40})\s*$", re.M | re.I)
_CHANGE_RE = re.compile(r"^change-id:\s*(\S+)\s*$", re.M | re.I)


class IntakeError(MmuCiError):
    """The series could not be fetched or is unusable as a series (exit status 2)."""


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


def nfc_claim(commit_message: str) -> bool:
    """True when a commit message claims no functional change."""
    return bool(NFC_RE.search(commit_message))


def parse_ref(ref: str, lore_url: str) -> tuple[str, str]:
    """(message-id, inbox base URL) from a bare/angle-bracketed message-id or a lore URL
    (``https://lore.kernel.org/kvm/<msgid>/``, also with ``/T/#t``, ``/raw``, ...)."""
    ref = ref.strip()
    if ref.startswith(("http://", "https://")):
        u = urllib.parse.urlsplit(ref)
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


@contextlib.contextmanager
def _isolated_b4(lore_url: str) -> Iterator[object]:
    """b4 configured for one inbox URL only, with no user or system git config read."""
    saved_env = {k: os.environ.get(k) for k in ("GIT_CONFIG_GLOBAL", "GIT_CONFIG_NOSYSTEM")}
    saved = (b4.MAIN_CONFIG, b4.USER_CONFIG, b4.LORENODE)
    os.environ["GIT_CONFIG_GLOBAL"] = os.devnull
    os.environ["GIT_CONFIG_NOSYSTEM"] = "1"
    cfg = copy.deepcopy(b4.DEFAULT_CONFIG)
    cfg.update(
        {
            "midmask": f"{lore_url}/%s",
            "searchmask": f"{lore_url}/?x=m&q=%s",
            "linkmask": f"{lore_url}/%s",
            "listid-preference": ["*"],
            "attestation-policy": "off",
            "attestation-check-dkim": "no",
        }
    )
    b4.MAIN_CONFIG = cfg
    b4.USER_CONFIG = {"name": "mmu-ci", "email": "mmu-ci@localhost"}
    # follow_upstream=False: never fall through to the real lore from a partial mirror.
    b4.LORENODE = liblore.LoreNode(lore_url, follow_upstream=False, request_timeout=(5.0, 30.0))
    logging.getLogger("b4").setLevel(logging.ERROR)
    try:
        yield b4
    finally:
        b4.LORENODE.close()
        b4.MAIN_CONFIG, b4.USER_CONFIG, b4.LORENODE = saved
        for k, v in saved_env.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def _split_mbox(data: bytes, origin: str) -> list[EmailMessage]:
    if data[:2] == b"\x1f\x8b":
        try:
            data = gzip.decompress(data)
        except (OSError, EOFError) as e:
            raise IntakeError(f"{origin}: corrupt gzip data ({e})") from e
    if b"\0" in data[:4096]:
        raise IntakeError(f"{origin}: binary data, not an mbox or .patch file")
    if not data.startswith(b"From "):
        # A single message without the mbox "From " line (e.g. a saved .eml).
        if not re.match(rb"^[A-Za-z-]+:", data):
            raise IntakeError(f"{origin}: not an mbox (no 'From ' line, no mail headers)")
        data = b"From mmu-ci@z Thu Jan  1 00:00:00 1970\n" + data
    msgs = [m for m in liblore.utils.split_mbox(data) if m.get("Subject") or m.get("Message-ID")]
    if not msgs:
        raise IntakeError(f"{origin}: not an mbox (no message with a Subject or Message-ID)")
    for m in msgs:
        if not m.get("Message-ID"):
            # A plain `git format-patch` file has none; b4 needs one to thread by.
            digest = hashlib.sha256(m.as_bytes()).hexdigest()[:16]
            m["Message-ID"] = f"<{digest}@mmu-ci.local>"
    return msgs


def fetch_thread(ref: str, lore_url: str) -> tuple[str, str, list[EmailMessage]]:
    """Fetch the thread holding message ``ref`` from the inbox: (msgid, url, messages)."""
    msgid, url = parse_ref(ref, lore_url)
    with _isolated_b4(url) as b4:
        try:
            raw = b4.LORENODE.get_mbox_by_msgid(msgid, nocache=True)
        except liblore.RemoteError as e:
            code = getattr(e, "status_code", None)
            if code == 404:
                raise IntakeError(f"message <{msgid}> not found on {url}") from e
            raise IntakeError(f"could not fetch <{msgid}> from {url}: {e}") from e
        except Exception as e:  # requests/connection errors: one line, not a traceback
            raise IntakeError(f"could not fetch <{msgid}> from {url}: {type(e).__name__}") from e
    if not raw:
        raise IntakeError(f"message <{msgid}> not found on {url}")
    return msgid, url, _split_mbox(raw, f"thread of <{msgid}>")


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


def build_series(
    msgs: list[EmailMessage],
    source: str,
    *,
    msgid: str | None = None,
    lore_url: str | None = None,
    revision: int | None = None,
) -> Series:
    """Group the messages with b4 and return one revision of the series (newest by default)."""
    with _isolated_b4(lore_url or "http://127.0.0.1/none") as b4:
        lmbx = b4.LoreMailbox()
        for m in msgs:
            try:
                lmbx.add_message(m)
            except Exception as e:  # b4 trips on some malformed headers: name the message
                subj = str(m.get("Subject", "(no subject)"))[:60]
                raise IntakeError(f"malformed message {subj!r}: {type(e).__name__}: {e}") from e
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
            fh = io.BytesIO()
            b4.save_git_am_mbox([am], fh)
            patches.append(
                Patch(
                    index=i,
                    subject=lmsg.subject,
                    msgid=lmsg.msgid,
                    author=f"{lmsg.fromname} <{lmsg.fromemail}>",
                    mbox=fh.getvalue(),
                    commit_message=commit_message,
                    diff=diff,
                    trailers=tuple(f"{t.name}: {t.value}" for t in lmsg.trailers),
                    nfc_claim=nfc_claim(commit_message),
                )
            )
        cover = lser.patches[0]
        texts = ([cover.body] if cover is not None else []) + [p.diff for p in patches[-1:]]
        texts += [lm.body for lm in lser.patches[1:] if lm is not None]
        base = next((m.group(1) for t in texts if (m := _BASE_RE.search(t))), None)
        change = next((m.group(1) for t in texts if (m := _CHANGE_RE.search(t))), None)
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


def load(ref: str, lore_url: str, revision: int | None = None) -> Series:
    """A Series from a message-id, a lore URL, or a path to an mbox/.patch file."""
    p = Path(ref).expanduser()
    if "@" not in ref or p.exists():
        if p.is_file():
            return build_series(_split_mbox(p.read_bytes(), str(p)), str(p), revision=revision)
        if p.exists():
            raise IntakeError(f"{p} is not a file: give an mbox or .patch file")
        if not ref.startswith(("http://", "https://")) and "@" not in ref:
            raise IntakeError(f"{ref!r}: no such file, and not a message-id or lore URL")
    msgid, url, msgs = fetch_thread(ref, lore_url)
    return build_series(msgs, ref, msgid=msgid, lore_url=url, revision=revision)

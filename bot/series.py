"""A series as b4 groups it: one revision of a thread -> `Series` of am-ready `Patch`es.

b4 does the mail work (revision grouping, trailers, am-ready messages), configured for
one inbox and without network of its own (bot/b4box.py), on messages bot/mbox.py has
read and checked. A series that is incomplete, too long, binary or refused by b4 is an
`IntakeError` that says which patch and why.
"""

from __future__ import annotations

import base64
import re
from dataclasses import asdict, dataclass
from email.message import EmailMessage
from typing import Any

from bot import mailcheck
from bot.mbox import IntakeError, Limits, lore_mailbox

# "no functional change", "No functional change intended", "NFC" (case-insensitive).
NFC_RE = re.compile(r"\bno functional changes?\b|\bNFCI?\b", re.I)
BASE_RE = re.compile(r"^base-commit:\s*([0-9a-f]{7,40})\s*$", re.M | re.I)
CHANGE_RE = re.compile(r"^change-id:\s*(\S+)\s*$", re.M | re.I)


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
        base = next((b.group(1) for t in texts if (b := BASE_RE.search(t))), None)
        change = next((c.group(1) for t in texts if (c := CHANGE_RE.search(t))), None)
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


def to_json(s: Series) -> dict[str, Any]:
    d = asdict(s)
    for p in d["patches"]:
        p["mbox"] = base64.b64encode(p["mbox"]).decode()
    return d


def from_json(d: dict[str, Any]) -> Series:
    patches = tuple(
        Patch(**{**p, "mbox": base64.b64decode(p["mbox"]), "trailers": tuple(p["trailers"])})
        for p in d["patches"]
    )
    tuples = {k: tuple(d[k]) for k in ("revisions", "msgids", "skipped")}
    return Series(**{**d, "patches": patches, **tuples})

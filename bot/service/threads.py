"""A fetched thread -> the series revisions in it, grouped by b4 (intake's grouping).

One thread may hold several revisions (a v2 posted in reply to v1), revisions whose
patches have not all arrived yet, and replies. A reply (`Re:`) is never a series, even
when it carries an unquoted diff (b4 files it under follow-ups). Only the grouping runs
here, no `git am` preparation (that is the job's, through intake.load): classifying
needs the message-ids, subjects and the paths the diffs touch. The mail is untrusted:
the grouping runs in a worker killed at ``intake.timeout``, every input bound of
the mbox reader (bot/mbox.py) applies.
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass
from typing import Any

from bot import b4box, mbox
from bot.mbox import IntakeError, Limits
from bot.series import BASE_RE, CHANGE_RE
from bot.worker import WorkerError, with_deadline
from mmucore.manifest import ROOTS

_DIFF_RE = re.compile(r"^diff --git a/(\S+) b/(\S+)", re.M)


@dataclass(frozen=True)
class Waiting:
    """A revision whose patches are not all on the list yet."""

    revision: int
    expected: int
    missing: tuple[int, ...]


@dataclass(frozen=True)
class FoundPatch:
    index: int
    subject: str  # without the [PATCH vN i/n] prefix
    msgid: str


@dataclass(frozen=True)
class Found:
    """One complete revision of a series as the list shows it: enough to record it and
    decide its scope. Checking it later reads the thread again (intake.load)."""

    revision: int
    subject: str  # the cover letter's, else patch 1's (without the prefix)
    cover_subject: str | None
    author: str  # "Name <email>"
    msgids: tuple[str, ...]  # the cover letter (if any), then the patches
    patches: tuple[FoundPatch, ...]
    files: tuple[str, ...]  # every path its diffs change (both sides of a rename)
    change_id: str | None = None
    base_commit: str | None = None


@dataclass(frozen=True)
class Thread:
    """What one thread holds: complete revisions and incomplete ones."""

    series: tuple[Found, ...]
    waiting: tuple[Waiting, ...] = ()
    messages: tuple[str, ...] = ()  # every message-id of the thread


def in_scope(s: Found, model_files: tuple[str, ...] = ROOTS.model_files) -> bool:
    """True when a patch of the series touches a file the model reads."""
    return bool(set(s.files) & set(model_files))


def _found(lmbx: Any, rev: int) -> Found:
    lser = lmbx.series[rev]
    patches = [lser.patches[i] for i in range(1, int(lser.expected or 1) + 1)]
    cover = lmbx.covers.get(rev)
    texts = ([cover.body] if cover is not None else []) + [p.body for p in patches]
    files = sorted({f for t in texts for m in _DIFF_RE.finditer(t) for f in m.groups()})
    base = next((m.group(1) for t in texts if (m := BASE_RE.search(t))), None)
    change = next((m.group(1) for t in texts if (m := CHANGE_RE.search(t))), None)
    first = cover if cover is not None else patches[0]
    return Found(
        revision=rev,
        subject=first.subject,
        cover_subject=cover.subject if cover is not None else None,
        author=f"{first.fromname} <{first.fromemail}>",
        msgids=tuple(([cover.msgid] if cover is not None else []) + [p.msgid for p in patches]),
        patches=tuple(FoundPatch(i, p.subject, p.msgid) for i, p in enumerate(patches, 1)),
        files=tuple(files),
        change_id=change,
        base_commit=base,
    )


def _group(data: bytes, origin: str, lore_url: str, limits: Limits) -> dict[str, Any]:
    msgs = mbox.split_mbox(data, origin, limits)
    found, waiting = [], []
    with b4box.isolated(lore_url) as b4:
        lmbx = mbox.lore_mailbox(b4, msgs)
        for rev in sorted(lmbx.series):
            lser = lmbx.series[rev]
            expected = int(lser.expected or 1)
            if expected > limits.max_patches:
                continue  # intake refuses it (intake.max_patches): nothing to queue
            have = lser.patches[1 : expected + 1]
            missing = [i for i, p in enumerate(have, 1) if p is None]
            missing += list(range(len(have) + 1, expected + 1))
            if missing:
                waiting.append({"revision": rev, "expected": expected, "missing": missing})
            else:
                found.append(asdict(_found(lmbx, rev)))
    return {
        "messages": [str(m.get("Message-ID", "")).strip().strip("<>") for m in msgs],
        "series": found,
        "waiting": waiting,
    }


def _from_json(d: dict[str, Any]) -> Found:
    return Found(
        **{
            **d,
            "patches": tuple(FoundPatch(**p) for p in d["patches"]),
            "msgids": tuple(d["msgids"]),
            "files": tuple(d["files"]),
        }
    )


def group(data: bytes, origin: str, lore_url: str, limits: Limits | None = None) -> Thread:
    """The series revisions of a thread's mbox (``origin`` names it in errors), grouped
    in a worker killed at ``limits.timeout``. IntakeError when the thread is unreadable."""
    limits = limits or Limits()
    try:
        d = with_deadline(
            lambda: _group(data, origin, lore_url, limits), limits.timeout, f"{origin}: grouping"
        )
    except WorkerError as e:
        raise IntakeError(str(e)) from e
    return Thread(
        series=tuple(_from_json(s) for s in d["series"]),
        waiting=tuple(
            Waiting(w["revision"], w["expected"], tuple(w["missing"])) for w in d["waiting"]
        ),
        messages=tuple(d["messages"]),
    )


def series_block(s: Found) -> dict[str, Any]:
    """The ``series`` block results.record_revision reads."""
    return {
        "subject": s.subject,
        "cover_subject": s.cover_subject,
        "author": s.author,
        "change_id": s.change_id,
        "revision": s.revision,
        "msgids": list(s.msgids),
        "base_commit": s.base_commit,
        "patches": [{"index": p.index, "subject": p.subject, "msgid": p.msgid} for p in s.patches],
    }

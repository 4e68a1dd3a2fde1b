"""A fetched thread -> the series revisions in it, grouped by b4 (intake's grouping).

One thread may hold several revisions (a v2 posted in reply to v1), revisions whose
patches have not all arrived yet, and replies. A reply (`Re:`) is never a series, even
when it carries an unquoted diff (b4 files it under follow-ups). The mail is untrusted:
the whole grouping runs in a worker killed at ``intake.timeout``, as in intake.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from bot import b4box, intake
from bot.intake import IntakeError, Limits, Series
from bot.worker import WorkerError, with_deadline
from mmucore.errors import MmuCiError
from mmucore.manifest import ROOTS

_DIFF_RE = re.compile(r"^diff --git a/(\S+) b/(\S+)", re.M)


@dataclass(frozen=True)
class Waiting:
    """A revision whose patches are not all on the list yet."""

    revision: int
    expected: int
    missing: tuple[int, ...]


@dataclass(frozen=True)
class Unusable:
    """A revision b4 found but intake refused (binary patch, malformed, too long ...)."""

    revision: int
    reason: str


@dataclass(frozen=True)
class Thread:
    """What one thread holds: complete revisions, incomplete ones, refused ones."""

    series: tuple[Series, ...]
    waiting: tuple[Waiting, ...] = ()
    unusable: tuple[Unusable, ...] = ()
    messages: tuple[str, ...] = ()  # every message-id of the thread


def touched_files(s: Series) -> frozenset[str]:
    """Every path the series' diffs change (both sides of a rename)."""
    diffs = (patch.diff for patch in s.patches)
    return frozenset(p for d in diffs for m in _DIFF_RE.finditer(d) for p in m.groups())


def in_scope(s: Series, model_files: tuple[str, ...] = ROOTS.model_files) -> bool:
    """True when a patch of the series touches a file the model reads."""
    return bool(touched_files(s) & set(model_files))


def _revisions(msgs: list[Any], lore_url: str) -> tuple[list[int], list[Waiting]]:
    """(complete revisions, incomplete ones) of the messages, as b4 groups them."""
    with b4box.isolated(lore_url) as b4:
        lmbx = b4.LoreMailbox()
        for m in msgs:
            try:
                lmbx.add_message(m)
            except Exception as e:  # b4 trips on some malformed headers: name the message
                subj = str(m.get("Subject", "(no subject)"))[:60]
                raise IntakeError(f"malformed message {subj!r}: {type(e).__name__}: {e}") from e
        complete, waiting = [], []
        for rev in sorted(lmbx.series):
            lser = lmbx.series[rev]
            expected = int(lser.expected or 1)
            have = lser.patches[1 : expected + 1]
            missing = tuple(i for i, p in enumerate(have, 1) if p is None)
            missing += tuple(range(len(have) + 1, expected + 1))
            if missing:
                waiting.append(Waiting(rev, expected, missing))
            else:
                complete.append(rev)
        return complete, waiting


def _group(data: bytes, origin: str, lore_url: str, limits: Limits) -> dict[str, Any]:
    msgs = intake._split_mbox(data, origin, limits)
    complete, waiting = _revisions(msgs, lore_url)
    series, unusable = [], []
    for rev in complete:
        try:
            s = intake.build_series(
                msgs, origin, msgid=None, lore_url=lore_url, revision=rev, limits=limits
            )
        except MmuCiError as e:
            unusable.append({"revision": rev, "reason": str(e).splitlines()[0]})
            continue
        series.append(intake._to_json(s))
    return {
        "messages": [str(m.get("Message-ID", "")).strip().strip("<>") for m in msgs],
        "series": series,
        "waiting": [
            {"revision": w.revision, "expected": w.expected, "missing": w.missing} for w in waiting
        ],
        "unusable": unusable,
    }


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
        series=tuple(intake._from_json(s) for s in d["series"]),
        waiting=tuple(
            Waiting(w["revision"], w["expected"], tuple(w["missing"])) for w in d["waiting"]
        ),
        unusable=tuple(Unusable(u["revision"], u["reason"]) for u in d["unusable"]),
        messages=tuple(d["messages"]),
    )


def series_block(s: Series) -> dict[str, Any]:
    """The ``series`` block results.record_revision reads, from an intake Series."""
    return {
        "subject": s.subject,
        "cover_subject": s.cover_subject,
        "author": s.author,
        "change_id": s.change_id,
        "revision": s.revision,
        "msgids": list(s.msgids),
        "base_commit": s.base_commit,
        "lore_url": s.lore_url,
        "patches": [{"index": p.index, "subject": p.subject, "msgid": p.msgid} for p in s.patches],
    }

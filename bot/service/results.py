"""Reports into the database: series, revision and patch rows from a report's `series`
block, and one `Run` (the full `check --json`) with a `CheckRow` per check and patch.

Used by the jobs (a finished check) and by `mmubot import REPORT.json` alike, so a
dashboard shows the same rows whichever way a report arrived.
"""

from __future__ import annotations

import contextlib
import json
import re
from collections.abc import Iterator
from datetime import datetime
from typing import Any, TypeVar

from sqlalchemy import Select, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from bot.publish.view import digest
from bot.store.models import CheckRow, Job, Patch, Revision, Run, Series, utcnow
from mmuci.errors import MmuCiError

_PREFIX_RE = re.compile(r"^\s*(\[[^\]]*\]\s*)+")  # "[PATCH v2 1/3] ", "[RFC PATCH] "
_EMAIL_RE = re.compile(r"<([^>]+)>")


class ReportError(MmuCiError):
    """A report that cannot be stored (not a `check --json` file)."""


def bare_subject(subject: str) -> str:
    """The subject without its bracketed prefixes: what stays the same across revisions."""
    return _PREFIX_RE.sub("", subject).strip()


def series_key(subject: str, author: str, change_id: str | None) -> str:
    """What ties the revisions of one series together: b4's change-id when the series has
    one, else the author's address with the bare subject (of the cover letter, else patch 1)."""
    if change_id:
        return f"change-id:{change_id}"
    m = _EMAIL_RE.search(author)
    who = (m.group(1) if m else author).strip().lower()
    return f"subject:{who}:{bare_subject(subject).lower()}"


T = TypeVar("T")


@contextlib.contextmanager
def _savepoint(s: Session) -> Iterator[None]:
    """A savepoint where the database keeps one inside the caller's transaction. pysqlite
    does not (its RELEASE would commit the caller's work, SQLAlchemy's pysqlite notes), and
    SQLite serialises writers anyway: there, a plain flush."""
    if s.get_bind().dialect.name == "sqlite":
        s.flush()
        yield
        s.flush()
        return
    with s.begin_nested():
        yield


def _insert_or_take(s: Session, row: T, winner: Select[T], *more: object) -> T:
    """Insert ``row`` (and ``more`` that hang on it); when another worker inserted the same
    unique key at this moment, the key decides and the loser takes the winner's row."""
    try:
        with _savepoint(s):
            s.add_all([row, *more])
    except IntegrityError:
        won = s.scalar(winner)
        if won is None:
            raise
        return won
    return row


def _new_series(
    s: Session, key: str, subject: str, author: str, list_name: str, change_id: str | None
) -> Series:
    """A new Series row; when another worker stores the same series at this moment, the
    unique key decides (in a savepoint) and the loser takes the winner's row."""
    row = Series(
        key=key, subject=bare_subject(subject), author=author, list_name=list_name,
        change_id=change_id,
    )  # fmt: skip
    return _insert_or_take(s, row, select(Series).where(Series.key == key))


def record_revision(
    s: Session, series: dict[str, Any], *, list_name: str, posted_at: datetime | None = None
) -> Revision:
    """The Revision row of a report's (or the watcher's) `series` block, made if new.

    Keys read: subject, cover_subject, author, change_id, revision, msgids (first: the
    cover letter or patch 1), base_commit, patches [{index, subject, msgid}]."""
    try:
        subject = series.get("cover_subject") or series["subject"]
        author = series["author"]
        first = series["msgids"][0]
        number = int(series.get("revision") or 1)
        patches = list(series.get("patches") or ())
    except (KeyError, IndexError, TypeError, ValueError) as e:
        raise ReportError(
            f"the series block lacks {e}: not a report that mmubot check --json FILE writes"
        ) from e
    rev = s.scalar(select(Revision).where(Revision.msgid == first))
    if rev is not None:
        return rev
    key = series_key(subject, author, series.get("change_id"))
    row = s.scalar(select(Series).where(Series.key == key)) or _new_series(
        s, key, subject, author, list_name, series.get("change_id")
    )
    if row.revisions:
        row.subject, row.updated_at = bare_subject(subject), utcnow()
        if any(r.revision == number for r in row.revisions):
            number = max(r.revision for r in row.revisions) + 1  # the same "v2" posted again
    rev = Revision(
        series=row,
        revision=number,
        msgid=first,
        subject=subject,
        n_patches=len(patches),
        base_commit=series.get("base_commit"),
        posted_at=posted_at,
    )
    more = [
        Patch(revision=rev, index=int(p["index"]), msgid=p["msgid"], subject=p["subject"])
        for p in patches
    ]
    # the same revision stored by another worker at this moment
    return _insert_or_take(s, rev, select(Revision).where(Revision.msgid == first), *more)


def _check_rows(report: dict[str, Any]) -> list[CheckRow]:
    rows = []
    parts = list(report.get("patches") or ())
    if report.get("whole_series"):
        parts.append({**report["whole_series"], "index": 0})
    for p in parts:
        for c in p.get("checks") or ():
            if c.get("verdict") == "skipped":
                continue
            rows.append(
                CheckRow(
                    patch_index=int(p.get("index") or 0),
                    check=c["name"],
                    verdict=c["verdict"],
                    states=int(c.get("states") or 0),
                    differing=int(c.get("differing") or 0),
                    seconds=(c.get("timings") or {}).get("run"),
                )
            )
    return rows


def store_report(
    s: Session, report: dict[str, Any], *, job: Job | None = None, list_name: str = ""
) -> Run:
    """Store one report (its `to_json()` form). A job has at most one Run: storing the
    result of a job again returns the row already there, unchanged."""
    if job is not None:
        s.flush()  # a new job gets its id
        done = s.scalar(select(Run).where(Run.job_id == job.id))
        if done is not None:
            return done
    if not isinstance(report, dict) or "series" not in report or "verdict" not in report:
        raise ReportError(
            "not a report that mmubot check --json FILE writes: it has no series and verdict"
        )
    rev = record_revision(s, report["series"], list_name=list_name)
    base = report.get("base") or {}
    run = Run(
        job_id=job.id if job is not None else None,
        revision_id=rev.id,
        verdict=str(report["verdict"]),
        exit_status=int(report.get("exit_status", 0)),
        reason=str(report.get("reason", "")),
        digest=digest(report),
        tree=base.get("tree"),
        base_commit=base.get("commit"),
        report=json.dumps(report, sort_keys=False),
        seconds=(report.get("timings") or {}).get("total"),
        checks=_check_rows(report),
    )
    s.add(run)
    s.flush()
    return run

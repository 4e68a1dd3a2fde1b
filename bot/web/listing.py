"""The series list, newest first: filters by verdict, author, tree and list, search by
subject or message-id, paging; with its /api/ twin. A row is a series with its newest
revision and that revision's newest run."""

from __future__ import annotations

import math
import urllib.parse
from dataclasses import asdict, dataclass, replace
from datetime import datetime
from typing import Any

from sqlalchemy import Select, func, or_, select
from sqlalchemy.orm import Session, aliased
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from bot.mbox import IntakeError, parse_ref
from bot.store.models import Patch, Revision, Run, Series
from bot.web.common import VERDICTS, PageError, answer, int_param, iso

NO_RUN = "none"  # the verdict filter for series whose newest revision has no run yet


@dataclass(frozen=True)
class Filters:
    verdict: str = ""
    author: str = ""
    tree: str = ""
    list_name: str = ""
    q: str = ""
    page: int = 1

    def link(self, **change: Any) -> str:
        """The list's URL with these filters, some changed (page 1 unless given)."""
        f = replace(self, **{"page": 1, **change})
        pairs = [
            (k, v)
            for k, v in (
                ("verdict", f.verdict),
                ("author", f.author),
                ("tree", f.tree),
                ("list", f.list_name),
                ("q", f.q),
                ("page", f.page if f.page > 1 else ""),
            )
            if v
        ]
        return "/series" + ("?" + urllib.parse.urlencode(pairs) if pairs else "")


@dataclass(frozen=True)
class SeriesRow:
    id: int
    subject: str
    author: str
    list_name: str
    revision: int
    msgid: str
    n_patches: int
    verdict: str | None  # the newest run's; None: not run yet
    tree: str | None
    run_id: int | None
    updated_at: datetime

    def to_json(self) -> dict[str, Any]:
        return {**asdict(self), "updated_at": iso(self.updated_at), "url": f"/series/{self.id}"}


@dataclass(frozen=True)
class SeriesList:
    rows: list[SeriesRow]
    total: int
    pages: int
    filters: Filters
    trees: list[str]
    lists: list[str]

    def to_json(self) -> dict[str, Any]:
        f = self.filters
        return {
            "series": [r.to_json() for r in self.rows],
            "total": self.total,
            "page": f.page,
            "pages": self.pages,
            "filters": {
                "verdict": f.verdict,
                "author": f.author,
                "tree": f.tree,
                "list": f.list_name,
                "q": f.q,
            },
        }


def _newest() -> tuple[Any, dict[str, Any], Select[Any]]:
    """(revision alias, the newest run's columns, statement): each series with its newest
    revision and that revision's newest run (none yet: NULLs). The run's id, verdict and
    tree are read from the index ix_runs_revision_newest alone (migration 0005_web), never
    from the runs table, whose rows hold the reports: most of the database."""
    rev = aliased(Revision)
    newest_rev = (
        select(Revision.id)
        .where(Revision.series_id == Series.id)
        .order_by(Revision.revision.desc())
        .limit(1)
        .correlate(Series)
        .scalar_subquery()
    )

    def newest_run(col: Any) -> Any:
        q = select(col).where(Run.revision_id == rev.id).order_by(Run.id.desc()).limit(1)
        return q.correlate(rev).scalar_subquery()

    run = {"run_id": newest_run(Run.id), "verdict": newest_run(Run.verdict),
           "tree": newest_run(Run.tree)}  # fmt: skip
    stmt = (
        select(
            Series.id,
            Series.subject,
            Series.author,
            Series.list_name,
            Series.updated_at,
            rev.revision,
            rev.msgid,
            rev.n_patches,
            *(c.label(k) for k, c in run.items()),
        )
        .select_from(Series)
        .join(rev, rev.id == newest_rev)
    )
    return rev, run, stmt


def _msgid_of(q: str) -> str | None:
    """The message-id a search is for (bare, <angle-bracketed>, or a lore URL), else None."""
    try:
        return parse_ref(q, "")[0] if "@" in q else None
    except IntakeError:
        return None


def filters_of(request: Request) -> Filters:
    p = request.query_params
    verdict = p.get("verdict", "")
    if verdict and verdict not in (*VERDICTS, NO_RUN):
        raise PageError(400, f"verdict={verdict[:40]!r}: one of {', '.join(VERDICTS)}, none")
    return Filters(
        verdict=verdict,
        author=p.get("author", "")[:200],
        tree=p.get("tree", "")[:200],
        list_name=p.get("list", "")[:200],
        q=p.get("q", "").strip()[:500],
        page=int_param(request, "page", 1),
    )


def series_list(s: Session, f: Filters, page_size: int) -> SeriesList:
    """One page of series, newest first, with the filters applied."""
    rev, run, stmt = _newest()
    on_run: list[Any] = []  # conditions on the newest run
    if f.verdict == NO_RUN:
        on_run.append(run["run_id"].is_(None))
    elif f.verdict:
        on_run.append(run["verdict"] == f.verdict)
    if f.tree:
        on_run.append(run["tree"] == f.tree)
    on_series: list[Any] = []
    if f.list_name:
        on_series.append(Series.list_name == f.list_name)
    if f.author:
        on_series.append(Series.author.icontains(f.author, autoescape=True))
    if f.q:
        msgid = _msgid_of(f.q)
        if msgid:
            by_rev = select(Revision.series_id).where(Revision.msgid == msgid)
            by_patch = select(Revision.series_id).join(Patch.revision).where(Patch.msgid == msgid)
            on_series.append(or_(Series.id.in_(by_rev), Series.id.in_(by_patch)))
        else:
            on_series.append(Series.subject.icontains(f.q, autoescape=True))
    stmt = stmt.where(*on_series, *on_run)
    if on_run:
        total = s.scalar(select(func.count()).select_from(stmt.subquery())) or 0
    else:  # a series always has a revision: count without finding the newest ones
        total = s.scalar(select(func.count()).select_from(Series).where(*on_series)) or 0
    pages = max(1, math.ceil(total / page_size))
    stmt = stmt.order_by(Series.updated_at.desc(), Series.id.desc())
    page = stmt.limit(page_size).offset((f.page - 1) * page_size)
    rows = [SeriesRow(**row._asdict()) for row in s.execute(page)]
    trees = [t for t in s.scalars(select(Run.tree).distinct().order_by(Run.tree)) if t]
    lists = [x for x in s.scalars(select(Series.list_name).distinct().order_by(Series.list_name))]
    return SeriesList(rows, total, pages, f, trees, [x for x in lists if x])


def list_handler(request: Request) -> Response:
    f = filters_of(request)
    with request.app.state.session() as s:
        data = series_list(s, f, request.app.state.page_size)
    return answer(request, "list.html", data, data.to_json())


def routes() -> list[Route]:
    return [Route("/series", list_handler), Route("/api/series", list_handler)]

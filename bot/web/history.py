"""The history page: verdicts per week, time from posting to verdict, states per second
(SVG plots made by bot/web/plots.py), with its /api/ twin holding the plotted data."""

from __future__ import annotations

import statistics
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from bot.store.models import CheckRow, Revision, Run, utcnow
from bot.web import plots
from bot.web.common import PageError, answer, int_param

PLOTS = ("verdicts", "latency", "speed")


def week_of(d: date) -> date:
    """The Monday of the ISO week ``d`` falls in."""
    return d - timedelta(days=d.weekday())


@dataclass(frozen=True)
class History:
    weeks: list[date]
    verdicts: dict[str, list[int]]  # verdict -> runs per week, aligned with weeks
    latency: list[tuple[date, float]]  # (day posted, median hours from posting to verdict)
    speed: dict[str, list[tuple[date, float]]]  # check -> (day, mean states per second)
    span: int  # weeks shown

    def to_json(self) -> dict[str, Any]:
        return {
            "weeks": [w.isoformat() for w in self.weeks],
            "verdicts_per_week": self.verdicts,
            "hours_to_verdict": [
                {"posted": d.isoformat(), "median_hours": h} for d, h in self.latency
            ],
            "states_per_second": {
                k: [{"day": d.isoformat(), "states_per_second": v} for d, v in pts]
                for k, pts in self.speed.items()
            },
            "span_weeks": self.span,
        }


def _day(v: Any) -> date:
    """A DATE() of the database: a string in SQLite, a date in PostgreSQL."""
    return v if isinstance(v, date) else date.fromisoformat(str(v)[:10])


def history(s: Session, span: int) -> History:
    """The plotted data of the last ``span`` weeks, aggregated by the database per day."""
    since = utcnow() - timedelta(weeks=span)
    day = func.date(Run.created_at)
    by_week: dict[date, dict[str, int]] = {}
    per_day = select(day, Run.verdict, func.count()).where(Run.created_at >= since)
    for d, verdict, n in s.execute(per_day.group_by(day, Run.verdict)):
        w = by_week.setdefault(week_of(_day(d)), {})
        w[verdict] = w.get(verdict, 0) + n
    weeks = sorted(by_week)
    if weeks:  # every week in between, also the empty ones
        weeks = [weeks[0] + timedelta(weeks=i) for i in range((weeks[-1] - weeks[0]).days // 7 + 1)]
    names = sorted({v for w in by_week.values() for v in w})
    verdicts = {v: [by_week.get(w, {}).get(v, 0) for w in weeks] for v in names}
    hours: dict[date, list[float]] = {}
    rows = s.execute(
        select(Run.created_at, Run.job_id, Revision.posted_at, Revision.received_at)
        .join(Revision, Revision.id == Run.revision_id)
        .where(Run.created_at >= since)
    )
    for created, job_id, posted, received in rows:
        # from the mail's Date:, else from when the watcher saw it; an imported report
        # has neither (its revision row is made when it is imported)
        start = posted or (received if job_id is not None else None)
        if start is not None and created >= start:
            hours.setdefault(start.date(), []).append((created - start).total_seconds() / 3600)
    latency = [(d, statistics.median(hs)) for d, hs in sorted(hours.items())]
    speed: dict[str, list[tuple[date, float]]] = {}
    rate = func.avg(CheckRow.states / CheckRow.seconds)
    checks = (
        select(CheckRow.check, day, rate)
        .join(Run, Run.id == CheckRow.run_id)
        .where(Run.created_at >= since, CheckRow.seconds > 0, CheckRow.states > 0)
        .group_by(CheckRow.check, day)
        .order_by(day)
    )
    for name, d, per_second in s.execute(checks):
        speed.setdefault(name, []).append((_day(d), float(per_second)))
    return History(weeks, verdicts, latency, speed, span)


def _span(request: Request) -> int:
    return int_param(request, "weeks", 26, 1, 520)


def history_handler(request: Request) -> Response:
    with request.app.state.session() as s:
        data = history(s, _span(request))
    return answer(request, "history.html", data, data.to_json())


def plot_handler(request: Request) -> Response:
    name = request.path_params["name"]
    if name not in PLOTS:
        raise PageError(404, f"no plot {name!r}: one of {', '.join(PLOTS)}")
    span = _span(request)
    cache = request.app.state.plots  # drawn plots by (name, weeks, newest run, runs)
    with request.app.state.session() as s:
        # the same runs, the same plot: drawn again only when a run was stored
        key = (name, span, *s.execute(select(func.max(Run.id), func.count(Run.id))).one())
        svg = cache.get(key)
        if svg is None:
            h = history(s, span)
    if svg is None:
        if name == "verdicts":
            svg = plots.verdicts_per_week(h.weeks, h.verdicts)
        elif name == "latency":
            svg = plots.hours_to_verdict(h.latency)
        else:
            svg = plots.states_per_second(h.speed)
        if len(cache) > 64:
            cache.clear()
        cache[key] = svg
    return Response(svg, media_type="image/svg+xml", headers={"Cache-Control": "max-age=60"})


def routes() -> list[Route]:
    return [
        Route("/history", history_handler),
        Route("/api/history", history_handler),
        Route("/history/{name:str}.svg", plot_handler),
    ]

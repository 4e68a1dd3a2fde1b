"""The history page: verdicts per week, time from posting to verdict, states per second
(SVG plots made by bot/web/plots.py), with its /api/ twin holding the plotted data."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from bot.store.models import CheckRow, Revision, Run, utcnow
from bot.web import plots
from bot.web.common import PageError, answer, int_param

PLOTS = ("verdicts", "latency", "speed")


def week_of(t: datetime) -> date:
    """The Monday of the ISO week ``t`` falls in."""
    d = t.date()
    return d - timedelta(days=d.weekday())


@dataclass(frozen=True)
class History:
    weeks: list[date]
    verdicts: dict[str, list[int]]  # verdict -> runs per week, aligned with weeks
    latency: list[tuple[date, float]]  # (posted, hours from posting to verdict)
    speed: dict[str, list[tuple[date, float]]]  # check -> (day, states per second)
    span: int  # weeks shown

    def to_json(self) -> dict[str, Any]:
        return {
            "weeks": [w.isoformat() for w in self.weeks],
            "verdicts_per_week": self.verdicts,
            "hours_to_verdict": [{"posted": d.isoformat(), "hours": h} for d, h in self.latency],
            "states_per_second": {
                k: [{"day": d.isoformat(), "states_per_second": v} for d, v in pts]
                for k, pts in self.speed.items()
            },
            "span_weeks": self.span,
        }


def history(s: Session, span: int) -> History:
    since = utcnow() - timedelta(weeks=span)
    rows = s.execute(
        select(Run.created_at, Run.verdict, Revision.posted_at, Revision.received_at)
        .join(Revision, Revision.id == Run.revision_id)
        .where(Run.created_at >= since)
        .order_by(Run.created_at)
    ).all()
    by_week: dict[date, dict[str, int]] = {}
    latency = []
    for created, verdict, posted, received in rows:
        by_week.setdefault(week_of(created), {}).setdefault(verdict, 0)
        by_week[week_of(created)][verdict] += 1
        start = posted or received
        if start is not None and created >= start:
            latency.append((start.date(), (created - start).total_seconds() / 3600))
    weeks = sorted(by_week)
    if weeks:  # every week in between, also the empty ones
        weeks = [weeks[0] + timedelta(weeks=i) for i in range((weeks[-1] - weeks[0]).days // 7 + 1)]
    names = sorted({v for w in by_week.values() for v in w})
    verdicts = {v: [by_week.get(w, {}).get(v, 0) for w in weeks] for v in names}
    speed: dict[str, list[tuple[date, float]]] = {}
    checks = s.execute(
        select(CheckRow.check, CheckRow.states, CheckRow.seconds, Run.created_at)
        .join(Run, Run.id == CheckRow.run_id)
        .where(Run.created_at >= since, CheckRow.seconds > 0, CheckRow.states > 0)
    )
    for name, states, seconds, created in checks:
        speed.setdefault(name, []).append((created.date(), states / seconds))
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
    with request.app.state.session() as s:
        h = history(s, _span(request))
    if name == "verdicts":
        svg = plots.verdicts_per_week(h.weeks, h.verdicts)
    elif name == "latency":
        svg = plots.hours_to_verdict(h.latency)
    else:
        svg = plots.states_per_second(h.speed)
    return Response(svg, media_type="image/svg+xml", headers={"Cache-Control": "max-age=60"})


def routes() -> list[Route]:
    return [
        Route("/history", history_handler),
        Route("/api/history", history_handler),
        Route("/history/{name:str}.svg", plot_handler),
    ]

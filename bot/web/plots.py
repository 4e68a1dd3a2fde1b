"""Server-made SVG plots (matplotlib, no browser-side drawing): verdicts per week, hours
from posting to verdict, states per second. Each takes plain data and returns SVG text."""

from __future__ import annotations

import io
import threading
from collections.abc import Mapping, Sequence
from datetime import date, timedelta
from typing import TYPE_CHECKING, Any

from checks.verdict import Verdict

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

_LOCK = threading.Lock()  # pyplot's state is global; one figure at a time


def _setup() -> Any:  # matplotlib.pyplot (untyped)
    import matplotlib

    matplotlib.use("Agg")
    matplotlib.rcParams.update(
        {
            "svg.fonttype": "none",  # text stays text: small, searchable
            "svg.hashsalt": "mmu-ci",  # the same data, the same SVG
            "font.size": 9,
            "axes.spines.top": False,
            "axes.spines.right": False,
        }
    )
    import matplotlib.pyplot as plt

    return plt


def _svg(fig: Figure) -> str:
    buf = io.StringIO()
    fig.savefig(buf, format="svg", bbox_inches="tight", metadata={"Date": None})
    return buf.getvalue()


def _dates(ax: Axes, days: Sequence[date]) -> None:
    """Date ticks over the data's own span (a few days either side)."""
    import matplotlib.dates as mdates

    lo, hi = min(days), max(days)
    pad = max(timedelta(days=3), (hi - lo) / 20)
    # dates pass matplotlib's unit converters; its stubs know only floats
    ax.set_xlim(lo - pad, hi + pad)  # type: ignore[arg-type]
    loc: Any = mdates.AutoDateLocator(maxticks=8)  # type: ignore[no-untyped-call]
    ax.xaxis.set_major_locator(loc)
    ax.xaxis.set_major_formatter(mdates.ConciseDateFormatter(loc))  # type: ignore[no-untyped-call]


def _empty(plt: Any, title: str) -> str:
    fig, ax = plt.subplots(figsize=(7, 2.2))
    ax.set_title(title)
    ax.text(0.5, 0.5, "no data yet", ha="center", va="center", transform=ax.transAxes)
    ax.set_axis_off()
    out = _svg(fig)
    plt.close(fig)
    return out


def verdicts_per_week(weeks: Sequence[date], counts: Mapping[str, Sequence[int]]) -> str:
    """Stacked bars: per week, how many runs ended in each verdict (worst at the bottom)."""
    title = "verdicts per week (runs)"
    with _LOCK:
        plt = _setup()
        if not weeks:
            return _empty(plt, title)
        fig, ax = plt.subplots(figsize=(7, 2.8))
        bottom = [0] * len(weeks)
        x = list(range(len(weeks)))
        for v in Verdict:
            ys = counts.get(str(v))
            if not ys or not any(ys):
                continue
            ax.bar(x, ys, bottom=bottom, label=str(v), color=v.colour.split()[-1], width=0.8)
            bottom = [b + y for b, y in zip(bottom, ys, strict=True)]
        ax.set_xticks(x, [w.strftime("%Y-%m-%d") for w in weeks], rotation=45, ha="right")
        ax.set_title(title)
        ax.set_ylabel("runs")
        from matplotlib.ticker import MaxNLocator

        ax.yaxis.set_major_locator(MaxNLocator(integer=True))
        ax.legend(fontsize=7, frameon=False, bbox_to_anchor=(1.0, 1.0), loc="upper left")
        out = _svg(fig)
        plt.close(fig)
        return out


def hours_to_verdict(points: Sequence[tuple[date, float]]) -> str:
    """Each run: the day it was posted and the hours until its verdict was stored."""
    title = "time from posting to verdict"
    with _LOCK:
        plt = _setup()
        if not points:
            return _empty(plt, title)
        fig, ax = plt.subplots(figsize=(7, 2.8))
        ax.plot([p[0] for p in points], [p[1] for p in points], "o", markersize=3, color="#336")
        ax.set_title(title)
        ax.set_ylabel("hours")
        ax.set_ylim(bottom=0)
        _dates(ax, [p[0] for p in points])
        out = _svg(fig)
        plt.close(fig)
        return out


def states_per_second(points: Mapping[str, Sequence[tuple[date, float]]]) -> str:
    """Per check: the states per second of each run of it, over time (log scale)."""
    title = "states per second, per check"
    with _LOCK:
        plt = _setup()
        if not any(points.values()):
            return _empty(plt, title)
        fig, ax = plt.subplots(figsize=(7, 2.8))
        for name, pts in sorted(points.items()):
            ax.plot([p[0] for p in pts], [p[1] for p in pts], "o", markersize=3, label=name)
        ax.set_yscale("log")
        ax.set_title(title)
        ax.set_ylabel("states / s")
        ax.legend(fontsize=7, frameon=False, bbox_to_anchor=(1.0, 1.0), loc="upper left")
        _dates(ax, [p[0] for pts in points.values() for p in pts])
        out = _svg(fig)
        plt.close(fig)
        return out

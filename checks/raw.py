"""The child -> engine protocol: what one sandbox child says about one comparison of a
chain over a range of states, as frozen dataclasses (JSON only on the wire).

The child builds a RawRun per pair and sends ``to_json()``; the engine reads it back with
``RawRun.from_json`` (a shape that does not fit raises ValueError: the child's result is
untrusted) and merges the parts of a range with ``merge``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field, replace
from typing import Any

# one state's full run in one build, as checks/trace.py reads it (status, events, before,
# after, used): shown to a reviewer, never compared
TraceJSON = dict[str, Any]


@dataclass(frozen=True)
class RawGroup:
    """States that differ in the same components (``what``: a STRICT_COMPONENTS mask),
    inside the invariants or not, under the same benign normalisation (-1: none)."""

    what: int
    inside: int
    benign: int
    inv_and: int  # the invariants every state of the group violates
    count: int
    first: int


@dataclass(frozen=True)
class Died:
    """A state whose child died (a fault the driver could not contain, a timeout)."""

    index: int
    failure: str
    message: str
    inv: int | None = None  # its invariant mask (None: unknown, counts as inside)


@dataclass(frozen=True)
class GaveUp:
    """States [lo, hi) the budget left unrun, and why."""

    lo: int
    hi: int
    why: str


@dataclass(frozen=True)
class StateTrace:
    """The full run of one state in both builds of a pair, for its example."""

    base: TraceJSON
    patched: TraceJSON
    inv: int


@dataclass(frozen=True)
class Crash:
    """The first state where the patched build faults and the baseline does not; how many."""

    first: int
    count: int


@dataclass(frozen=True)
class RawRun:
    """One comparison over states [lo, hi): what ran, what differed, what died."""

    lo: int
    hi: int
    ran: int
    groups: tuple[RawGroup, ...] = ()
    crash: Crash | None = None  # inside the invariants
    crash_outside: Crash | None = None  # only outside them
    base_faults: int = 0
    hangs: int = 0
    traces: Mapping[int, StateTrace] = field(default_factory=dict)
    died: tuple[Died, ...] = ()
    # the first state not run of each part that stopped (set where a part is made)
    stopped: tuple[int, ...] = ()
    gave_up: tuple[GaveUp, ...] = ()
    seconds: float = 0.0
    cpu: float = 0.0
    pruned: int = 0  # states the patched build did not run (checks/prune.py)

    def to_json(self) -> dict[str, Any]:
        d = asdict(self)
        d["traces"] = {str(k): asdict(v) for k, v in self.traces.items()}
        return d

    @staticmethod
    def from_json(d: Any) -> RawRun:
        """The RawRun of a child's JSON; ValueError when it does not have the shape."""
        try:
            run = RawRun(
                lo=int(d["lo"]),
                hi=int(d["hi"]),
                ran=int(d["ran"]),
                groups=tuple(RawGroup(**{k: int(v) for k, v in g.items()}) for g in d["groups"]),
                crash=_crash(d.get("crash")),
                crash_outside=_crash(d.get("crash_outside")),
                base_faults=int(d.get("base_faults", 0)),
                hangs=int(d.get("hangs", 0)),
                traces={
                    int(k): StateTrace(dict(t["base"]), dict(t["patched"]), int(t["inv"]))
                    for k, t in d.get("traces", {}).items()
                },
                died=tuple(Died(**x) for x in d.get("died", ())),
                stopped=tuple(int(x) for x in d.get("stopped", ())),
                gave_up=tuple(GaveUp(**x) for x in d.get("gave_up", ())),
                seconds=float(d.get("seconds", 0.0)),
                cpu=float(d.get("cpu", 0.0)),
                pruned=int(d.get("pruned", 0)),
            )
        except (KeyError, TypeError, AttributeError, ValueError) as e:
            raise ValueError(f"the check child's result has the wrong shape: {e!r}") from e
        if run.ran < run.hi - run.lo and not run.stopped:  # it stopped after hangs
            run = replace(run, stopped=(run.lo + run.ran,))
        return run


def _crash(d: Any) -> Crash | None:
    return None if d is None else Crash(int(d["first"]), int(d["count"]))


def gave_up(lo: int, hi: int, why: str) -> RawRun:
    """States [lo, hi) not run: counted as not run (stopped), with the reason."""
    return RawRun(lo, hi, 0, stopped=(lo,), gave_up=(GaveUp(lo, hi, why),))


def unnarrowed(lo: int, hi: int, failure: str, message: str, why: str, where: str = "") -> RawRun:
    """A child over [lo, hi) died or timed out and the budget allows no bisection: a death
    reported at the range's first state, saying it is not narrowed down. ``where``: what
    the child ran, when it is more than [lo, hi) (checks/engine.py: _run_spans)."""
    where = where or f"states #{lo}..#{hi - 1}"
    msg = (
        f"{message}, in a child over {where} (not narrowed down: {why}; "
        f"the culprit may be any of them)"
    )
    return replace(gave_up(lo, hi, why), died=(Died(lo, failure, msg),))


def _first(a: Crash | None, b: Crash | None) -> Crash | None:
    if a is None or b is None:
        return a or b
    return Crash(min(a.first, b.first), a.count + b.count)


def merge(parts: Sequence[RawRun]) -> RawRun:
    """One RawRun of the parts of a range (children, bisection halves)."""
    groups: dict[tuple[int, int, int, int], RawGroup] = {}
    traces: dict[int, StateTrace] = {}
    stopped: list[int] = []
    crash = crash_outside = None
    for p in parts:
        stopped += p.stopped
        traces.update(p.traces)
        crash, crash_outside = _first(crash, p.crash), _first(crash_outside, p.crash_outside)
        for g in p.groups:
            key = (g.what, g.inside, g.benign, g.inv_and)
            m = groups.get(key)
            groups[key] = g if m is None else replace(
                m, count=m.count + g.count, first=min(m.first, g.first)
            )  # fmt: skip
    return RawRun(
        lo=min((p.lo for p in parts), default=0),
        hi=max((p.hi for p in parts), default=0),
        ran=sum(p.ran for p in parts),
        groups=tuple(groups.values()),
        crash=crash,
        crash_outside=crash_outside,
        base_faults=sum(p.base_faults for p in parts),
        hangs=sum(p.hangs for p in parts),
        traces=traces,
        died=_cat(p.died for p in parts),
        stopped=tuple(stopped),
        gave_up=_cat(p.gave_up for p in parts),
        seconds=max((p.seconds for p in parts), default=0.0),
        cpu=sum(p.cpu for p in parts),
        pruned=sum(p.pruned for p in parts),
    )


def _cat(items: Iterable[tuple[Any, ...]]) -> tuple[Any, ...]:
    out: list[Any] = []
    for t in items:
        out += t
    return tuple(out)

"""From the merged RawRun of one comparison to its CheckResult: group the differences,
name the invariants an outside group needs broken, and render each group's smallest
state as an example."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import replace
from typing import Any

from checks import trace
from checks.raw import RawGroup, RawRun
from checks.result import CheckResult, DiffGroup, Example, verdict_for
from checks.space import STRICT_COMPONENTS, Check
from checks.verdict import Verdict


def _what(mask: int) -> tuple[str, ...]:
    return tuple(c for i, c in enumerate(STRICT_COMPONENTS) if mask >> i & 1)


def _example(chk: Check, ex: Any, idx: int, raw: RawRun) -> Example:
    tr = raw.traces.get(idx)
    state = chk.decode(idx)
    if tr is None:
        d = next((d for d in raw.died if d.index == idx), None)
        lines = [f"*** the child process died in this state: {d.message if d else ''} ***"]
        inv = chk.invariant_names((d.inv if d else None) or 0)
        return Example(state, lines, lines, index=idx, invariants_violated=inv)
    labels = trace.labels(ex)
    return Example(
        state=state,
        baseline=trace.render(chk, tr.base, labels, tr.patched, ex),
        patched=trace.render(chk, tr.patched, labels, tr.base, ex),
        index=idx,
        invariants_violated=chk.invariant_names(tr.inv),
    )


def _needed(chk: Check, subs: Sequence[RawGroup]) -> tuple[tuple[str, ...], bool]:
    """The invariants an outside group needs broken, and whether any one of them suffices.

    All the invariants every state of the group violates; when they share none, a small
    cover (greedy by states): every state violates at least one of them.
    """
    shared = ~0
    for g in subs:
        shared &= g.inv_and
    if shared:
        return chk.invariant_names(shared), False
    left = [(g.inv_and, g.count) for g in subs]
    chosen = 0
    while left:
        weight: dict[int, int] = {}
        for mask, count in left:
            for i in range(len(chk.invariants)):
                if mask >> i & 1:
                    weight[i] = weight.get(i, 0) + count
        if not weight:
            break
        best = max(weight, key=lambda i: (weight[i], -i))
        chosen |= 1 << best
        left = [(m, c) for m, c in left if not m >> best & 1]
    return chk.invariant_names(chosen), True


def _fold_outside(groups: list[DiffGroup]) -> list[DiffGroup]:
    """An outside group that differs in what an inside group differs in is the same finding:
    count it on the inside group rather than list it again."""
    inside = {(g.what, g.benign): g for g in groups if g.inside_invariants}
    out = []
    for g in groups:
        twin = inside.get((g.what, g.benign)) if not g.inside_invariants else None
        if twin is None:
            out.append(g)
        else:
            inside[(g.what, g.benign)] = replace(twin, also_outside=g.count)
    return [inside.get((g.what, g.benign), g) if g.inside_invariants else g for g in out]


def result_from_raw(
    chk: Check, base: Any, patched: Any, raw: RawRun, states: int,
    timings: Mapping[str, float],
) -> CheckResult:  # fmt: skip
    """Turn the merged child output into a CheckResult."""
    merged: dict[tuple[int, int, int], list[RawGroup]] = {}
    for g in raw.groups:  # the children split outside groups by the invariants violated
        merged.setdefault((g.what, g.inside, g.benign), []).append(g)
    groups = []
    for (what, inside, benign), subs in merged.items():
        first = min(g.first for g in subs)
        needed, any_one = _needed(chk, subs) if not inside else ((), False)
        groups.append(
            DiffGroup(
                what=_what(what),
                count=sum(g.count for g in subs),
                inside_invariants=bool(inside),
                invariants_needed=needed,
                needs_any=any_one,
                benign=chk.normalisations[benign].name if benign >= 0 else None,
                example=_example(chk, patched, first, raw),
            )
        )
    groups = _fold_outside(groups)
    groups.sort(key=lambda g: (not g.inside_invariants, g.benign is not None, g.example.index))
    # crashes inside the invariants (a died state whose mask is unknown counts as inside)
    # and only outside them: the example is the first inside, else the first outside
    inside_at = [d.index for d in raw.died if d.inv in (0, None)]
    outside_at = [d.index for d in raw.died if d.inv not in (0, None)]
    crash_inside, crash_outside = len(inside_at), len(outside_at)
    if raw.crash:
        inside_at.append(raw.crash.first)
        crash_inside += raw.crash.count
    if raw.crash_outside:
        outside_at.append(raw.crash_outside.first)
        crash_outside += raw.crash_outside.count
    crash = None
    if inside_at or outside_at:
        crash = _example(chk, patched, min(inside_at or outside_at), raw)
    real = [g for g in groups if g.benign is None]
    error = None
    if raw.stopped:
        error = (
            f"{raw.hangs} states hung; the run stopped before state "
            f"#{min(raw.stopped)}, {states - raw.ran} states not run"
        )
    return CheckResult(
        name=chk.name,
        # a run stopped by hangs left states unrun: its crash ranks as a reachable one
        verdict=Verdict(verdict_for(groups, crash is not None, bool(crash_inside or raw.stopped))),
        states=raw.ran,
        error=error,
        differing_inside=sum(g.count for g in real if g.inside_invariants),
        differing_outside=sum(g.also_outside if g.inside_invariants else g.count for g in real),
        groups=tuple(groups),
        crash=crash,
        crash_inside=crash_inside,
        crash_outside=crash_outside,
        timings=dict(timings),
        invariants={i.name: i.statement for i in chk.invariants},
    )


def gave_up_error(res: CheckResult, raw: RawRun) -> CheckResult:
    """Say which states the run's budget left unrun, and why (instead of 'hung'). A finding
    stands; but states that did not run are never `same`: that is ours (internal-error)."""
    if not raw.gave_up:
        return res
    not_run = sum(g.hi - g.lo for g in raw.gave_up)
    first = min(g.lo for g in raw.gave_up)
    error = f"{not_run:,} states not run from state #{first} on: {raw.gave_up[0].why}"
    verdict = Verdict.INTERNAL_ERROR if res.verdict == Verdict.SAME else res.verdict
    return replace(res, verdict=verdict, error=error if not res.error else f"{error}; {res.error}")

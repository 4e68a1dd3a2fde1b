"""The result model of a differential check: plain frozen dataclasses the bot consumes."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from checks.verdict import Verdict, worst

SAME_CODE = "same code"  # `pruning` of a pair whose two builds run the same machine code


@dataclass(frozen=True)
class Example:
    """The smallest differing (or crashing) state with both rendered traces."""

    state: dict[str, Any]  # abstract state, human-readable
    baseline: list[str]  # rendered trace: calls, then final fields
    patched: list[str]
    index: int = -1  # the state's index in the check's enumeration
    invariants_violated: tuple[str, ...] = ()


@dataclass(frozen=True)
class DiffGroup:
    """Differing states that differ in the same observables."""

    what: tuple[str, ...]  # which observables differ, e.g. ("locks", "root_count")
    count: int
    inside_invariants: bool
    # outside-only groups: invariants whose violation all its states share; when they share
    # none, a small set of which each state violates at least one (needs_any)
    invariants_needed: tuple[str, ...]
    benign: str | None  # the normalisation under which it vanishes, else None
    example: Example
    needs_any: bool = False
    also_outside: int = 0  # inside groups: states outside the invariants that differ alike


@dataclass(frozen=True)
class CheckResult:
    """One check between one baseline and one patched build."""

    name: str
    verdict: Verdict  # same | differs | differs-outside-invariants | crash | build-error | skipped
    states: int
    differing_inside: int
    differing_outside: int
    groups: tuple[DiffGroup, ...]
    crash: Example | None = None  # the first crash inside the invariants, else outside
    skipped: str | None = None
    error: str | None = None
    timings: dict[str, float] = field(default_factory=dict)
    invariants: dict[str, str] = field(default_factory=dict)  # name -> one-line statement
    crash_inside: int = 0  # states where only the patched build faults or hangs, inside
    crash_outside: int = 0  # ... and only outside the invariants
    # dimensions run at one value only (checks/plan.py): "name = label only: why"; and the
    # states their first value stands for (not run: states + stood_for = the whole space)
    fixed_dims: tuple[str, ...] = ()
    stood_for: int = 0
    # checks/prune.py: states the patched build did not run (its baseline's run of them
    # reached no changed statement, or the two builds are the same machine code)
    pruned: int = 0
    pruning: str = ""  # "on", SAME_CODE or "off: why" (checks/prune.py); "" for none

    def __post_init__(self) -> None:
        # every verdict is a word of the one vocabulary (a plain string is converted)
        object.__setattr__(self, "verdict", Verdict(self.verdict))

    @property
    def differing(self) -> int:
        """All differing states, inside and outside the invariants."""
        return self.differing_inside + self.differing_outside

    @property
    def benign(self) -> tuple[Benign, ...]:
        """The named normalisations under which differences vanished, with their states."""
        states: dict[str, int] = {}
        for g in self.groups:
            if g.benign:
                states[g.benign] = states.get(g.benign, 0) + g.count + g.also_outside
        return tuple(Benign(self.name, n, k) for n, k in states.items())


@dataclass(frozen=True)
class Benign:
    """Differences of one check that vanish under a named normalisation."""

    check: str
    normalisation: str
    states: int

    def to_json(self) -> dict[str, Any]:
        return {"check": self.check, "normalisation": self.normalisation, "states": self.states}


def worst_verdict(verdicts: list[str]) -> Verdict:
    """The overall verdict of several checks (`same` when there is none)."""
    return worst(verdicts)


def verdict_for(
    groups: tuple[DiffGroup, ...] | list[DiffGroup], crashed: bool, crash_inside: bool = True
) -> str:
    """The verdict of one check from its groups.

    A group that vanishes under a named normalisation is benign: it is reported, but
    alone it leaves the verdict `same`. A crash inside the invariants is `crash`; one
    only outside them ranks with `differs-outside-invariants` and never hides a
    reachable `differs`.
    """
    if crashed and crash_inside:
        return "crash"
    real = [g for g in groups if g.benign is None]
    if any(g.inside_invariants for g in real):
        return "differs"
    if real or crashed:
        return "differs-outside-invariants"
    return "same"

"""What the executor (checks/engine.py) runs: a typed plan that bot/ builds.

A `Comparison` is one check between a baseline and a patched extraction; a `Chain` is
one check over several revisions, each run once over every state, with the pairs to
compare (a Comparison is a chain of two). `states_to_run` decides, over every revision
of a chain, which trailing dimensions cannot change behaviour and so run at their first
value only.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from checks.space import Check
from checks.world import _names as identifiers  # what the driver writes the world into


@dataclass(frozen=True)
class Comparison:
    """One check between two extractions."""

    check: Check
    before: Any  # mmucore.extract.Extraction
    after: Any
    prune: bool = True  # checks/prune.py
    universe: tuple[Any, ...] = ()  # the series the two are in (default: the two)
    twins: bool = True  # see Chain

    def chain(self) -> Chain:
        return Chain(
            self.check, (self.before, self.after), ((0, 1),), self.prune, self.universe,
            self.twins,
        )  # fmt: skip


@dataclass(frozen=True)
class Chain:
    """One check over ``revisions``; ``pairs`` (baseline index, patched index) compared."""

    check: Check
    revisions: tuple[Any, ...]
    pairs: tuple[tuple[int, int], ...]
    # run a later revision only on the states that can differ in it (checks/prune.py)
    prune: bool = True
    # every revision of the series, in order, each built with probes for all later ones,
    # so a revision's module is the same in every chain it is in (default: ``revisions``)
    universe: tuple[Any, ...] = ()
    # a revision whose module would be exactly an earlier one's runs that one, unbuilt
    # (checks/prune.py: twin_of), pruned or not; False builds each (the tests' reference)
    twins: bool = True


@dataclass(frozen=True)
class FixedDim:
    """A dimension run at one value only, and why that cannot hide a difference."""

    name: str
    label: str
    why: str

    def __str__(self) -> str:
        return f"{self.name} = {self.label} only: {self.why}"


def states_to_run(chk: Check, revisions: tuple[Any, ...]) -> tuple[int, tuple[FixedDim, ...]]:
    """(states [0, n) to run, the dimensions fixed at their first value).

    A trailing dimension whose identifiers (``Dim.reads``) no revision names is never
    written into any revision's code by the driver (checks/world.py tests the same
    names), so each of its values runs the same code on the same world: its first value
    stands for all. Trailing only, so a state keeps its index (the first dimension varies
    fastest) and every build of the chain the one state encoding. Decided over every
    revision at once: one revision naming it makes every revision run all its values."""
    names: set[str] = set()
    for ex in revisions:
        names |= identifiers(ex)
    n, fixed = chk.size, []
    for d in reversed(chk.dims):
        if not d.reads or names.intersection(d.reads):
            break
        n //= len(d.labels)
        why = f"no revision of the run names {', '.join(d.reads)}, the only way it reaches the code"
        fixed.append(FixedDim(d.name, d.labels[0], why))
    return n, tuple(reversed(fixed))

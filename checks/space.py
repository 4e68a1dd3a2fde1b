"""What every check declares: dimensions, invariants, normalisations, observables.

A check is a module in `checks/` with a module-level ``CHECK = Check(...)``; it is
registered by being there (see `all_checks`). The abstract state of a check is a
mixed-radix number over its dimensions: the first dimension varies fastest and value 0
of every dimension is its simplest value, so a low state index is a small example.
"""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from mmucore.extract import Extraction


@dataclass(frozen=True)
class Dim:
    """One dimension of the abstract state: its values as a reviewer reads them.

    ``world`` is the variable of the modelled MMU world it sets (see checks/world.py)
    and ``codes`` the world value of each label (defaults to the label's position).
    ``why`` says, in one line, which values real KVM can hold there at entry and why
    the labels cover them (or why what they leave out cannot hide a difference).
    ``reads``: the kernel identifiers through which alone the dimension reaches the code
    (the driver writes its world variable only into them); a trailing dimension that no
    revision of a run names is run at its first value only (checks/plan.py).
    """

    name: str
    labels: tuple[str, ...]
    world: str
    codes: tuple[int, ...] = ()
    why: str = ""
    reads: tuple[str, ...] = ()

    def code(self, digit: int) -> int:
        return self.codes[digit] if self.codes else digit


@dataclass(frozen=True)
class Invariant:
    """A fact real KVM keeps (a reachable state satisfies it); ``c`` is true when it holds."""

    name: str
    statement: str
    c: str  # C expression over the world `w` (struct drv_world *) and DRV_* feature macros


@dataclass(frozen=True)
class Normalisation:
    """A named comparison mode: components compared through their normalised variant."""

    name: str
    replaces: tuple[tuple[str, str], ...]  # (strict component, normalised component)


# Observables folded into named component digests; a difference is grouped by these.
EVENT_COMPONENTS = ("locks", "zap", "tdp_put_root", "warn", "bad_page", "calls", "event order")
FIELD_COMPONENTS = ("root", "prev_roots", "pae_root", "root_count", "role.invalid", "freed")
STRICT_COMPONENTS = (*EVENT_COMPONENTS, *FIELD_COMPONENTS, "return", "fault")
ALT_COMPONENTS = ("root~", "prev_roots~")
COMPONENTS = (*STRICT_COMPONENTS, *ALT_COMPONENTS)

IGNORE_INVALID_PGD = Normalisation(
    "ignore the pgd of an invalid slot",
    (("root", "root~"), ("prev_roots", "prev_roots~")),
)


@dataclass(frozen=True)
class Check:
    """The declaration of one check."""

    name: str
    entry: tuple[str, ...]  # the kernel functions it calls
    dims: tuple[Dim, ...]
    invariants: tuple[Invariant, ...]
    call: Callable[[Extraction], str]  # C statements calling the entry (sets drv_ret)
    # why the check does not apply to an extraction (a function it needs is missing), or None
    skip_reason: Callable[[Extraction], str | None]
    normalisations: tuple[Normalisation, ...] = (IGNORE_INVALID_PGD,)
    fixed: dict[str, int] = field(default_factory=dict)  # world variables not in dims
    description: str = ""
    # extraction -> the function its call enters, where that depends on the API generation:
    # a baseline and a patched revision entered at different functions are not compared
    entered: Callable[[Extraction], str] | None = None

    def entry_mismatch(self, base: Extraction, patched: Extraction) -> str | None:
        """Why two revisions cannot be compared by this check's call, or None."""
        if self.entered is None:
            return None
        a, b = self.entered(base), self.entered(patched)
        if a == b:
            return None
        return (
            f"the baseline is entered at {a}, the patched revision at {b}: the check "
            "compares one function's behaviour, not two functions'"
        )

    @property
    def size(self) -> int:
        """The number of abstract states."""
        n = 1
        for d in self.dims:
            n *= len(d.labels)
        return n

    def decode(self, index: int) -> dict[str, str]:
        """State index -> {dimension: label}, human-readable."""
        out: dict[str, str] = {}
        for d in self.dims:
            index, digit = divmod(index, len(d.labels))
            out[d.name] = d.labels[digit]
        return out

    def invariant_names(self, mask: int) -> tuple[str, ...]:
        """The names of the invariants whose bits are set in ``mask``."""
        return tuple(inv.name for i, inv in enumerate(self.invariants) if mask >> i & 1)


def needs_functions(extraction: Extraction, names: Sequence[str]) -> str | None:
    """The skip reason when the tree lacks one of ``names``, else None."""
    for n in names:
        if n not in extraction.functions:
            why = extraction.missing.get(n, "not found in the tree")
            return f"{n} is not in this tree ({why})"
    return None


def all_checks(names: Sequence[str] | None = None) -> list[Check]:
    """Every module in checks/ that declares CHECK, in name order (or those named)."""
    import checks

    found = {}
    for info in pkgutil.iter_modules(checks.__path__):
        mod = importlib.import_module(f"checks.{info.name}")
        chk = getattr(mod, "CHECK", None)
        if isinstance(chk, Check):
            found[chk.name] = chk
    if names is None:
        return [found[n] for n in sorted(found)]
    unknown = [n for n in names if n not in found]
    if unknown:
        from mmuci.errors import MmuCiError

        raise MmuCiError(
            f"unknown check {', '.join(unknown)}; known checks: {', '.join(sorted(found))}"
        )
    return [found[n] for n in names]

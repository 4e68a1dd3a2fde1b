"""Sound pruning: a later revision runs only the states that can behave differently in it.

Every revision of a chain's *universe* (the series: the chain's revisions by default) is
built with probes (mmucore/probes.py) for each later revision of the universe, one bit
per revision. The first revision the child runs runs every state; each later one runs a
state only when the run that produced that state's whole-state word (the nearest earlier
revision that ran it) hit the later revision's bit, and otherwise takes that word and
status as they are (checks/c/runner_check.c: ``run_pruned``). Why that is sound: the earlier run
reached no statement the later revision changes, both builds are the same code up to
such a statement, and the run is a deterministic function of the state; so the later
run is the same run. It needs the change to be confined to function bodies, so a pair
with a changed macro, type, global, feature, entry point or function head is refused
(the later revision runs every state for it); a fault, a hang or a changed recorder
sets every bit. The probe word is kept in the recorder's ledger and its log (both in
mappings of their own, the page of their pointers read-only, checks/recorder.py): a patch
that writes one of them by address is a changed recorder, which sets every bit.

A revision whose module is the same machine code as the one the child ran just before it
(`same_code`: the revision's own code compiles to the same bytes, mmucore/samecode.py, and
the shared part and the drivers are the same text) runs only the states that faulted or
hung before (the bit ``probes.FAULTED``, which only such a run sets): every other state
runs the same code from the same state, so it ends the same. That needs no probe at all,
so it also holds where a changed declaration puts a probe at a function's entry.

A revision whose module would be exactly an earlier one's (the same code and the same
sites' lines: `ModuleCode.exact`) is not built at all (`twin_of`, `Spec.alias`): it runs
the earlier module, whose probes stand for its later revisions as they do for the
earlier one's, and the rows of its differing states name the same sites and lines.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from checks.result import SAME_CODE
from mmucore import probes

if TYPE_CHECKING:
    from checks.plan import Chain
    from mmucore.extract import Extraction

ALL = (1 << 64) - 1
_probed: dict[tuple[str, tuple[str, ...]], probes.Probed] = {}
_drivers: dict[str, str] = {}
MEMO_MAX = 4096  # entries a memo keeps before it starts again
_valid: dict[str, bool] = {}  # Extraction.key -> whether its code passes validation
_codes: dict[tuple[str, tuple[str, ...], str], ModuleCode] = {}  # module_code's memo


@dataclass(frozen=True)
class Spec:
    """How a chain runs pruned: what each live revision is built from and its bits."""

    extractions: dict[int, Any]  # plan index -> the Extraction to build (probed or not)
    bits: dict[int, int] = field(default_factory=dict)  # plan index -> its own bit
    always: dict[int, int] = field(default_factory=dict)  # bits its probes cannot stand for
    refused: dict[tuple[int, int], str] = field(default_factory=dict)  # (i, j) -> why
    off: str = ""  # why nothing is pruned; '' when pruning is on
    # plan index -> its module's code class: equal nonzero classes, the same machine code
    same: dict[int, int] = field(default_factory=dict)

    def payload(self, order: Sequence[int]) -> dict[str, list[int]] | None:
        """The child's ``prune`` entry for the builds of ``order`` (None: no pruning)."""
        if self.off:
            return None
        return {
            "bits": [self.bits[k] for k in order],
            "always": [self.always[k] for k in order],
            "same": [self.same.get(k, 0) for k in order],
        }

    def same_code(self, i: int, j: int) -> bool:
        """Revisions ``i`` and ``j`` run the same machine code."""
        return bool(self.same.get(i)) and self.same.get(i) == self.same.get(j)

    def alias(self, k: int, twin: int) -> None:
        """Revision ``k`` runs the module of ``twin``, an earlier revision whose code
        compiles the same: its probes (placed for each later revision against ``twin``'s
        text) stand for k's later revisions as they do for twin's, k running as twin does;
        what twin's probes cannot stand for, k's cannot either."""
        self.extractions[k] = self.extractions[twin]
        if k in self.always:  # pruned
            self.always[k] |= self.always[twin]

    def unprobed(self, k: int, ex: Any) -> None:
        """Revision ``k`` is built without probes: its runs stand for no later revision."""
        self.extractions[k] = ex
        self.always[k] = ALL

    def text(self, i: int, j: int, pruned: int, states: int) -> str:
        """The `pruning` of pair (i, j): 'on' or 'off: why' (the report's line says more)."""
        if self.off:
            return f"off: {self.off}"
        if self.same_code(i, j):
            return SAME_CODE
        why = self.refused.get((i, j))
        if why and not pruned:
            return f"off: {why}"
        return "on"


def select(prune: dict[str, list[int]] | None, idx: Sequence[int]) -> dict[str, list[int]] | None:
    """The ``prune`` entry for a sub-chain of the builds (indices into the builds' list)."""
    if prune is None:
        return None
    return {k: [v[i] for i in idx] for k, v in prune.items()}


def probed(ex: Extraction, universe: Sequence[Extraction]) -> probes.Probed:
    """``ex`` built with a probe bit for every revision after it in ``universe``
    (memoised per process: the prebuild and the chain ask for the same)."""
    keys = tuple(u.key for u in universe)
    at = keys.index(ex.key)
    memo = (ex.key, keys)
    if memo not in _probed:
        later = [(1 << v, universe[v]) for v in range(at + 1, len(universe))]
        got = probes.probe(ex, later)
        for bit, new in later:  # the driver's glue is made from the tree too
            if bit not in got.refused and _driver_source(ex) != _driver_source(new):
                got.refused[bit] = "the driver's glue for the two revisions differs"
        _probed[memo] = got
    return _probed[memo]


def _driver_source(ex: Extraction) -> str:
    from checks import driver

    if ex.key not in _drivers:
        _drivers[ex.key] = driver.module_source(driver.module_checks(ex), ex)
    return _drivers[ex.key]


@dataclass(frozen=True)
class ModuleCode:
    """What a revision's module runs, as digests ('' when unknown: never equal)."""

    runs: str  # the same machine code: every state runs the same (the sites' lines aside)
    exact: str  # and the same sites' lines: an explanation from one holds for the other


def twin_of(
    chk: Any, plan: Chain, spec: Spec, k: int, codes: dict[int, ModuleCode], cache_dir: Path
) -> int | None:
    """An earlier built revision (a key of ``codes``) whose module is exactly what
    revision ``k``'s would be, so k need not be built: it runs the twin's module, and the
    rows of its differing states read the same sites; None when the plan builds each
    revision (``twins`` false) or there is none. Pruned or not: the twin's module runs
    every state k runs as k's own would."""
    if not plan.twins:
        return None
    exact = module_code(chk, plan.revisions[k], spec.extractions[k], cache_dir).exact
    return next((t for t, code in codes.items() if exact and code.exact == exact), None)


def code_classes(spec: Spec, codes: dict[int, ModuleCode]) -> None:
    """Fill ``spec.same``: each built revision's class of modules that run the same
    machine code (revisions whose code could not be told apart stay out, class 0)."""
    if spec.off:
        return
    ids: dict[str, int] = {}
    for k in sorted(codes):
        if codes[k].runs:
            spec.same[k] = ids.setdefault(codes[k].runs, len(ids) + 1)


def module_code(chk: Any, ex: Extraction, built: Extraction, cache_dir: Path) -> ModuleCode:
    """What the module of ``ex`` (built from ``built``: ``ex`` with probes, which record
    and change nothing else) runs: the image of the revision's own code
    (mmucore/samecode.py), the shared part's text and the driver it was built with; ''
    when there is no image (its code is refused as a build would refuse it, does not
    compile alone, or its object is unreadable). The code is validated before gcc sees it,
    as a build does: a revision a build refuses never runs another module as its own.
    Memoised per process (a chain asks before and after each build)."""
    from checks import driver, engine
    from mmucore import validate
    from mmucore.build import failed_before
    from mmucore.jail import JailUnavailable

    none = ModuleCode("", "")
    if len(_codes) > MEMO_MAX or len(_valid) > MEMO_MAX:  # a long-lived worker's memos
        _codes.clear()
        _valid.clear()
    if ex.key not in _valid:  # the same TU text (its key) is refused or not alike
        try:
            validate.check_translation_unit(ex)
            _valid[ex.key] = True
        except validate.RefusedInput:
            _valid[ex.key] = False
        except JailUnavailable:  # not remembered: ours, and the build reports it
            return none
    if not _valid[ex.key]:
        return none

    together = driver.module_checks(ex)
    checks = [chk]  # as engine.build_one chooses: one module for every check, unless it failed
    if len(together) > 1 and chk.name in {c.name for c in together}:
        if not failed_before(built, engine._driver(together, built), cache_dir=cache_dir):
            checks = together
    memo = (ex.key, tuple(c.name for c in checks), str(cache_dir))
    if memo not in _codes:
        _codes[memo] = _module_code(ex, engine._driver(checks, ex), cache_dir)
    return _codes[memo]


def _module_code(ex: Extraction, drv: Any, cache_dir: Path) -> ModuleCode:
    import hashlib

    from mmucore import build_base, samecode
    from mmucore.build import CFLAGS
    from mmucore.jail import JailUnavailable

    none = ModuleCode("", "")
    try:
        src = build_base.sources(ex.tu, [p.text for p in ex.pieces], drv.shared, drv.source)
    except ValueError:
        return none
    try:
        img = samecode.image(src.revision, CFLAGS, cache_dir=cache_dir)
    except (JailUnavailable, OSError):  # no image: nothing taken as the same; the builds say
        return none
    if img is None:
        return none

    def digest(image: str) -> str:
        h = hashlib.sha256()
        for part in (image, src.shared, drv.cdef, drv.name):
            h.update(part.encode() + b"\0")
        return h.hexdigest()

    return ModuleCode(digest(img.digest), digest(img.exact))


def universe_of(plan: Chain) -> tuple[Any, ...]:
    """The plan's universe when it holds each of its revisions, else its revisions."""
    uni = tuple(plan.universe) or plan.revisions
    keys = {u.key for u in uni}
    return uni if all(r.key in keys for r in plan.revisions) else plan.revisions


def prepare(plan: Chain, live: Sequence[int]) -> Spec:
    """The builds and bits of a chain's live revisions (plan indices)."""
    spec = Spec({k: plan.revisions[k] for k in live})
    if not plan.prune:
        return Spec(spec.extractions, off="not asked for (every state runs in every revision)")
    uni = universe_of(plan)
    at = [[u.key for u in uni].index(plan.revisions[k].key) for k in sorted(live)]
    if at != sorted(at) or len(set(at)) != len(at):  # probes stand only for later revisions
        uni = plan.revisions
    if len(uni) > probes.MAX_REVISIONS:
        return Spec(spec.extractions, off=f"more than {probes.MAX_REVISIONS} revisions")
    pos = {u.key: n for n, u in enumerate(uni)}
    for k in live:
        p = probed(plan.revisions[k], uni)
        spec.extractions[k] = p.extraction
        spec.bits[k] = 1 << pos[plan.revisions[k].key]
        spec.always[k] = sum(p.refused)
    for i in live:
        pi = pos[plan.revisions[i].key]
        for j in live:
            if pos[plan.revisions[j].key] <= pi:
                continue
            why = probed(plan.revisions[i], uni).refused.get(spec.bits[j])
            if why:
                spec.refused[(i, j)] = why
    return spec


class ChildRun:
    """In the sandbox child: the pruned run of one chunk over the revisions ``used``."""

    def __init__(self, mods: Sequence[Any], used: Sequence[int], check: str, chunk: int,
                 nc: int, prune: dict[str, list[int]]) -> None:  # fmt: skip
        from checks.driver import entry

        self.mods, self.used, self.nc = mods, list(used), nc
        self.bits = [int(b) for b in prune["bits"]]
        self.always = [int(b) for b in prune["always"]]
        self.same = [int(c) for c in prune.get("same") or [0] * len(self.bits)]
        ffi0 = mods[0].ffi
        self.probes = ffi0.new("uint64_t[]", chunk)
        self._ones = b"\xff" * (8 * chunk)
        buf = ffi0.buffer(self.probes)
        self.view = {k: mods[k].ffi.from_buffer("uint64_t[]", buf) for k in used}
        self.ran = {k: mods[k].ffi.new("uint64_t *") for k in used}
        self.run = {k: entry(mods[k].lib, check, "run_pruned") for k in used}
        self.skipped = dict.fromkeys(used, 0)
        self.prev: int | None = None

    def start(self, n: int) -> None:
        """A new chunk of ``n`` states: every state runs in the first revision."""
        self.mods[0].ffi.memmove(self.probes, self._ones[: 8 * n], 8 * n)
        self.prev = None

    def revision(self, k: int, start: int, end: int, dig: Any, st: Any) -> int:
        """Run revision ``k`` over [start, end); the states it covers (as run_range)."""
        m, n = self.mods[k], end - start
        if self.prev is not None:
            pm = self.mods[self.prev]
            m.ffi.memmove(dig[k], pm.ffi.buffer(dig[self.prev], 8 * n * self.nc), 8 * n * self.nc)
            m.ffi.memmove(st[k], pm.ffi.buffer(st[self.prev], n), n)
        bit = self.bits[k]
        if self.prev is not None and self.same[k] and self.same[k] == self.same[self.prev]:
            bit = probes.FAULTED  # the same code: only what faulted or hung runs again
        got = int(
            self.run[k](start, end, dig[k], st[k], self.view[k], bit, self.always[k], self.ran[k])
        )
        self.skipped[k] += got - int(self.ran[k][0])
        self.prev = k
        return got

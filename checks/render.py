"""Render check results as a kernel reviewer reads them, and as JSON.

Events are written as the calls they stand for (`write_lock(&kvm->mmu_lock)`,
`kvm_mmu_prepare_zap_page(sp#2)`), fields as the kernel spells them (`mmu->root.hpa`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict
from typing import Any

from checks.result import SAME_CODE, Benign, CheckResult, DiffGroup, Example
from checks.space import Check
from checks.verdict import Verdict, exit_status, worst
from mmucore import shim_api
from mmucore.textsafe import printable

# Read from mmucore/shim/mmu_shim.h: enum mmu_shim_event_kind (index = kind), and the page
# model: page i has pfn PFN_BASE + i; the zero page is the dummy root.
_SHIM = shim_api.constants()
EVENT_KINDS = _SHIM.event_kinds
LOCK_NAMES = {
    _SHIM.defines["MMU_SHIM_LOCK_MMU"]: "&kvm->mmu_lock",
    _SHIM.defines["MMU_SHIM_LOCK_TDP_PAGES"]: "&kvm->arch.tdp_mmu_pages_lock",
}
PFN_BASE = _SHIM.defines["MMU_SHIM_PFN_BASE"]
ZERO_PFN = _SHIM.defines["MMU_SHIM_ZERO_PFN"]
NR_PAGES = _SHIM.defines["MMU_SHIM_NR_PAGES"]
INVALID_PAGE = (1 << 64) - 1
_LOCKDEP_MODE = {
    1: "lockdep_assert_held_read",
    2: "lockdep_assert_held_write",
    3: "lockdep_assert_held",
}


def page_name(idx: int, names: dict[int, str] | None = None) -> str:
    """A modelled page by its index, with the check's name for it when it has one."""
    if names and idx in names:
        return names[idx]
    return f"sp#{idx}"


def hpa_name(hpa: int, names: dict[int, str] | None = None) -> str:
    """An hpa as a reviewer reads it: INVALID_PAGE, the page it points at, plus flag bits."""
    if hpa == INVALID_PAGE:
        return "INVALID_PAGE"
    if hpa == 0:
        return "0"
    pfn, low = hpa >> 12, hpa & 0xFFF
    if pfn == ZERO_PFN:
        base = "dummy root (zero page)"
    elif PFN_BASE <= pfn < PFN_BASE + NR_PAGES:
        base = f"__pa({page_name(pfn - PFN_BASE, names)})"
    else:
        return hex(hpa)
    return base if not low else f"{base} | {low:#x}"


def _site(ev: dict[str, Any]) -> str:
    if not ev.get("file"):
        return ""
    file = ev["file"].rsplit("/", 1)[-1]
    return f" at {file}:{ev.get('line', 0)}"


def render_event(ev: dict[str, Any], names: dict[int, str] | None = None) -> str:
    """One shim event as the kernel call it stands for.

    ``ev`` has ``kind`` (a name from EVENT_KINDS), ``a``, ``b`` and, for WARN/BUG/lockdep
    events, ``file``, ``line``, ``func``, ``cond``.
    """
    k, a, b = ev["kind"], ev.get("a", 0), ev.get("b", 0)
    lock = LOCK_NAMES.get(a, f"lock#{a}")
    if k in ("READ_LOCK", "READ_UNLOCK", "WRITE_LOCK", "WRITE_UNLOCK", "SPIN_LOCK", "SPIN_UNLOCK"):
        return f"{k.lower()}({lock})"
    if k == "LOCKDEP_FAIL":
        return f"{_LOCKDEP_MODE.get(b, 'lockdep_assert_held')}({lock}) fails{_site(ev)}"
    if k == "LOCK_MISUSE":
        what = {1: "taken while already held", 2: "unlock of a lock not held"}.get(b, f"misuse {b}")
        return f"{what}: {lock}"
    if k in ("WARN", "BUG"):
        macro = ev.get("macro") or ("WARN_ON" if k == "WARN" else "BUG_ON")
        return f"{macro}({ev.get('cond') or '?'}){_site(ev)}"
    if k == "PREPARE_ZAP":
        return f"kvm_mmu_prepare_zap_page({page_name(a, names)})"
    if k == "COMMIT_ZAP":
        return f"kvm_mmu_commit_zap_page(&invalid_list) [{a} on the list]"
    if k == "ZAP_FREE":
        return f"  frees {page_name(a, names)}"
    if k == "TDP_PUT_ROOT":
        shared = "" if b == -1 else f", {'true' if b else 'false'}"
        return f"kvm_tdp_mmu_put_root(kvm, {page_name(a, names)}{shared})"
    if k == "TDP_ROOT_FREED":
        return f"  {page_name(a, names)}: tdp_mmu_root_count reaches 0, root freed"
    if k == "REQUEST":
        return f"kvm_make_request({ev.get('name') or a}, vcpu)"
    if k == "FLUSH_REMOTE_TLBS":
        return "kvm_flush_remote_tlbs(kvm)"
    if k == "CLEAR_MMIO_INFO":
        return f"vcpu_clear_mmio_info(vcpu, {'MMIO_GVA_ANY' if a == -1 else hex(a)})"
    if k == "BAD_PAGE":
        return f"pfn_to_page({a:#x}): no page behind it, reads garbage"
    if k == "STUB" and a == _SHIM.defines["MMU_SHIM_STUB_ATOMIC_SET"]:
        sp, value = b >> 32, b & 0xFFFFFFFF  # sp -1: no shadow page holds the counter
        where = f"sp#{sp}->write_flooding_count" if sp >= 0 else "a counter of no sp"
        return f"atomic_set(&{where}, {value})"
    if k == "STUB":
        return f"stub #{a}"
    if k == "OVERFLOW":
        return "... (event log full)"
    if k == "FAULT":
        return f"*** fault: signal {a} ***"
    if k == "HANG":
        return "*** hang: CPU time limit reached ***"
    return f"{k}({a}, {b})"


def _example_lines(ex: Example, indent: str = "    ") -> list[str]:
    out = [f"{indent}state #{ex.index}:"]
    out += [f"{indent}  {k} = {v}" for k, v in ex.state.items()]
    if ex.invariants_violated:
        out.append(f"{indent}  (outside invariants: {', '.join(ex.invariants_violated)})")
    for label, trace in (("baseline", ex.baseline), ("patched", ex.patched)):
        out.append(f"{indent}{label}:")
        out += [f"{indent}  {line}" for line in trace] or [f"{indent}  (nothing)"]
    return out


def group_summary(g: DiffGroup, invariants: dict[str, str]) -> list[str]:
    """What one group of differences is, as the mail and the dashboard say it: what
    differs, in how many states, inside or outside the invariants (and which ones it needs
    broken), the benign normalisation under which it vanishes."""
    where = "inside the invariants" if g.inside_invariants else "only outside the invariants"
    head = f"  - {', '.join(g.what)} differ: {g.count:,} states, {where}"
    if g.also_outside:
        head += f" (and {g.also_outside:,} more outside them)"
    out = [head]
    if g.benign:
        out.append(f"    benign: vanishes under the normalisation '{g.benign}'")
    if g.invariants_needed:
        joined = (" or " if g.needs_any else " and ").join(g.invariants_needed)
        out.append(f"    needs {joined} broken:")
        out += [f"      {n}: {invariants.get(n, '')}".rstrip() for n in g.invariants_needed]
    return out


def _group_lines(g: DiffGroup, invariants: dict[str, str]) -> list[str]:
    return group_summary(g, invariants) + _example_lines(g.example)


def crash_summary(r: CheckResult) -> str:
    """Where the patched code crashes, in one line (inside the invariants or only outside)."""
    return _crash_head(r).strip().rstrip(":")


def _crash_head(r: CheckResult) -> str:
    """Where the patched code crashes: inside the invariants (reachable) or only outside."""
    if r.crash_outside and not r.crash_inside and r.crash is not None:
        broken = ", ".join(r.crash.invariants_violated) or "?"
        return (
            f"  crashes only outside the invariants ({broken} broken): "
            f"{r.crash_outside:,} states; the first:"
        )
    head = "  first state that faults or hangs"
    if r.crash_inside:
        head += f" ({r.crash_inside:,} inside the invariants"
        head += f", {r.crash_outside:,} only outside them)" if r.crash_outside else ")"
    return head + ":"


def benign_text(b: Benign, where: str | None = None) -> str:
    """'ignore the pgd of an invalid slot — 71,280 states (free_roots)'; ``where`` replaces
    the check's name in the parentheses ('' for none)."""
    label = b.check if where is None else where
    return f"{b.normalisation} — {b.states:,} states" + (f" ({label})" if label else "")


def verdict_text(verdict: str, benign: Sequence[Benign], where: Sequence[str] = ()) -> str:
    """A verdict as it is shown everywhere, with the benign normalisations it needed:
    'same, up to: ignore the pgd of an invalid slot — 71,280 states (free_roots)'.
    ``where`` labels each benign entry (default: its check)."""
    if not benign:
        return str(verdict)
    labels: list[str | None] = list(where) or [None] * len(benign)
    items = "; ".join(benign_text(b, w) for b, w in zip(benign, labels, strict=True))
    if verdict == Verdict.SAME:
        return f"{verdict}, up to: {items}"
    return f"{verdict} (and benign: {items})"


def render_result(r: CheckResult) -> str:
    """One check as plain text for a mail."""
    lines = [f"{r.name}: {verdict_text(r.verdict, r.benign, [''] * len(r.benign))}"]
    if r.skipped:
        lines.append(f"  skipped: {r.skipped}")
    if r.error:
        lines.append(f"  error: {r.error}")
    if r.states:
        lines.append(
            f"  {r.states:,} states; differing: {r.differing_inside:,} inside the invariants, "
            f"{r.differing_outside:,} outside them"
        )
    if line := pruning_line(r):
        lines.append(f"  {line}")
    if r.crash:
        lines.append(_crash_head(r))
        lines += _example_lines(r.crash)
    for g in r.groups:
        lines += _group_lines(g, r.invariants)
    return printable("\n".join(lines))  # WARN conditions, names: patch text


def pruning_line(r: CheckResult) -> str:
    """`pruned: N of M states ...` or `not pruned: why` ('' when the result says neither)."""
    if r.pruning == "on":
        return (
            f"pruned: {r.pruned:,} of {r.states:,} states not run in the patched build "
            "(their baseline run reached no statement the patch changes)"
        )
    if r.pruning == SAME_CODE:
        return (
            f"pruned: {r.pruned:,} of {r.states:,} states not run in the patched build "
            "(it compiles to the same machine code as the baseline: every state runs the same)"
        )
    if r.pruning.startswith("off: "):
        return f"not pruned: {r.pruning[5:]}"
    return ""


def render_space(chk: Check) -> str:
    """A check's state space as a reviewer audits it: each dimension, its values and why
    they cover what real KVM holds there at entry, then the invariants."""
    lines = [f"{chk.name}: {chk.size:,} states"]
    for d in chk.dims:
        lines.append(f"  {d.name} ({len(d.labels)}): {'; '.join(d.labels)}")
        if d.why:
            lines.append(f"    why: {d.why}")
    lines += [f"  {i.name}: {i.statement}" for i in chk.invariants]
    return "\n".join(lines)


def results_verdict(results: Sequence[CheckResult], not_covered: Sequence[str] = ()) -> Verdict:
    """The verdict of several checks, `not-covered` when worse and some changed code is."""
    return worst([*(r.verdict for r in results), *([Verdict.NOT_COVERED] if not_covered else [])])


def render_results(
    results: Sequence[CheckResult],
    base: str = "",
    patched: str = "",
    not_covered: Sequence[str] = (),
) -> str:
    """Every check, what no check covered (``not_covered``: one line each), then the
    overall verdict with the benign normalisations it needed."""
    head = []
    if base or patched:
        head.append(f"baseline {base[:12]}  vs  patched {patched[:12]}")
    body = [render_result(r) for r in results]
    if not_covered:
        body.append("\n".join(["not covered: changed code no check that ran executes", *(
            f"  - {line}" for line in not_covered)]))  # fmt: skip
    verdict = results_verdict(results, not_covered)
    benign = [b for r in results for b in r.benign]
    return printable(
        "\n\n".join(head + body + [f"verdict: {verdict_text(verdict, benign)}"]) + "\n"
    )


def result_to_json(r: CheckResult) -> dict[str, Any]:
    """One check as a JSON-ready dict (keys `name`, `verdict`, `states`, `differing`,
    `benign`: [{check, normalisation, states}], ...)."""
    d = asdict(r)
    d["differing"] = r.differing
    d["benign"] = [b.to_json() for b in r.benign]
    return d


def _example_from_json(d: dict[str, Any]) -> Example:
    return Example(
        state=dict(d.get("state") or {}),
        baseline=[str(x) for x in d.get("baseline") or ()],
        patched=[str(x) for x in d.get("patched") or ()],
        index=int(d.get("index", -1)),
        invariants_violated=tuple(d.get("invariants_violated") or ()),
    )


def result_from_json(d: dict[str, Any]) -> CheckResult:
    """The inverse of `result_to_json`: a stored report's check back as a CheckResult, so
    a saved report is explained by the same functions as a fresh one."""
    crash = d.get("crash")
    return CheckResult(
        name=str(d["name"]),
        verdict=Verdict(d["verdict"]),
        states=int(d.get("states") or 0),
        differing_inside=int(d.get("differing_inside") or 0),
        differing_outside=int(d.get("differing_outside") or 0),
        groups=tuple(
            DiffGroup(
                what=tuple(g.get("what") or ()),
                count=int(g.get("count") or 0),
                inside_invariants=bool(g.get("inside_invariants")),
                invariants_needed=tuple(g.get("invariants_needed") or ()),
                benign=g.get("benign"),
                example=_example_from_json(g.get("example") or {}),
                needs_any=bool(g.get("needs_any")),
                also_outside=int(g.get("also_outside") or 0),
            )
            for g in d.get("groups") or ()
        ),
        crash=_example_from_json(crash) if crash else None,
        skipped=d.get("skipped"),
        error=d.get("error"),
        timings=dict(d.get("timings") or {}),
        invariants=dict(d.get("invariants") or {}),
        crash_inside=int(d.get("crash_inside") or 0),
        crash_outside=int(d.get("crash_outside") or 0),
        fixed_dims=tuple(d.get("fixed_dims") or ()),
        stood_for=int(d.get("stood_for") or 0),
        pruned=int(d.get("pruned") or 0),
        pruning=str(d.get("pruning") or ""),
    )


def to_json(
    results: Sequence[CheckResult],
    base: str,
    patched: str,
    timings: dict[str, float],
    not_covered: Sequence[dict[str, Any]] = (),
) -> dict[str, Any]:
    """The `mmubot diff --json` document: `base`, `patched`, `checks`, `verdict`, `benign`,
    `not_covered`, `exit_status`, `timings`."""
    verdicts = [r.verdict for r in results] + ([Verdict.NOT_COVERED] if not_covered else [])
    return {
        "base": base,
        "patched": patched,
        "checks": [result_to_json(r) for r in results],
        "verdict": results_verdict(results, [str(u) for u in not_covered]),
        "benign": [b.to_json() for r in results for b in r.benign],
        "not_covered": list(not_covered),
        "exit_status": exit_status(verdicts),
        "timings": timings,
    }

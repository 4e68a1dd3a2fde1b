"""A full trace of one state, rendered as a reviewer reads it: calls, then final fields."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

from checks import world
from checks.render import INVALID_PAGE, hpa_name, render_event
from checks.space import Check

if TYPE_CHECKING:
    from mmucore.extract import Extraction

_MACRO = re.compile(r"\b(WARN_ON_ONCE|WARN_ON|WARN_ONCE|WARN|KVM_BUG_ON|BUG_ON)\s*\(")
_STATUS = {1: "*** fault: the code under test faulted (SIGSEGV/SIGBUS) ***",
           2: "*** hang: the code under test ran out of its CPU time ***",
           3: "*** crash: the recorder's state was changed by the code under test ***"}  # fmt: skip


def labels(ex: Extraction) -> list[tuple[str, str]]:
    """(component, label) per observed field of this extraction."""
    return world.field_labels(ex)


def _macro_at(ex: Extraction, file: str, line: int) -> str | None:
    """The WARN/BUG macro written at file:line, read from the extracted pieces."""
    for p in ex.pieces:
        if not file.endswith(p.file):
            continue
        off = line - p.line
        lines = p.text.splitlines()
        if 0 <= off < len(lines):
            m = _MACRO.search(lines[off])
            if m:
                return m.group(1)
    return None


_ARCH_REQ = re.compile(r"#define\s+(KVM_REQ_\w+)\s+KVM_ARCH_REQ(?:_FLAGS)?\(\s*(\d+)")
_BASE = re.compile(r"#define\s+KVM_REQUEST_ARCH_BASE\s+(\d+)")


def request_names(ex: Extraction) -> dict[int, str]:
    """KVM_REQ_* number (the low byte kvm_make_request uses) -> name, from the tree's own
    macros, for the requests defined as KVM_ARCH_REQ(n)."""
    macros = [p.text for p in getattr(ex, "pieces", ()) if p.kind == "macro"]
    base = next((int(m.group(1)) for t in macros if (m := _BASE.search(t))), None)
    if base is None:
        return {}
    return {int(m.group(2)) + base: m.group(1) for t in macros if (m := _ARCH_REQ.search(t))}


def _value(label: str, v: int) -> str:
    if label.endswith(("hpa", "]")) and "pae_root[" not in label:
        return hpa_name(v, world.PAGE_NAMES)
    if "pae_root[" in label:
        return hpa_name(v, world.PAGE_NAMES) if v else "0 (INVALID_PAE_ROOT)"
    if label == "mmu->pae_root":
        return "NULL" if v == 0 else world.PAGE_NAMES.get(v - 1, f"page {v - 1}")
    if label.endswith("pgd"):
        return "INVALID_PAGE" if v == INVALID_PAGE else hex(v)
    if label.endswith("freed"):
        return {0: "no", 1: "freed by kvm_mmu_commit_zap_page", 2: "TDP root freed"}.get(v, str(v))
    if v >= 1 << 63:
        v -= 1 << 64
    return str(v)


def render(
    chk: Check,
    tr: dict[str, Any],
    lbls: list[tuple[str, str]],
    other: dict[str, Any],
    ex: Extraction,
) -> list[str]:
    """Calls in order, the status, then the fields the call changed (or that differ from
    ``other``, marked with "!")."""
    out = []
    reqs = request_names(ex) if any(e["kind"] == "REQUEST" for e in tr["events"]) else {}
    for ev in tr["events"]:
        if ev.get("file") and ev["kind"] in ("WARN", "BUG"):
            ev = dict(ev, macro=_macro_at(ex, ev["file"], ev.get("line", 0)))
        if ev["kind"] == "REQUEST" and (ev.get("a", 0) & 0xFF) in reqs:
            ev = dict(ev, name=reqs[ev["a"] & 0xFF])
        out.append(render_event(ev, world.PAGE_NAMES))
    if not tr["events"]:
        out.append("(no calls: returns before taking any lock)")
    if tr["status"]:
        out.append(_STATUS.get(tr["status"], f"*** status {tr['status']} ***"))
    used = set(tr["used"]) | set(other.get("used", ()))
    for i, (comp, label) in enumerate(lbls):
        before, after = tr["before"][i], tr["after"][i]
        differs = i < len(other["after"]) and other["after"][i] != after
        if comp == "return":
            if chk.name != "pgd_switch":
                continue
        elif before == after and not differs:
            continue  # the state itself is listed above; show what the call changed
        if label.startswith("sp#") and int(label[3:].split()[0]) not in used:
            continue
        text = f"{label} = {_value(label, after)}"
        if before != after:
            text += f"  (was {_value(label, before)})"
        out.append(("!" if differs else " ") + " " + text)
    return out

"""API generations as data: facts detected from a tree's code, never from its version.

Each row names a feature, the kind of fact and its arguments; `detect` evaluates the
rows against what the extractor indexed. Adding a generation is adding a row.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass

from mmucore import cparse


@dataclass(frozen=True)
class Fact:
    feature: str
    kind: str  # "has_field" | "defines" | "first_param" | "param_count" | "calls" | "macro_lacks"
    args: tuple[str, ...]
    why: str


FACTS: tuple[Fact, ...] = (
    Fact("root_info_struct", "has_field", ("struct kvm_mmu", "root"), "mmu->root.hpa (5.18+)"),
    Fact("root_role", "has_field", ("struct kvm_mmu", "root_role"), "root_role/cpu_role (5.19+)"),
    Fact("level_fields", "has_field", ("struct kvm_mmu", "shadow_root_level"), "level fields"),
    Fact("root_to_sp", "defines", ("root_to_sp",), "root_to_sp() (6.6+)"),
    Fact("dummy_root", "defines", ("kvm_mmu_is_dummy_root",), "dummy root (6.6+)"),
    Fact(
        "free_roots_takes_kvm",
        "first_param",
        ("kvm_mmu_free_roots", "struct kvm *"),
        "kvm_mmu_free_roots(struct kvm *, ...) (5.18+)",
    ),
    Fact(
        "tdp_put_root_shared_arg",
        "param_count",
        ("kvm_tdp_mmu_put_root", "3"),
        "kvm_tdp_mmu_put_root(kvm, root, shared) (<= 6.8)",
    ),
    Fact(
        "tdp_read_lock_free",
        "calls",
        ("kvm_mmu_free_roots", "read_lock"),
        "TDP roots freed under read_lock (6.9+)",
    ),
    Fact(
        "roots_all_bounded",
        "macro_lacks",
        ("KVM_MMU_ROOTS_ALL", "~0"),
        "KVM_MMU_ROOTS_ALL is exactly the root bits (6.4+)",
    ),
    Fact(
        "cached_root_find",
        "defines",
        ("cached_root_find_and_keep_current",),
        "cached_root_find_* (5.18+)",
    ),
    Fact(
        "pgd_switch_takes_mmu",
        "param_count",
        ("fast_pgd_switch", "4"),
        "fast_pgd_switch(kvm, mmu, pgd, role): the lookup frees the evicted root (5.18+)",
    ),
    Fact(
        "new_pgd_caller",
        "param_count",
        ("__kvm_mmu_new_pgd", "3"),
        "__kvm_mmu_new_pgd(vcpu, pgd, role): frees the evicted root, requests on a hit (<= 5.17)",
    ),
)


@dataclass(frozen=True)
class TreeFacts:
    """What the indexed tree says, in the shapes the facts need."""

    fields: Mapping[str, tuple[str, ...]]  # "struct kvm_mmu" -> all field names (unpruned)
    definitions: Mapping[str, cparse.Definition]  # functions and macros by name
    prototypes: Mapping[str, tuple[str, ...]]  # function -> parameter type texts


def _first_param(t: TreeFacts, fn: str, want: str) -> bool:
    params = t.prototypes.get(fn) or ()
    return bool(params) and params[0].replace(" ", "") == want.replace(" ", "")


def _calls(t: TreeFacts, fn: str, callee: str) -> bool:
    d = t.definitions.get(fn)
    if d is None or d.node is None:
        return False
    return callee in cparse.uses_of_node(d.node).calls


def _macro_lacks(t: TreeFacts, name: str, text: str) -> bool:
    d = t.definitions.get(name)
    return d is not None and d.kind == "macro" and text not in d.text.replace(" ", "")


_CHECKS: Mapping[str, Callable[..., bool]] = {
    "has_field": lambda t, s, f: f in t.fields.get(s, ()),
    "defines": lambda t, n: n in t.definitions,
    "first_param": _first_param,
    "param_count": lambda t, fn, n: len(t.prototypes.get(fn, ())) == int(n),
    "calls": _calls,
    "macro_lacks": _macro_lacks,
}


def detect(facts: TreeFacts) -> frozenset[str]:
    """The features whose fact holds for this tree."""
    return frozenset(f.feature for f in FACTS if _CHECKS[f.kind](facts, *f.args))

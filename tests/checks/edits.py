"""Our own edits of the prepared trees, made by code, each with the verdict it must get
and why. Anchors are short; the kernel text itself is read from the trees at run time."""

from __future__ import annotations

import re
from dataclasses import dataclass

from mmukit.transforms import (
    Transformation,
    chain,
    function_span,
    regex_once,
    rename,
    replace_once,
    within_function,
)

MMU = "arch/x86/kvm/mmu/mmu.c"


@dataclass(frozen=True)
class Case:
    tree: str  # "6.1" or "6.12"
    check: str
    t: Transformation
    verdict: str
    why: str
    what: tuple[str, ...] = ()  # a group whose `what` includes these must exist
    # differs-outside-invariants: each group needs one of these, and each of them is named
    needs: tuple[str, ...] = ()


def _t(name: str, func: str, edit) -> Transformation:
    return Transformation(name, MMU, within_function(func, edit), f"KVM: x86/mmu: {name}")


def _pae_loop_helper(text: str) -> str:
    """Move the PAE loop of kvm_mmu_free_roots into a static helper (its own text)."""
    start, end = function_span(text, "kvm_mmu_free_roots")
    body = text[start:end]
    m = re.search(r"\n(\t+)for \(i = 0; i < 4; \+\+i\) \{\n.*?\n\1\}", body, re.S)
    assert m, "PAE loop not found"
    indent = m.group(1)
    loop = "\n".join(
        line[len(indent) - 1 :] if line.startswith(indent) else line
        for line in m.group(0).strip("\n").splitlines()
    ).replace("&invalid_list", "invalid_list")
    helper = (
        "static void mmu_free_pae_roots(struct kvm *kvm, struct kvm_mmu *mmu,\n"
        "\t\t\t       struct list_head *invalid_list)\n{\n\tint i;\n\n"
        f"{loop}\n}}\n\n"
    )
    call = f"\n{indent}mmu_free_pae_roots(kvm, mmu, &invalid_list);"
    body = body[: m.start()] + call + body[m.end() :]
    return text[:start] + helper + body + text[end:]


FREE = "kvm_mmu_free_roots"
PAGE = "mmu_free_root_page"

BEHAVIOUR = [
    Case("6.1", "free_roots", _t("zap-valid-roots", PAGE, replace_once(" && sp->role.invalid", "")),
         "differs", "a valid sp whose last root reference goes is zapped", ("zap",)),
    Case("6.12", "free_roots",
         _t("keep-pae-entries", FREE,
            regex_once(r"\n\t+mmu->pae_root\[i\] = INVALID_PAE_ROOT;", "")),
         "differs", "freed PAE entries keep pointing at their sps", ("pae_root",)),
    Case("6.1", "free_roots",
         _t("one-prev-root-too-few", FREE, regex_once(
             r"(i < KVM_MMU_NUM_PREV_ROOTS)(; i\+\+\)\n\t+if \(roots_to_free)", r"\1 - 1\2")),
         "differs", "prev_roots[2] is never freed though roots_to_free selects it",
         ("prev_roots",)),
    Case("6.12", "free_roots",
         _t("shadow-read-lock", FREE, replace_once("\twrite_lock(", "\tread_lock(")),
         "differs", "the shadow MMU path takes mmu_lock for read", ("locks",)),
    Case("6.1", "free_roots",
         _t("commit-after-unlock", FREE, regex_once(
             r"(\tkvm_mmu_commit_zap_page\(kvm, &invalid_list\);\n)(\twrite_unlock\([^)]*\);\n)",
             r"\2\1")),
         "differs", "the zap is committed after mmu_lock is dropped: same calls, new order",
         ("event order",)),
    Case("6.12", "free_roots",
         _t("tdp-lock-ignores-direct", FREE, replace_once(" && mmu->root_role.direct;", ";")),
         "differs", "a shadow MMU (nested NPT) with tdp_mmu_enabled takes the read lock",
         ("locks",)),
    Case("6.12", "obsolete_roots",
         _t("obsolete-ignores-spless", "is_obsolete_root",
            replace_once("return !sp ||", "return sp &&")),
         "differs", "a PAE root (no sp) is no longer treated as obsolete, so it is not freed",
         ("root",)),
    Case("6.12", "guest_mode_roots",
         _t("guest-mode-ignored", "kvm_mmu_free_guest_mode_roots",
            regex_once(r"!sp \|\| sp->role\.guest_mode", "!sp")),
         "differs", "cached L2 roots (role.guest_mode) are no longer freed", ("prev_roots",)),
    Case("6.12", "pgd_switch",
         _t("lru-rotation", "cached_root_find_and_keep_current",
            replace_once("prev_roots[i]);", "prev_roots[2 - i]);")),
         "differs", "the cache rotates from the LRU end: other roots hit and are evicted",
         ("prev_roots",)),
    Case("6.1", "pgd_switch",
         _t("usable-ignores-role", "is_root_usable",
            regex_once(r"role\.word == (to_shadow_page\(root->hpa\))->role\.word", r"\1")),
         "differs", "a cached root with another role is reused", ("return",)),
    Case("6.12", "pgd_switch",
         _t("keep-last-cached-root", "cached_root_find_without_current",
            regex_once(r"\n\tmmu->prev_roots\[i\]\.hpa = INVALID_PAGE;", "")),
         "differs", "after a hit the last slot still holds a root that is now also current",
         ("prev_roots",)),
]  # fmt: skip

REFACTORS = [
    Case("6.1", "free_roots", _t("rename-local", FREE, rename("free_active_root", "free_current")),
         "same", "renaming a local variable"),
    Case("6.12", "free_roots",
         Transformation("pae-loop-helper", MMU, _pae_loop_helper, "KVM: x86/mmu: helper"),
         "same", "the PAE loop moved into a static helper"),
    Case("6.12", "pgd_switch",
         _t("bubble-up-while", "cached_root_find_without_current", regex_once(
             r"for \(; (i < KVM_MMU_NUM_PREV_ROOTS - 1); i\+\+\)\n(\t+)(.*;)\n",
             r"while (\1) {\n\2\3\n\2i++;\n\t}\n")),
         "same", "a for loop rewritten as a while loop"),
    Case("6.12", "free_roots",
         _t("reorder-root-reset", FREE, regex_once(
             r"(\t+)(mmu->root\.hpa = INVALID_PAGE;)\n\t+(mmu->root\.pgd = 0;)\n",
             r"\1\3\n\1\2\n")),
         "same", "two independent stores swapped"),
    Case("6.12", "guest_mode_roots",
         _t("de-morgan", "kvm_mmu_free_guest_mode_roots",
            regex_once(r"!sp \|\| (sp->role\.guest_mode)", r"!(sp && !\1)")),
         "same", "!a || b written as !(a && !b)"),
    Case("6.1", "free_roots",
         _t("expand-valid-page", FREE,
            regex_once(r"&& VALID_PAGE\((mmu->root\.hpa)\)", r"&& \1 != INVALID_PAGE")),
         "same", "VALID_PAGE(x) replaced by its expansion"),
    Case("6.1", "obsolete_roots", _t("rename-sp", "is_obsolete_root", rename("sp", "root_sp")),
         "same", "renaming a local variable"),
    Case("6.1", "free_roots",
         _t("warn-spelled-out", PAGE,
            regex_once(r"WARN_ON(_ONCE)?\(!sp\)", r"WARN_ON\1(sp == NULL)")),
         "same", "a WARN condition spelled differently: the same WARN fires in the same states"),
    Case("6.12", "pgd_switch",
         _t("merge-early-returns", "is_root_usable", regex_once(
             r"if \(!VALID_PAGE\(root->hpa\)\)\n\t\treturn false;\n\n\tif \((!role\.direct[^)]*)\)",
             r"if (!VALID_PAGE(root->hpa) || (\1))")),
         "same", "two early returns merged into one condition"),
]  # fmt: skip

OUTSIDE = [
    Case("6.1", "free_roots",
         _t("seed-level-predicate", FREE, regex_once(
             r"if \(to_shadow_page\([^)]*\)\)",
             "if (mmu->root_role.level >= PT64_ROOT_4LEVEL &&\n\t\t    "
             "(mmu->cpu_role.base.level >= PT64_ROOT_4LEVEL || mmu->root_role.direct))")),
         "differs-outside-invariants",
         "the seed thread's question: the level predicate and 'is there an sp behind "
         "root.hpa' disagree only when the root kind and the levels disagree (I2), or for "
         "a dummy root, which 6.1 does not have (I9)",
         needs=("I2", "I9")),
    Case("6.1", "guest_mode_roots",
         _t("guest-mode-skips-spless", "kvm_mmu_free_guest_mode_roots",
            regex_once(r"!(to_shadow_page\(root_hpa\)) \|\|", r"\1 &&")),
         "differs-outside-invariants",
         "sp-less previous roots are no longer freed, but prev_roots never hold one",
         needs=("I3",)),
]  # fmt: skip

BENIGN = Case(
    "6.1", "free_roots", _t("keep-root-pgd", FREE, regex_once(r"\n\t+mmu->root\.pgd = 0;", "")),
    "same", "only the pgd of the now invalid current root differs: benign, and reported",
)  # fmt: skip

CRASH = Case(
    "6.12", "free_roots",
    _t("null-deref-current", FREE,
       replace_once("} else if (root_to_sp(mmu->root.hpa)) {",
                    "} else if (root_to_sp(mmu->root.hpa)->spt) {")),
    "crash", "freeing a special root (pae_root in a PAE mode: reachable) dereferences NULL",
)  # fmt: skip

# Crashes only outside the invariants: they rank with differs-outside-invariants and never
# hide a reachable difference.
CRASH_OUTSIDE = Case(
    "6.12", "free_roots",
    _t("null-deref", PAGE, replace_once("WARN_ON_ONCE(!sp)", "WARN_ON_ONCE(!sp->spt)")),
    "differs-outside-invariants",
    "an sp-less root makes mmu_free_root_page dereference NULL; only a previous root can "
    "bring one there, and prev_roots never hold one (I3)",
    needs=("I3",),
)  # fmt: skip
ROTATE_61 = Case(
    "6.1", "pgd_switch",
    _t("lru-rotation", "cached_root_find_and_keep_current",
       replace_once("prev_roots[i]);", "prev_roots[2 - i]);")),
    "differs",
    "the cache rotates from the LRU end: other roots hit and are evicted (reachable), and a "
    "previous root with no sp (I3 broken) makes is_root_usable dereference NULL",
    ("prev_roots",), needs=("I3",),
)  # fmt: skip

HANG = Case(
    "6.12", "free_roots",
    _t("spin-on-null", PAGE,
       regex_once(r"if \(WARN_ON_ONCE\(!sp\)\)\n\t\treturn;", "while (!sp)\n\t\t;")),
    "crash", "an sp-less root makes mmu_free_root_page spin forever: only outside the "
    "invariants (I3), but the hangs stop the run, and the states it did not run could hold "
    "a reachable crash, so the verdict stays crash",
)  # fmt: skip

# The seed commit 594bef79 undone on the 6.1 tree: kvm_mmu_free_roots as it was before it
# (b9e5603c's logic in 6.1's spelling). The check runs this as the BASELINE and the real 6.1
# code as PATCHED, so it sees the seed commit itself.
SEED_PRE_PATCH = Case(
    "6.1", "free_roots",
    _t("seed-pre-patch-shape", FREE, chain(
        # free_active_root: the CURRENT bit alone, whether or not the root is valid
        regex_once(r"(free_active_root = )\(roots_to_free & KVM_MMU_ROOT_CURRENT\)\s*"
                   r"&& VALID_PAGE\(mmu->root\.hpa\);",
                   r"\1roots_to_free & KVM_MMU_ROOT_CURRENT;"),
        # the early-out tests the root's validity itself
        replace_once("if (!free_active_root) {",
                     "if (!(free_active_root && VALID_PAGE(mmu->root.hpa))) {"),
        # the level predicate instead of "is there an sp behind root.hpa"
        regex_once(r"if \(to_shadow_page\([^)]*\)\)",
                   "if (mmu->root_role.level >= PT64_ROOT_4LEVEL &&\n\t\t    "
                   "(mmu->cpu_role.base.level >= PT64_ROOT_4LEVEL ||\n\t\t     "
                   "mmu->root_role.direct))"),
    )),
    "differs-outside-invariants",
    "594bef79 itself: inside the invariants only the pgd of an invalid current root differs "
    "(the old code resets it to 0 when a previous root is freed), which is benign; the "
    "level predicate and the to_shadow_page() test disagree only when the root kind and "
    "the MMU mode disagree (I2)",
    needs=("I2",),
)  # fmt: skip

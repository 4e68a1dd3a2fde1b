"""Extraction from the prepared Debian trees and from generated patches on top of them."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from mmuci import proc
from mmuci.errors import MmuCiError
from mmucore import extract
from mmukit import transforms as tf
from tests.debian import V61
from tests.mmucore.treeedit import commit, scratch_clone

pytestmark = pytest.mark.slow

ALL_ENTRY = (
    "mmu_free_root_page",
    "kvm_mmu_free_roots",
    "kvm_mmu_free_guest_mode_roots",
    "is_obsolete_root",
    "__kvm_mmu_free_obsolete_roots",
    "is_root_usable",
    "cached_root_find_and_keep_current",
    "cached_root_find_without_current",
    "fast_pgd_switch",
)


@pytest.fixture(scope="module")
def ex61(tree_61) -> extract.Extraction:
    return extract.extract(tree_61.path)


@pytest.fixture(scope="module")
def ex612(tree_612) -> extract.Extraction:
    return extract.extract(tree_612.path)


def test_61_has_every_entry_point_and_its_generation(ex61, tree_61) -> None:
    assert ex61.entry_points == ALL_ENTRY and not ex61.missing
    assert ex61.rev == tree_61.commit and ex61.version == V61
    assert {"to_shadow_page", "is_tdp_mmu_page", "is_obsolete_sp"} <= set(ex61.functions)
    assert "root_to_sp" not in ex61.functions
    assert ex61.features == {
        "root_info_struct",
        "root_role",
        "free_roots_takes_kvm",
        "tdp_put_root_shared_arg",
        "cached_root_find",
        "pgd_switch_takes_mmu",
    }


def test_612_has_every_entry_point_and_its_generation(ex612) -> None:
    assert ex612.entry_points == ALL_ENTRY and not ex612.missing
    assert {"root_to_sp", "spte_to_child_sp", "kvm_mmu_is_dummy_root"} <= set(ex612.functions)
    assert {"dummy_root", "root_to_sp", "tdp_read_lock_free", "roots_all_bounded"} <= (
        ex612.features
    )
    assert "tdp_put_root_shared_arg" not in ex612.features
    # the tree defines tdp_mmu_enabled itself: taken from mmu.c, not the shim
    assert any(p.kind == "global" and p.name == "tdp_mmu_enabled" for p in ex612.pieces)
    assert "tdp_mmu_enabled" not in ex612.shimmed


def test_shim_wins_for_the_big_functions(ex61, ex612) -> None:
    for ex in (ex61, ex612):
        for name in ("kvm_mmu_prepare_zap_page", "kvm_mmu_commit_zap_page", "kvm_tdp_mmu_put_root"):
            assert name in ex.shimmed and name not in ex.functions


def test_functions_record_signature_and_calls(ex61, ex612) -> None:
    f = ex612.functions["kvm_mmu_free_roots"]
    assert f.file == "arch/x86/kvm/mmu/mmu.c" and not f.static and f.return_type == "void"
    assert [n for _, n in f.params] == ["kvm", "mmu", "roots_to_free"]
    assert f.params[0][0] == "struct kvm *"
    assert {"read_lock", "write_lock", "mmu_free_root_page", "root_to_sp"} <= set(f.calls)
    assert ex61.functions["mmu_free_root_page"].static


def test_structs_are_pruned_to_what_is_used(ex61, ex612) -> None:
    for ex in (ex61, ex612):
        mmu = ex.structs["struct kvm_mmu"]
        assert {"root", "prev_roots", "pae_root", "root_role", "cpu_role"} <= set(mmu)
        assert "get_guest_pgd" not in mmu and "page_fault" not in mmu
        assert set(ex.structs["struct kvm"]) == {"mmu_lock", "arch"}
        assert ex.structs["struct kvm_mmu_root_info"] == ("pgd", "hpa")
        sp = ex.structs["struct kvm_mmu_page"]
        assert {"role", "root_count", "tdp_mmu_root_count", "tdp_mmu_page", "link"} <= set(sp)
        assert "unsync_children" not in sp


def test_every_piece_is_placed_after_a_line_directive(ex612, tree_612) -> None:
    lines = ex612.tu.splitlines()
    for p in ex612.pieces:
        first = p.text.split("\n", 1)[0]
        i = lines.index(first) if p.kind != "type" else None
        if i is not None:
            assert lines[i - 1] == f'#line {p.line} "{p.file}"', p.name
        src = (tree_612.path / p.file).read_text(errors="replace").splitlines()
        # the first line of each piece is the tree's own line (attribute words blanked)
        assert (
            first.split()
            == re.sub(r"__read_mostly", "", src[p.line - 1]).split()[: len(first.split())]
            or p.kind == "type"
        ), p.name


def test_key_is_stable_and_changes_with_the_code(ex61, tree_61) -> None:
    again = extract.extract(tree_61.path)
    assert again.key == ex61.key and again.tu == ex61.tu


def _helper_patch() -> tf.Transformation:
    helper = (
        "static bool mmu_ci_root_is_set(struct kvm_mmu *mmu)\n"
        "{\n\treturn VALID_PAGE(mmu->root.hpa);\n}\n\n"
    )
    return tf.Transformation(
        name="new-helper",
        file="arch/x86/kvm/mmu/mmu.c",
        edit=tf.chain(
            tf.insert_before("/* roots_to_free must be some", helper),
            tf.within_function(
                "kvm_mmu_free_roots",
                tf.insert_after("LIST_HEAD(invalid_list);\n", "\t(void)mmu_ci_root_is_set(mmu);\n"),
            ),
        ),
        subject="KVM: x86/mmu: add a helper",
    )


@pytest.mark.parametrize("which", ["6.1", "6.12"])
def test_a_new_static_helper_is_extracted(which, tree_61, tree_612, tmp_path: Path) -> None:
    tree = tree_61 if which == "6.1" else tree_612
    clone = scratch_clone(tree.path, tmp_path / "t")
    rev = commit(clone, _helper_patch())
    ex = extract.extract(clone, rev)
    f = ex.functions["mmu_ci_root_is_set"]
    assert f.static and f.file == "arch/x86/kvm/mmu/mmu.c"
    assert "mmu_ci_root_is_set" in ex.functions["kvm_mmu_free_roots"].calls
    text = (clone / f.file).read_text().splitlines()
    assert "mmu_ci_root_is_set" in text[f.line - 1]


def test_unknown_callee_names_caller_callee_and_line(tree_612, tmp_path: Path) -> None:
    clone = scratch_clone(tree_612.path, tmp_path / "t")
    t = tf.Transformation(
        name="unknown-callee",
        file="arch/x86/kvm/mmu/mmu.c",
        edit=tf.within_function(
            "kvm_mmu_free_roots",
            tf.insert_after("LIST_HEAD(invalid_list);\n", "\tmmu_ci_nowhere(kvm);\n"),
        ),
        subject="KVM: x86/mmu: call something unknown",
    )
    rev = commit(clone, t)
    line = next(
        i + 1
        for i, s in enumerate((clone / t.file).read_text().splitlines())
        if "mmu_ci_nowhere" in s
    )
    with pytest.raises(extract.ExtractError) as e:
        extract.extract(clone, rev)
    msg = str(e.value)
    assert "kvm_mmu_free_roots" in msg and "mmu_ci_nowhere" in msg
    assert f"arch/x86/kvm/mmu/mmu.c:{line}" in msg


def test_hostile_text_is_an_error_not_a_traceback(tree_61, tmp_path: Path) -> None:
    clone = scratch_clone(tree_61.path, tmp_path / "t")
    garbage = '#if (((\n#define X(\n}}}} struct { int\n#elif\n"unterminated\n#endif\n'
    t = tf.Transformation(
        name="garbage",
        file="arch/x86/kvm/mmu/mmu.c",
        edit=tf.insert_before("/* roots_to_free must be some", garbage),
        subject="garbage",
    )
    rev = commit(clone, t)
    try:
        ex = extract.extract(clone, rev)
    except MmuCiError:
        return
    assert ex.entry_points  # or it carried on with what it could read


def test_missing_revision_is_a_clear_error(tree_61) -> None:
    with pytest.raises(MmuCiError, match="no revision"):
        extract.extract(tree_61.path, "no-such-branch")


def test_include_inside_a_pruned_struct_is_refused(tree_61, tmp_path: Path) -> None:
    clone = scratch_clone(tree_61.path, tmp_path / "t")
    t = tf.Transformation(
        name="include-in-struct",
        file="arch/x86/include/asm/kvm_host.h",
        edit=tf.insert_after("struct kvm_mmu {\n", '#include "mmu_ci_evil.h"\n'),
        subject="evil",
    )
    rev = commit(clone, t)
    line = next(
        i + 1 for i, s in enumerate((clone / t.file).read_text().splitlines()) if "mmu_ci_evil" in s
    )
    with pytest.raises(extract.ExtractError, match=f"kvm_host.h:{line}: a preprocessor"):
        extract.extract(clone, rev)


def test_macro_redefined_inside_a_struct_is_refused(tree_612, tmp_path: Path) -> None:
    clone = scratch_clone(tree_612.path, tmp_path / "t")
    t = tf.Transformation(
        name="define-in-struct",
        file="arch/x86/include/asm/kvm_host.h",
        edit=tf.insert_after("struct kvm_mmu {\n", "#define VALID_PAGE(x) 1\n"),
        subject="sneaky",
    )
    rev = commit(clone, t)
    with pytest.raises(extract.ExtractError, match="VALID_PAGE is defined more than once"):
        extract.extract(clone, rev)


def test_pieces_carry_their_lines_as_the_tree_has_them(tree_61, ex61) -> None:
    """Validation reads a piece's original lines from the extraction, not from git."""
    mmu = proc.git(tree_61.path, "show", f"{ex61.rev}:arch/x86/kvm/mmu/mmu.c").split("\n")
    (p,) = [p for p in ex61.pieces if p.kind == "function" and p.name == "kvm_mmu_free_roots"]
    assert p.source == "\n".join(mmu[p.line - 1 : p.line + p.text.count("\n")])
    assert p.source.startswith("void kvm_mmu_free_roots(")

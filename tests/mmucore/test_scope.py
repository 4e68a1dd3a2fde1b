"""Scope on real revisions: which definitions a patch changes, and does it reach the model."""

from __future__ import annotations

import pytest

from mmuci import proc
from mmucore import scope
from mmucore.extract import extract
from mmukit.transforms import Transformation, regex_once, within_function

pytestmark = pytest.mark.slow

MMU_C = "arch/x86/kvm/mmu/mmu.c"
KVM_HOST = "arch/x86/include/asm/kvm_host.h"


def top_comment(func: str, comment: str, file: str = MMU_C) -> Transformation:
    edit = within_function(func, regex_once(r"\)\s*\n\{\n", rf")\n{{\n\t/* {comment} */\n"))
    return Transformation(f"c-{func}", file, edit, "c")


@pytest.fixture(scope="module")
def clone(tree_61, tmp_path_factory):
    """A scratch clone: each test commits its change and gets (before, after, diff)."""
    d = tmp_path_factory.mktemp("scope") / "t"
    proc.git(d.parent, "clone", "-q", "--shared", str(tree_61.path), d.name)
    proc.git(d, "config", "user.name", "t")
    proc.git(d, "config", "user.email", "t@example.org")
    return d


def commit(clone, t: Transformation) -> tuple[str, str, str]:
    before = proc.git(clone, "rev-parse", "HEAD")
    files = t.apply(clone)
    proc.git(clone, "commit", "-q", "-m", t.name, "--", *files)
    after = proc.git(clone, "rev-parse", "HEAD")
    return before, after, proc.git(clone, "diff", before, after) + "\n"


def decide(clone, t: Transformation) -> scope.Scope:
    before, after, diff = commit(clone, t)
    texts = scope.file_texts(clone, after, scope.files_touched(diff))
    return scope.decide(diff, extract(clone, before), extract(clone, after), texts)


def test_comment_in_unmodelled_function_is_out_of_scope(clone):
    sc = decide(clone, top_comment("kvm_mmu_load", "x"))
    assert not sc.in_scope and sc.files == (MMU_C,)
    assert sc.functions == ("function kvm_mmu_load",)
    assert "kvm_mmu_load, which the model does not use" in sc.reason


def test_change_in_modelled_function_is_in_scope(clone):
    edit = within_function("kvm_mmu_free_roots", regex_once(r"(?m)^\tint i;\n", "\tint i = 0;\n"))
    sc = decide(clone, Transformation("init-i", MMU_C, edit, "x"))
    assert sc.in_scope and sc.functions == ("function kvm_mmu_free_roots",)
    assert sc.pieces == ("function kvm_mmu_free_roots",)


def test_header_changes_by_what_the_model_uses(clone):
    edit = regex_once(r"(?m)^(struct kvm_mmu \{\n)", r"\1\tunsigned long mmu_ci_probe;\n")
    sc = decide(clone, Transformation("field", KVM_HOST, edit, "x"))
    # The model keeps only the fields its functions use: a new field does not reach it.
    assert not sc.in_scope and sc.functions == ("type struct kvm_mmu",)
    edit = regex_once(r"(#define KVM_MMU_NUM_PREV_ROOTS\s+)3\b", r"\g<1>4")
    sc = decide(clone, Transformation("prev-roots", KVM_HOST, edit, "x"))
    assert sc.in_scope and sc.functions == ("macro KVM_MMU_NUM_PREV_ROOTS",)
    assert "macro KVM_MMU_NUM_PREV_ROOTS" in sc.pieces


def test_untouched_model_files_decide_without_extraction(clone):
    t = Transformation("x86", "arch/x86/kvm/x86.c", regex_once(r"\A", "/* probe */\n"), "x86 probe")
    before, _, diff = commit(clone, t)
    files = scope.model_files(extract(clone, before))
    assert MMU_C in files and "arch/x86/kvm/x86.c" not in files
    sc = scope.quick(diff, files)  # decided from the file list alone: no extraction
    assert sc is not None and not sc.in_scope and sc.files == ("arch/x86/kvm/x86.c",)
    assert scope.quick(diff, files | {"arch/x86/kvm/x86.c"}) is None


def test_file_index_cache(tmp_path):
    idx = scope.ModelFilesCache(tmp_path)
    assert idx.get("abc") is None
    idx.put("abc", [MMU_C, KVM_HOST])
    assert idx.get("abc") == frozenset({MMU_C, KVM_HOST})


def test_diff_parsing():
    diff = (
        "diff --git a/x.c b/x.c\n--- a/x.c\n+++ b/x.c\n@@ -1,3 +1,4 @@\n a\n+b\n c\n-d\n+e\n"
        "diff --git a/y.h b/z.h\nsimilarity index 90%\n"
    )
    assert scope.files_touched(diff) == ("x.c", "y.h", "z.h")
    text = "int f(void)\n{\n\treturn 0;\n}\n\nint g(void)\n{\n\treturn 1;\n}\n"
    assert scope.hunk_definitions(diff, {"x.c": text}) == ("function f",)


def test_comment_in_modelled_function_changes_no_code(clone):
    before, after, _ = commit(clone, top_comment("kvm_mmu_free_roots", "why"))
    a, b = extract(clone, before), extract(clone, after)
    assert scope.changed_pieces(a, b) == ("function kvm_mmu_free_roots",)
    assert scope.changed_pieces(a, b, code_only=True) == ()
    text = scope.code_text('f(a, /* x */ b); // y\n  s("/* k */");')
    assert text == 'f ( a , b ) ; s ( "/* k */" ) ;'  # the compiler's tokens, strings kept
    assert scope.code_text("f(a,b);") == text.split(" s")[0]  # layout is not code


def test_extents_are_parsed_once_per_text(tmp_path):
    idx = scope.ModelFilesCache(tmp_path)
    text = "int f(void)\n{\n\treturn 0;\n}\n\nint g(void)\n{\n\treturn 1;\n}\n"
    diff = "--- a/x.c\n+++ b/x.c\n@@ -8,1 +8,1 @@\n-\treturn 2;\n+\treturn 1;\n"
    assert scope.hunk_definitions(diff, {"x.c": text}, idx) == ("function g",)
    (kept,) = (tmp_path / "scope" / "extents").glob("*.json")
    assert kept.read_text() == '[["function", "f", 1, 4], ["function", "g", 6, 9]]'
    # the next look at the same text reads what was kept (here: g renamed h in the cache)
    kept.write_text('[["function", "f", 1, 4], ["function", "h", 6, 9]]')
    assert scope.hunk_definitions(diff, {"x.c": text}, idx) == ("function h",)
    # another text is parsed; an unreadable entry is parsed again and rewritten
    assert scope.hunk_definitions(diff, {"x.c": text.replace("g(", "k(")}, idx) == ("function k",)
    kept.write_text("[[")
    assert scope.hunk_definitions(diff, {"x.c": text}, idx) == ("function g",)
    assert "g" in kept.read_text()

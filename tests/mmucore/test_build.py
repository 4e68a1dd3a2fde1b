"""Build: both trees compile, the cache, patched variants, errors at the kernel's line."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from mmucore import build, extract, sandbox
from mmukit import transforms as tf
from tests.mmucore.treeedit import commit, scratch_clone

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("build-cache")


@pytest.mark.parametrize("which", ["6.1", "6.12"])
def test_both_trees_build_and_a_cache_hit_does_not_recompile(
    which, tree_61, tree_612, cache: Path
) -> None:
    tree = tree_61 if which == "6.1" else tree_612
    ex = extract.extract(tree.path)
    first = build.build(ex, cache_dir=cache)
    assert first.path.is_file() and first.module_name.startswith("_mmu_")
    assert "gcc" in first.log and first.tu_path.is_file()
    mtime = first.path.stat().st_mtime_ns
    again = build.build(extract.extract(tree.path), cache_dir=cache)
    assert again.cached and not first.cached
    assert again.path == first.path and again.path.stat().st_mtime_ns == mtime


def test_a_renamed_root_info_field_carries_through(tree_612, cache: Path, tmp_path: Path) -> None:
    field = re.compile(r"(\.|->)hpa\b")

    def uses(text: str) -> str:
        out, n = field.subn(r"\1host_pa", text)
        if not n:
            raise tf.TransformError("no .hpa uses")
        return out

    header = tf.chain(
        tf.regex_once(
            r"(struct kvm_mmu_root_info \{\n\s*gpa_t pgd;\n\s*hpa_t )hpa;", r"\1host_pa;"
        ),
        uses,
    )
    t = tf.Transformation(
        name="rename-root-info-hpa",
        file="arch/x86/include/asm/kvm_host.h",
        edit=header,
        subject="KVM: x86: rename kvm_mmu_root_info.hpa",
        also=(("arch/x86/kvm/mmu/mmu.c", uses),),
    )
    clone = scratch_clone(tree_612.path, tmp_path / "t")
    rev = commit(clone, t)
    ex = extract.extract(clone, rev)
    assert ex.structs["struct kvm_mmu_root_info"] == ("pgd", "host_pa")
    b = build.build(ex, cache_dir=cache)
    assert b.path.is_file()


def test_new_helper_builds_and_loads_beside_the_baseline(
    tree_61, cache: Path, tmp_path: Path
) -> None:
    clone = scratch_clone(tree_61.path, tmp_path / "t")
    t = tf.Transformation(
        name="helper",
        file="arch/x86/kvm/mmu/mmu.c",
        edit=tf.chain(
            tf.insert_before(
                "/* roots_to_free must be some",
                "static ulong mmu_ci_mask(ulong m)\n{\n\treturn m & KVM_MMU_ROOT_CURRENT;\n}\n\n",
            ),
            tf.within_function(
                "kvm_mmu_free_roots",
                tf.insert_after(
                    "LIST_HEAD(invalid_list);\n", "\troots_to_free = mmu_ci_mask(roots_to_free);\n"
                ),
            ),
        ),
        subject="KVM: x86/mmu: only ever free the current root",
    )
    rev = commit(clone, t)
    base = build.build(extract.extract(tree_61.path), cache_dir=cache)
    patched = build.build(extract.extract(clone, rev), cache_dir=cache)
    assert base.module_name != patched.module_name
    out = sandbox.run(
        "tests.mmucore.helpers:free_prev_root_in_each", {"roots_to_free": 2}, [base, patched]
    )
    assert out.ok, out.message + out.detail
    baseline, changed = out.value
    assert baseline["prev0_hpa"] == 2**64 - 1  # the baseline frees prev_roots[0]
    assert changed["prev0_hpa"] != 2**64 - 1  # the patched one masks it out


def test_compiler_error_is_reported_at_the_kernel_line(
    tree_612, cache: Path, tmp_path: Path
) -> None:
    clone = scratch_clone(tree_612.path, tmp_path / "t")
    t = tf.Transformation(
        name="broken",
        file="arch/x86/kvm/mmu/mmu.c",
        edit=tf.within_function(
            "mmu_free_root_page",
            tf.insert_after("struct kvm_mmu_page *sp;\n", "\tint broken = sp->no_such_field;\n"),
        ),
        subject="KVM: x86/mmu: broken",
    )
    rev = commit(clone, t)
    line = next(
        i + 1
        for i, s in enumerate((clone / t.file).read_text().splitlines())
        if "no_such_field" in s
    )
    with pytest.raises(build.BuildError) as e:
        build.build(extract.extract(clone, rev), cache_dir=cache)
    assert ("arch/x86/kvm/mmu/mmu.c", line) in [(f, n) for f, n, _ in e.value.diagnostics]
    assert f"arch/x86/kvm/mmu/mmu.c:{line}" in str(e.value)
    assert "no_such_field" in e.value.log


def test_sanitizer_build(tree_612, cache: Path) -> None:
    b = build.build(extract.extract(tree_612.path), cache_dir=cache, sanitize=True)
    assert b.sanitize and "-fsanitize=address,undefined" in b.log
    plain = build.build(extract.extract(tree_612.path), cache_dir=cache)
    assert plain.key != b.key
    out = sandbox.run("tests.mmucore.helpers:free_roots_on_sp_root", {}, [b])
    assert out.ok, out.message + out.detail
    assert out.value["root_count"] == 0


def test_driver_is_compiled_into_the_module(tree_61, cache: Path) -> None:
    driver = build.Driver(
        name="count-prev",
        source="int mmu_ci_nprev(void) { return KVM_MMU_NUM_PREV_ROOTS; }\n",
        cdef="int mmu_ci_nprev(void);",
    )
    b = build.build(extract.extract(tree_61.path), driver, cache_dir=cache)
    out = sandbox.run("tests.mmucore.helpers:call_nprev", {}, [b])
    assert out.ok and out.value == 3, out.message + out.detail


_BUILD_IN_A_PROCESS = """
import sys
from pathlib import Path
from mmucore import build, extract
b = build.build(extract.extract(Path(sys.argv[1])), cache_dir=Path(sys.argv[2]))
print("cached" if b.cached else "compiled", b.path)
"""


def test_two_processes_build_once(tree_61, tmp_path: Path) -> None:
    import sys
    from concurrent.futures import ThreadPoolExecutor

    from mmuci import proc

    cache = tmp_path / "shared-cache"
    argv = [sys.executable, "-c", _BUILD_IN_A_PROCESS, str(tree_61.path), str(cache)]
    repo = Path(__file__).resolve().parents[2]
    with ThreadPoolExecutor(2) as pool:
        outs = list(pool.map(lambda _: proc.run(argv, cwd=repo, timeout=300).stdout, range(2)))
    words = sorted(o.split()[0] for o in outs)
    assert words == ["cached", "compiled"], outs
    assert len({o.split()[1] for o in outs}) == 1
    assert not [p for p in cache.iterdir() if p.name.startswith("._mmu_") and p.is_dir()]
    third = proc.run(argv, cwd=repo, timeout=300).stdout
    assert third.startswith("cached")


def test_guard_style_locking_records_the_same_events(tree_61, cache: Path, tmp_path: Path) -> None:
    """Newer kernels write guard(write_lock)(&kvm->mmu_lock): unlock at scope exit."""
    clone = scratch_clone(tree_61.path, tmp_path / "t")
    t = tf.Transformation(
        name="guard",
        file="arch/x86/kvm/mmu/mmu.c",
        edit=tf.within_function(
            "kvm_mmu_free_roots",
            tf.chain(
                tf.replace_once(
                    "\twrite_lock(&kvm->mmu_lock);", "\tguard(write_lock)(&kvm->mmu_lock);"
                ),
                tf.delete_once("\twrite_unlock(&kvm->mmu_lock);\n"),
            ),
        ),
        subject="KVM: x86/mmu: use guard() for mmu_lock",
    )
    rev = commit(clone, t)
    base = build.build(extract.extract(tree_61.path), cache_dir=cache)
    guarded = build.build(extract.extract(clone, rev), cache_dir=cache)
    for payload in ({}, {"invalid": 1}):
        a = sandbox.run("tests.mmucore.helpers:free_roots_on_sp_root", payload, [base])
        b = sandbox.run("tests.mmucore.helpers:free_roots_on_sp_root", payload, [guarded])
        assert a.ok and b.ok, a.message + b.message + b.detail
        assert a.value == b.value

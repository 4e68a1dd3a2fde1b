"""Hostile patches on the real 6.1 tree: refused with the patch line, or contained.

Each patch is generated at test time (a short edit of mmu.c by anchor, committed in a
scratch clone of the prepared tree), extracted and built for real; built code runs only
through the sandbox, and the test process (the bot's stand-in) carries on.
"""

from __future__ import annotations

import re
import signal
from pathlib import Path

import pytest

from bot.seriesgen import make_series
from bot.transforms import Transformation, at_body_start
from mmucore import sandbox
from mmucore.build import Build, build
from mmucore.errors import MmuCiError
from mmucore.extract import Extraction, extract
from mmucore.validate import RefusedInput

pytestmark = pytest.mark.slow

MMU_C = "arch/x86/kvm/mmu/mmu.c"
TARGET = "kvm_mmu_free_roots"
CALLS = "tests.mmucore.sandbox_calls"
LIMITS = sandbox.Limits(cpu_seconds=2, memory_mb=1024, wall_seconds=20)


def _series(tree, workdir: Path, name: str, addition: str) -> tuple[Path, int]:
    """A scratch clone with ``addition`` at the start of kvm_mmu_free_roots; its line."""
    edit = at_body_start(TARGET, addition)
    t = Transformation(name, MMU_C, edit, f"KVM: x86/mmu: {name}")
    series = make_series(tree.path, tree.commit, [t], workdir=workdir)
    text = (series.clone / MMU_C).read_text()
    return series.clone, text[: text.index(addition)].count("\n") + 1


def _patched(tree, workdir: Path, name: str, addition: str) -> tuple[Extraction, int]:
    clone, line = _series(tree, workdir, name, addition)
    return extract(clone, "HEAD"), line


def _refusal(tree, tmp_path: Path, name: str, addition: str) -> tuple[MmuCiError, int]:
    """The error extract+build give for the patch; nothing is kept in the cache."""
    clone, line = _series(tree, tmp_path, name, addition)
    with pytest.raises(MmuCiError) as e:
        build(extract(clone, "HEAD"), cache_dir=tmp_path / "cache")
    assert not list((tmp_path / "cache").glob("_mmu_*/*.so"))
    return e.value, line


@pytest.fixture(scope="module")
def baseline(tree_61, tmp_path_factory: pytest.TempPathFactory) -> Build:
    return build(extract(tree_61.path, tree_61.commit), cache_dir=tmp_path_factory.mktemp("base"))


def test_a_call_to_system_is_refused_naming_it(tree_61, tmp_path: Path) -> None:
    err, line = _refusal(tree_61, tmp_path, "system", '\tsystem("id");\n')
    assert "system" in str(err)
    assert f"{MMU_C}:{line}" in str(err)


def test_a_declared_system_is_refused_before_compiling(tree_61, tmp_path: Path) -> None:
    add = "\tint system(const char *);\n\tvoid *volatile mmu_p = (void *)system;\n\n"
    err, line = _refusal(tree_61, tmp_path, "declares-system", add)
    assert isinstance(err, RefusedInput)
    assert "system()" in err.reason and (err.file, err.line) == (MMU_C, line)
    assert "int system(const char *);" in str(err)


def test_system_through_a_typedef_is_refused_by_the_symbol_check(tree_61, tmp_path: Path) -> None:
    # validate cannot see that mmu_fn is a function type; nm of the built module can
    add = "\ttypedef int mmu_fn(const char *);\n\tmmu_fn system;\n\tvoid *volatile p = system;\n\n"
    err, line = _refusal(tree_61, tmp_path, "typedef-system", add)
    assert isinstance(err, RefusedInput)
    assert "calls system()" in err.reason
    assert (err.file, err.line) == (MMU_C, line + 1)
    assert "mmu_fn system;" in str(err)


def test_an_include_inside_the_function_is_refused(tree_61, tmp_path: Path) -> None:
    err, line = _refusal(tree_61, tmp_path, "include", "#include <unistd.h>\n")
    assert isinstance(err, RefusedInput)
    # refused from the piece text, or read back from the tree if the extractor dropped it
    assert re.search(r"#include directive (in|inside) kvm_mmu_free_roots", err.reason)
    assert "#include <unistd.h>" in str(err)
    assert (err.file, err.line) == (MMU_C, line)


def test_inline_asm_is_refused(tree_61, tmp_path: Path) -> None:
    err, line = _refusal(tree_61, tmp_path, "asm", '\tasm volatile("" ::: "memory");\n')
    assert isinstance(err, RefusedInput)
    assert "inline assembly" in err.reason and (err.file, err.line) == (MMU_C, line)


def _run_patched(tree, tmp_path: Path, name: str, addition: str, baseline: Build):
    ex, line = _patched(tree, tmp_path, name, addition)
    b = build(ex, cache_dir=tmp_path / "cache")
    out = sandbox.run(f"{CALLS}:free_roots_null", {}, [b], LIMITS)
    # the caller survives and the next run works, with both modules side by side
    after = sandbox.run(f"{CALLS}:build_keys", {}, [baseline, b], LIMITS)
    assert after.ok and after.value == [baseline.key, b.key], after.detail
    return out


def test_an_infinite_loop_times_out(tree_61, tmp_path: Path, baseline: Build) -> None:
    out = _run_patched(tree_61, tmp_path, "loop", "\tfor (;;)\n\t\t;\n", baseline)
    assert out.failure == "timeout" and out.signal == signal.SIGXCPU
    assert out.seconds < LIMITS.wall_seconds


def test_a_null_dereference_is_a_reported_crash(tree_61, tmp_path: Path, baseline: Build) -> None:
    out = _run_patched(tree_61, tmp_path, "null", "\t*(volatile int *)NULL = 1;\n", baseline)
    assert out.failure == "crash" and out.signal == signal.SIGSEGV
    assert "free_roots_null" in out.detail  # faulthandler: the call that entered the module


def test_a_null_dereference_under_sanitizers_names_the_patch_line(tree_61, tmp_path: Path) -> None:
    ex, line = _patched(tree_61, tmp_path, "null-asan", "\t*(volatile int *)NULL = 1;\n")
    b = build(ex, cache_dir=tmp_path / "cache", sanitize=True)
    out = sandbox.run(f"{CALLS}:free_roots_null", {}, [b], LIMITS)
    assert out.failure == "crash"
    assert re.search(rf"{re.escape(MMU_C)}:{line}:\d+", out.message), out.message


def test_a_huge_stack_allocation_is_contained(tree_61, tmp_path: Path, baseline: Build) -> None:
    add = "\t{\n\t\tvolatile char mmu_big[1UL << 33];\n\n\t\tmmu_big[0] = 1;\n\t}\n"
    out = _run_patched(tree_61, tmp_path, "huge", add, baseline)
    assert not out.ok
    assert out.failure in ("crash", "memory")  # past the stack guard: SIGSEGV
    assert out.message

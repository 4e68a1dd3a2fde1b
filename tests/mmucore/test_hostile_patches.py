"""Hostile patches on the real 6.1 tree: refused with the patch line, or contained.

Each patch is generated at test time (a short edit of mmu.c by anchor, committed in a
scratch clone of the prepared tree), extracted and built for real; built code runs only
through the sandbox, and the test process (the bot's stand-in) carries on.
"""

from __future__ import annotations

import json
import re
import signal
from pathlib import Path

import pytest

from mmuci import proc
from mmuci.errors import MmuCiError
from mmucore import sandbox
from mmucore.build import Build, build
from mmucore.extract import Extraction, extract
from mmucore.validate import RefusedInput
from mmukit.seriesgen import make_series
from mmukit.transforms import Transformation, at_body_start

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
    text = (series.clone / MMU_C).read_bytes().decode()  # as written: a lone CR stays
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
    # a size known only at run time (a fixed one is refused by gcc, see below)
    add = (
        "\t{\n\t\tvolatile unsigned long mmu_n = 1UL << 33;\n"
        "\t\tvolatile char mmu_big[mmu_n];\n\n\t\tmmu_big[0] = 1;\n\t}\n"
    )
    out = _run_patched(tree_61, tmp_path, "huge", add, baseline)
    assert not out.ok
    assert out.failure in ("crash", "memory")  # past the stack guard: SIGSEGV
    assert out.message


@pytest.mark.parametrize(
    "decl",
    ["static const char mmu_blob[200 << 20] = { 1 };", "volatile char mmu_big[1UL << 33];"],
)
def test_a_huge_object_is_refused_before_it_is_written(tree_61, tmp_path: Path, decl) -> None:
    from mmucore.build import BuildError

    ex, line = _patched(tree_61, tmp_path, "blob", f"\t{{\n\t\t{decl}\n\n\t}}\n")
    with pytest.raises(BuildError) as e:
        build(ex, cache_dir=tmp_path / "cache")
    assert "exceeds maximum object size" in str(e.value)
    assert (MMU_C, line + 1) in [(f, ln) for f, ln, _ in e.value.diagnostics]
    written = [p.stat().st_size for p in (tmp_path / "cache").rglob("*") if p.is_file()]
    assert max(written, default=0) < 1 << 20  # nothing near the object's size was written


# ---- through `mmubot diff`: the verdict, the exit status, nothing of the host shown ----

CHECK = "free_roots"
INCBIN = 'asm(".incbin \\"/etc/passwd\\"");'
HOST_TEXT = [ln for ln in Path("/etc/passwd").read_text().splitlines() if ln][:3]


def _mmubot_diff(tree, tmp_path: Path, name: str, addition: str, capsys, monkeypatch, data_dir):
    """exit status, everything printed, the JSON document, the patch line."""
    from bot import cli

    clone, line = _series(tree, tmp_path, name, addition)
    monkeypatch.setenv("MMUCI_DATA_DIR", str(data_dir))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "xdg"))
    out = tmp_path / "diff.json"
    argv = ["diff", "--tree", str(clone), tree.commit, "HEAD", "--check", CHECK, "--json", str(out)]
    code = cli.main(argv)
    printed = capsys.readouterr()
    text = printed.out + printed.err
    doc = out.read_text() if out.is_file() else ""
    for host in HOST_TEXT:  # nothing of the host's files in any output
        assert host not in text and host not in doc
    return code, text, json.loads(doc) if doc else None, line


REFUSED_PATCHES = {
    # the old C-rules lexer saw no asm here: string, ")z", string, ... (gcc: raw strings)
    "raw string hides an .incbin": (
        '\tR"z(")z"; __asm__(R"y(.incbin "/etc/passwd")y"); R"z(")z";\n',
        "raw string",
    ),
    "u8 raw string hides an .incbin": (f'\tu8R"z(")z"; {INCBIN} u8R"z(")z";\n', "raw string"),
    "carriage return ends a comment": (f"\t// a note\r{INCBIN}\n", "carriage return"),
    "glibc paste builds asm": ('\t__CONCAT(__as, m__)(".incbin \\"/etc/passwd\\"");\n', "__CONCAT"),
    "fork bomb through a computed libc address": (
        "\t{\n\t\tlong off = 0, off2 = 0;\n\n\t\tfor (;;)\n"
        "\t\t\t((long (*)(long, ...))((unsigned long)(void *)abort - off + off2))(57);\n\t}\n",
        "computed address",
    ),
    "recorder counter by name": (
        "\twrite_lock(&kvm->mmu_lock);\n\tmmu_shim_nevents = 0;\n",
        "mmu_shim_nevents",
    ),
    "recorder reset by name": ("\tmmu_shim_reset();\n", "mmu_shim_reset"),
}


@pytest.mark.parametrize("name", sorted(REFUSED_PATCHES))
def test_hostile_patch_is_refused_before_building(
    name: str, tree_61, tmp_path: Path, capsys, monkeypatch, data_dir
) -> None:
    addition, why = REFUSED_PATCHES[name]
    code, text, doc, line = _mmubot_diff(
        tree_61, tmp_path, name.replace(" ", "-"), addition, capsys, monkeypatch, data_dir
    )
    assert code == 2, text
    if doc is None:  # the extractor refused first: a call it cannot resolve
        assert f"calls {why}" in text and "is refused" in text, text
        return
    assert doc["verdict"] == "build-error", text
    (chk,) = doc["checks"]
    assert why in chk["error"] and "refused untrusted input" in chk["error"], chk["error"]
    at = int(re.search(rf"{re.escape(MMU_C)}:(\d+):", chk["error"]).group(1))
    assert line <= at <= line + addition.count("\n"), chk["error"]
    assert f"{CHECK}: build-error" in text


def _offset_to_anchor(tree, tmp_path: Path, addition: str) -> int:
    """Where the recorder's anchor page sits relative to the driver's struct kvm_mmu in
    the module this very patch builds to, as an attacker would read it off a build."""
    from checks import engine
    from checks.space import all_checks

    clone, _ = _series(tree, tmp_path / "probe", "probe", addition)
    b, _ = engine.build_one(all_checks([CHECK])[0], extract(clone, "HEAD"), tmp_path / "cache")
    syms = {}
    for ln in proc.run(["nm", str(b.path)]).stdout.splitlines():
        parts = ln.split()
        if len(parts) == 3:
            syms[parts[2]] = int(parts[0], 16)
    return syms["mmu_shim_anchor"] - syms["drv_mmu"]


def test_a_blind_write_at_the_recorder_s_anchor_is_a_crash(
    tree_61, tmp_path: Path, capsys, monkeypatch, data_dir
) -> None:
    add = "\t*(volatile long *)((char *)mmu + ({off}L)) = 0;\n"
    off = _offset_to_anchor(tree_61, tmp_path, add.format(off=0))
    code, text, doc, _ = _mmubot_diff(
        tree_61, tmp_path, "anchor-write", add.format(off=off), capsys, monkeypatch, data_dir
    )
    assert doc is not None and doc["verdict"] == "crash", text
    assert code == 1
    assert "fault" in text  # the anchor page is read-only: SIGSEGV in the code under test


# Read the recorder's address where the shim keeps it, save the counter, take and release
# the lock (two events), restore the counter: the log loses both events. Everywhere, or only
# in states that break I3 (a cached pae_root): a forged result is never a difference outside
# the invariants, it is a crash of the run.
_FORGE = (
    "\t{cond}{{{{\n\t\tint *mmu_n = *(int *volatile *)((char *)mmu + ({{off}}L));\n"
    "\t\tint mmu_saved = *mmu_n;\n\n"
    "\t\twrite_lock(&kvm->mmu_lock);\n\t\twrite_unlock(&kvm->mmu_lock);\n"
    "\t\t*mmu_n = mmu_saved;\n\t}}}}\n"
)
_WHERE = {
    "everywhere": "",
    "only-outside-the-invariants": (
        "if (mmu->pae_root && mmu->prev_roots[0].hpa == __pa(mmu->pae_root)) "
    ),
}


@pytest.mark.parametrize("where", sorted(_WHERE))
def test_restoring_the_event_counter_through_the_anchor_is_a_crash(
    where: str, tree_61, tmp_path: Path, capsys, monkeypatch, data_dir
) -> None:
    add = _FORGE.format(cond=_WHERE[where])
    off = _offset_to_anchor(tree_61, tmp_path, add.format(off=0))
    code, text, doc, _ = _mmubot_diff(
        tree_61, tmp_path, f"counter-restore-{where}", add.format(off=off), capsys,
        monkeypatch, data_dir,
    )  # fmt: skip
    assert doc is not None and doc["verdict"] == "crash", text
    assert code == 1
    assert "the recorder's state was changed by the code under test" in text


def test_the_recorder_lives_apart_at_a_random_address(baseline: Build) -> None:
    runs = [sandbox.run(f"{CALLS}:recorder_place", {}, [baseline], LIMITS) for _ in range(2)]
    assert all(r.ok for r in runs), [r.detail for r in runs]
    first, second = (r.value for r in runs)
    assert first["intact"] == 1
    # far from every object of the module, and not at the same place twice
    assert abs(first["log"] - first["data"]) > 1 << 30
    assert first["log"] != second["log"]
    assert (first["log"] - first["data"]) != (second["log"] - second["data"])


def test_the_recorder_s_mapping_ends_in_a_guard_page(baseline: Build) -> None:
    out = sandbox.run(f"{CALLS}:recorder_guard", {}, [baseline], LIMITS)
    assert out.failure == "crash" and out.signal == signal.SIGSEGV, out.detail


def test_a_changed_count_or_event_is_seen_by_the_ledger(baseline: Build) -> None:
    out = sandbox.run(f"{CALLS}:recorder_tamper", {}, [baseline], LIMITS)
    assert out.ok and out.value == [1, 0, 0], out.detail

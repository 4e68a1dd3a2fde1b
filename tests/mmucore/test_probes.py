"""Probe placement (mmucore/probe_marks.py, mmucore/probes.py) on small C functions of
our own, and the probe word in the recorder (mmucore/shim/mmu_shim.c).

The soundness test compiles each earlier function with its probes and the later one into
a program, runs both over every input, and requires: an input whose earlier run hit no
probe gives the same answer in both (that is what lets checks/prune.py skip it)."""

from __future__ import annotations

from pathlib import Path

import pytest

from mmuci import proc
from mmucore import probe_marks, probes
from mmucore.extract import Piece
from mmucore.validate import RefusedInput, check_piece

OLD = """int f(int x)
{
	int y = 0;

	if (x > 3)
		y = 1;
	switch (x) {
	case 1:
		y += 10;
		break;
	case 2:
		y += 20;
	default:
		y += 1;
	}
	for (int i = 0; i < x; i++)
		y += i;
	if (x == 7)
		goto out;
	y *= 2;
out:
	return y;
}
"""

# (name, transformation of OLD): each changes what some inputs compute, or nothing
EDITS = {
    "body-position": ("\t\ty = 1;\n", "\t\ty = 2;\n"),
    "condition": ("if (x > 3)", "if (x >= 3)"),
    "case-value": ("case 2:", "case 5:"),
    "case-body": ("\t\ty += 20;\n", "\t\ty += 21;\n"),
    "insert-statement": ("\ty *= 2;\n", "\ty *= 2;\n\tif (x == 9)\n\t\ty = -1;\n"),
    "insert-else": ("\t\ty = 1;\n\tswitch", "\t\ty = 1;\n\telse\n\t\ty = 5;\n\tswitch"),
    "label-target": ("out:\n\treturn y;", "out:\n\treturn y + 1;"),
    "loop-header": ("i < x; i++", "i < x - 1; i++"),
    "delete-statement": ("\t\tbreak;\n", ""),
    "goto-moved": ("\t\tgoto out;\n", "\t\treturn 99;\n"),
    "comment-only": ("\ty *= 2;\n", "\ty *= 2; /* twice */\n"),
    "body-to-block": ("\t\ty = 1;\n", "\t\t{ y = 1; y++; }\n"),
    "body-to-two-statements": ("\t\ty = 1;\n", "\t\ty = 1; y++;\n"),
    "wrap-in-if": ("\ty *= 2;\n", "\tif (x != 5) {\n\t\ty *= 2;\n\t}\n"),
    "unwrap-break": ("\t\ty += 10;\n\t\tbreak;\n", "\t\ty += 10;\n"),
}

# edits that only some inputs reach: their probes must leave the other inputs out (the
# rest, e.g. the first if, the loop, the return or a case value, are on every path)
PRUNES = {
    "body-position", "case-body", "insert-statement", "delete-statement", "goto-moved",
    "unwrap-break",
}  # fmt: skip


def _program(old_probed: str, new: str) -> str:
    return (
        "#include <stdio.h>\n#include <stdint.h>\nstatic uint64_t hit;\n"
        "static void mmu_shim_probe(uint64_t b) { hit |= b; }\n"
        + old_probed.replace("int f(", "int f_old(", 1)
        + new.replace("int f(", "int f_new(", 1)
        + "int main(void)\n{\n\tfor (int x = -2; x < 12; x++) {\n\t\thit = 0;\n"
        '\t\tint a = f_old(x);\n\t\tprintf("%d %d %d\\n", x, (int)hit, a != f_new(x));\n'
        "\t}\n\treturn 0;\n}\n"
    )


def _run(tmp_path: Path, c: str) -> list[tuple[int, int, int]]:
    src, exe = tmp_path / "p.c", tmp_path / "p"
    src.write_text(c)
    proc.run(["gcc", "-std=gnu11", "-O1", "-Wall", "-o", str(exe), str(src)])
    out = proc.run([str(exe)]).stdout
    return [tuple(int(v) for v in ln.split()) for ln in out.splitlines()]  # type: ignore[misc]


@pytest.mark.parametrize("name", sorted(EDITS))
def test_an_input_that_hits_no_probe_computes_the_same(name: str, tmp_path: Path) -> None:
    a, b = EDITS[name]
    assert a in OLD
    new = OLD.replace(a, b, 1)
    marks = probe_marks.function_marks(OLD, new)
    assert isinstance(marks, probe_marks.Marks)
    rows = _run(tmp_path, _program(probes.instrument(OLD, {2: marks}), new))
    assert rows and all(differs == 0 for _, hit, differs in rows if not hit), rows
    if name == "comment-only":
        assert not marks and all(hit == 0 for _, hit, _ in rows)
    else:
        assert any(d for *_, d in rows), "the edit changes no input: a test that cannot fail"
        if name in PRUNES:
            assert not all(hit for _, hit, _ in rows), "every input hits a probe: none prunes"


def test_a_statement_in_body_position_is_wrapped_and_lines_are_kept() -> None:
    new = OLD.replace("\t\ty = 1;\n", "\t\ty = 2;\n")
    got = probes.instrument(OLD, {4: probe_marks.function_marks(OLD, new)})  # type: ignore[dict-item]
    assert "if (x > 3)\n\t\t{ mmu_shim_probe(0x4ULL); y = 1; }\n" in got
    assert got.count("\n") == OLD.count("\n")


def test_a_changed_case_label_gets_its_probe_after_the_label() -> None:
    new = OLD.replace("case 2:", "case 5:")
    got = probes.instrument(OLD, {2: probe_marks.function_marks(OLD, new)})  # type: ignore[dict-item]
    assert "case 2: mmu_shim_probe(0x2ULL);" in got


def test_probes_of_several_later_revisions_share_one_call() -> None:
    one = probe_marks.function_marks(OLD, OLD.replace("\t\ty = 1;\n", "\t\ty = 2;\n"))
    two = probe_marks.function_marks(OLD, OLD.replace("\t\ty = 1;\n", "\t\ty = 3;\n"))
    got = probes.instrument(OLD, {2: one, 8: two})  # type: ignore[dict-item]
    assert "mmu_shim_probe(0xaULL); y = 1;" in got


def test_an_entry_mark_probes_the_function_on_its_first_line() -> None:
    old = "int h(int x)\n{\n\tstruct p { int a; } v = { x };\n\n\treturn v.a;\n}\n"
    got = probe_marks.function_marks(old, old.replace("int a;", "long a;"))
    assert isinstance(got, probe_marks.Marks) and got.entry
    assert probes.instrument(old, {2: got}).startswith("int h(int x)\n{ mmu_shim_probe(0x2ULL); ")


def test_kernel_code_may_not_call_a_probe() -> None:
    piece = Piece("function", "f", "a.c", 1, "void f(void)\n{\n\tmmu_shim_probe(0);\n}\n")
    with pytest.raises(RefusedInput, match="mmu_shim_probe"):
        check_piece(piece, {"f"})


@pytest.mark.slow
def test_a_write_to_either_copy_of_the_probe_word_is_tampering(
    tree_61, tmp_path_factory: pytest.TempPathFactory
) -> None:
    from mmucore import sandbox
    from mmucore.build import build
    from mmucore.extract import extract
    from mmucore.sandbox import Limits

    b = build(extract(tree_61.path, tree_61.commit), cache_dir=tmp_path_factory.mktemp("p"))
    call = "tests.mmucore.sandbox_calls:probe_tamper"
    out = sandbox.run(call, {}, [b], Limits(cpu_seconds=30, memory_mb=1024, wall_seconds=60))
    assert out.ok, out.detail
    # untouched: intact with the bits; the ledger's copy cleared; the log's copy cleared
    assert out.value == [[1, 5], [0, 0], [0, 5]]

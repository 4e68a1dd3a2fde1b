"""The translation unit: the pieces of a closure placed behind their lines."""

from __future__ import annotations

import pytest

from mmucore import closure, tu
from tests.mmucore.test_closure import index


def test_assemble_places_each_piece_behind_its_line() -> None:
    idx = index()
    c = closure.Closure(
        functions=[idx.functions["twice"], idx.functions["uses"]],
        macros=[idx.macros["LIMIT"]],
    )
    text, pieces = tu.assemble(c, "test 1234")
    assert text.startswith("/* mmu-ci translation unit: test 1234 */\n")
    assert [(k, n, f, line) for k, n, f, line, _ in pieces] == [
        ("macro", "LIMIT", "h.h", 1),
        ("function", "twice", "m.c", 2),
        ("function", "uses", "m.c", 6),
    ]
    lines = text.split("\n")
    at = lines.index("static int twice(int a)")
    assert lines[at - 1] == '#line 2 "m.c"'
    # prototypes of every function come before the first definition
    assert lines.index("int uses(struct box *b);") < at


def test_split_cuts_at_the_markers_of_these_pieces_only() -> None:
    idx = index()
    c = closure.Closure(functions=[idx.functions["twice"]], macros=[idx.macros["LIMIT"]])
    text, pieces = tu.assemble(c, "test 1234")
    parts = tu.split(text, [p[4] for p in pieces])
    assert parts.banner == "/* mmu-ci translation unit: test 1234 */"
    assert tu.SHIM_C_INCLUDE in parts.head and "#define LIMIT 4" in parts.head
    assert "static int twice(int a)" in parts.code and "twice" not in parts.head
    assert "mmu-ci: code" not in parts.code + parts.tail  # the markers are left out
    with pytest.raises(ValueError, match="not one"):
        tu.split(text, [p[4] for p in pieces] + ["a piece of another revision"])

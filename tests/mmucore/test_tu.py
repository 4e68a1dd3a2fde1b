"""The translation unit: the index over model files and the assembled text."""

from __future__ import annotations

from mmucore import cparse, tu

HEADER = "#define LIMIT 4\nstruct box { int n; };\nint twice(int a);\n"
SOURCE = (
    "#define LIMIT 8\n"
    "static int twice(int a)\n{\n\treturn 2 * a;\n}\n"
    "int uses(struct box *b)\n{\n\treturn twice(b->n) < LIMIT;\n}\n"
)


def _index() -> tu.Index:
    return tu.Index.build([cparse.parse("h.h", HEADER), cparse.parse("m.c", SOURCE)])


def test_the_first_definition_in_include_order_wins() -> None:
    idx = _index()
    assert idx.macros["LIMIT"].file == "h.h" and idx.macros["LIMIT"].text.endswith("4")
    assert [d.file for d in idx.macro_defs["LIMIT"]] == ["h.h", "m.c"]
    assert idx.functions["twice"].file == "m.c" and "twice" in idx.prototypes
    assert idx.lookup("struct box") is idx.types["struct box"]
    assert idx.lookup("nothing") is None


def test_facts_give_the_parameters_of_each_function() -> None:
    facts = _index().facts()
    assert facts.prototypes["uses"] == ("struct box *",)
    assert set(facts.definitions) >= {"twice", "uses", "LIMIT"}


def test_assemble_places_each_piece_behind_its_line() -> None:
    idx = _index()
    c = tu.Closure(
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

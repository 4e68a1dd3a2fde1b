"""The dependency closure: the index over model files, the facts it gives, and what the
entry points pull in."""

from __future__ import annotations

import pytest

from mmucore import closure, cparse
from mmucore.manifest import Manifest

HEADER = "#define LIMIT 4\nstruct box { int n; };\nint twice(int a);\n"
SOURCE = (
    "#define LIMIT 8\n"
    "static int twice(int a)\n{\n\treturn 2 * a;\n}\n"
    "int uses(struct box *b)\n{\n\treturn twice(b->n) < LIMIT;\n}\n"
)


def index() -> closure.Index:
    return closure.Index.build([cparse.parse("h.h", HEADER), cparse.parse("m.c", SOURCE)])


def test_the_first_definition_in_include_order_wins() -> None:
    idx = index()
    assert idx.macros["LIMIT"].file == "h.h" and idx.macros["LIMIT"].text.endswith("4")
    assert [d.file for d in idx.macro_defs["LIMIT"]] == ["h.h", "m.c"]
    assert idx.functions["twice"].file == "m.c" and "twice" in idx.prototypes
    assert idx.lookup("struct box") is idx.types["struct box"]
    assert idx.lookup("nothing") is None


def test_facts_give_the_parameters_of_each_function() -> None:
    facts = index().facts()
    assert facts.prototypes["uses"] == ("struct box *",)
    assert set(facts.definitions) >= {"twice", "uses", "LIMIT"}


def _manifest(pruned: tuple[str, ...] = (), keep: tuple[str, ...] = ()) -> Manifest:
    return Manifest(entry_points=(), model_files=("m.c",), pruned_structs=pruned, keep_fields=keep)


def test_a_macro_defined_twice_differently_is_refused() -> None:
    with pytest.raises(closure.ExtractError, match="LIMIT is defined more than once"):
        closure.close(index(), ["uses"], _manifest(), frozenset(), {})


PRUNED = (
    "struct box { int n; int unused; long more; };\n"
    "int helper(int a)\n{\n\treturn WARN_ON(a);\n}\n"
    "int uses(struct box *b)\n{\n\treturn helper(b->n);\n}\n"
)


def test_close_follows_calls_names_the_shimmed_and_prunes_to_the_touched_fields() -> None:
    idx = closure.Index.build([cparse.parse("m.c", PRUNED)])
    got = closure.close(idx, ["uses"], _manifest(("struct box",)), frozenset({"WARN_ON"}), {})
    assert sorted(d.name for d in got.functions) == ["helper", "uses"]
    assert got.calls == {"uses": {"helper"}, "helper": {"WARN_ON"}}
    assert got.shimmed == {"WARN_ON"}
    assert got.structs == {"struct box": ("n",)}
    # a field the checks keep stays, though no extracted code touches it
    kept = closure.close(
        idx, ["uses"], _manifest(("struct box",), ("more",)), frozenset({"WARN_ON"}), {}
    )
    assert kept.structs == {"struct box": ("n", "more")}


def test_an_unknown_callee_is_an_error_and_a_fallback_is_the_shims() -> None:
    idx = closure.Index.build([cparse.parse("m.c", PRUNED)])
    with pytest.raises(closure.ExtractError, match="helper .*calls WARN_ON, which neither"):
        closure.close(idx, ["uses"], _manifest(), frozenset(), {})
    got = closure.close(idx, ["uses"], _manifest(), frozenset(), {"WARN_ON": "int WARN_ON(int);"})
    assert got.fallbacks == {"WARN_ON": "int WARN_ON(int);"} and "WARN_ON" in got.shimmed

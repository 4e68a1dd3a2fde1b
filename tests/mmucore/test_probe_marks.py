"""Where a changed function needs probes (mmucore/probe_marks.py): what refuses a pair,
and when one probe at the function's entry stands for the whole function. Whether the
marks are sound is tests/mmucore/test_probes.py's (it runs both texts)."""

from __future__ import annotations

from mmucore import probe_marks
from tests.mmucore.test_probes import OLD


def test_a_changed_head_is_refused() -> None:
    got = probe_marks.function_marks(OLD, OLD.replace("int f(int x)", "int f(long x)"))
    assert isinstance(got, probe_marks.Refusal) and "head of f" in got.why


def test_a_changed_static_declaration_or_inner_type_probes_the_entry() -> None:
    old = "int g(int x)\n{\n\tstatic int n;\n\n\treturn x + n++;\n}\n"
    got = probe_marks.function_marks(old, old.replace("static int n;", "static int n = 1;"))
    assert isinstance(got, probe_marks.Marks) and got.entry
    old = "int h(int x)\n{\n\tstruct p { int a; } v = { x };\n\n\treturn v.a;\n}\n"
    got = probe_marks.function_marks(old, old.replace("int a;", "long a;"))
    assert isinstance(got, probe_marks.Marks) and got.entry


def test_a_body_that_does_not_parse_cleanly_probes_the_entry() -> None:
    old = "int k(int x)\n{\n\tfor_each_thing(x, y) {\n\t\tx++;\n\t}\n\treturn x;\n}\n"
    got = probe_marks.function_marks(old, old.replace("return x;", "return x + 1;"))
    assert isinstance(got, probe_marks.Marks) and got.entry and not got.points


def test_an_unchanged_or_comment_only_body_needs_no_probe() -> None:
    assert not probe_marks.function_marks(OLD, OLD)
    got = probe_marks.function_marks(OLD, OLD.replace("y *= 2;", "y *= 2; /* twice */"))
    assert isinstance(got, probe_marks.Marks) and not got


def test_an_inserted_statement_is_one_point_between_statements() -> None:
    new = OLD.replace("\ty *= 2;\n", "\ty *= 2;\n\ty--;\n")
    got = probe_marks.function_marks(OLD, new)
    assert isinstance(got, probe_marks.Marks) and not got.entry and not got.wraps
    at = OLD.encode().index(b"y *= 2;") + len(b"y *= 2;")
    assert got.points == {at}

"""Conditional compilation and the tree-sitter index, on small C written for the test."""

from __future__ import annotations

import pytest

from mmucore import cparse, cpp

CONFIG = {"CONFIG_X86_64": "1", "CONFIG_KVM": "1"}


@pytest.mark.parametrize(
    ("expr", "want"),
    [
        ("defined(CONFIG_X86_64)", True),
        ("defined CONFIG_X86_32", False),
        ("!defined(CONFIG_X86_32) && IS_ENABLED(CONFIG_KVM)", True),
        ("IS_ENABLED(CONFIG_PROVE_LOCKING)", False),
        ("UNKNOWN_MACRO", False),  # unknown identifiers are 0, as in cpp
        ("UNKNOWN_MACRO == 0", True),
        ("(2 + 3) * 4 == 20 && 1 << 4 == 16", True),
        ("0x10 > 010", True),  # hex 16 > octal 8
        ("1 ? 0 : 1", False),
        ("4 - 2 - 2", False),  # left associative
        ("1 / 0", False),  # no exception
        ("(((", False),  # unreadable: false, never a traceback
        ("KERNEL_VERSION(5, 1, 0) < 1", True),  # unknown function-like macro is 0
    ],
)
def test_if_expressions(expr: str, want: bool) -> None:
    assert cpp.eval_if(expr, CONFIG) is want


def test_resolve_keeps_line_numbers_and_learns_defines() -> None:
    src = "\n".join(
        [
            "#ifdef CONFIG_X86_64",  # 1
            "int on64;",  # 2
            "#else",  # 3
            "int on32;",  # 4
            "#endif",  # 5
            "#define HAVE_THING",  # 6
            "#if defined(HAVE_THING) && \\",  # 7
            "    IS_ENABLED(CONFIG_KVM)",  # 8
            "int thing;",  # 9
            "#elif 1",  # 10
            "int other;",  # 11
            "#endif",  # 12
            "#undef HAVE_THING",  # 13
            "#ifndef HAVE_THING",  # 14
            "int gone;",  # 15
            "#endif",  # 16
        ]
    )
    macros = dict(CONFIG)
    out = cpp.resolve(src, macros).split("\n")
    assert len(out) == 16
    assert out[1] == "int on64;" and out[3] == "" and out[8] == "int thing;"
    assert out[10] == "" and out[14] == "int gone;"
    assert out[5] == "#define HAVE_THING"  # kept for the index
    assert "HAVE_THING" not in macros  # undefined again at the end


def test_resolve_follows_includes_in_order() -> None:
    seen = []
    cpp.resolve('#include <linux/a.h>\n#if 0\n#include "b.h"\n#endif\n', {}, seen.append)
    assert seen == ["linux/a.h"]


def test_unbalanced_directives_do_not_raise() -> None:
    out = cpp.resolve("#endif\n#else\n#elif 1\nint x;\n#if 1\n", {})
    assert "int x;" in out


SRC = """
#define SQUARE(x) ((x) * (x))
#define LIMIT 3
typedef unsigned long long my_u64;
struct thing;
enum colour { RED, GREEN };
struct box {
	int a;
	union { int b; my_u64 c; };
	struct thing *next;
#define BOX_INNER 7
	unsigned flag:1;
};
static my_u64 counter __read_mostly = 1;
extern int elsewhere;
int proto(struct box *b);
static inline struct box *get_box(struct box *b, int n)
{
	int i;
	for (i = 0; i < LIMIT; i++)
		b->a += SQUARE(i) + helper(n) + RED;
again:
	if (!b->next) goto again;
	return b;
}
"""


def test_index_finds_every_kind_of_definition() -> None:
    idx = cparse.parse("t.c", SRC)
    by = {(d.kind, d.name): d for d in idx.defs}
    assert ("macro", "SQUARE") in by and by[("macro", "SQUARE")].params == ("x",)
    assert ("macro", "BOX_INNER") in by  # a #define inside a struct body is indexed
    assert ("type", "my_u64") in by and ("type", "struct box") in by
    assert by[("type", "enum colour")].enumerators == ("RED", "GREEN")
    assert ("global", "counter") in by and by[("global", "counter")].static
    assert ("global", "elsewhere") not in by  # extern is a declaration
    assert ("prototype", "proto") in by
    f = by[("function", "get_box")]
    assert f.static and f.line == 17
    assert cparse.return_type(f.node) == "struct box *"
    assert cparse.parameters(f.node) == (("struct box *", "b"), ("int", "n"))


def test_uses_of_a_function() -> None:
    idx = cparse.parse("t.c", SRC)
    f = next(d for d in idx.defs if d.name == "get_box")
    u = cparse.uses_of_node(f.node)
    assert set(u.calls) == {"SQUARE", "helper"}
    assert u.calls["helper"] == 20  # 0-based: the 21st line of SRC
    assert {"LIMIT", "RED"} <= set(u.idents)
    assert {"a", "next"} <= u.fields
    assert "struct box" in u.types
    assert cparse.local_names(f.node) >= {"b", "n", "i", "again"}


def test_uses_of_a_macro() -> None:
    d = cparse.Definition(
        "macro", "M", "t.h", 5, "#define M(p) (p->x + other(p) + (struct s *)0 + K)", params=("p",)
    )
    u = cparse.uses_of_macro(d)
    assert set(u.calls) == {"other"} and set(u.idents) == {"K"}
    assert "struct s" in u.types and "x" in u.fields


def test_hostile_text_parses_without_exceptions() -> None:
    hostile = "}}}{{{ int (* ;; #define\n static static x = ((((;\n" * 50
    ok = "static int ok(int a)\n{\n\treturn a;\n}\n"
    # the parser recovers: a real function on either side of the garbage is still found
    for text in (ok + hostile, hostile + "\n" + ok):
        idx = cparse.parse("t.c", text)
        found = [d for d in idx.defs if d.kind == "function"]
        assert [d.name for d in found] == ["ok"] and found[0].text == ok.rstrip("\n")

"""The lexer that agrees with gcc: tokens, lines, and what it refuses to guess at."""

from __future__ import annotations

import pytest

from mmucore import validate_lex as lex


def kinds(text: str) -> list[tuple[str, str]]:
    return [(t.kind, t.text) for t in lex.tokenize(text)]


def test_tokens_of_a_small_function() -> None:
    got = kinds('static int f(int a) { return a + 0x1f; } /* c */ // d\nchar *s = "x\\"y";')
    assert got[:6] == [
        ("ident", "static"),
        ("ident", "int"),
        ("ident", "f"),
        ("punct", "("),
        ("ident", "int"),
        ("ident", "a"),
    ]
    assert ("number", "0x1f") in got and ("string", '"x\\"y"') in got
    assert all(text not in ("c", "d") for _, text in got)  # comments dropped


def test_lines_follow_continuations_and_directives_start_lines() -> None:
    toks = lex.tokenize("#define A \\\n  1\nint b;\n  /* x */ #x\n")
    by_text = {t.text: t for t in toks}
    assert by_text["A"].line == 1 and by_text["1"].line == 2 and by_text["b"].line == 3
    assert toks[0].text == "#" and toks[0].bol
    assert by_text["int"].bol and not by_text["b"].bol


def test_digraphs_are_normalised() -> None:
    assert [t.text for t in lex.tokenize("%:define X <: :>")] == ["#", "define", "X", "[", "]"]


@pytest.mark.parametrize(
    ("text", "what"),
    [
        ("int a; /* open", "unterminated comment"),
        ('char *s = "open;\n', "unterminated literal"),
        ("int a = ??= 1;", "trigraph"),
        ('const char *s = R"(x)";', "raw string literal"),
        ("int a;\0", "NUL"),
        ("int a;\rint b;", "carriage return"),
    ],
)
def test_what_gcc_reads_differently_is_refused(text: str, what: str) -> None:
    with pytest.raises(lex.LexError, match=what):
        lex.tokenize(text)


def test_logical_lines_join_continuations() -> None:
    lines = lex.logical_lines("#define A \\\n 1\nint b;\n")
    assert [n for n, _ in lines][:2] == [1, 3]
    assert lines[0][1].replace(" ", "") == "#defineA1"

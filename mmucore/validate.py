"""Refuse untrusted C before it is compiled, and refuse a built module that reaches too far.

Every ``Piece.text`` comes from a kernel tree that a patch series may have changed, so it
may contain any C. ``check_translation_unit`` runs before the compiler sees the TU:
no preprocessor directive the extractor did not emit, no ``asm``, no ``_Pragma``, no
attribute that runs or places code, no ``__builtin_`` outside a short allow-list, no
Python C-API name, no name of mmu-ci's own recorder or driver, no way to a computed
code address, no declaration of a function the extraction does not know (the way to
reach ``system`` or ``fork``), no nested function. ``check_symbols`` and
``check_object`` run after the build: the module's undefined dynamic symbols must be on
an allow-list, its sections and sizes those of plain C; a refusal names the symbol and
the patch line that introduced it (mmucore.validate_symbols).
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

from mmucore import validate_ast
from mmucore.refusal import RefusedInput, refuse
from mmucore.shim_api import SHIM_DIR
from mmucore.validate_ast import LIBC_OBJECTS
from mmucore.validate_headers import dangerous_macros
from mmucore.validate_lex import (
    LexError,
    Token,
    check_tokens,
    logical_lines,
    paste_problem,
    shim_internal,
    tokenize,
)
from mmucore.validate_symbols import ALLOWED_LIBC, check_object, check_symbols

if TYPE_CHECKING:
    from mmucore.extract import Extraction, Piece

# this module is where callers find every check; the built module's are in validate_symbols
__all__ = ["RefusedInput", "check_object", "check_piece", "check_symbols", "check_translation_unit"]

# what the extractor itself writes into the TU besides the pieces
ALLOWED_SYSTEM_HEADERS = frozenset(
    "stddef.h stdint.h stdbool.h string.h limits.h stdarg.h errno.h".split()
)


def _known_functions(extraction: Extraction) -> set[str]:
    known = set(extraction.functions) | set(extraction.shimmed)
    known.update(p.name for p in extraction.pieces if p.kind == "function")
    return known


def _macro_params(piece: Piece, toks: list[Token]) -> set[str]:
    """Parameter names of a function-like macro (``#define NAME(`` with no blank)."""
    if not re.match(rf"\s*(?:#|%:)\s*define\s+{re.escape(piece.name)}\(", piece.text):
        return set()
    params = set()
    for t in toks[4:]:
        if t.text == ")":
            break
        if t.kind == "ident" or t.text == "...":
            params.add("__VA_ARGS__" if t.text == "..." else t.text)
    return params


def _check_pastes(piece: Piece, toks: list[Token]) -> None:
    """Refuse ``##`` that could build asm, _Pragma, an attribute, a builtin or a Py name."""
    bad = paste_problem(toks, _macro_params(piece, toks), start=3)
    if bad:
        raise refuse(piece, bad[0].line, bad[1])


def _check_macro_piece(piece: Piece, toks: list[Token]) -> None:
    """A macro piece is exactly one ``#define <its name>`` logical line."""
    if not toks or toks[0].text != "#":
        return
    if len(toks) < 3 or toks[1].text != "define" or toks[2].text != piece.name:
        raise refuse(piece, toks[0].line, f"a macro piece that is not '#define {piece.name}'")
    if any(t.bol for t in toks[1:]):
        raise refuse(piece, next(t.line for t in toks[1:] if t.bol), "a second directive line")
    _check_pastes(piece, toks)


def _check_names(piece: Piece, toks: list[Token], macros: frozenset[str]) -> None:
    """Refuse a name of mmu-ci's internals, a libc object, or a refused header macro."""
    dangerous = dangerous_macros()
    nxt = {id(a): b.text for a, b in zip(toks, toks[1:], strict=False)}
    if piece.kind == "macro":  # no parse of a replacement list: the cast by its tokens
        for a, b, c, d in zip(toks, toks[1:], toks[2:], toks[3:], strict=False):
            if (a.text, b.text, c.text, d.text) == ("(", "*", ")", "("):
                raise refuse(piece, a.line, "a function-pointer type (a cast to one?)")
    for t in toks:
        if t.kind != "ident":
            continue
        if shim_internal(t.text):
            raise refuse(
                piece,
                t.line,
                f"{t.text} is a name of mmu-ci's recorder, driver or glue, not of the "
                "kernel: kernel code may use only the shim's kernel-facing API "
                "(mmucore/shim/mmu_shim_kernel.h)",
            )
        if t.text in LIBC_OBJECTS:
            raise refuse(piece, t.line, f"{t.text}, an object of the C library")
        if piece.kind == "macro" and t.text in ALLOWED_LIBC and nxt.get(id(t)) != "(":
            raise refuse(piece, t.line, f"the address of {t.text}() taken (not a call)")
        if t.text in dangerous and t.text not in macros:
            raise refuse(
                piece,
                t.line,
                f"{t.text}, a macro of the C library or Python headers every translation "
                f"unit sees, is refused: {dangerous[t.text]}",
            )


def check_piece(
    piece: Piece,
    known: set[str],
    *,
    macros: frozenset[str] = frozenset(),
    fn_types: set[str] | None = None,
) -> None:
    """Refuse one untrusted fragment (see the module docstring).

    ``macros``: the names the extraction defines as macros (they replace a header's);
    ``fn_types``: typedef names of function (pointer) types across the extraction.
    """
    try:
        toks = tokenize(piece.text)
    except LexError as e:
        raise refuse(piece, e.line, e.what) from None
    body = toks
    if piece.kind == "macro" and toks and toks[0].text == "#":
        _check_macro_piece(piece, toks)
        body = toks[3:]
    else:
        for i, t in enumerate(toks):
            if t.text in ("#", "##"):
                nxt = toks[i + 1] if i + 1 < len(toks) else None
                what = f"#{nxt.text} directive" if nxt and nxt.kind == "ident" else t.text
                raise refuse(piece, t.line, f"a preprocessor {what} in {piece.name}")
    bad = check_tokens(body)
    if bad:
        raise refuse(piece, bad[0], bad[1])
    _check_names(piece, body, macros)
    if piece.kind != "macro":
        root = validate_ast.parse(piece.text)
        bad = validate_ast.check_declarations(root, known) or validate_ast.check_code_addresses(
            root, ALLOWED_LIBC, fn_types if fn_types is not None else set()
        )
        if bad:
            raise refuse(piece, bad[0], bad[1])


_LINE_RE = re.compile(r'#\s*(?:line\s+)?(\d+)(?:\s+"((?:[^"\\]|\\.)*)")?\s*$')
_INCLUDE_RE = re.compile(r'#\s*include\s*(?:"([^"]+)"|<([^>]+)>)\s*$')
_DEFINE_RE = re.compile(r"#\s*(define|undef)\s+([A-Za-z_]\w*)")


def _norm(s: str) -> str:
    return " ".join(t.text for t in tokenize(s))


def _allowed_include(name: str, system: bool) -> bool:
    if system:
        return name in ALLOWED_SYSTEM_HEADERS
    p = (SHIM_DIR / name).resolve()
    return p.parent == SHIM_DIR and p.is_file()


class _TuMap:
    """Maps TU lines to the tree file:line given by the ``#line`` directives."""

    def __init__(self, extraction: Extraction) -> None:
        self.pieces = extraction.pieces
        self.marks: list[tuple[int, int, str]] = []  # (tu line, tree line, file)

    def where(self, tu_line: int) -> tuple[Piece | None, str | None, int]:
        mark = None
        for m in self.marks:
            if m[0] < tu_line:
                mark = m
        if mark is None:
            return None, None, tu_line
        line = mark[1] + (tu_line - mark[0] - 1)
        for p in self.pieces:
            if p.file == mark[2] and p.line <= line < p.line + max(1, p.text.count("\n") + 1):
                return p, p.file, line
        return None, mark[2], line


def _refuse_tu(tumap: _TuMap, tu_lines: list[str], tu_line: int, reason: str) -> RefusedInput:
    piece, file, line = tumap.where(tu_line)
    text = tu_lines[tu_line - 1] if 0 < tu_line <= len(tu_lines) else ""
    return RefusedInput(
        reason, piece, file=file or "<translation unit>", line=line, source_line=text
    )


def _check_tu_directives(extraction: Extraction, tumap: _TuMap, tu_lines: list[str]) -> None:
    macros = {p.name: _norm(p.text) for p in extraction.pieces if p.kind == "macro"}
    for first, text in logical_lines(extraction.tu):
        if not text.lstrip().startswith(("#", "%:", "/*")):
            continue  # cannot be a directive: saves tokenising every line
        try:
            toks = tokenize(text)
        except LexError:
            continue  # reported by the token pass below, with its position
        if not toks or toks[0].text != "#":
            continue
        stripped = text.strip().replace("%:", "#", 1) if text.strip().startswith("%:") else text
        m = _LINE_RE.match(stripped.strip())
        if m:
            tumap.marks.append((first, int(m.group(1)), m.group(2) or ""))
            continue
        m = _INCLUDE_RE.match(stripped.strip())
        if m and _allowed_include(m.group(1) or m.group(2), m.group(2) is not None):
            continue
        m = _DEFINE_RE.match(stripped.strip())
        if m and m.group(2) in macros:
            if m.group(1) == "undef" or _norm(text) == macros[m.group(2)]:
                continue
        raise _refuse_tu(tumap, tu_lines, first, "a preprocessor line the extractor did not emit")


_CONDITIONALS = frozenset("if ifdef ifndef elif elifdef elifndef else endif".split())
_INTERPRETED = _CONDITIONALS | {"define", "undef"}  # the extractor evaluates these in headers


def check_dropped_directives(extraction: Extraction) -> None:
    """Refuse a directive the extractor left out of a piece (e.g. ``#include`` in a body).

    The extractor resolves conditionals and blanks every other directive line, so the
    code built would silently differ from the patched source; each piece carries its
    lines as the tree has them (``Piece.source``), which is what is read here."""
    for p in extraction.pieces:
        if p.kind == "macro" or ("#" not in p.source and "%:" not in p.source):
            continue
        region = p.source.split("\n")
        allowed = _CONDITIONALS if p.kind == "function" else _INTERPRETED
        try:
            toks = tokenize(p.source)
        except LexError as e:
            raise refuse(p, e.line, e.what) from None
        for i, t in enumerate(toks):
            if t.text != "#" or not t.bol or i + 1 == len(toks) or toks[i + 1].bol:
                continue
            name = toks[i + 1].text
            if name not in allowed:
                text = region[t.line - 1] if t.line <= len(region) else ""
                raise RefusedInput(
                    f"a #{name} directive inside {p.name}: the extractor leaves it out, so "
                    "mmu-ci would build code that differs from the patch",
                    p,
                    file=p.file,
                    line=p.line + t.line - 1,
                    source_line=text,
                )


def check_translation_unit(extraction: Extraction) -> None:
    """Raise RefusedInput unless every piece and the TU itself are safe to compile."""
    known = _known_functions(extraction)
    macros = frozenset(p.name for p in extraction.pieces if p.kind == "macro")
    fn_types: set[str] = set()
    for piece in extraction.pieces:
        if piece.kind != "macro" and "typedef" in piece.text:
            fn_types |= validate_ast.function_typedefs(validate_ast.parse(piece.text))
    for piece in extraction.pieces:
        check_piece(piece, known, macros=macros, fn_types=fn_types)
    check_dropped_directives(extraction)
    tu_lines = extraction.tu.split("\n")
    tumap = _TuMap(extraction)
    _check_tu_directives(extraction, tumap, tu_lines)
    try:
        toks = tokenize(extraction.tu)
    except LexError as e:
        raise _refuse_tu(tumap, tu_lines, e.line, e.what) from None
    code: list[Token] = []
    skip_line = False
    for t in toks:
        if t.bol:
            skip_line = t.text == "#"
        if not skip_line:
            code.append(t)
    bad = check_tokens(code)
    if bad:
        raise _refuse_tu(tumap, tu_lines, bad[0], bad[1])
    bad = validate_ast.check_declarations(validate_ast.parse(extraction.tu), known)
    if bad:
        raise _refuse_tu(tumap, tu_lines, bad[0], bad[1])

"""The translation unit assembled from a closure (`mmucore.closure`), and cut at its markers.

Pieces are placed in an order C accepts: macros, forward declarations, types (by-value
dependencies first), globals, the shim's stand-ins, prototypes, functions.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass

from mmucore import bitfields, cparse
from mmucore.closure import Closure, KeptType

TU_NAME = "mmu-ci-tu.c"
# The TU's three parts (mmucore/build_base.py compiles them apart): head (the shim, macros,
# types), code (globals and functions: what the revision contributes), tail (the generated
# C after the functions); each later part begins with its marker line, which carries the
# digest of the pieces' texts, so no piece can hold a marker line of its own TU.
SHIM_C_INCLUDE = '#include "mmu_shim.c"'
CODE_MARK = "/* mmu-ci: code {} */"
TAIL_MARK = "/* mmu-ci: tail {} */"


def _line(out: list[str], file: str, line: int) -> None:
    out.append(f'#line {line} "{file}"')


def assemble(c: Closure, banner: str) -> tuple[str, list[tuple[str, str, str, int, str]]]:
    """The TU text and its pieces (kind, name, file, line, text) in TU order."""
    out: list[str] = [f"/* mmu-ci translation unit: {banner} */"]
    out += ['#include "mmu_shim_kernel.h"', SHIM_C_INCLUDE]
    pieces: list[tuple[str, str, str, int, str]] = []

    def place(kind: str, d: cparse.Definition, text: str) -> None:
        _line(out, d.file, d.line)
        out.append(text)
        pieces.append((kind, d.name, d.file, d.line, text))

    def here() -> None:
        out.append(f'#line {len(out) + 2} "{TU_NAME}"')

    for d in sorted(c.macros, key=lambda d: (d.file, d.line)):
        place("macro", d, d.text)
    here()
    defined = {d.name for d, _, _ in c.types}
    for tag in sorted(c.tags | {n for n in defined if n.startswith(("struct ", "union "))}):
        out.append(f"{tag};")
    for d, chunks, _ in _topo(c.types):
        for i, (line, text) in enumerate(chunks):
            if i == len(chunks) - 1 and not text.rstrip().endswith(";"):
                text += ";"
            _line(out, d.file, line)
            out.append(text)
            pieces.append(("type", d.name, d.file, line, text))
    code_at = len(out)
    out.append(CODE_MARK)  # its digest is known once every piece is placed
    for d in c.globals:
        place("global", d, d.text)
    here()
    out += [c.fallbacks[name] for name in sorted(c.fallbacks)]
    out.append('#include "mmu_shim_stubs.h"')
    for d in c.functions:
        fn = d.tree
        body = fn.child_by_field_name("body")
        end = body.start_byte if body is not None else fn.end_byte
        head = (fn.text or b"")[: end - fn.start_byte].decode(errors="replace")
        _line(out, d.file, d.line)
        out.append(head.rstrip() + ";")
    for d in sorted(c.functions, key=lambda d: (d.file, d.line)):
        place("function", d, d.text)
    digest = _marks_digest(p[4] for p in pieces)
    out[code_at] = CODE_MARK.format(digest)
    out.append(TAIL_MARK.format(digest))
    here()
    out.append(bitfields.table([(d.name, d.node) for d, _, _ in c.types]))
    return "\n".join(out) + "\n", pieces


@dataclass(frozen=True)
class Parts:
    """A TU cut at its markers (left out): each part's text, lines as the TU has them."""

    banner: str
    head: str  # with the shim's C (SHIM_C_INCLUDE): only the shared object includes it
    code: str
    tail: str


def _marks_digest(texts: Iterable[str]) -> str:
    h = hashlib.sha256()
    for t in texts:
        h.update(t.encode(errors="replace") + b"\0")
    return h.hexdigest()[:32]


def split(text: str, piece_texts: Iterable[str]) -> Parts:
    """The parts of a TU made by assemble() from pieces with ``piece_texts`` (in TU order);
    raises ValueError when a marker is not there exactly once on a line of its own (then
    the TU is not ours to cut)."""
    lines = text.split("\n")
    marks = []
    digest = _marks_digest(piece_texts)
    for mark in (CODE_MARK.format(digest), TAIL_MARK.format(digest)):
        at = [i for i, ln in enumerate(lines) if ln == mark]
        if len(at) != 1:
            raise ValueError(f"the TU has {len(at)} lines {mark!r}, not one")
        marks.append(at[0])
    code, tail = marks
    if not 0 < code < tail or lines[2] != SHIM_C_INCLUDE:
        raise ValueError("the TU's parts are not in the order assemble() writes them")
    return Parts(  # the markers left out: they name the revision (its pieces' digest)
        banner=lines[0],
        head="\n".join(lines[1:code]) + "\n",
        code="\n".join(lines[code + 1 : tail]) + "\n",
        tail="\n".join(lines[tail + 1 :]),
    )


def _topo(types: list[KeptType]) -> list[KeptType]:
    by_name = {d.name: (d, t, s) for d, t, s in types}
    done: set[str] = set()
    order: list[KeptType] = []

    def visit(name: str, depth: int = 0) -> None:
        if name in done or name not in by_name or depth > 200:
            return
        done.add(name)
        for dep in sorted(by_name[name][2]):
            visit(dep, depth + 1)
        order.append(by_name[name])

    for d, _, _ in sorted(types, key=lambda x: (x[0].file, x[0].line)):
        visit(d.name)
    return order

"""The dependency closure of the entry points, struct pruning, and TU assembly.

Used by `mmucore.extract`; kept apart so each module stays small. Pieces are placed
in an order C accepts: macros, forward declarations, types (by-value dependencies
first), globals, the shim's stand-ins, prototypes, functions.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Literal

from tree_sitter import Node

from mmuci.errors import MmuCiError
from mmucore import bitfields, cparse, generations
from mmucore.manifest import Manifest

TU_NAME = "mmu-ci-tu.c"
# The TU's three parts (mmucore/build_base.py compiles them apart): head (the shim, macros,
# types), code (globals and functions: what the revision contributes), tail (the generated
# C after the functions); each later part begins with its marker line, which carries the
# digest of the pieces' texts, so no piece can hold a marker line of its own TU.
SHIM_C_INCLUDE = '#include "mmu_shim.c"'
CODE_MARK = "/* mmu-ci: code {} */"
TAIL_MARK = "/* mmu-ci: tail {} */"
_DEFINES = ("preproc_def", "preproc_function_def")


class ExtractError(MmuCiError):
    """A callee is neither in the model files nor in the shim (or the tree is unusable)."""


@dataclass
class Index:
    """First definition of each name across the model files, in include order."""

    functions: dict[str, cparse.Definition] = field(default_factory=dict)
    macros: dict[str, cparse.Definition] = field(default_factory=dict)
    types: dict[str, cparse.Definition] = field(default_factory=dict)
    globals: dict[str, cparse.Definition] = field(default_factory=dict)
    enumerators: dict[str, cparse.Definition] = field(default_factory=dict)
    prototypes: dict[str, cparse.Definition] = field(default_factory=dict)
    macro_defs: dict[str, list[cparse.Definition]] = field(default_factory=dict)
    order: dict[int, int] = field(default_factory=dict)  # id(def) -> position

    @classmethod
    def build(cls, files: Iterable[cparse.FileIndex]) -> Index:
        idx = cls()
        table = {
            "function": idx.functions,
            "macro": idx.macros,
            "type": idx.types,
            "global": idx.globals,
            "prototype": idx.prototypes,
        }
        for f in files:
            for d in f.defs:
                idx.order[id(d)] = len(idx.order)
                table[d.kind].setdefault(d.name, d)
                if d.kind == "macro":
                    idx.macro_defs.setdefault(d.name, []).append(d)
                for e in d.enumerators:
                    idx.enumerators.setdefault(e, d)
        return idx

    def lookup(self, name: str) -> cparse.Definition | None:
        for table in (self.functions, self.macros, self.globals, self.types, self.enumerators):
            if name in table:
                return table[name]
        return None

    def facts(self) -> generations.TreeFacts:
        fields = {}
        for s in ("struct kvm_mmu", "struct kvm_mmu_page"):
            d = self.types.get(s)
            if d is not None and d.node is not None:
                fields[s] = tuple(_all_fields(cparse.struct_body(d.node)))
        protos = {}
        for name, d in {**self.prototypes, **self.functions}.items():
            if d.node is not None:
                protos[name] = tuple(t for t, _ in cparse.parameters(d.node))
        defs = {**self.macros, **self.functions}
        return generations.TreeFacts(fields, defs, protos)


# a kept type: its definition, its chunks (line, text), the types it needs complete
_Type = tuple[cparse.Definition, list[tuple[int, str]], set[str]]


@dataclass
class Closure:
    functions: list[cparse.Definition] = field(default_factory=list)
    macros: list[cparse.Definition] = field(default_factory=list)
    # each type: its definition, its chunks (line, text) as placed, its strong dependencies
    types: list[_Type] = field(default_factory=list)
    globals: list[cparse.Definition] = field(default_factory=list)
    calls: dict[str, set[str]] = field(default_factory=dict)
    shimmed: set[str] = field(default_factory=set)
    fallbacks: dict[str, str] = field(default_factory=dict)  # name -> its declaration
    structs: dict[str, tuple[str, ...]] = field(default_factory=dict)
    tags: set[str] = field(default_factory=set)


def _all_fields(body: Node | None) -> list[str]:
    return [n for fd in cparse.field_declarations(body) for n in cparse.field_names(fd)]


def _prune(d: cparse.Definition, keep: set[str] | None) -> tuple[str, list[str], list[Node]]:
    """The definition's text with unwanted fields (keep None: none) and nested #defines
    blanked (lines kept), the kept field names, their nodes."""
    raw = bytearray(d.tree.text or b"")
    base = d.tree.start_byte
    kept: list[str] = []
    nodes: list[Node] = []

    def blank(n: Node) -> None:
        for i in range(n.start_byte - base, n.end_byte - base):
            if raw[i] != 0x0A:
                raw[i] = 0x20

    def walk(body: Node) -> bool:
        any_kept = False
        for fd in body.named_children:
            if fd.type == "comment":
                blank(fd)
                continue
            if fd.type.startswith("preproc_") and fd.type not in _DEFINES:
                raise ExtractError(
                    f"{d.file}:{fd.start_point[0] + 1}: a preprocessor directive inside "
                    f"{d.name} other than #define: mmu-ci would build something else than "
                    "the kernel; review that line by hand"
                )
            t = fd.child_by_field_name("type")
            decls = fd.children_by_field_name("declarator")
            inner = t.child_by_field_name("body") if t is not None else None
            if fd.type == "field_declaration" and not decls and inner is not None:
                ok = walk(inner)
            else:
                names = [cparse.declarator_name(x) for x in decls]
                names_s = [cparse.node_text(n) for n in names if n is not None]
                ok = fd.type == "field_declaration" and (
                    keep is None or any(n in keep for n in names_s)
                )
                if ok:
                    kept.extend(n for n in names_s if n)
                    nodes.append(fd)
            if not ok:
                blank(fd)
            any_kept = any_kept or ok
        return any_kept

    body = cparse.struct_body(d.tree)
    if body is not None:
        walk(body)
    return raw.decode(errors="replace"), kept, nodes


def close(
    index: Index,
    entry: list[str],
    manifest: Manifest,
    shim: frozenset[str],
    fallbacks: Mapping[str, str],
) -> Closure:
    """Everything the entry points need, to a fixpoint over the fields they touch."""
    touched: set[str] = set(manifest.keep_fields)
    for _ in range(8):
        c = _close_once(index, entry, manifest, shim, fallbacks, touched)
        if c[1] <= touched:
            return c[0]
        touched |= c[1]
    return c[0]


def _close_once(
    index: Index,
    entry: list[str],
    manifest: Manifest,
    shim: frozenset[str],
    fallbacks: Mapping[str, str],
    touched: set[str],
) -> tuple[Closure, set[str]]:
    """One pass of the closure with structs pruned to ``touched``; and the fields used."""
    c = Closure()
    seen: set[int] = set()
    fields_used: set[str] = set()
    work: list[cparse.Definition] = [index.functions[n] for n in entry]
    for name in manifest.extras:
        target = _resolve(index, name, shim, c, fallbacks)
        if target is not None and target is not True:
            work.append(target)
    while work:
        d = work.pop()
        if id(d) in seen:
            continue
        seen.add(id(d))
        if d.kind == "macro":
            _check_single(index, d)
            c.macros.append(d)
            uses, local = cparse.uses_of_macro(d), set[str]()
        elif d.kind == "type" and d.name in manifest.pruned_structs and d.node is not None:
            text, kept, nodes = _prune(d, touched)
            c.structs[d.name] = tuple(kept)
            uses = cparse.Uses()
            for n in nodes:
                u = cparse.uses_of_node(n)
                uses.idents.update(u.idents)
                uses.types.update(u.types)
            c.types.append((d, _chunks(d.line, text), _strong(nodes)))
            local = set()
        elif d.kind == "type" and d.name.startswith(("struct ", "union ")) and d.node is not None:
            text, kept, _ = _prune(d, None)  # a #define in the body is a macro of its own
            uses, local = cparse.uses_of_node(d.tree), set()
            c.structs[d.name] = tuple(f for f in _all_fields(cparse.struct_body(d.node)) if f)
            c.types.append((d, _chunks(d.line, text), _strong([d.tree])))
        elif d.kind == "type":
            uses, local = cparse.uses_of_node(d.tree), set()
            c.types.append((d, [(d.line, d.text)], _strong([d.tree])))
        else:
            uses, local = cparse.uses_of_node(d.tree), cparse.local_names(d.tree)
            (c.functions if d.kind == "function" else c.globals).append(d)
        fields_used |= uses.fields
        own = d.name
        for name, line in uses.calls.items():
            if name in local:
                continue
            c.calls.setdefault(own, set()).add(name)
            target = _resolve(index, name, shim, c, fallbacks)
            if target is None:
                raise ExtractError(
                    f"{own} ({d.file}:{line + 1}) calls {name}, which neither the model "
                    f"files ({', '.join(manifest.model_files[:3])}, ...) define nor mmu-ci's "
                    f"shim provides: the model cannot run this code (a kernel function new to "
                    f"the model needs adding to mmucore/shim/ or the manifest by mmu-ci's "
                    f"maintainers; anything that is not kernel code is refused)"
                )
            if target is not True:
                work.append(target)
        for name in (*uses.idents, *uses.types):
            if name in local or name == own:
                continue
            if name.startswith(("struct ", "union ")):
                c.tags.add(name)
            target = _resolve(index, name, shim, c, fallbacks)
            if target is not None and target is not True:
                work.append(target)
    return c, fields_used


def _check_single(index: Index, d: cparse.Definition) -> None:
    """A macro defined twice with different bodies: which one the code sees is unclear."""
    defs = index.macro_defs.get(d.name, [d])
    bodies = {" ".join(x.text.split()) for x in defs}
    if len(bodies) > 1:
        where = ", ".join(f"{x.file}:{x.line}" for x in defs)
        raise ExtractError(
            f"macro {d.name} is defined more than once with different bodies ({where}); "
            "mmu-ci cannot tell which definition the extracted code sees"
        )


def _resolve(
    index: Index, name: str, shim: frozenset[str], c: Closure, fallbacks: Mapping[str, str]
) -> cparse.Definition | Literal[True] | None:
    """True: the shim's; a Definition: extract it; None: unknown."""
    if name in shim:
        c.shimmed.add(name)
        return True
    d = index.lookup(name)
    if d is not None:
        return d
    if name in fallbacks:
        c.shimmed.add(name)
        c.fallbacks[name] = fallbacks[name]
        return True
    return None


def _strong(nodes: list[Node]) -> set[str]:
    """Type names a definition needs complete before it: typedefs and by-value tags."""
    out: set[str] = set()
    for root in nodes:
        stack = [root]
        while stack:
            n = stack.pop()
            if (
                n.type == "type_identifier"
                and n.parent is not None
                and n.parent.type
                not in (
                    "struct_specifier",
                    "union_specifier",
                    "enum_specifier",
                )
            ):
                out.add(cparse.node_text(n))
            if n.type in ("field_declaration", "type_definition"):
                t = n.child_by_field_name("type")
                decls = n.children_by_field_name("declarator")
                by_value = not decls or any(x.type != "pointer_declarator" for x in decls)
                if t is not None and t.type.endswith("_specifier") and by_value:
                    nm = t.child_by_field_name("name")
                    if nm is not None and t.child_by_field_name("body") is None:
                        out.add(f"{t.type.split('_')[0]} {cparse.node_text(nm)}")
            stack.extend(n.children)
    return out


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


def _chunks(first: int, text: str) -> list[tuple[int, str]]:
    """Runs of non-blank lines of a pruned definition, each with its line in the file."""
    out: list[tuple[int, str]] = []
    run: list[str] = []
    start = first
    for i, ln in enumerate(text.split("\n") + [""]):
        if ln.strip():
            if not run:
                start = first + i
            run.append(ln)
        elif run:
            out.append((start, "\n".join(run)))
            run = []
    return out


def _topo(types: list[_Type]) -> list[_Type]:
    by_name = {d.name: (d, t, s) for d, t, s in types}
    done: set[str] = set()
    order: list[_Type] = []

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

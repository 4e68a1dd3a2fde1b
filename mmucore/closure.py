"""The dependency closure of the entry points: every function, macro, type and global
they need from the model files, to a fixpoint over the struct fields they touch.

Used by `mmucore.extract`; `mmucore.tu` places what it finds into the translation unit.
A struct the manifest prunes keeps only the fields the closure touches; every other
struct keeps all its fields (its nested ``#define``s are macros of their own).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Literal

from tree_sitter import Node

from mmuci.errors import MmuCiError
from mmucore import cparse, generations
from mmucore.manifest import Manifest

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
KeptType = tuple[cparse.Definition, list[tuple[int, str]], set[str]]


@dataclass
class Closure:
    """What the entry points need (close() found it), with what the shim stands in for."""

    functions: list[cparse.Definition] = field(default_factory=list)
    macros: list[cparse.Definition] = field(default_factory=list)
    # each type: its definition, its chunks (line, text) as placed, its strong dependencies
    types: list[KeptType] = field(default_factory=list)
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

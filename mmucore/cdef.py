"""The cffi declarations of a build: the shim API, the extracted types and functions.

cffi's parser reads plain declarations only, so the extracted structs are exposed as
partial structs (`...;`, layout taken from the compiler) with the fields whose types
it can name; anonymous members are flattened; bitfields are left to
`mmu_shim_bitfield()` (cffi misplaces bitfields of anonymous structs in API mode).
"""

from __future__ import annotations

import functools
import re

from cffi import FFI, CDefError
from tree_sitter import Node

from mmuci.errors import MmuCiError
from mmucore import cparse
from mmucore.extract import FALLBACKS, SHIM_DIR, Extraction, Piece

_INT_WORDS = frozenset(
    "u8 u16 u32 u64 s8 s16 s32 s64 __u8 __u16 __u32 __u64 __s8 __s16 __s32 __s64 uint ulong "
    "phys_addr_t bool _Bool char short int long unsigned signed size_t".split()
)
_KNOWN_TYPES = frozenset(
    "u8 u16 u32 u64 s8 s16 s32 s64 uint ulong phys_addr_t atomic_t refcount_t rwlock_t "
    "spinlock_t".split()
)
_SHIM_TAGS = frozenset({"struct list_head", "struct hlist_node", "struct page"})
KERNEL_HEADER = "mmu_shim_kernel.h"


def read_shim_types(text: str) -> str:
    """The definitions of the shim's types cffi names fields with (``_KNOWN_TYPES``,
    ``_SHIM_TAGS``), as the text of mmu_shim_kernel.h has them, in its order: read from
    the header, never copied, so cffi's view of a shim type cannot drift from gcc's."""
    wanted = _KNOWN_TYPES | _SHIM_TAGS
    found: dict[str, str] = {}
    for d in cparse.parse(KERNEL_HEADER, text).defs:
        if d.kind == "type" and d.name in wanted and d.name not in found:
            found[d.name] = d.text if d.text.rstrip().endswith(";") else d.text + ";"
    missing = sorted(wanted - set(found))
    if missing:
        raise MmuCiError(
            f"{KERNEL_HEADER} defines no {', '.join(missing)}: the cdef names fields with "
            "them; define them there again, or drop them from mmucore/cdef.py's type names"
        )
    return "\n".join(found.values()) + "\n"


@functools.cache
def shim_types() -> str:
    """read_shim_types of the shipped mmu_shim_kernel.h."""
    return read_shim_types((SHIM_DIR / KERNEL_HEADER).read_text())


def shim_api() -> str:
    """mmu_shim.h as cffi reads it: integer #defines become `...`, other directives go."""
    out = []
    for line in (SHIM_DIR / "mmu_shim.h").read_text().splitlines():
        m = re.match(r"#define\s+([A-Z_][A-Z0-9_]*)\s+\S", line)
        if m:
            out.append(f"#define {m.group(1)} ...")
        elif not line.lstrip().startswith("#"):
            out.append(re.sub(r"\[[A-Z_][A-Z0-9_]*\]", "[...]", line))
    return "\n".join(out)


def _type_text(t: Node, ints: set[str], tags: set[str], pointer: bool) -> str | None:
    text = " ".join(cparse.node_text(t).split())
    if t.type in ("primitive_type", "sized_type_specifier"):
        return text
    if t.type == "type_identifier":
        return text if (text in ints or text in _KNOWN_TYPES) else None
    if t.type in ("struct_specifier", "union_specifier") and t.child_by_field_name("body") is None:
        return text if (pointer or text in tags or text in _SHIM_TAGS) else None
    return None


def _declarator(d: Node | None) -> str | None:
    """`*name[...]` from a field declarator; None for function pointers."""
    stars, arrays = "", ""
    while d is not None and d.type != "field_identifier":
        if d.type == "pointer_declarator":
            stars += "*"
        elif d.type == "array_declarator":
            arrays += "[...]"
        elif d.type != "parenthesized_declarator":
            return None
        inner = d.child_by_field_name("declarator")
        d = inner if inner is not None else (d.named_children[0] if d.named_children else None)
    return None if d is None else stars + cparse.node_text(d) + arrays


def _fields(body: Node | None, ints: set[str], tags: set[str]) -> list[str]:
    out: list[str] = []
    for fd in body.named_children if body is not None else ():
        if fd.type != "field_declaration" or any(c.type == "bitfield_clause" for c in fd.children):
            continue
        t = fd.child_by_field_name("type")
        decls = fd.children_by_field_name("declarator")
        if t is None:
            continue
        if not decls and t.child_by_field_name("body") is not None:
            out += _fields(t.child_by_field_name("body"), ints, tags)
            continue
        for d in decls:
            dec = _declarator(d)
            typ = _type_text(t, ints, tags, pointer=bool(dec and dec.startswith("*")))
            if dec and typ:
                out.append(f"{typ} {dec};")
    return out


def _spec(node: Node) -> Node | None:
    if node.type in ("struct_specifier", "union_specifier", "enum_specifier"):
        return node
    t = node.child_by_field_name("type")
    return t if t is not None and t.child_by_field_name("body") is not None else None


def extracted(extraction: Extraction) -> list[str]:
    """Declarations of the extracted typedefs, enums, structs, globals and functions."""
    ints: set[str] = set()
    decls: list[str] = []
    parsed: list[tuple[Piece, cparse.Definition]] = []
    joined: dict[tuple[str, str], list[Piece]] = {}  # a pruned struct is placed in chunks
    for p in extraction.pieces:
        if p.kind in ("type", "global"):
            joined.setdefault((p.kind, p.name), []).append(p)
    for chunks in joined.values():
        p = chunks[0]
        idx = cparse.parse(p.file, "\n".join(c.text for c in chunks))
        parsed.extend((p, d) for d in idx.defs if d.node is not None)
    tags = {d.name for p, d in parsed if d.name.startswith(("struct ", "union "))}
    decls += [f"{t};" for t in sorted(tags)]
    for p, d in parsed:
        node = d.tree
        if p.kind == "global":
            t = node.child_by_field_name("type")
            if t is not None and _type_text(t, ints, tags, False) in ("bool", "_Bool", "int"):
                decls.append(f"extern {cparse.node_text(t)} {d.name};")
        elif node.type == "type_definition" and d.name == p.name:
            t = node.child_by_field_name("type")
            words = set(cparse.node_text(t).split()) if t is not None else {"?"}
            dec = node.child_by_field_name("declarator")
            if words <= (_INT_WORDS | ints) and dec is not None and dec.type == "type_identifier":
                ints.add(d.name)
                decls.append(f"typedef int... {d.name};")
        elif d.name.startswith("enum ") and d.enumerators:
            decls.append(f"{d.name} {{ {', '.join(d.enumerators)}, ... }};")
        elif d.name in tags and (spec := _spec(node)) is not None:
            fields = _fields(spec.child_by_field_name("body"), ints, tags)
            decls.append(f"{d.name} {{ {' '.join(fields)} ...; }};")
    decls += [f"extern {FALLBACKS[n]}" for n in extraction.shimmed if n in FALLBACKS]
    for f in extraction.functions.values():
        params = ", ".join(f"{t} {n}".strip() for t, n in f.params) or "void"
        decls.append(f"{f.return_type} {f.name}({params});")
    return decls


def build_cdef(extraction: Extraction, driver_cdef: str = "") -> tuple[FFI, str, list[str]]:
    """An FFI with the whole cdef, its text, and the declarations cffi could not read."""
    base = [shim_types(), shim_api()]
    decls = extracted(extraction)
    if driver_cdef:
        decls.append(driver_cdef)
    ffi = _parses(base + decls)
    if ffi is not None:
        return ffi, "\n".join(base + decls), []
    good: list[str] = []
    dropped: list[str] = []
    for d in decls:
        if _parses(base + good + [d]) is not None:
            good.append(d)
        else:
            dropped.append(d)
    ffi = _parses(base + good)
    if ffi is None:
        raise MmuCiError("cffi cannot read the shim's own declarations: mmu_shim.h is broken")
    return ffi, "\n".join(base + good), dropped


def exports_cdef(driver_cdef: str) -> FFI:
    """An FFI that declares only a driver's own entry points (fixed-width C types)."""
    ffi = _parses([driver_cdef])
    if ffi is None:
        raise MmuCiError("cffi cannot read the driver's declarations: fix its cdef")
    return ffi


def _parses(parts: list[str]) -> FFI | None:
    ffi = FFI()
    try:
        ffi.cdef("\n".join(parts))
    except (CDefError, Exception):  # pycparser raises its own ParseError
        return None
    return ffi

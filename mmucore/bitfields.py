"""Bitfields of the extracted unions, for Python: cffi misplaces bitfields of anonymous
structs in API mode, so each TU gets `mmu_shim_bitfield(type, field, &shift, &width)`,
which measures the real layout in C (set the field to all ones, look at the bytes)."""

from __future__ import annotations

from tree_sitter import Node

from mmucore import cparse


def table(types: list[tuple[str, Node | None]]) -> str:
    """C of mmu_shim_bitfield(): position and width of each named bitfield, measured in C."""
    cases: list[str] = []
    for name, node in types:
        if not name.startswith(("struct ", "union ")) or node is None:
            continue
        for fname in _bitfields(cparse.struct_body(node)):
            cases.append(
                f'\tif (mmu_shim_streq(type, "{name}") && mmu_shim_streq(field, "{fname}")) {{\n'
                f"\t\t{name} u;\n\t\tmemset(&u, 0, sizeof(u));\n\t\tu.{fname} = -1;\n"
                f"\t\treturn mmu_shim_measure(&u, sizeof(u), shift, width);\n\t}}"
            )
    return (
        "int mmu_shim_bitfield(const char *type, const char *field, int *shift, int *width)\n"
        "{\n" + "\n".join(cases) + "\n\treturn -1;\n}\n"
    )


def _bitfields(body: Node | None) -> list[str]:
    out: list[str] = []
    for fd in cparse.field_declarations(body):
        if any(ch.type == "bitfield_clause" for ch in fd.children):
            out += [n for n in cparse.field_names(fd) if n]
    return out

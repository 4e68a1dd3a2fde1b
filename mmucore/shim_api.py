"""The shim's model API as Python reads it: its directory, and the event kinds and integer
constants of mmu_shim.h read from the header itself (tree-sitter, `mmucore.cparse`), so
the Python side never mirrors them by hand."""

from __future__ import annotations

import functools
from dataclasses import dataclass
from pathlib import Path

from mmuci.errors import MmuCiError
from mmucore import cparse
from mmucore.validate_lex import tokenize

SHIM_DIR = Path(__file__).resolve().parent / "shim"
API_HEADER = "mmu_shim.h"
EVENT_ENUM = "enum mmu_shim_event_kind"
EVENT_PREFIX = "MMU_EV_"


@dataclass(frozen=True)
class ShimConstants:
    """What mmu_shim.h defines: event kinds by value, integer macros by name."""

    event_kinds: tuple[str, ...]  # kind names without MMU_EV_, index = enum value
    defines: dict[str, int]  # every #define of mmu_shim.h whose value is one integer

    def kind(self, name: str) -> int:
        """The enum value of event kind ``name`` ("WARN" for MMU_EV_WARN)."""
        return self.event_kinds.index(name)


def _int_literal(text: str) -> int | None:
    toks = tokenize(text)
    if len(toks) != 1 or toks[0].kind != "number":
        return None
    lit = toks[0].text.rstrip("uUlL")
    try:
        return int(lit, 16) if lit[:2] in ("0x", "0X") else int(lit, 8 if lit[:1] == "0" else 10)
    except ValueError:
        return None


def _enum_values(d: cparse.Definition) -> list[tuple[str, int]]:
    assert d.node is not None
    spec = d.node if d.node.type == "enum_specifier" else d.node.child_by_field_name("type")
    body = spec.child_by_field_name("body") if spec is not None else None
    out: list[tuple[str, int]] = []
    nxt = 0
    for e in body.named_children if body is not None else ():
        if e.type != "enumerator":
            continue
        name, value = e.child_by_field_name("name"), e.child_by_field_name("value")
        if name is None:
            continue
        if value is not None:
            v = _int_literal(cparse.node_text(value))
            if v is None:
                raise MmuCiError(f"{API_HEADER}: {cparse.node_text(name)} = a non-literal")
            nxt = v
        out.append((cparse.node_text(name), nxt))
        nxt += 1
    return out


def read_constants(text: str) -> ShimConstants:
    """The event kinds and integer #defines of the text of mmu_shim.h."""
    idx = cparse.parse(API_HEADER, text)
    defines: dict[str, int] = {}
    kinds: list[tuple[str, int]] = []
    for d in idx.defs:
        parts = d.text.split(None, 2)
        if d.kind == "macro" and not d.params and len(parts) == 3:
            v = _int_literal(parts[2])
            if v is not None:
                defines[d.name] = v
        elif d.kind == "type" and d.name == EVENT_ENUM:
            kinds = _enum_values(d)
    names = [n for n, _ in kinds if n != f"{EVENT_PREFIX}_COUNT"]
    if [v for n, v in kinds if n in names] != list(range(len(names))) or not names:
        raise MmuCiError(f"{API_HEADER}: {EVENT_ENUM} must number its kinds 0, 1, 2, ...")
    if any(not n.startswith(EVENT_PREFIX) for n in names):
        raise MmuCiError(f"{API_HEADER}: every event kind must start with {EVENT_PREFIX}")
    return ShimConstants(tuple(n[len(EVENT_PREFIX) :] for n in names), defines)


@functools.cache
def constants() -> ShimConstants:
    """The constants of the shipped mmu_shim.h (read once)."""
    return read_constants((SHIM_DIR / API_HEADER).read_text())

"""Probes for sound pruning (checks/prune.py): where an earlier revision's code must record
that a state reached what a later revision changes.

A state whose run of the earlier revision reaches no changed statement runs the same code
in the later one up to its end (both are deterministic functions of the state), so the
later revision need not run it. That holds when the change is confined to function
bodies: a changed macro, type, global, feature, entry point or function head makes the
pair refused (``Refusal``), and the later revision runs every state.

`mmucore/probe_marks.py` finds the places in a changed function (a token diff of the two
bodies, mapped to the statements it touches); this module inserts them, one call per
place for every later revision's bit. A probe is ``mmu_shim_probe(bits)``: it sets the
bits of the later revisions in the recorder's ledger (mmucore/shim/mmu_shim.c), a name
the validator refuses in patch code. Probes are inserted within lines, so every ``#line``
and ``__LINE__`` stays as it was.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

from mmucore.probe_marks import Marks, Refusal, code_text, function_body, function_marks

if TYPE_CHECKING:
    from mmucore.extract import Extraction

FALLBACKS = ("tdp_mmu_enabled",)  # mmucore/extract.py FALLBACKS: a global when shimmed

PROBE = "mmu_shim_probe"
MAX_REVISIONS = 63  # one bit of the probe word per revision
FAULTED = 1 << 63  # set only by a run that faulted, hung or changed the recorder (all bits)


def _call(bits: int) -> str:
    return f"{PROBE}({bits:#x}ULL);"


def instrument(text: str, marks: dict[int, Marks]) -> str:
    """``text`` (one function) with the probes of every bit's marks inserted, within lines."""
    data = text.encode()
    body = function_body(data)
    points: dict[int, int] = {}
    wraps: dict[tuple[int, int], int] = {}
    for bit, m in marks.items():
        if m.entry and body is not None:
            points[body.start_byte + 1] = points.get(body.start_byte + 1, 0) | bit
        for p in m.points:
            points[p] = points.get(p, 0) | bit
        for w in m.wraps:
            wraps[w] = wraps.get(w, 0) | bit
    ins: list[tuple[int, int, int, str]] = []  # (offset, order, tie, text)
    for (a, z), bits in wraps.items():
        ins.append((a, 2, -z, "{ " + _call(bits) + " "))
        ins.append((z, 0, -a, " }"))
    for p, bits in points.items():
        ins.append((p, 1, 0, " " + _call(bits) + " "))
    out, at = [], 0
    for off, _, _, s in sorted(ins):
        out += [data[at:off], s.encode()]
        at = off
    out.append(data[at:])
    return b"".join(out).decode(errors="replace")


def _by_kind(ex: Extraction) -> dict[tuple[str, str], list[str]]:
    out: dict[tuple[str, str], list[str]] = {}
    for p in ex.pieces:
        out.setdefault((p.kind, p.name), []).append(p.text)
    return out


def pair_marks(old: Extraction, new: Extraction) -> dict[str, Marks] | Refusal:
    """Probe marks per function of ``old`` for the later revision ``new``, or why none can
    be placed (a change outside function bodies)."""
    if old.features != new.features:
        return Refusal("the tree's features differ")
    if old.entry_points != new.entry_points:
        return Refusal("the entry points differ")
    for name in sorted(set(old.structs) | set(new.structs)):
        if old.structs.get(name) != new.structs.get(name):
            return Refusal(f"a type changes: {name}")
    fallbacks = set(FALLBACKS)
    if fallbacks.intersection(old.shimmed) != fallbacks.intersection(new.shimmed):
        return Refusal("a declaration the shim stands in for differs")
    a, b = _by_kind(old), _by_kind(new)
    for key in sorted(set(a) | set(b)):
        kind, name = key
        if kind == "function":
            continue
        if [code_text(t) for t in a.get(key, [])] != [code_text(t) for t in b.get(key, [])]:
            return Refusal(f"a {kind} changes: {name}")
    out: dict[str, Marks] = {}
    for (kind, name), texts in a.items():
        if kind != "function" or (kind, name) not in b or b[(kind, name)] == texts:
            continue
        got = function_marks(texts[0], b[(kind, name)][0])
        if isinstance(got, Refusal):
            return got
        if got:
            out[name] = got
    return out


@dataclass(frozen=True)
class Probed:
    """An earlier revision with the probes for its later revisions (by bit)."""

    extraction: Extraction  # the TU with probes (the pieces are the tree's, as validated)
    refused: dict[int, str]  # bit -> why that later revision cannot be pruned
    probes: int  # how many probe places


def probe(old: Extraction, later: Sequence[tuple[int, Extraction]]) -> Probed:
    """``old`` with a probe bit for each ``(bit, later revision)``."""
    refused: dict[int, str] = {}
    per_fn: dict[str, dict[int, Marks]] = {}
    for bit, new in later:
        got = pair_marks(old, new)
        if isinstance(got, Refusal):
            refused[bit] = got.why
            continue
        for name, m in got.items():
            per_fn.setdefault(name, {})[bit] = m
    tu, count = old.tu, 0
    for p in old.pieces:
        if p.kind != "function" or p.name not in per_fn:
            continue
        marks = per_fn[p.name]
        count += sum(len(m.points) + len(m.wraps) + m.entry for m in marks.values())
        placed = f'#line {p.line} "{p.file}"\n{p.text}'
        at = tu.rfind(placed)
        if at < 0:
            raise RuntimeError(f"internal error of mmu-ci: {p.name} is not in its TU as placed")
        done = f'#line {p.line} "{p.file}"\n{instrument(p.text, marks)}'
        tu = tu[:at] + done + tu[at + len(placed) :]
    if tu == old.tu:
        return Probed(old, refused, 0)
    key = hashlib.sha256(f"probed\0{old.key}\0{tu}".encode()).hexdigest()
    return Probed(replace(old, tu=tu, key=key), refused, count)

"""What code a check runs in an extraction: its entry functions, every function they
call and every macro their texts name (the extraction's call graph), so a planner can
tell which checks a change can reach."""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

from checks.space import Check

_IDENT = re.compile(r"[A-Za-z_]\w*")
_REFS: dict[str, tuple[dict[str, frozenset[str]], frozenset[str]]] = {}


def _macro_refs(ex: Any) -> tuple[dict[str, frozenset[str]], frozenset[str]]:
    """Per function and macro of an extraction, the extracted macros its text names (an
    object-like macro such as KVM_MMU_ROOT_CURRENT is no call); and the macros the types
    name (an array size: they reach every check, as types do). By extraction key."""
    key = ex.key
    if key not in _REFS:
        if len(_REFS) > 64:
            _REFS.clear()
        pieces = ex.pieces
        macros = {p.name for p in pieces if p.kind == "macro"}
        texts: dict[str, str] = {}
        in_types: set[str] = set()
        for p in pieces:
            if p.kind in ("function", "macro"):
                texts[p.name] = texts.get(p.name, "") + "\n" + p.text
            elif p.kind == "type":
                in_types |= set(_IDENT.findall(p.text)) & macros
        refs = {n: frozenset(set(_IDENT.findall(t)) & macros - {n}) for n, t in texts.items()}
        _REFS[key] = (refs, frozenset(in_types))
    return _REFS[key]


def closure(ex: Any, entries: Sequence[str]) -> set[str]:
    """Every function and macro the entry functions reach in one extraction: the calls,
    and the macros named in the reached functions' and macros' texts."""
    functions = ex.functions
    refs = _macro_refs(ex)[0]
    seen: set[str] = set()
    todo = list(entries)
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        seen.add(name)
        if name in functions:
            todo.extend(functions[name].calls)
        todo.extend(refs.get(name, ()))
    return seen


def reaches_all(before: Any, after: Any, piece: str) -> bool:
    """A changed type, global or feature, or a macro a type names: every check runs it."""
    kind, _, name = piece.partition(" ")
    if kind not in ("function", "macro"):
        return True
    return kind == "macro" and any(name in _macro_refs(ex)[1] for ex in (before, after))


def untouched(chk: Check, before: Any, after: Any, changed: Sequence[str]) -> bool:
    """True when no changed piece ("kind name") is reachable from the check's entry
    functions, so both builds run the same code for it. Changed types or globals reach
    every check."""
    if any(reaches_all(before, after, piece) for piece in changed):
        return False
    names = [piece.partition(" ")[2] for piece in changed]
    reach = closure(before, chk.entry) | closure(after, chk.entry)
    return not reach.intersection(names)

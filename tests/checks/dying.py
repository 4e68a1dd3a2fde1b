"""Stand-in child functions for the bisection tests: the child dies on one state."""

from __future__ import annotations

import os
from typing import Any

from checks import child

DIE_AT = 1000  # obsolete_roots: prev_roots[2] = __pa(pae_root), outside the invariants (I3)
DIE_INSIDE_AT = 1  # obsolete_roots: mmu->root a shadow sp, nothing else: inside them


def _holds(payload: dict[str, Any], idx: int) -> bool:
    """Whether the child is to run state ``idx`` (its range, or one of its spans)."""
    return any(a <= idx < b for a, b in child.spans_of(payload))


def run_range(mods: list[Any], payload: dict[str, Any]) -> dict[str, Any]:
    """Like checks.child.run_chain, but a range holding DIE_AT kills the process."""
    if _holds(payload, DIE_AT):
        os.abort()  # as a fault the driver could not contain would
    return child.run_chain(mods, payload)


def run_range_inside(mods: list[Any], payload: dict[str, Any]) -> dict[str, Any]:
    """Like run_range, but the process dies on DIE_INSIDE_AT."""
    if _holds(payload, DIE_INSIDE_AT):
        os.abort()
    return child.run_chain(mods, payload)


run_chain = run_range  # the child has one function: a pair is a chain of two


EVERY = 997  # run_range_often: every multiple of it (but 0) kills the child


def run_range_often(mods: list[Any], payload: dict[str, Any]) -> dict[str, Any]:
    """abort() in some states: a range holding a multiple of EVERY (but 0) dies."""
    for lo, hi in child.spans_of(payload):
        if -(-max(lo, 1) // EVERY) * EVERY < hi:
            os.abort()
    return child.run_chain(mods, payload)


def run_range_blocked(mods: list[Any], payload: dict[str, Any]) -> dict[str, Any]:
    """Blocks in every state: a wait (futex) that no CPU-time limit sees."""
    import threading

    lock = threading.Lock()
    lock.acquire()
    lock.acquire()
    return child.run_chain(mods, payload)

"""Stand-in child functions for the bisection tests: the child dies on one state."""

from __future__ import annotations

import os
from typing import Any

from checks import child

DIE_AT = 1000  # obsolete_roots: prev_roots[2] = __pa(pae_root), outside the invariants (I3)
DIE_INSIDE_AT = 1  # obsolete_roots: mmu->root a shadow sp, nothing else: inside them


def run_range(mods: list[Any], payload: dict[str, Any]) -> dict[str, Any]:
    """Like checks.child.run_range, but a range holding DIE_AT kills the process."""
    if payload["lo"] <= DIE_AT < payload["hi"]:
        os.abort()  # as a fault the driver could not contain would
    return child.run_range(mods, payload)


def run_range_inside(mods: list[Any], payload: dict[str, Any]) -> dict[str, Any]:
    """Like run_range, but the process dies on DIE_INSIDE_AT."""
    if payload["lo"] <= DIE_INSIDE_AT < payload["hi"]:
        os.abort()
    return child.run_range(mods, payload)


def run_chain(mods: list[Any], payload: dict[str, Any]) -> dict[str, Any]:
    """Like checks.child.run_chain, but a range holding DIE_AT kills the process."""
    if payload["lo"] <= DIE_AT < payload["hi"]:
        os.abort()
    return child.run_chain(mods, payload)

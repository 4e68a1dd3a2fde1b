"""Stand-in child functions for the bisection tests: the child dies on one state."""

from __future__ import annotations

import os
from typing import Any

from checks import child

DIE_AT = 1000


def run_range(mods: list[Any], payload: dict[str, Any]) -> dict[str, Any]:
    """Like checks.child.run_range, but a range holding DIE_AT kills the process."""
    if payload["lo"] <= DIE_AT < payload["hi"]:
        os.abort()  # as a fault the driver could not contain would
    return child.run_range(mods, payload)


def run_chain(mods: list[Any], payload: dict[str, Any]) -> dict[str, Any]:
    """Like checks.child.run_chain, but a range holding DIE_AT kills the process."""
    if payload["lo"] <= DIE_AT < payload["hi"]:
        os.abort()
    return child.run_chain(mods, payload)

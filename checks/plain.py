"""The benchmarks' plain loop in the sandbox child (bench/bench_engine.py,
bench/bench_pipeline.py): states [lo, hi) of one check in one build, each set up and
called under the fault guard, with no observation. Only modules built with
``engine.build_one(..., plain=True)`` have it (checks/c/plain_check.c)."""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

from checks import recorder
from checks.child import Module
from checks.driver import entry
from checks.guard import guarded


def run_plain(mods: Sequence[Module], payload: dict[str, Any]) -> dict[str, Any]:
    """{"seconds", "cpu", "events"} of the plain loop over ``payload``'s range."""
    mod = mods[0]
    recorder.place(mod)
    plain_range = entry(mod.lib, str(payload["check"]), "plain_range")
    t0, c0 = time.perf_counter(), time.process_time()
    with guarded(mod, float(payload.get("hang_seconds", 1.0))):
        events = plain_range(int(payload["lo"]), int(payload["hi"]))
    cpu = time.process_time() - c0
    return {"seconds": time.perf_counter() - t0, "cpu": cpu, "events": int(events)}

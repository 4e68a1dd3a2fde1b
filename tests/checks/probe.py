"""A child function for tests: the fields one build's world writes before the call."""

from __future__ import annotations

from typing import Any

from checks import child


def fields_before(mods: list[Any], payload: dict[str, Any]) -> dict[str, Any]:
    """{"before": [the fields before the call, per state index in payload["indices"]]}."""
    check = str(payload["check"])
    return {"before": [child._trace(mods[0], check, int(i))["before"] for i in payload["indices"]]}


def digests_both_ways(mods: list[Any], payload: dict[str, Any]) -> dict[str, Any]:
    """The digests and statuses of states [lo, hi) in one run_range call (the odometer
    restores the last setup where only call-only dimensions change) and in one call per
    state (a full setup each): {"odometer": [...], "fresh": [...]}, each [digest words...,
    statuses...]."""
    from checks.driver import entry
    from checks.guard import guarded

    mod = mods[0]
    ffi, lib = mod.ffi, mod.lib
    run_range = entry(lib, str(payload["check"]), "run_range")
    lo, hi = int(payload["lo"]), int(payload["hi"])
    nc = lib.drv_ncomp()
    child.recorder.place(mod)
    out = {}
    for way, step in (("odometer", hi - lo), ("fresh", 1)):
        dig = ffi.new("uint64_t[]", (hi - lo) * nc)
        st = ffi.new("uint8_t[]", hi - lo)
        k = lo
        with guarded(mod):
            while k < hi:
                k += run_range(k, min(hi, k + step), dig + (k - lo) * nc, st + (k - lo))
        out[way] = [int(x) for x in dig] + [int(x) for x in st]
    return out

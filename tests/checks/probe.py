"""A child function for tests: the fields one build's world writes before the call."""

from __future__ import annotations

from typing import Any

from checks import child


def fields_before(mods: list[Any], payload: dict[str, Any]) -> dict[str, Any]:
    """{"before": [the fields before the call, per state index in payload["indices"]]}."""
    check = str(payload["check"])
    return {"before": [child._trace(mods[0], check, int(i))["before"] for i in payload["indices"]]}


def digests_both_ways(mods: list[Any], payload: dict[str, Any]) -> dict[str, Any]:
    """The whole-state words and statuses of states [lo, hi) in one run_range call (the
    odometer restores the last setup where only call-only dimensions change), in one call
    per state (a full setup each), and from rows_at (a full setup each, the words it
    recomputes beside the rows): {"odometer": [...], "fresh": [...], "rows_at": [...]},
    each [words..., statuses...]."""
    from checks.driver import entry
    from checks.guard import guarded

    mod = mods[0]
    ffi, lib = mod.ffi, mod.lib
    run_range = entry(lib, str(payload["check"]), "run_range")
    rows_at = entry(lib, str(payload["check"]), "rows_at")
    lo, hi = int(payload["lo"]), int(payload["hi"])
    n, nc = hi - lo, lib.drv_ncomp()
    child.recorder.place(mod)
    out = {}
    for way, step in (("odometer", n), ("fresh", 1)):
        whole = ffi.new("uint64_t[]", n)
        st = ffi.new("uint8_t[]", n)
        k = lo
        with guarded(mod):
            while k < hi:
                k += run_range(k, min(hi, k + step), whole + (k - lo), st + (k - lo))
        out[way] = [int(x) for x in whole] + [int(x) for x in st]
    idx = ffi.new("uint64_t[]", list(range(lo, hi)))
    rows = ffi.new("uint64_t[]", n * nc)
    whole, st = ffi.new("uint64_t[]", n), ffi.new("uint8_t[]", n)
    k = 0
    with guarded(mod):
        while k < n:
            k += rows_at(idx + k, n - k, rows + k * nc, whole + k, st + k)
    out["rows_at"] = [int(x) for x in whole] + [int(x) for x in st]
    return out

"""Cost of one sandbox call: child start-up, confinement, loading a module, one call.

Run: .venv/bin/python bench/sandbox_startup.py  (prints median and worst of N calls)
"""

from __future__ import annotations

import statistics
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from cffi import FFI

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from mmucore import sandbox  # noqa: E402


@dataclass(frozen=True)
class Build:
    key: str
    module_name: str
    path: Path
    sanitize: bool = False


def main(n: int = 20) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        ffi = FFI()
        ffi.cdef("int add(int, int);")
        ffi.set_source("_sbx_bench", "int add(int a, int b) { return a + b; }")
        so = Path(ffi.compile(tmpdir=tmp))
        build = Build("bench", "_sbx_bench", so)
        times = []
        for _ in range(n):
            t0 = time.perf_counter()
            out = sandbox.run("tests.mmucore.sandbox_calls:add", {"a": 1, "b": 2}, [build])
            times.append(time.perf_counter() - t0)
            assert out.ok and out.value == 3, out
        missing = sandbox.missing_confinement() or "none"
        print(f"sandbox.run start-up + one call, {n} runs: median "
              f"{statistics.median(times) * 1000:.0f} ms, worst {max(times) * 1000:.0f} ms; "
              f"missing confinement: {missing}")  # fmt: skip


if __name__ == "__main__":
    main()

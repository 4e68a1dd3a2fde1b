"""Dashboard pages with 10,000 series in SQLite (target: series list and series page
< 200 ms each).

Run: .venv/bin/python bench/bench_web.py [N]   (default 10,000 series). The database is
filled once through bot.service.results.store_report with reports made by
mmukit.reports from a real one (the demo's, `<data dir>/demo/report.json`, made by
`mmubot demo`) and kept in the temp directory for the next run. `mmubot serve` is started
as a real process on a free port of 127.0.0.1; each page is fetched over HTTP, the median
of N fetches printed with its ratio to the target.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

from sqlalchemy import select

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bot import config  # noqa: E402
from bot.store import db  # noqa: E402
from bot.store.models import CheckRow, Revision, Run, Series  # noqa: E402
from mmukit.reports import fill, variants  # noqa: E402

TARGET = 0.200
FETCHES = 15


def _template() -> dict:
    data = Path(os.environ.get("MMUCI_DATA_DIR") or Path.home() / ".local/share/mmu-ci")
    for d in (data, Path(os.environ.get("MMUCI_TEST_DATA_DIR") or "/nonexistent")):
        if (d / "demo" / "report.json").is_file():
            return json.loads((d / "demo" / "report.json").read_text())
    sys.exit(f"no {data}/demo/report.json: run `mmubot demo` first")


def _database(n: int) -> Path:
    d = Path(tempfile.gettempdir()) / f"mmuci-bench-web-{n}"
    cfg = config.load(environ={"MMUCI_DATA_DIR": str(d)})
    engine = db.open_engine(cfg)
    with db.session(engine) as s:
        have = s.query(Series).count()
    if have != n:
        engine.dispose()
        for f in d.glob("mmu-ci.sqlite3*"):
            f.unlink()
        engine = db.open_engine(cfg)
        t = time.monotonic()
        with db.session(engine) as s:
            fill(s, variants(_template(), n))
        print(f"filled {n:,} series in {time.monotonic() - t:.0f} s ({d})")
    else:
        print(f"reusing {n:,} series in {d}")
    engine.dispose()
    return d


def _finding(data: Path) -> tuple[int, int]:
    """A series whose newest run differs, and one of its differing check results."""
    engine = db.open_engine(config.load(environ={"MMUCI_DATA_DIR": str(data)}))
    with db.session(engine) as s:
        row = s.execute(
            select(Revision.series_id, CheckRow.id)
            .join(Run, Run.revision_id == Revision.id)
            .join(CheckRow, CheckRow.run_id == Run.id)
            .where(Run.verdict == "differs", CheckRow.verdict == "differs")
            .limit(1)
        ).one()
    engine.dispose()
    return row[0], row[1]


def _get(url: str) -> tuple[float, int]:
    t = time.perf_counter()
    with urllib.request.urlopen(url, timeout=30) as r:
        body = r.read()
    return time.perf_counter() - t, len(body)


def main() -> None:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 10_000
    data = _database(n)
    env = {**os.environ, "MMUCI_DATA_DIR": str(data), "MMUCI_WEB_REQUESTS_PER_MINUTE": "100000"}
    cmd = [sys.executable, "-m", "bot.cli", "serve", "--port", "0"]
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, text=True)
    try:
        line = proc.stdout.readline() if proc.stdout else ""
        base = line.split()[2].rstrip("/")
        middle = n // 2
        msgid = f"bench-{middle}-0@mmu-ci.example.org"
        finding, check = _finding(data)
        pages = [
            ("series list", "/series", True),
            ("series list, verdict=differs", "/series?verdict=differs", True),
            ("series list, tree+list filter", "/series?tree=debian-6.1&list=kvm", True),
            ("series list, subject search", "/series?q=dummy+root", True),
            ("series list, message-id search", f"/series?q={msgid}", True),
            ("series list, page 150", "/series?page=150", True),
            ("series page", f"/series/{middle}", True),
            ("series page (a finding)", f"/series/{finding}", True),
            ("/api/series", "/api/series", False),
            ("/api/series/<id>", f"/api/series/{middle}", False),
            ("difference page", f"/checks/{check}", False),
            ("history", "/history", False),
            ("status", "/status", False),
        ]  # fmt: skip
        load = os.getloadavg()[0]
        print(f"{n:,} series, median of {FETCHES} fetches, load average {load:.2f}")
        worst = 0.0
        for name, path, targeted in pages:
            _get(base + path)  # warm
            times = [_get(base + path)[0] for _ in range(FETCHES)]
            med = statistics.median(times)
            ratio = f"{med / TARGET:5.2f} of the target" if targeted else ""
            if targeted:
                worst = max(worst, med / TARGET)
            print(f"  {name:34s} {med * 1000:7.1f} ms  {ratio}")
        print(f"worst targeted page: {worst:.2f} of {TARGET * 1000:.0f} ms")
    finally:
        proc.terminate()
        proc.wait(timeout=30)


if __name__ == "__main__":
    main()

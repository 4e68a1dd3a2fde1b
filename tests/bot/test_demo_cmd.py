"""`mmubot demo`, the main job, run as a user runs it: through the CLI, real inbox and all."""

from __future__ import annotations

import json
import sys
from pathlib import Path

from mmucore import proc

REPO = Path(__file__).resolve().parents[2]


def test_demo_prepares_both_trees_and_checks_the_sample_series(data_dir: Path) -> None:
    r = proc.run(
        [sys.executable, "-m", "bot.cli", "demo"],
        cwd=REPO,
        extra_env={"MMUCI_DATA_DIR": str(data_dir)},
        timeout=600,
    )
    assert "debian-6.1: Linux 6.1.192" in r.stdout
    assert "debian-6.12: Linux 6.12." in r.stdout  # the Debian point release changes
    report = json.loads((data_dir / "demo" / "report.json").read_text())
    verdicts = [(p["index"], p["verdict"], p["nfc_claim"]) for p in report["patches"]]
    # a refactor claiming NFC, an out-of-scope comment, a behaviour change claiming NFC
    assert verdicts == [(1, "same", True), (2, "out-of-scope", False), (3, "differs", True)]
    assert [p["nfc_contradicted"] for p in report["patches"]] == [False, False, True]
    assert report["verdict"] == "differs"
    assert (data_dir / "demo" / "report.html").read_text().count("differs") >= 1
    assert "claims no functional change but differs" in " ".join(r.stdout.split())

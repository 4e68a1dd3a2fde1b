"""`mmubot demo`, the main job, run as a user runs it: through the CLI, real inbox and all."""

from __future__ import annotations

import email
import json
import sys
from pathlib import Path

from mmuci import proc
from tests.debian import V61, V612

REPO = Path(__file__).resolve().parents[2]


def test_demo_prepares_both_trees_and_checks_the_sample_series(data_dir: Path) -> None:
    r = proc.run(
        [sys.executable, "-m", "bot.cli", "demo"],
        cwd=REPO,
        extra_env={"MMUCI_DATA_DIR": str(data_dir)},
        timeout=600,
    )
    assert f"debian-6.1: Linux {V61}" in r.stdout
    assert f"debian-6.12: Linux {V612}" in r.stdout
    report = json.loads((data_dir / "demo" / "report.json").read_text())
    verdicts = [(p["index"], p["verdict"], p["nfc_claim"]) for p in report["patches"]]
    # a refactor claiming NFC, an out-of-scope comment, a behaviour change claiming NFC
    assert verdicts == [(1, "same", True), (2, "out-of-scope", False), (3, "differs", True)]
    assert [p["nfc_contradicted"] for p in report["patches"]] == [False, False, True]
    assert report["verdict"] == "differs"
    assert (data_dir / "demo" / "report.html").read_text().count("differs") >= 1
    assert "claims no functional change but differs" in " ".join(r.stdout.split())
    # the reply it would post: rendered in dry-run into an outbox of its own, nothing sent
    reply = email.message_from_bytes((data_dir / "demo" / "reply.eml").read_bytes())
    assert reply["In-Reply-To"] == f"<{report['series']['msgids'][0]}>"
    assert reply["Subject"].startswith("Re: [PATCH 0/3]")
    assert "patch 3/3 claims no functional" in reply.get_payload(decode=True).decode()
    assert "the reply mmu-ci would post (dry-run, nothing sent)" in r.stdout

"""`mmubot import REPORT.json`: saved reports into the project database, all or none."""

from __future__ import annotations

import json
import sys
from pathlib import Path

from sqlalchemy import func, select

from bot import config
from bot.store import db
from bot.store.models import Run, Series
from mmuci import proc
from tests.bot.web.conftest import make_report

REPO = Path(__file__).resolve().parents[2]


def _mmubot(tmp_path: Path, *args: str, check: bool = True):
    return proc.run(
        [sys.executable, "-m", "bot.cli", "import", *args],
        cwd=REPO,
        extra_env={"MMUCI_DATA_DIR": str(tmp_path / "data")},
        timeout=120,
        check=check,
    )


def _counts(tmp_path: Path) -> tuple[int, int]:
    engine = db.open_engine(config.load(environ={"MMUCI_DATA_DIR": str(tmp_path / "data")}))
    with db.session(engine) as s:
        out = (s.scalar(select(func.count()).select_from(Series)),
               s.scalar(select(func.count()).select_from(Run)))  # fmt: skip
    engine.dispose()
    return out


def test_import_stores_each_report(tmp_path: Path) -> None:
    files = []
    for n in (1, 2):
        f = tmp_path / f"r{n}.json"
        f.write_text(json.dumps(make_report(n)))
        files.append(str(f))
    r = _mmubot(tmp_path, *files, "--list", "kvm")
    assert r.stdout.splitlines() == [
        f"{files[0]}: run 1, series 1 v1: differs — KVM: x86/mmu: toy series 1",
        f"{files[1]}: run 2, series 2 v1: differs — KVM: x86/mmu: toy series 2",
    ]
    assert _counts(tmp_path) == (2, 2)


def test_a_bad_file_imports_nothing_and_says_why(tmp_path: Path) -> None:
    good, bad = tmp_path / "good.json", tmp_path / "bad.json"
    good.write_text(json.dumps(make_report(1)))
    bad.write_text('{"hello": 1}')
    r = _mmubot(tmp_path, str(good), str(bad), check=False)
    assert r.returncode == 2 and "not a report that mmubot check --json FILE writes" in r.stderr
    assert _counts(tmp_path) == (0, 0)
    r = _mmubot(tmp_path, str(tmp_path / "missing.json"), check=False)
    assert r.returncode == 2 and "cannot read" in r.stderr and "Traceback" not in r.stderr

"""The dashboard in-process (Starlette's test client) over a SQLite database of its own,
filled with reports made by the real report model (bot.report, checks.result)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from bot import config
from bot.report import PatchReport, Report
from bot.service.results import store_report
from bot.store import db
from checks.result import CheckResult, DiffGroup, Example
from checks.verdict import Verdict

TOKEN = "s3cret-token-for-tests"


def make_report(
    n: int,
    *,
    subject: str = "",
    author: str = "A. U. Thor <author@example.org>",
    finding: bool = True,
    trace_line: str = "write_lock(&kvm->mmu_lock)",
) -> dict:
    """A `check --json` report (through Report.to_json) of a two-patch series ``n``."""
    ids = [f"toy-{n}-{i}@example.org" for i in range(3)]
    subject = subject or f"KVM: x86/mmu: toy series {n}"
    ex = Example(
        {"roots_to_free": "KVM_MMU_ROOT_CURRENT", "mmu->root": "shadow sp#3"},
        [trace_line, "write_unlock(&kvm->mmu_lock)", "! sp#3 freed = no"],
        [
            trace_line,
            "kvm_mmu_prepare_zap_page(sp#3)",
            "write_unlock(&kvm->mmu_lock)",
            "! sp#3 freed = freed by kvm_mmu_commit_zap_page  (was no)",
        ],
        index=18,
    )
    outside = Example({"roots_to_free": "~0UL"}, ["a"], ["b"], 40, ("I8",))
    groups = (
        DiffGroup(("zap", "freed"), 60258, True, (), None, ex, also_outside=12),
        DiffGroup(("locks",), 7, False, ("I8",), None, outside),
    )
    inv = {"I8": "roots_to_free holds only KVM_MMU_ROOT_* bits"}
    bad = CheckResult("free_roots", Verdict.DIFFERS, 200000, 60258, 19, groups, invariants=inv,
                      timings={"run": 2.0})  # fmt: skip
    ok = CheckResult("free_roots", Verdict.SAME, 200000, 0, 0, (), timings={"run": 1.0})
    p1 = PatchReport(1, f"{subject} (1/2)", ids[1], Verdict.SAME, "same", True, checks=[ok])
    p2 = PatchReport(
        2,
        f"{subject} (2/2)",
        ids[2],
        Verdict.DIFFERS if finding else Verdict.SAME,
        "free_roots differs" if finding else "same",
        True,
        checks=[bad if finding else ok],
        scope={"files": ["arch/x86/kvm/mmu/mmu.c"], "functions": ["function mmu_free_root_page"]},
    )
    series = {
        "source": ids[0],
        "msgid": ids[0],
        "subject": subject,
        "revision": 1,
        "author": author,
        "msgids": ids,
        "lore_url": "https://lore.example.org/kvm",
        "patches": [
            {"index": 1, "subject": p1.subject, "msgid": ids[1]},
            {"index": 2, "subject": p2.subject, "msgid": ids[2]},
        ],
    }
    base = {"tree": "debian-6.1", "version": "6.1.192", "commit": "ad03f84ed25a" * 3,
            "reason": "base-commit ad03f84ed25a found in debian-6.1"}  # fmt: skip
    r = Report(series, base, [p1, p2], p2.verdict, "2 patch(es)", timings={"total": 3.5},
               reproduce=f"mmubot check {ids[0]}")  # fmt: skip
    return json.loads(json.dumps(r.to_json(), default=str))


@pytest.fixture
def cfg(tmp_path: Path) -> config.Config:
    return config.load(
        environ={
            "MMUCI_DATA_DIR": str(tmp_path / "data"),
            "MMUCI_WEB_TOKEN": TOKEN,
            "MMUCI_WEB_PAGE_SIZE": "2",
            "MMUCI_WEB_RUNS_PER_HOUR": "5",
        }
    )


@pytest.fixture
def engine(cfg: config.Config):
    e = db.open_engine(cfg)
    yield e
    e.dispose()


def store(engine, *reports: dict, list_name: str = "kvm") -> list[int]:
    """Store reports; the ids of their runs."""
    with db.session(engine) as s:
        return [store_report(s, r, list_name=list_name).id for r in reports]


@pytest.fixture
def client(cfg: config.Config, engine) -> Iterator:
    from starlette.testclient import TestClient

    from bot.web.app import create_app

    with TestClient(create_app(cfg, engine), base_url="http://127.0.0.1") as c:
        yield c

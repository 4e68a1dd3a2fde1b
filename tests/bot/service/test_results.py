"""Reports into the database: series across revisions, one Run per job, check rows."""

from __future__ import annotations

import copy
import json

import pytest
from sqlalchemy import func, select

from bot.service.results import ReportError, bare_subject, series_key, store_report
from bot.store import db
from bot.store.models import CheckRow, Job, Revision, Run, Series


def _report(revision: int = 1, change_id: str | None = "20261202-roots-abc") -> dict:
    """The keys `check --json` writes that storing reads (values made up here)."""
    msgids = [f"v{revision}-{i}@example.org" for i in range(3)]
    check = {"name": "free_roots", "verdict": "differs", "states": 22032000, "differing": 15480,
             "timings": {"run": 8.1}}  # fmt: skip
    skipped = {"name": "pgd_switch", "verdict": "skipped", "states": 0, "timings": {}}
    return {
        "series": {
            "subject": "KVM: x86/mmu: Tidy up root freeing",
            "cover_subject": f"[PATCH v{revision} 0/2] KVM: x86/mmu: Tidy up root freeing",
            "author": "A. U. Thor <Author@example.org>",
            "change_id": change_id,
            "revision": revision,
            "msgids": msgids,
            "base_commit": "ad03f84ed25a",
            "patches": [
                {"index": 1, "subject": "KVM: x86/mmu: one", "msgid": msgids[1]},
                {"index": 2, "subject": "KVM: x86/mmu: two", "msgid": msgids[2]},
            ],
        },
        "base": {"tree": "debian-6.1", "commit": "ad03f84ed25a"},
        "patches": [
            {"index": 1, "verdict": "same", "checks": [skipped]},
            {"index": 2, "verdict": "differs", "checks": [check, skipped]},
        ],
        "whole_series": {"verdict": "differs", "checks": [check]},
        "verdict": "differs",
        "reason": "patch 2 differs",
        "exit_status": 1,
        "timings": {"total": 15.7},
    }


def test_revisions_of_one_series_share_its_row(engine):
    with db.session(engine) as s:
        store_report(s, _report(1), list_name="kvm")
        store_report(s, _report(2), list_name="kvm")
    with db.session(engine) as s:
        (series,) = s.scalars(select(Series)).all()
        assert [r.revision for r in series.revisions] == [1, 2]
        assert series.subject == "KVM: x86/mmu: Tidy up root freeing"
        assert [p.index for p in series.revisions[1].patches] == [1, 2]


def test_without_change_id_the_author_and_bare_subject_tie_revisions():
    a = series_key("[PATCH v1 0/2] KVM: x86/mmu: Tidy", "A <a@EXAMPLE.org>", None)
    b = series_key("[PATCH v3 0/2] KVM: x86/mmu: Tidy", "A. Other Name <a@example.org>", None)
    assert a == b == "subject:a@example.org:kvm: x86/mmu: tidy"
    assert bare_subject("[RFC PATCH v2 3/9] [kvm-unit-tests] x") == "x"


def test_a_job_has_one_run_whatever_stores_it_again(engine):
    with db.session(engine) as s:
        job = Job(key="v1-0@example.org", ref="v1-0@example.org", trigger="watch")
        s.add(job)
        s.flush()
        first = store_report(s, _report(1), job=job).id
        again = store_report(s, _report(1), job=job).id
    assert first == again
    with db.session(engine) as s:
        assert s.scalar(select(func.count()).select_from(Run)) == 1
        run = s.scalar(select(Run))
        assert run.verdict == "differs" and run.tree == "debian-6.1" and run.seconds == 15.7
        assert json.loads(run.report)["reason"] == "patch 2 differs"
        rows = s.scalars(select(CheckRow).order_by(CheckRow.patch_index)).all()
        assert [(r.patch_index, r.check, r.differing) for r in rows] == [
            (0, "free_roots", 15480),  # the whole series
            (2, "free_roots", 15480),  # skipped checks are not rows
        ]


def test_the_same_revision_number_posted_again_is_a_new_revision(engine):
    again = copy.deepcopy(_report(1))
    again["series"]["msgids"] = ["resend-0@example.org", "resend-1@example.org"]
    again["series"]["patches"] = [{"index": 1, "subject": "x", "msgid": "resend-1@example.org"}]
    with db.session(engine) as s:
        store_report(s, _report(1))
        store_report(s, again)
        assert sorted(s.scalars(select(Revision.revision))) == [1, 2]


def test_not_a_report_is_refused_with_what_it_lacks(engine):
    refused = pytest.raises(ReportError, match="not a report that mmubot check --json")
    with db.session(engine) as s, refused:
        store_report(s, {"verdict": "same"})
    broken = _report(1)
    del broken["series"]["msgids"]
    with db.session(engine) as s, pytest.raises(ReportError, match="msgids"):
        store_report(s, broken)

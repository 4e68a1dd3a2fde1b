"""Many stored reports from one real one: for the dashboard's tests and its benchmark.

`variants(report, n)` makes ``n`` reports shaped like ``report`` (a `check --json` document
the pipeline wrote), each its own series: its own subject, author, message-ids, list, and
a verdict drawn from the vocabulary (a finding keeps the template's groups and examples;
clean ones keep only the checks' counts, as most real series are). `fill` stores them
through bot.service.results.store_report, the path a job or `mmubot import` takes.
"""

from __future__ import annotations

import json
import random
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

from sqlalchemy import update
from sqlalchemy.orm import Session

from bot.service.results import store_report
from bot.store.models import Revision, Series, utcnow

AUTHORS = ["A. U. Thor <author@example.org>", "Rev Iewer <reviewer@example.org>",
           "Pat Cher <patcher@example.net>", "Ma In <maint@example.com>",
           "Ker Nel <kernel@example.org>"]  # fmt: skip
LISTS = ["kvm", "linux-kernel", "kvm-x86"]
TOPICS = ["root freeing", "the root cache", "obsolete roots", "guest-mode roots",
          "PAE roots", "the dummy root", "TDP MMU roots", "fast pgd switch"]  # fmt: skip
# the verdicts a series ends in, roughly as often as on a list (most are out of scope)
MIX = [("out-of-scope", 60), ("same", 20), ("differs", 8), ("differs-outside-invariants", 5),
       ("apply-error", 4), ("build-error", 2), ("crash", 1)]  # fmt: skip
EXIT = {"out-of-scope": 0, "same": 0, "differs": 1, "differs-outside-invariants": 1,
        "crash": 1, "apply-error": 2, "build-error": 2}  # fmt: skip


def _clean(p: dict[str, Any], verdict: str) -> None:
    """A patch that ended in ``verdict`` without a finding: checks keep their counts only."""
    p["verdict"], p["nfc_contradicted"] = verdict, False
    for c in p.get("checks") or ():
        if c["verdict"] != "skipped":
            c.update(verdict="same", groups=[], differing=0, differing_inside=0,
                     differing_outside=0, crash=None)  # fmt: skip
    if verdict == "out-of-scope":
        p["checks"] = []


def variant(template: dict[str, Any], i: int, rng: random.Random) -> dict[str, Any]:
    """The ``i``-th report shaped like ``template``: its own series and verdict."""
    r: dict[str, Any] = json.loads(json.dumps(template))  # a deep copy, faster for JSON
    verdict = rng.choices([v for v, _ in MIX], [w for _, w in MIX])[0]
    s = r["series"]
    topic = TOPICS[i % len(TOPICS)]
    s["subject"] = s["cover_subject"] = f"KVM: x86/mmu: Rework {topic} (#{i})"
    s["author"] = AUTHORS[i % len(AUTHORS)]
    s["change_id"] = None
    ids = [f"bench-{i}-{k}@mmu-ci.example.org" for k in range(len(s["msgids"]))]
    s["msgids"], s["msgid"], s["source"] = ids, ids[0], ids[0]
    for k, p in enumerate(s.get("patches") or (), start=1):
        p["msgid"] = ids[k] if k < len(ids) else f"bench-{i}-p{k}@mmu-ci.example.org"
        p["author"] = s["author"]
    for p, sp in zip(r["patches"], s.get("patches") or (), strict=False):
        p["msgid"] = sp["msgid"]
    if verdict != "differs":
        for p in [*r["patches"], *([r["whole_series"]] if r.get("whole_series") else [])]:
            _clean(p, "same" if verdict in ("crash", "differs-outside-invariants") else verdict)
        r["nfc_contradicted"] = []
    r["verdict"] = verdict
    r["exit_status"] = EXIT[verdict]
    r["reason"] = f"{verdict} (generated from the demo series' report, #{i})"
    r["reproduce"] = f"mmubot check {ids[0]}"
    return r


def variants(template: dict[str, Any], n: int, seed: int = 14) -> Iterator[dict[str, Any]]:
    rng = random.Random(seed)
    for i in range(n):
        yield variant(template, i, rng)


def fill(s: Session, reports: Iterator[dict[str, Any]], days: int = 180) -> int:
    """Store the reports (one series each), spread over the last ``days`` days: a list of a
    few months, newest first. Returns how many were stored."""
    now, n = utcnow(), 0
    for i, report in enumerate(reports):
        run = store_report(s, report, list_name=LISTS[i % len(LISTS)])
        when = now - timedelta(days=days) + timedelta(seconds=i * days * 86400 // 10_000)
        rev = s.get(Revision, run.revision_id)
        assert rev is not None
        rev.posted_at = when - timedelta(hours=1 + i % 7)
        rev.received_at = when
        run.created_at = when
        s.execute(update(Series).where(Series.id == rev.series_id).values(updated_at=when))
        n += 1
    s.flush()
    return n

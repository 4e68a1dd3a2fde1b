"""The series page: per-patch verdicts, NFC claims and whether they hold, base and why,
timings, links to lore and patchwork, the reproduce command; with its /api/ twin. It reads
a revision's newest run: `report` is the `check --json` document as written, shown as it is
(verdict texts from checks/render.py)."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from bot.store.models import CheckRow, Job, Patch, Revision, Run, Series
from bot.web.common import Links, PageError, answer, int_param, iso
from checks.render import verdict_text
from checks.result import Benign
from checks.verdict import Verdict

# A claim of no functional change holds when no state real KVM can reach differs.
HOLDS = (Verdict.SAME, Verdict.OUT_OF_SCOPE, Verdict.DIFFERS_OUTSIDE)


@dataclass(frozen=True)
class CheckLine:
    name: str
    verdict: str
    text: str  # the verdict with its benign normalisations (checks.render.verdict_text)
    states: int
    differing: int
    skipped: str | None
    error: str | None
    check_id: int | None  # the difference page (/checks/<id>); skipped checks have none


@dataclass(frozen=True)
class PatchLine:
    index: int  # 0: the whole series against the base
    subject: str
    msgid: str
    verdict: str
    text: str
    reason: str
    nfc_claim: bool
    nfc_contradicted: bool
    files: list[str]
    functions: list[str]
    timings: dict[str, float]
    checks: list[CheckLine]
    apply_error: str | None
    lore: str
    patchwork: str

    @property
    def nfc(self) -> str:
        """Whether its 'no functional change' claim holds, as the table says it."""
        if not self.nfc_claim:
            return ""
        if self.nfc_contradicted:
            return "claimed, but it differs"
        if self.verdict in HOLDS:
            return "claimed, holds"
        return f"claimed, not checked ({self.verdict})"


@dataclass(frozen=True)
class RevisionLine:
    revision: int
    msgid: str
    posted_at: datetime | None
    verdict: str | None


@dataclass(frozen=True)
class SeriesPage:
    series: Series
    revisions: list[RevisionLine]
    revision: Revision
    run: Run | None
    report: dict[str, Any] | None
    patches: list[PatchLine]
    whole: PatchLine | None
    runs: list[Run] = field(default_factory=list)  # every run of this revision, newest first
    jobs: list[Job] = field(default_factory=list)
    lore: str = ""

    def to_json(self) -> dict[str, Any]:
        s, r = self.series, self.revision
        run = self.run
        return {
            "series": {
                "id": s.id,
                "key": s.key,
                "subject": s.subject,
                "author": s.author,
                "list": s.list_name,
                "change_id": s.change_id,
                "first_seen_at": iso(s.first_seen_at),
                "updated_at": iso(s.updated_at),
            },
            "revisions": [
                {
                    "revision": x.revision,
                    "msgid": x.msgid,
                    "posted_at": iso(x.posted_at),
                    "verdict": x.verdict,
                }
                for x in self.revisions
            ],
            "revision": r.revision,
            "msgid": r.msgid,
            "run": None
            if run is None
            else {
                "id": run.id,
                "job_id": run.job_id,
                "verdict": run.verdict,
                "exit_status": run.exit_status,
                "digest": run.digest,
                "tree": run.tree,
                "base_commit": run.base_commit,
                "seconds": run.seconds,
                "created_at": iso(run.created_at),
            },
            "report": self.report,  # `mmubot check --json`, as stored
            "check_ids": {
                f"{p.index}:{c.name}": c.check_id
                for p in [*self.patches, *([self.whole] if self.whole else [])]
                for c in p.checks
                if c.check_id is not None
            },
            "runs": [
                {"id": x.id, "verdict": x.verdict, "created_at": iso(x.created_at)}
                for x in self.runs
            ],
            "jobs": [
                {
                    "id": j.id,
                    "state": str(j.state),
                    "trigger": j.trigger,
                    "created_at": iso(j.created_at),
                    "reason": j.reason,
                }
                for j in self.jobs
            ],
        }


def _benign(entries: list[dict[str, Any]] | None) -> list[Benign]:
    return [Benign(b["check"], b["normalisation"], int(b["states"])) for b in entries or ()]


def _patch_line(
    p: dict[str, Any], ids: dict[tuple[int, str], int], links: Links, base: str | None
) -> PatchLine:
    index = int(p.get("index") or 0)
    checks = [
        CheckLine(
            name=c["name"],
            verdict=c["verdict"],
            text=verdict_text(
                c["verdict"], _benign(c.get("benign")), [""] * len(c.get("benign") or ())
            ),
            states=int(c.get("states") or 0),
            differing=int(c.get("differing") or 0),
            skipped=c.get("skipped"),
            error=c.get("error"),
            check_id=ids.get((index, c["name"])),
        )
        for c in p.get("checks") or ()
    ]
    scope = p.get("scope") or {}
    err = p.get("apply_error")
    msgid = str(p.get("msgid") or "")
    return PatchLine(
        index=index,
        subject=str(p.get("subject") or ""),
        msgid=msgid,
        verdict=str(p["verdict"]),
        text=verdict_text(p["verdict"], _benign(p.get("benign"))),
        reason=str(p.get("reason") or ""),
        nfc_claim=bool(p.get("nfc_claim")),
        nfc_contradicted=bool(p.get("nfc_contradicted")),
        files=list(scope.get("files") or ()),
        functions=list(scope.get("functions") or ()),
        timings=dict(p.get("timings") or {}),
        checks=checks,
        apply_error=(err or {}).get("message") if err else None,
        lore=links.lore(msgid, base) if index else "",
        patchwork=links.patchwork(msgid) if index else "",
    )


def find_revision(s: Session, series_id: int, revision: int | None) -> tuple[Series, Revision]:
    ser = s.get(Series, series_id)
    if ser is None:
        raise PageError(404, f"no series {series_id}; the list is at /series")
    revs = ser.revisions
    if not revs:
        raise PageError(404, f"series {series_id} has no revision yet")
    if revision is None:
        return ser, revs[-1]
    for r in revs:
        if r.revision == revision:
            return ser, r
    have = ", ".join(f"v{r.revision}" for r in revs)
    raise PageError(404, f"series {series_id} has no v{revision} (it has {have})")


def revision_by_msgid(s: Session, msgid: str) -> Revision:
    """The revision a message-id starts (cover letter or patch 1) or holds (a patch)."""
    rev = s.scalar(select(Revision).where(Revision.msgid == msgid))
    if rev is None:
        rev = s.scalar(select(Revision).join(Patch.revision).where(Patch.msgid == msgid))
    if rev is None:
        raise PageError(404, f"no series with message <{msgid}>; search the list at /series")
    return rev


def series_page(s: Session, ser: Series, rev: Revision, links: Links) -> SeriesPage:
    runs = list(s.scalars(select(Run).where(Run.revision_id == rev.id).order_by(Run.id.desc())))
    run = runs[0] if runs else None
    lines = []
    for r in ser.revisions:
        v = s.scalar(
            select(Run.verdict).where(Run.revision_id == r.id).order_by(Run.id.desc()).limit(1)
        )
        lines.append(RevisionLine(r.revision, r.msgid, r.posted_at, v))
    jobs = list(s.scalars(select(Job).where(Job.revision_id == rev.id).order_by(Job.id.desc())))
    report, patches, whole = None, [], None
    if run is not None:
        report = json.loads(run.report)
        ids = {
            (c.patch_index, c.check): c.id
            for c in s.scalars(select(CheckRow).where(CheckRow.run_id == run.id))
        }
        base = (report.get("series") or {}).get("lore_url")
        patches = [_patch_line(p, ids, links, base) for p in report.get("patches") or ()]
        if report.get("whole_series"):
            whole = _patch_line({**report["whole_series"], "index": 0}, ids, links, base)
    lore_base = (report or {}).get("series", {}).get("lore_url") if report else None
    return SeriesPage(
        ser, lines, rev, run, report, patches, whole, runs, jobs, links.lore(rev.msgid, lore_base)
    )


def series_handler(request: Request) -> Response:
    sid = int(request.path_params["id"])
    rev_n = request.query_params.get("rev")
    with request.app.state.session() as s:
        ser, rev = find_revision(s, sid, int_param(request, "rev", 0) if rev_n else None)
        data = series_page(s, ser, rev, request.app.state.links)
    return answer(request, "series.html", data, data.to_json())


def by_msgid_handler(request: Request) -> Response:
    """/series/<msgid>/v<n>: the link the reply mail and the patchwork checks carry."""
    msgid = request.path_params["msgid"]
    with request.app.state.session() as s:
        rev = revision_by_msgid(s, msgid)
        n = request.path_params.get("n")
        ser, rev = find_revision(s, rev.series_id, int(n) if n else rev.revision)
        data = series_page(s, ser, rev, request.app.state.links)
    return answer(request, "series.html", data, data.to_json())


def routes() -> list[Route]:
    out = []
    for prefix in ("", "/api"):
        out += [
            Route(f"{prefix}/series/{{id:int}}", series_handler),
            Route(f"{prefix}/series/{{msgid:str}}/v{{n:int}}", by_msgid_handler),
            Route(f"{prefix}/series/{{msgid:str}}", by_msgid_handler),
        ]
    return out

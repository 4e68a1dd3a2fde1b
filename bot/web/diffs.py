"""The difference page of one check result (a `check_results` row) and its /api/ twin.

Everything shown comes from the stored report (`Run.report`, the `check --json` document):
the check is turned back into a CheckResult and explained by checks/render.py, as the
mail and the terminal explain it. Per group: what differs, in how many states, inside or
outside the invariants (and which), the benign normalisation; the smallest example state
as a table of kernel fields; baseline and patched traces side by side, each differing line
marked (the fields the explanation marks with "!", the calls one trace has and the other
has not)."""

from __future__ import annotations

import difflib
import itertools
import json
from dataclasses import asdict, dataclass
from typing import Any

from sqlalchemy.orm import Session
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from bot.store.models import CheckRow, Revision, Run, Series
from bot.web.common import PageError, answer
from checks.render import crash_summary, group_summary, render_result, result_from_json
from checks.render import verdict_text as verdict_words
from checks.result import CheckResult, Example


@dataclass(frozen=True)
class Side:
    """One row of the side-by-side traces: a baseline line, a patched line ('' when the
    other trace has nothing there), and whether the row differs."""

    baseline: str
    patched: str
    marked: bool


@dataclass(frozen=True)
class ExampleView:
    index: int
    state: list[tuple[str, str]]  # kernel field, value
    invariants_violated: list[str]
    sides: list[Side]


@dataclass(frozen=True)
class GroupView:
    summary: list[str]  # checks.render.group_summary: what, count, where, benign, needs
    what: list[str]
    count: int
    inside: bool
    benign: str | None
    invariants_needed: list[tuple[str, str]]  # name, statement
    example: ExampleView


@dataclass(frozen=True)
class CheckPage:
    row_id: int
    series: Series
    revision: Revision
    run: Run
    patch: dict[str, Any]  # index, subject, msgid, verdict of the patch (0: whole series)
    check: dict[str, Any]  # the check as the report has it
    result: CheckResult
    verdict: str  # with its benign normalisations
    groups: list[GroupView]
    crash: tuple[str, ExampleView] | None
    text: str  # the whole check as the mail shows it (checks.render.render_result)

    def to_json(self) -> dict[str, Any]:
        def ex(e: ExampleView) -> dict[str, Any]:
            return {**asdict(e), "state": dict(e.state)}

        return {
            "id": self.row_id,
            "series_id": self.series.id,
            "revision": self.revision.revision,
            "run_id": self.run.id,
            "patch": self.patch,
            "check": self.check,  # the same keys as in `mmubot check --json`
            "verdict_text": self.verdict,
            "groups": [{"summary": g.summary, "example": ex(g.example)} for g in self.groups],
            "crash": {"summary": self.crash[0], "example": ex(self.crash[1])}
            if self.crash
            else None,
            "text": self.text,
        }


def _key(line: str) -> str:
    """What aligns two trace lines: a field by its name, a call by its text."""
    if line[:2] in ("! ", "  ") and " = " in line:
        return "field " + line[2:].split(" = ", 1)[0].strip()
    return line


def side_by_side(baseline: list[str], patched: list[str]) -> list[Side]:
    """The two traces aligned row by row; a row is marked when its lines differ."""
    out = []
    sm = difflib.SequenceMatcher(None, [_key(x) for x in baseline], [_key(x) for x in patched])
    for tag, i1, i2, j1, j2 in sm.get_opcodes():
        pairs = itertools.zip_longest(baseline[i1:i2], patched[j1:j2], fillvalue="")
        for b, p in pairs:
            marked = tag != "equal" or b != p or b.startswith("!") or p.startswith("!")
            out.append(Side(b, p, marked))
    return out


def _example(e: Example) -> ExampleView:
    return ExampleView(
        index=e.index,
        state=[(str(k), str(v)) for k, v in e.state.items()],
        invariants_violated=list(e.invariants_violated),
        sides=side_by_side(list(e.baseline), list(e.patched)),
    )


def check_page(s: Session, row_id: int) -> CheckPage:
    row = s.get(CheckRow, row_id)
    if row is None:
        raise PageError(404, f"no check result {row_id}; open a series at /series to find one")
    run = row.run
    rev = s.get(Revision, run.revision_id)
    assert rev is not None  # a foreign key
    report = json.loads(run.report)
    parts = list(report.get("patches") or ())
    if report.get("whole_series"):
        parts.append({**report["whole_series"], "index": 0})
    patch = next((p for p in parts if int(p.get("index") or 0) == row.patch_index), None)
    check = next((c for c in (patch or {}).get("checks") or () if c.get("name") == row.check), None)
    if patch is None or check is None:
        raise PageError(404, f"run {run.id} has no {row.check} on patch {row.patch_index}")
    r = result_from_json(check)
    groups = [
        GroupView(
            summary=group_summary(g, r.invariants),
            what=list(g.what),
            count=g.count,
            inside=g.inside_invariants,
            benign=g.benign,
            invariants_needed=[(n, r.invariants.get(n, "")) for n in g.invariants_needed],
            example=_example(g.example),
        )
        for g in r.groups
    ]
    return CheckPage(
        row_id=row.id,
        series=rev.series,
        revision=rev,
        run=run,
        patch={k: patch.get(k) for k in ("index", "subject", "msgid", "verdict")},
        check=check,
        result=r,
        verdict=verdict_words(r.verdict, r.benign, [""] * len(r.benign)),
        groups=groups,
        crash=(crash_summary(r), _example(r.crash)) if r.crash else None,
        text=render_result(r),
    )


def check_handler(request: Request) -> Response:
    with request.app.state.session() as s:
        data = check_page(s, int(request.path_params["id"]))
    return answer(request, "check.html", data, data.to_json())


def routes() -> list[Route]:
    return [Route("/checks/{id:int}", check_handler), Route("/api/checks/{id:int}", check_handler)]

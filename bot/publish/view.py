"""The part of a report that publishing needs, typed, read from its JSON form.

`mmubot check --post` and `mmubot post REPORT.json` go through the same path: the
report's `to_json()` dict. The digest is over what the report says (verdicts, checks,
examples), never over timings, so a re-run with the same findings has the same digest.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import Any

from checks.verdict import Verdict
from mmuci.errors import MmuCiError

FINDINGS = {Verdict.CRASH, Verdict.DIFFERS, Verdict.APPLY_ERROR, Verdict.BUILD_ERROR}


class ReportFormatError(MmuCiError):
    """A saved report is not the JSON `mmubot check --json` writes."""


@dataclass(frozen=True)
class Group:
    what: tuple[str, ...]
    count: int
    inside: bool
    state: tuple[tuple[str, str], ...]
    baseline: tuple[str, ...]
    patched: tuple[str, ...]


@dataclass(frozen=True)
class Check:
    name: str
    verdict: Verdict
    states: int
    groups: tuple[Group, ...]
    crash: Group | None


@dataclass(frozen=True)
class PatchView:
    index: int  # 0: the whole series
    subject: str
    msgid: str
    verdict: Verdict
    reason: str
    nfc_claim: bool
    nfc_contradicted: bool
    files: tuple[str, ...]
    checks: tuple[Check, ...]


@dataclass(frozen=True)
class ReportView:
    series_msgid: str  # the message-id the series was fetched by (cover letter or patch 1)
    cover_msgid: str | None
    subject: str
    revision: int
    author: str
    lore_url: str | None
    base: dict[str, Any] | None
    verdict: Verdict
    reason: str
    patches: tuple[PatchView, ...]
    whole: PatchView | None
    reproduce: str
    digest: str

    def is_finding(self) -> bool:
        """A claimed NFC contradicted, a reachable difference, a crash, an apply or build
        error: what `publish.when = on-finding` posts."""
        parts = [*self.patches, *([self.whole] if self.whole else [])]
        return any(
            p.nfc_contradicted
            or p.verdict in FINDINGS
            or any(c.verdict in FINDINGS for c in p.checks)
            for p in parts
        )


def _strip(d: Any) -> Any:
    if isinstance(d, dict):
        return {k: _strip(v) for k, v in d.items() if k not in ("timings", "reproduce")}
    if isinstance(d, list):
        return [_strip(v) for v in d]
    return d


def digest(report: dict[str, Any]) -> str:
    blob = json.dumps(_strip(report), sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(blob.encode()).hexdigest()


def _example(ex: dict[str, Any], what: tuple[str, ...], count: int, inside: bool) -> Group:
    return Group(
        what,
        count,
        inside,
        tuple((str(k), str(v)) for k, v in ex.get("state", {}).items()),
        tuple(str(x) for x in ex.get("baseline", ())),
        tuple(str(x) for x in ex.get("patched", ())),
    )


def _check(c: dict[str, Any]) -> Check:
    groups = tuple(
        _example(g["example"], tuple(g["what"]), int(g["count"]), bool(g["inside_invariants"]))
        for g in c.get("groups", ())
    )
    crash = c.get("crash")
    return Check(
        c["name"],
        Verdict(c["verdict"]),
        int(c.get("states") or 0),
        groups,
        _example(crash, ("crash",), int(c.get("crash_inside") or 0), True) if crash else None,
    )


def _patch(p: dict[str, Any]) -> PatchView:
    return PatchView(
        int(p["index"]),
        str(p["subject"]),
        str(p.get("msgid") or ""),
        Verdict(p["verdict"]),
        str(p.get("reason") or ""),
        bool(p.get("nfc_claim")),
        bool(p.get("nfc_contradicted")),
        tuple((p.get("scope") or {}).get("files") or ()),
        tuple(_check(c) for c in p.get("checks") or ()),
    )


def from_json(report: dict[str, Any]) -> ReportView:
    try:
        s = report["series"]
        msgids = list(s.get("msgids") or [])
        first_patch = s["patches"][0]["msgid"] if s.get("patches") else None
        cover = msgids[0] if msgids and msgids[0] != first_patch else None
        whole = report.get("whole_series")
        return ReportView(
            series_msgid=s.get("msgid") or cover or first_patch or "",
            cover_msgid=cover,
            subject=s["subject"],
            revision=int(s["revision"]),
            author=s["author"],
            lore_url=s.get("lore_url"),
            base=report.get("base"),
            verdict=Verdict(report["verdict"]),
            reason=str(report.get("reason") or ""),
            patches=tuple(_patch(p) for p in report["patches"]),
            whole=_patch(whole) if whole else None,
            reproduce=str(report.get("reproduce") or ""),
            digest=digest(report),
        )
    except (KeyError, TypeError, ValueError, IndexError) as e:
        raise ReportFormatError(
            f"not a report written by the --json option of mmubot check "
            f"({type(e).__name__}: {e}); write one with it"
        ) from e

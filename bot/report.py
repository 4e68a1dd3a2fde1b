"""The report of one series: a plain dataclass, its JSON form and exit status.

Renderers live beside it: `bot.render_text` (terminal, rich) and `bot.render_html`.
Check results are shown with `checks.render`, never re-rendered here.
"""

from __future__ import annotations

import json
import shlex
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from checks.render import result_to_json
from checks.result import CheckResult

# Worst first, for the verdict of a series from its patches.
SEVERITY = {
    "apply-error": 7,
    "build-error": 6,
    "crash": 5,
    "differs": 4,
    "differs-outside-invariants": 3,
    "same": 2,
    "out-of-scope": 1,
}
BEHAVIOUR_CHANGE = ("differs", "crash")
COULD_NOT_RUN = ("apply-error", "build-error")


def worst(verdicts: list[str]) -> str:
    """The verdict of several patches: the worst of theirs (`out-of-scope` when none)."""
    return max(verdicts, key=lambda v: SEVERITY[v]) if verdicts else "out-of-scope"


def check_verdict(results: list[CheckResult]) -> str:
    """One verdict from the engine's results (skipped checks do not count)."""
    real = [r.verdict for r in results if r.verdict != "skipped"]
    return worst(real) if real else "same"


@dataclass
class PatchReport:
    """The verdict on one patch (checked against the revision before it)."""

    index: int
    subject: str
    msgid: str
    verdict: str
    reason: str
    nfc_claim: bool
    parent: str | None = None
    revision: str | None = None
    scope: dict | None = None
    checks: list[CheckResult] = field(default_factory=list)
    apply_error: dict | None = None  # {"message", "file", "hunk"}
    timings: dict[str, float] = field(default_factory=dict)

    @property
    def nfc_contradicted(self) -> bool:
        """The message claims no functional change, and the checks found one."""
        return self.nfc_claim and self.verdict == "differs"

    def to_json(self) -> dict[str, Any]:
        return {
            "index": self.index,
            "subject": self.subject,
            "msgid": self.msgid,
            "verdict": self.verdict,
            "reason": self.reason,
            "nfc_claim": self.nfc_claim,
            "nfc_contradicted": self.nfc_contradicted,
            "parent": self.parent,
            "revision": self.revision,
            "scope": self.scope,
            "checks": [result_to_json(r) for r in self.checks],
            "apply_error": self.apply_error,
            "timings": self.timings,
        }


@dataclass
class Report:
    """Everything `mmubot check` found about one series."""

    series: dict[str, Any]  # subject, revision, author, msgids, base-commit, change-id, ...
    base: dict[str, Any] | None  # tree, commit, version, reason
    patches: list[PatchReport]
    verdict: str
    reason: str
    whole: PatchReport | None = None  # the whole series against the base
    timings: dict[str, float] = field(default_factory=dict)
    reproduce: str = ""

    @property
    def exit_code(self) -> int:
        """0 no behaviour change, 1 behaviour change or crash, 2 could not apply/build."""
        if self.verdict in COULD_NOT_RUN:
            return 2
        return 1 if self.verdict in BEHAVIOUR_CHANGE else 0

    @property
    def nfc_contradictions(self) -> list[PatchReport]:
        return [p for p in self.patches if p.nfc_contradicted]

    def to_json(self) -> dict[str, Any]:
        return {
            "series": self.series,
            "base": self.base,
            "patches": [p.to_json() for p in self.patches],
            "whole_series": self.whole.to_json() if self.whole else None,
            "verdict": self.verdict,
            "reason": self.reason,
            "nfc_contradicted": [p.index for p in self.nfc_contradictions],
            "exit_status": self.exit_code,
            "timings": self.timings,
            "reproduce": self.reproduce,
        }

    def write_json(self, path: str | Path) -> None:
        Path(path).write_text(json.dumps(self.to_json(), indent=2, sort_keys=False) + "\n")


def reproduce_command(ref: str, lore_url: str | None, tree: str | None) -> str:
    """One line a reviewer can paste to get the same report."""
    env = f"MMUCI_LORE_URL={shlex.quote(lore_url)} " if lore_url else ""
    opt = f" --tree {shlex.quote(tree)}" if tree else ""
    return f"pip install mmu-ci; {env}mmubot check {shlex.quote(ref)}{opt}"

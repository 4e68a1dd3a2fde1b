"""The report of one series: a plain dataclass, its JSON form and exit status.

Renderers live beside it: `bot.render_text` (terminal, rich) and `bot.render_html`.
Check results are shown with `checks.render`, never re-rendered here.
"""

from __future__ import annotations

import json
import shlex
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from checks.render import result_to_json
from checks.result import Benign, CheckResult
from checks.verdict import Verdict, exit_status
from checks.verdict import worst as worst_of


@dataclass(frozen=True)
class Uncovered:
    """A changed piece of modelled code that no check that ran executes."""

    piece: str  # "function is_root_usable", "struct kvm_mmu", "features"
    checks: tuple[str, ...]  # the checks that would run it
    why: str  # which check would run it and why it did not

    @property
    def name(self) -> str:
        return self.piece.partition(" ")[2] or self.piece

    def to_json(self) -> dict[str, object]:
        return {
            "piece": self.piece,
            "name": self.name,
            "checks": list(self.checks),
            "why": self.why,
        }

    def text(self) -> str:
        return f"{self.name} ({self.why})"


def uncovered_lines(uncovered: Sequence[Uncovered]) -> list[str]:
    """One line per reason: 'fast_pgd_switch, is_root_usable (run only by pgd_switch; ...)'."""
    by_why: dict[str, list[str]] = {}
    for u in uncovered:
        by_why.setdefault(u.why, []).append(u.name)
    return [f"{', '.join(names)} ({why})" for why, names in by_why.items()]


def worst(verdicts: list[str]) -> Verdict:
    """The verdict of several patches: the worst of theirs (`out-of-scope` when none)."""
    return worst_of(verdicts, empty=Verdict.OUT_OF_SCOPE)


def check_verdict(results: list[CheckResult]) -> Verdict:
    """One verdict from the engine's results (skipped checks do not count)."""
    return worst_of([r.verdict for r in results])


@dataclass
class PatchReport:
    """The verdict on one patch (checked against the revision before it)."""

    index: int
    subject: str
    msgid: str
    verdict: Verdict
    reason: str
    nfc_claim: bool
    parent: str | None = None
    revision: str | None = None
    scope: dict[str, Any] | None = None
    checks: list[CheckResult] = field(default_factory=list)
    apply_error: dict[str, Any] | None = None  # {"message", "file", "hunk"}
    timings: dict[str, float] = field(default_factory=dict)
    not_covered: tuple[Uncovered, ...] = ()  # changed pieces no check that ran executes

    @property
    def nfc_contradicted(self) -> bool:
        """The message claims no functional change, and the checks found one."""
        return self.nfc_claim and self.verdict == "differs"

    @property
    def benign(self) -> tuple[Benign, ...]:
        """Differences that vanished under a named normalisation, per check."""
        return tuple(b for r in self.checks for b in r.benign)

    @property
    def verdicts(self) -> list[Verdict]:
        """Its verdict and its checks': a finding of one check is never hidden by another."""
        return [Verdict(self.verdict), *(r.verdict for r in self.checks)]

    @property
    def exit_status(self) -> int:
        return exit_status(self.verdicts)

    def to_json(self) -> dict[str, Any]:
        return {
            "index": self.index,
            "subject": self.subject,
            "msgid": self.msgid,
            "verdict": Verdict(self.verdict),
            "reason": self.reason,
            "benign": [b.to_json() for b in self.benign],
            "not_covered": [u.to_json() for u in self.not_covered],
            "exit_status": self.exit_status,
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
    verdict: Verdict
    reason: str
    whole: PatchReport | None = None  # the whole series against the base
    timings: dict[str, float] = field(default_factory=dict)
    reproduce: str = ""

    @property
    def exit_code(self) -> int:
        """By precedence over every verdict of every patch (checks.verdict.exit_status):
        1 a difference found, 3 mmu-ci's own bug, 2 could not check, else 0."""
        parts = self.patches + ([self.whole] if self.whole else [])
        return exit_status([v for p in parts for v in p.verdicts])

    @property
    def benign(self) -> tuple[tuple[int, Benign], ...]:
        """Every patch's benign differences: (patch index, 0 the whole series; Benign)."""
        parts = self.patches + ([self.whole] if self.whole else [])
        return tuple((p.index, b) for p in parts for b in p.benign)

    @property
    def nfc_contradictions(self) -> list[PatchReport]:
        return [p for p in self.patches if p.nfc_contradicted]

    def to_json(self) -> dict[str, Any]:
        return {
            "series": self.series,
            "base": self.base,
            "patches": [p.to_json() for p in self.patches],
            "whole_series": self.whole.to_json() if self.whole else None,
            "verdict": Verdict(self.verdict),
            "reason": self.reason,
            "benign": [{"patch": i, **b.to_json()} for i, b in self.benign],
            "nfc_contradicted": [p.index for p in self.nfc_contradictions],
            "exit_status": self.exit_code,
            "timings": self.timings,
            "reproduce": self.reproduce,
        }

    def write_json(self, path: str | Path) -> None:
        Path(path).write_text(json.dumps(self.to_json(), indent=2, sort_keys=False) + "\n")


def reproduce_command(ref: str, lore_url: str | None, tree: str | None) -> str:
    """The `mmubot check` line that gives the same report (in a clone with `make demo` run;
    the mail prints the clone step with `publish.project_url`)."""
    env = f"MMUCI_LORE_URL={shlex.quote(lore_url)} " if lore_url else ""
    opt = f" --tree {shlex.quote(tree)}" if tree else ""
    return f"{env}mmubot check {shlex.quote(ref)}{opt}"

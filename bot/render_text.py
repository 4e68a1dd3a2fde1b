"""Terminal rendering of a Report (rich), and progress bars while a series is checked."""

from __future__ import annotations

import io
import sys

from rich.console import Console
from rich.table import Table

from bot.report import PatchReport, Report, uncovered_lines
from checks.render import render_result, verdict_text
from checks.result import Benign
from checks.verdict import Verdict
from mmucore.textsafe import for_terminal as escape


def _v(verdict: str, benign: tuple[Benign, ...] = (), where: list[str] | None = None) -> str:
    """The verdict in its colour, with the benign normalisations it needed."""
    v = Verdict(verdict)
    return f"[{v.colour}]{escape(verdict_text(v, benign, where or []))}[/]"


def _series_verdict(report: Report) -> str:
    pairs = report.benign
    where = [f"patch {i} {b.check}" if i else f"whole series {b.check}" for i, b in pairs]
    return _v(report.verdict, tuple(b for _, b in pairs), where)


def _patch_details(p: PatchReport) -> list[str]:
    out = []
    if p.not_covered:
        out.append("not covered: changed code no check that ran executes")
        out += [f"  - {escape(line)}" for line in uncovered_lines(p.not_covered)]
    if p.apply_error:
        out.append(escape(p.apply_error["message"]))
        if p.apply_error.get("hunk"):
            out.append("failing hunk:")
            out += [f"  {escape(ln)}" for ln in p.apply_error["hunk"].splitlines()[:20]]
    for r in p.checks:
        if r.verdict not in (Verdict.SAME, Verdict.SKIPPED) or r.benign:
            out += [escape(ln) for ln in render_result(r).splitlines()]
    return out


def print_report(report: Report, console: Console | None = None) -> None:
    """The report as a reviewer reads it: one line per patch, then the details."""
    # a log (not a terminal) gets the width render_text uses, not rich's 80 columns
    c = console or Console(highlight=False, width=None if sys.stdout.isatty() else 120)
    s = report.series
    c.print(f"[bold]{escape(s['subject'])}[/] (v{s['revision']}) by {escape(s['author'])}")
    if report.base:
        b = report.base
        c.print(f"base: {b['tree']} {b['commit'][:12]} ({b['version']}): {escape(b['reason'])}")
    t = Table(show_header=True, header_style="bold", box=None, pad_edge=False)
    t.add_column("#", justify="right")
    t.add_column("verdict")
    t.add_column("NFC")
    t.add_column("subject")
    t.add_column("why")
    for p in report.patches:
        nfc = (
            "[bold red]claimed, differs[/]"
            if p.nfc_contradicted
            else ("claimed" if p.nfc_claim else "")
        )
        t.add_row(str(p.index), _v(p.verdict, p.benign), nfc, escape(p.subject), escape(p.reason))
    if report.whole is not None:
        w = report.whole
        t.add_row("all", _v(w.verdict, w.benign), "", "whole series vs base", escape(w.reason))
    c.print(t)
    for p in report.patches + ([report.whole] if report.whole else []):
        details = _patch_details(p)
        if details:
            title = f"patch {p.index}" if p.index else "whole series"
            c.rule(escape(f"{title}: {verdict_text(p.verdict, p.benign)}"))
            for line in details:
                c.print(line, highlight=False)
    for p in report.nfc_contradictions:
        c.print(
            f"[bold red]patch {p.index} says it makes no functional change, "
            f"but its behaviour differs[/]"
        )
    tm = ", ".join(f"{k} {v:.2f}s" for k, v in report.timings.items())
    c.print(f"verdict: {_series_verdict(report)} ({escape(report.reason)})")
    c.print(f"exit status: {report.exit_code}", style="dim")
    c.print(f"timings: {tm}", style="dim")
    c.print(f"reproduce: {escape(report.reproduce)}", style="dim", soft_wrap=True)


def render_text(report: Report, width: int = 120) -> str:
    """The same report as plain text (for a log or a mail)."""
    c = Console(width=width, record=True, file=io.StringIO(), color_system=None, highlight=False)
    print_report(report, c)
    return c.export_text()

"""A Report as one self-contained HTML page (no scripts, no external resources)."""

from __future__ import annotations

from pathlib import Path

from bot.report import PatchReport, Report
from checks.render import render_result
from mmucore.textsafe import for_html as escape

_CSS = """
body { font-family: sans-serif; margin: 2em; max-width: 70em; }
table { border-collapse: collapse; } td, th { padding: .2em .6em; text-align: left; }
tr:nth-child(even) { background: #f4f4f4; }
.same { color: #080; } .out-of-scope { color: #888; }
.differs, .crash { color: #c00; font-weight: bold; }
.differs-outside-invariants { color: #a60; } .build-error, .apply-error { color: #909; }
pre { background: #f8f8f8; padding: .6em; overflow-x: auto; } .nfc { color: #c00; }
"""


def _verdict(v: str) -> str:
    return f'<span class="{escape(v)}">{escape(v)}</span>'


def _details(p: PatchReport) -> str:
    parts = []
    if p.apply_error:
        parts.append(f"<pre>{escape(p.apply_error['message'])}</pre>")
        if p.apply_error.get("hunk"):
            parts.append(f"<p>failing hunk:</p><pre>{escape(p.apply_error['hunk'])}</pre>")
    for r in p.checks:
        parts.append(f"<pre>{escape(render_result(r))}</pre>")
    if p.scope and p.scope.get("functions"):
        parts.append(f"<p>functions changed: {escape(', '.join(p.scope['functions']))}</p>")
    if not parts:
        return ""
    title = f"Patch {p.index}: {escape(p.subject)}" if p.index else "Whole series against the base"
    return f"<h3>{title} — {_verdict(p.verdict)}</h3>" + "".join(parts)


def render_html(report: Report) -> str:
    """The report as an HTML page."""
    s, b = report.series, report.base or {}
    rows = []
    for p in report.patches + ([report.whole] if report.whole else []):
        nfc = (
            '<span class="nfc">claimed, but differs</span>'
            if p.nfc_contradicted
            else ("claimed" if p.nfc_claim else "")
        )
        rows.append(
            f"<tr><td>{p.index or 'all'}</td><td>{_verdict(p.verdict)}</td><td>{nfc}</td>"
            f"<td>{escape(p.subject)}</td><td>{escape(p.reason)}</td></tr>"
        )
    base = (
        f"<p>Base: {escape(b.get('tree', ''))} {escape(b.get('commit', '')[:12])} "
        f"({escape(b.get('version', ''))}): {escape(b.get('reason', ''))}</p>"
        if b
        else ""
    )
    timings = ", ".join(f"{escape(k)} {v:.2f}s" for k, v in report.timings.items())
    return (
        "<!doctype html><html><head><meta charset='utf-8'>"
        f"<title>mmu-ci: {escape(s['subject'])}</title><style>{_CSS}</style></head><body>"
        f"<h1>{escape(s['subject'])} (v{s['revision']})</h1>"
        f"<p>by {escape(s['author'])}</p>{base}"
        f"<h2>Verdict: {_verdict(report.verdict)}</h2><p>{escape(report.reason)}</p>"
        "<table><tr><th>#</th><th>verdict</th><th>NFC claim</th><th>subject</th><th>why</th></tr>"
        + "".join(rows)
        + "</table>"
        + "".join(_details(p) for p in report.patches + ([report.whole] if report.whole else []))
        + f"<p><small>timings: {timings}</small></p>"
        f"<p>Reproduce: <code>{escape(report.reproduce)}</code></p></body></html>\n"
    )


def write_html(report: Report, path: str | Path) -> None:
    Path(path).write_text(render_html(report))

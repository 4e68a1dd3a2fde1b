"""A Report as one self-contained HTML page (no scripts, no external resources)."""

from __future__ import annotations

from pathlib import Path

from bot.report import PatchReport, Report, uncovered_lines
from checks.render import render_result, verdict_text
from checks.result import Benign
from checks.verdict import Verdict
from mmucore.textsafe import for_html as escape


def _verdict_css(v: Verdict) -> str:
    """A verdict's colour, from the one vocabulary (rich style 'bold #cc0000')."""
    bold = " font-weight: bold;" if "bold" in v.colour.split() else ""
    return f".{v} {{ color: {v.colour.split()[-1]};{bold} }}"


_CSS = "\n".join(
    [
        "body { font-family: sans-serif; margin: 2em; max-width: 70em; }",
        "table { border-collapse: collapse; } td, th { padding: .2em .6em; text-align: left; }",
        "tr:nth-child(even) { background: #f4f4f4; }",
        *(_verdict_css(v) for v in Verdict),
        "pre { background: #f8f8f8; padding: .6em; overflow-x: auto; } .nfc { color: #c00; }",
    ]
)


def _verdict(v: str, benign: tuple[Benign, ...] = (), where: list[str] | None = None) -> str:
    """The verdict word in its colour, with the benign normalisations it needed."""
    text = verdict_text(Verdict(v), benign, where or [])
    return f'<span class="{escape(v)}">{escape(text)}</span>'


def _details(p: PatchReport) -> str:
    parts = []
    if p.not_covered:
        items = "".join(f"<li>{escape(t)}</li>" for t in uncovered_lines(p.not_covered))
        parts.append(f"<p>not covered: changed code no check that ran executes</p><ul>{items}</ul>")
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
    return f"<h3>{title} — {_verdict(p.verdict, p.benign)}</h3>" + "".join(parts)


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
            f"<tr><td>{p.index or 'all'}</td><td>{_verdict(p.verdict, p.benign)}</td><td>{nfc}</td>"
            f"<td>{escape(p.subject)}</td><td>{escape(p.reason)}</td></tr>"
        )
    base = (
        f"<p>Base: {escape(b.get('tree', ''))} {escape(b.get('commit', '')[:12])} "
        f"({escape(b.get('version', ''))}): {escape(b.get('reason', ''))}</p>"
        if b
        else ""
    )
    timings = ", ".join(f"{escape(k)} {v:.2f}s" for k, v in report.timings.items())
    pairs = report.benign
    where = [f"patch {i} {b.check}" if i else f"whole series {b.check}" for i, b in pairs]
    verdict = _verdict(report.verdict, tuple(b for _, b in pairs), where)
    return (
        "<!doctype html><html><head><meta charset='utf-8'>"
        f"<title>mmu-ci: {escape(s['subject'])}</title><style>{_CSS}</style></head><body>"
        f"<h1>{escape(s['subject'])} (v{s['revision']})</h1>"
        f"<p>by {escape(s['author'])}</p>{base}"
        f"<h2>Verdict: {verdict}</h2><p>{escape(report.reason)}</p>"
        f"<p>Exit status: {report.exit_code}</p>"
        "<table><tr><th>#</th><th>verdict</th><th>NFC claim</th><th>subject</th><th>why</th></tr>"
        + "".join(rows)
        + "</table>"
        + "".join(_details(p) for p in report.patches + ([report.whole] if report.whole else []))
        + f"<p><small>timings: {timings}</small></p>"
        f"<p>Reproduce: <code>{escape(report.reproduce)}</code></p></body></html>\n"
    )


def write_html(report: Report, path: str | Path) -> None:
    Path(path).write_text(render_html(report))

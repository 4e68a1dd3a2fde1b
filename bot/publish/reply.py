"""Report -> the threaded reply (`email.message.EmailMessage`), as reviewers read it.

Body order: one-line verdict; aligned key block; per-patch table; per difference group the
engine's smallest example (capped at `publish.max_groups`); the reproduce command; a `-- `
footer. Lines are at most 72 columns except the quoted state and traces, and no line looks
like a trailer to b4 or patchwork (`no_trailers` guards it).
"""

from __future__ import annotations

import hashlib
import re
import textwrap
from dataclasses import dataclass
from email.message import EmailMessage
from email.utils import formatdate, getaddresses

from bot.publish.original import Original
from bot.publish.view import PatchView, ReportView
from checks.verdict import Verdict

WIDTH = 72
# b4's find_trailers takes any line "token: value"; patchwork's tag parser is narrower.
TRAILER_RE = re.compile(r"^\s*(\w\S+):\s+(\S.*)", re.I)


@dataclass(frozen=True)
class ReplySettings:
    sender: str
    msgid_domain: str
    max_groups: int
    max_cc: int
    project_url: str
    dashboard_url: str = ""


def message_id(series_msgid: str, revision: int, digest: str, domain: str, part: str = "") -> str:
    h = hashlib.sha256(f"{series_msgid}\0{revision}\0{digest}\0{part}".encode()).hexdigest()
    return f"<mmu-ci.{h[:32]}@{domain}>"


def defang(line: str) -> str:
    """A line b4 or patchwork would take for a trailer gets a space before its colon."""
    m = TRAILER_RE.match(line)
    if not m:
        return line
    at = line.index(":", m.start(1))
    return line[:at] + " " + line[at:]


def _wrap(text: str, indent: str = "") -> list[str]:
    return textwrap.wrap(
        text,
        WIDTH,
        initial_indent=indent,
        subsequent_indent=indent,
        break_on_hyphens=False,
        break_long_words=False,
    ) or [""]


def dashboard_link(view: ReportView, s: ReplySettings) -> str:
    if not s.dashboard_url:
        return ""
    return f"{s.dashboard_url.rstrip('/')}/series/{view.series_msgid}/v{view.revision}"


def _nfc(p: PatchView) -> str:
    if not p.nfc_claim:
        return "-"
    return "claimed, DIFFERS" if p.nfc_contradicted else "claimed, holds"


def _headline(view: ReportView) -> str:
    bad = [p for p in view.patches if p.nfc_contradicted]
    n = len(view.patches)
    if bad:
        which = ", ".join(f"{p.index}/{n}" for p in bad)
        return (
            f"mmu-ci found a behaviour change in v{view.revision}: patch {which} "
            "claims no functional change, but behaves differently."
        )
    return f"mmu-ci verdict on v{view.revision} ({n} patches) is {view.verdict}."


def _key_block(view: ReportView, s: ReplySettings, parts: list[PatchView]) -> list[str]:
    b = view.base or {}
    checks = sorted({c.name for p in parts for c in p.checks})
    states = []
    for name in checks:
        runs = [c for p in parts for c in p.checks if c.name == name and c.states]
        if runs:
            states.append(f"{name} {max(c.states for c in runs):,}")
    rows = [
        ("tree", f"{b.get('tree', '?')} ({b.get('version', '?')})"),
        ("base", f"{str(b.get('commit', '?'))[:12]}, {b.get('reason', 'no base')}"),
        ("checks", ", ".join(checks) or "none ran"),
        ("states", "; ".join(states) or "none"),
        ("dashboard", dashboard_link(view, s) or "(none configured)"),
        ("lore", f"{(view.lore_url or '').rstrip('/')}/{view.series_msgid}/"),
    ]
    out = []
    for k, v in rows:
        out += textwrap.wrap(
            v,
            WIDTH,
            initial_indent=f"  {k:<11}",
            subsequent_indent=" " * 13,
            break_on_hyphens=False,
            break_long_words=False,
        )
    return out


def _table(parts: list[PatchView], n: int) -> list[str]:
    out = [f"  {'#':>5}  {'verdict':<15} {'NFC':<17} subject"]
    for p in parts:
        num = f"{p.index}/{n}" if p.index else "all"
        row = f"  {num:>5}  {p.verdict!s:<15} {_nfc(p):<17} {p.subject}"
        out.append(row if len(row) <= WIDTH else row[: WIDTH - 3] + "...")
    return out


def _groups(view: ReportView, parts: list[PatchView], s: ReplySettings) -> list[str]:
    out: list[str] = []
    shown = total = 0
    n = len(view.patches)
    for p in parts:
        for c in p.checks:
            found = ([c.crash] if c.crash else []) + [g for g in c.groups if g.inside]
            for g in found:
                total += 1
                if shown >= s.max_groups:
                    continue
                shown += 1
                where = f"patch {p.index}/{n}" if p.index else "the whole series"
                what = "faults or hangs" if g.what == ("crash",) else ", ".join(g.what)
                out += _wrap(
                    f"{where}, check {c.name}: {what} differ in {g.count:,} "
                    "reachable states. The engine's smallest example, at entry"
                )
                out += [f"    {k} = {v}" for k, v in g.state]
                out.append("  baseline")
                out += [f"    {ln}" for ln in g.baseline] or ["    (nothing)"]
                out.append("  patched")
                out += [f"    {ln}" for ln in g.patched] or ["    (nothing)"]
                out.append("")
    if total > shown:
        link = dashboard_link(view, s) or "the reproduce command below, with --html FILE"
        out += _wrap(f"{total - shown} more difference group(s) not shown; full report: {link}")
        out.append("")
    return out


def _reproduce(view: ReportView, s: ReplySettings) -> list[str]:
    cmd = view.reproduce or f"mmubot check {view.series_msgid}"
    cmd = cmd.replace("mmubot check", ".venv/bin/mmubot check", 1)
    env, sep, rest = cmd.partition(" .venv/bin/")
    lines = [f"    {env} \\", f"      .venv/bin/{rest}"] if sep else [f"    {cmd}"]
    return [
        "To reproduce, from a fresh clone on Debian 12, as root",
        f"    git clone {s.project_url} mmu-ci",
        "    cd mmu-ci && make demo",
        *lines,
    ]


FOOTER = (
    "mmu-ci is a CI bot: it runs the x86 MMU root-management functions of "
    "the tree before and after each patch over every state of a modelled "
    "state space and reports the differences. It may be wrong: the model "
    "is not KVM; please say so in a reply. It reads no commands from mail "
    "yet; to stop these mails for your address, a path or a list, ask "
    "{sender} (opt-out list)."
)


def body(view: ReportView, s: ReplySettings, parts: list[PatchView]) -> str:
    lines = _wrap(_headline(view)) + [""]
    lines += _key_block(view, s, parts) + [""]
    lines += _table(parts, len(view.patches)) + [""]
    lines += _groups(view, parts, s)
    lines += _reproduce(view, s) + ["", "-- "]
    lines += _wrap(FOOTER.format(sender=s.sender))
    return "\n".join(defang(ln) if ln != "-- " else ln for ln in lines) + "\n"


def build(
    view: ReportView, original: Original, s: ReplySettings, patch: PatchView | None = None
) -> EmailMessage:
    """The reply to ``original``: the series summary, or (``patch``) one patch's part."""
    parts = [patch] if patch else [*view.patches, *([view.whole] if view.whole else [])]
    msg = EmailMessage()
    subj = original.subject
    msg["Subject"] = subj if subj.lower().startswith("re:") else f"Re: {subj}"
    msg["From"] = s.sender
    msg["To"] = original.author
    own = {a.lower() for _, a in getaddresses([s.sender, original.author])}
    cc: list[str] = []
    for full in (*original.to, *original.cc):
        addr = getaddresses([full])[0][1].lower()
        if addr and addr not in own and addr not in {getaddresses([c])[0][1] for c in cc}:
            cc.append(full)
    if cc[: s.max_cc]:
        msg["Cc"] = ", ".join(cc[: s.max_cc])
    msg["Date"] = formatdate(usegmt=True)
    part = patch.msgid if patch else ""
    msg["Message-ID"] = message_id(
        view.series_msgid, view.revision, view.digest, s.msgid_domain, part
    )
    msg["In-Reply-To"] = f"<{original.msgid}>"
    msg["References"] = " ".join([*original.references, f"<{original.msgid}>"])
    msg["X-Patchwork-Hint"] = "ignore"
    msg["Auto-Submitted"] = "auto-generated"
    msg["X-Mailer"] = "mmu-ci"
    msg.set_content(body(view, s, parts), charset="utf-8", cte="8bit")
    return msg


def summary_target(view: ReportView) -> str:
    """The cover letter, patch 1 when there is none."""
    return view.cover_msgid or (view.patches[0].msgid if view.patches else view.series_msgid)


def finding_patches(view: ReportView) -> list[PatchView]:
    from bot.publish.view import FINDINGS

    return [p for p in view.patches if p.nfc_contradicted or Verdict(p.verdict) in FINDINGS]

"""`--post` / `mmubot post`: decide per policy, store mails and checks, send what is due."""

from __future__ import annotations

from email.utils import getaddresses
from typing import Any

from sqlalchemy import Engine

from bot.config import Config
from bot.publish import outbox, patchwork, reply
from bot.publish.original import fetch_original
from bot.publish.policy import Policy
from bot.publish.smtp import SmtpSettings
from bot.publish.view import PatchView, ReportView, from_json
from bot.store.db import open_engine, session
from bot.store.models import Kind, OutboxItem, State


def settings(cfg: Config) -> reply.ReplySettings:
    return reply.ReplySettings(
        cfg.get("publish", "from"),
        cfg.get("publish", "msgid_domain"),
        int(cfg.get("publish", "max_groups")),
        int(cfg.get("publish", "max_cc")),
        cfg.get("publish", "project_url"),
        cfg.get("publish", "dashboard_url"),
    )


def delivery(cfg: Config, inbox_url: str | None) -> outbox.Delivery:
    return outbox.Delivery(
        int(cfg.get("smtp", "retries")),
        float(cfg.get("smtp", "backoff")),
        float(cfg.get("publish", "archive_grace")),
        int(cfg.get("publish", "max_per_hour")),
        inbox_url,
    )


def _mails(view: ReportView, pol: Policy, cfg: Config) -> tuple[list[OutboxItem], list[str]]:
    if why := pol.skip_mail(view):
        return [], [f"no mail: {why}"]
    s = settings(cfg)
    timeout = float(cfg.get("lore", "timeout"))
    if pol.reply_to == "patch":
        targets: list[tuple[str, PatchView | None]] = [
            (p.msgid, p) for p in (reply.finding_patches(view) or view.patches)
        ]
    else:
        targets = [(reply.summary_target(view), None)]
    out, notes = [], []
    for msgid, patch in targets:
        orig = fetch_original(view.lore_url, msgid, timeout)
        if why := pol.opted_out(view, orig):
            notes.append(f"no mail: {why}")
            continue
        msg = reply.build(view, orig, s, patch)
        rcpts = " ".join(a for _, a in getaddresses(msg.get_all("To", []) + msg.get_all("Cc", [])))
        out.append(
            OutboxItem(
                kind=Kind.MAIL,
                key=str(msg["Message-ID"]).strip("<>"),
                state=pol.initial_state,
                series_msgid=view.series_msgid,
                revision=view.revision,
                digest=view.digest,
                target=rcpts,
                summary=str(msg["Subject"])[:200],
                payload=msg.as_bytes(),
                attempts=0,
            )
        )
    return out, notes


def publish(report: dict[str, Any], cfg: Config, engine: Engine | None = None) -> list[str]:
    """Publish one report (its `to_json()` form) per policy; one line per thing done."""
    view = from_json(report)
    pol = Policy.from_config(cfg)
    engine = engine or open_engine(cfg)
    mails, notes = _mails(view, pol, cfg)
    pw = patchwork.Patchwork.from_config(cfg)
    link = reply.dashboard_link(view, settings(cfg))
    checks = patchwork.items(view, pol.initial_state, link) if pw and pol.when != "never" else []
    with session(engine) as s:
        for item in mails + checks:
            stored, new = outbox.add(s, item)
            if not new:
                notes.append(f"{stored.key}: already in the outbox (#{stored.id}, {stored.state})")
                continue
            if item.kind == Kind.MAIL and item.state == State.DRY_RUN:
                path = outbox.dry_run_path(cfg, item.key)
                path.parent.mkdir(parents=True, exist_ok=True)
                path.write_bytes(item.payload)
                notes.append(f"dry-run: mail #{stored.id} written to {path}, not sent")
            else:
                notes.append(f"#{stored.id} {item.kind} {item.state}: {item.summary}")
    return notes + send_due(cfg, engine, view.lore_url)


def send_due(
    cfg: Config, engine: Engine, inbox_url: str | None, ids: list[int] | None = None
) -> list[str]:
    pw = patchwork.Patchwork.from_config(cfg)
    inbox_url = inbox_url or cfg.get("lore", "url")
    send_check = (lambda it: pw.deliver(engine, it)) if pw else None
    return outbox.deliver(
        engine, delivery(cfg, inbox_url), SmtpSettings.from_config(cfg), send_check, ids
    )

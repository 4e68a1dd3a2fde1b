"""The outbox: every mail and patchwork check is stored before any attempt, sent once.

Exactly once as seen on the list: an item is marked `sending` (committed) before the SMTP
attempt. An item found `sending` later, or `failed` after an attempt, is uncertain: the
process may have died after the server accepted it. Before sending it again we ask the
list archive (`<inbox>/<msgid>/raw`): found -> marked sent, not found -> sent. A lookup
that fails leaves it as it is. Patchwork checks are idempotent by reading the patch's
checks first (`patchwork.deliver`).
"""

from __future__ import annotations

import smtplib
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from email import message_from_bytes, policy
from email.message import EmailMessage
from pathlib import Path

from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session

from bot.config import Config
from bot.publish import original, smtp
from bot.store.db import session
from bot.store.models import Kind, OutboxItem, State, utcnow
from mmuci.errors import MmuCiError

DUE = (State.PENDING, State.SENDING, State.FAILED)


@dataclass(frozen=True)
class Delivery:
    retries: int
    backoff: float
    archive_grace: float
    max_per_hour: int
    inbox_url: str | None  # where sent mails show up (the series' lore_url)


def dry_run_dir(cfg: Config) -> Path:
    return cfg.data_dir / "outbox"


def dry_run_path(cfg: Config, msgid: str) -> Path:
    safe = "".join(c if c.isalnum() or c in "._@-" else "_" for c in msgid.strip("<>"))
    return dry_run_dir(cfg) / f"{safe}.eml"


def add(s: Session, item: OutboxItem) -> tuple[OutboxItem, bool]:
    """Store ``item`` unless one with its key exists: (the stored item, True when new).
    A check whose payload changed (a new report) is stored anew as pending."""
    old = s.scalar(select(OutboxItem).where(OutboxItem.key == item.key))
    if old is None:
        s.add(item)
        s.flush()
        return item, True
    if old.kind == Kind.CHECK and old.payload != item.payload and old.state != State.DROPPED:
        old.payload, old.digest, old.summary = item.payload, item.digest, item.summary
        old.state, old.attempts, old.last_error = item.state, 0, None
        return old, True
    return old, False


def _sent_last_hour(s: Session) -> int:
    since = utcnow() - timedelta(hours=1)
    q = select(func.count()).where(
        OutboxItem.kind == Kind.MAIL, OutboxItem.sent_how == "smtp", OutboxItem.sent_at >= since
    )
    return int(s.scalar(q) or 0)


def _mark(engine: Engine, item_id: int, **values: object) -> None:
    with session(engine) as s:
        it = s.get(OutboxItem, item_id)
        assert it is not None
        for k, v in values.items():
            setattr(it, k, v)


def _in_archive(d: Delivery, it: OutboxItem) -> bool | None:
    if not d.inbox_url:
        return None
    try:
        return original.lookup(d.inbox_url, it.key) is not None
    except MmuCiError:
        return None


def _send_mail(engine: Engine, it: OutboxItem, d: Delivery, sm: smtp.SmtpSettings) -> str:
    uncertain = it.state == State.SENDING or it.attempts > 0
    if uncertain:
        if it.attempted_at and utcnow() - it.attempted_at < timedelta(seconds=d.archive_grace):
            return f"{it.key}: attempted at {it.attempted_at}Z; waiting for the archive"
        found = _in_archive(d, it)
        if found:
            _mark(engine, it.id, state=State.SENT, sent_at=utcnow(), sent_how="archive")
            return f"{it.key}: already on the list (found in the archive); marked sent"
        if found is None:
            return f"{it.key}: state uncertain and the archive cannot be asked; left as it is"
    with session(engine) as s:
        if _sent_last_hour(s) >= d.max_per_hour:
            limit = f"publish.max_per_hour = {d.max_per_hour}"
            return f"{it.key}: rate limit reached ({limit}); sent later"
    msg = message_from_bytes(it.payload, policy=policy.default)
    assert isinstance(msg, EmailMessage)  # policy.default makes EmailMessage
    last = ""
    for attempt in range(d.retries):
        if attempt:
            time.sleep(d.backoff * 2 ** (attempt - 1))
        _mark(
            engine,
            it.id,
            state=State.SENDING,
            attempted_at=utcnow(),
            attempts=it.attempts + attempt + 1,
        )
        try:
            smtp.send(sm, msg, str(msg["From"]), it.target.split())
        except (OSError, smtplib.SMTPException) as e:
            last = f"{type(e).__name__}: {e}"[:500]
            _mark(engine, it.id, state=State.FAILED, last_error=f"{sm!r}: {last}")
            continue
        _mark(engine, it.id, state=State.SENT, sent_at=utcnow(), sent_how="smtp", last_error=None)
        return f"{it.key}: sent"
    return f"{it.key}: not sent after {d.retries} attempts ({last}); `mmubot outbox retry {it.id}`"


def deliver(
    engine: Engine,
    d: Delivery,
    sm: smtp.SmtpSettings,
    send_check: Callable[[OutboxItem], str] | None,
    ids: list[int] | None = None,
) -> list[str]:
    """Send every due item (or those of ``ids``); one line per item on what happened."""
    with session(engine) as s:
        q = select(OutboxItem).where(OutboxItem.state.in_(DUE)).order_by(OutboxItem.id)
        if ids is not None:
            q = q.where(OutboxItem.id.in_(ids))
        items = list(s.scalars(q))
    out = []
    for it in items:
        if it.kind == Kind.MAIL:
            out.append(_send_mail(engine, it, d, sm))
        elif send_check is None:
            out.append(f"{it.key}: patchwork is not configured (patchwork.url); left pending")
        else:
            out.append(send_check(it))
    return out

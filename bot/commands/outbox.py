"""`mmubot outbox list|show|release|retry|drop`: the operator's view of the outbox."""

from __future__ import annotations

import argparse

from sqlalchemy import select
from sqlalchemy.orm import Session

from bot.config import Config
from bot.store.db import open_engine, session
from bot.store.models import OutboxItem, State
from mmuci.errors import MmuCiError


def _get(s: Session, item_id: int) -> OutboxItem:
    it = s.get(OutboxItem, item_id)
    if it is None:
        raise MmuCiError(f"no outbox item #{item_id}; `mmubot outbox list` shows them")
    return it


def run(args: argparse.Namespace, cfg: Config) -> int:
    from bot.publish.run import send_due

    engine = open_engine(cfg)
    cmd = args.ocmd
    if cmd == "list":
        with session(engine) as s:
            for it in s.scalars(select(OutboxItem).order_by(OutboxItem.id)):
                err = f"  ({it.last_error})" if it.last_error else ""
                print(f"#{it.id} {it.kind} {it.state} tries={it.attempts} {it.summary}{err}")
        return 0
    if cmd == "show":
        with session(engine) as s:
            it = _get(s, args.id)
            print(f"#{it.id} {it.kind} {it.state} key={it.key} to={it.target}")
            print(
                f"attempts={it.attempts} sent_at={it.sent_at} how={it.sent_how} "
                f"error={it.last_error}"
            )
            print(it.payload.decode("utf-8", "replace"))
        return 0
    with session(engine) as s:
        it = _get(s, args.id)
        if cmd == "drop":
            it.state = State.DROPPED
            print(f"#{it.id} dropped; it will never be sent")
            return 0
        if it.state == State.SENT or it.state == State.DROPPED:
            raise MmuCiError(f"#{it.id} is {it.state}; nothing to {cmd}")
        if cmd == "release" and it.state not in (State.HELD, State.DRY_RUN):
            raise MmuCiError(f"#{it.id} is {it.state}, not held; retry it instead of releasing it")
        if it.state in (State.HELD, State.DRY_RUN):
            it.state = State.PENDING
    for line in send_due(cfg, engine, None, [args.id]):
        print(f"outbox: {line}")
    with session(engine) as s:
        return 0 if _get(s, args.id).state == State.SENT else 1

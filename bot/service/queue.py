"""Jobs into the database: the one way work is asked for (watcher, command, manual run).

The row is the truth. Enqueueing is idempotent by key, inside the caller's transaction,
so a job is written together with whatever caused it (the watcher's cursor, a command's
row) and never twice, also across restarts; a worker backend picks queued rows up.
"""

from __future__ import annotations

import urllib.parse

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from bot.store.models import Job, JobState

TRIGGERS = ("watch", "command", "manual")
_MID_SAFE = "@!$&'()*+,;=:.-_~"  # what public-inbox leaves unescaped in a message-id


def message_ref(list_url: str, msgid: str) -> str:
    """A job's ref: the message's URL on its list (``<list>/<msgid>/``), never a path."""
    mid = urllib.parse.quote(msgid.strip().strip("<>"), safe=_MID_SAFE)
    return f"{list_url.rstrip('/')}/{mid}/"


def enqueue(
    s: Session,
    *,
    key: str,
    ref: str,
    trigger: str,
    revision_id: int | None = None,
    tree: str | None = None,
    base: str | None = None,
) -> tuple[Job, bool]:
    """(the job for ``key``, whether it is new). An existing job is returned unchanged,
    whatever its state: asking twice for one thing runs it once."""
    if trigger not in TRIGGERS:
        raise ValueError(f"trigger {trigger!r}: one of {', '.join(TRIGGERS)}")
    old = s.scalar(select(Job).where(Job.key == key))
    if old is not None:
        return old, False
    job = Job(
        key=key,
        ref=ref,
        trigger=trigger,
        revision_id=revision_id,
        tree=tree,
        base=base,
        state=JobState.QUEUED,
        attempts=0,
    )
    try:
        with s.begin_nested():  # a concurrent enqueue of the same key: theirs wins
            s.add(job)
    except IntegrityError:
        old = s.scalar(select(Job).where(Job.key == key))
        if old is None:
            raise
        return old, False
    return job, True

"""The watcher: poll each list's search API, record new series revisions, enqueue a job
for each, answer `#mmu-ci` commands; ``poll_once`` does one round, ``loop`` repeats it.

Per list, one window of received time: from the last poll's start minus
``watch.overlap`` (the first poll: ``watch.lookback`` back) to now. Two searches:
``(dfn:F1 OR dfn:F2 ...) AND rt:T..`` over the modelled files (patches only: quoted
review text is not indexed as a diff) and ``nq:"#mmu-ci" AND rt:T..`` for commands.
Each hit's thread is fetched (``t.mbox.gz``) and grouped by b4 (threads.py); every
complete, in-scope revision not in the database yet is written in one transaction with
its job (key ``rev:<first msgid>``) and the cursor. Nothing is enqueued twice, also
across restarts and overlapping windows: the job's key is unique, the revision's
first message-id too. An incomplete series waits: a later patch is a later hit, and its
thread brings the earlier ones. The cursor moves only after a round without errors.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from bot import mbox
from bot.config import Config
from bot.mbox import IntakeError, Limits
from bot.service import commands, queue, search, threads
from bot.service.results import record_revision
from bot.store.db import session
from bot.store.models import Command, Patch, PollCursor, Revision, utcnow
from mmuci.errors import MmuCiError
from mmucore.manifest import ROOTS

log = logging.getLogger("mmu-ci.watch")


@dataclass(frozen=True)
class ListPoll:
    """One list's part of a poll."""

    list_url: str
    seen: int = 0  # messages the searches found
    in_scope: int = 0  # complete series revisions touching the model, new or known
    enqueued: int = 0  # new jobs for new revisions
    commands: int = 0  # command lines recorded (queued, refused or unknown)
    errors: tuple[str, ...] = ()  # ours or the list's: the window is read again next time
    skipped: tuple[str, ...] = ()  # the mail's fault (unreadable thread): never retried

    def line(self) -> str:
        head = (
            f"{self.list_url}: {self.seen} message(s) seen, {self.in_scope} in-scope "
            f"series revision(s), {self.enqueued} job(s) queued, {self.commands} command(s)"
        )
        return (
            head
            + "".join(f"\n  error: {e}" for e in self.errors)
            + "".join(f"\n  skipped: {e}" for e in self.skipped)
        )


@dataclass(frozen=True)
class PollResult:
    lists: tuple[ListPoll, ...]

    @property
    def enqueued(self) -> int:
        return sum(p.enqueued for p in self.lists)

    @property
    def failed(self) -> bool:
        return any(p.errors for p in self.lists)


@dataclass(frozen=True)
class WatchSettings:
    lists: tuple[str, ...]
    interval: float
    overlap: float
    lookback: float
    timeout: float
    max_bytes: int

    @classmethod
    def from_config(cls, cfg: Config) -> WatchSettings:
        lists = tuple(cfg.get("watch", "lists")) or (cfg.get("lore", "url"),)
        return cls(
            lists=tuple(u.rstrip("/") + "/" for u in lists),
            interval=float(cfg.get("watch", "interval")),
            overlap=float(cfg.get("watch", "overlap")),
            lookback=float(cfg.get("watch", "lookback")),
            timeout=float(cfg.get("lore", "timeout")),
            max_bytes=int(cfg.get("lore", "max_bytes")),
        )


def series_query(since: datetime, files: tuple[str, ...] = ROOTS.model_files) -> str:
    return "(" + " OR ".join(f"dfn:{f}" for f in files) + f") AND rt:{_epoch(since)}.."


def commands_query(since: datetime) -> str:
    return f'nq:"{commands.PREFIX}" AND rt:{_epoch(since)}..'


def _epoch(t: datetime) -> int:
    return int(t.replace(tzinfo=UTC).timestamp())


def _cursor(s: Session, list_url: str) -> PollCursor:
    row = s.get(PollCursor, list_url)
    if row is None:
        row = PollCursor(list_url=list_url, messages_seen=0)
        s.add(row)
    return row


def _known(engine: Engine, msgid: str) -> bool:
    with session(engine) as s:
        if s.scalar(select(Revision.id).where(Revision.msgid == msgid)) is not None:
            return True
        return s.scalar(select(Patch.id).where(Patch.msgid == msgid).limit(1)) is not None


def _record(
    engine: Engine, list_url: str, found: threads.Found, started: datetime
) -> tuple[int, bool]:
    """One transaction: the revision, its job, the cursor's poll time. (job id, new)."""
    with session(engine) as s:
        old = s.scalar(select(Revision).where(Revision.msgid == found.msgids[0]))
        rev = old or record_revision(
            s, threads.series_block(found), list_name=list_url.rstrip("/"), posted_at=None
        )
        job, new = queue.enqueue(
            s,
            key=f"rev:{found.msgids[0]}",
            ref=queue.message_ref(list_url, found.msgids[0]),
            trigger="watch",
            revision_id=rev.id,
        )
        _cursor(s, list_url).last_poll_at = started
        s.flush()
        return job.id, new


def _series(
    engine: Engine, st: WatchSettings, list_url: str, since: datetime, started: datetime,
    limits: Limits,
) -> tuple[int, int, int, list[str], list[str]]:  # fmt: skip
    """(messages seen, in-scope revisions, jobs queued, errors, skipped threads) of the
    series search. A thread that could not be fetched is an error (the cursor stays); one
    that cannot be read is skipped (it would fail the same way every time)."""
    hits = search.search(list_url, series_query(since), timeout=st.timeout, max_bytes=st.max_bytes)
    covered: set[str] = set()
    in_scope = enqueued = 0
    errors: list[str] = []
    skipped: list[str] = []
    for hit in hits:
        if hit.msgid in covered or _known(engine, hit.msgid):
            continue
        try:
            msgid, url, raw = mbox.fetch_thread(hit.msgid, list_url, limits)
        except IntakeError as e:
            errors.append(str(e).splitlines()[0])
            continue
        try:
            thread = threads.group(raw, f"thread of <{msgid}>", list_url.rstrip("/"), limits)
        except IntakeError as e:
            skipped.append(str(e).splitlines()[0])
            log.warning("skipped: %s", skipped[-1])
            covered.add(hit.msgid)
            continue
        covered.add(hit.msgid)
        covered.update(thread.messages)
        for w in thread.waiting:
            log.info("thread of <%s>: v%d waits for patch(es) %s of %d", msgid, w.revision,
                     ", ".join(map(str, w.missing)), w.expected)  # fmt: skip
        for found in thread.series:
            if not threads.in_scope(found):
                continue
            in_scope += 1
            job_id, new = _record(engine, list_url, found, started)
            if new:
                enqueued += 1
                log.info("queued job %d: v%d of %r (%s)", job_id, found.revision,
                         found.subject, found.msgids[0])  # fmt: skip
    return len(hits), in_scope, enqueued, errors, skipped


def _commands(
    cfg: Config, engine: Engine, st: WatchSettings, list_url: str, since: datetime
) -> tuple[int, int, list[str], list[str], bool]:
    """(messages seen, command lines recorded, errors, skipped mails, whether an answer
    was staged)."""
    hits = search.search(
        list_url, commands_query(since), timeout=st.timeout, max_bytes=st.max_bytes
    )
    recorded, errors, skipped, answered = 0, [], [], False
    for hit in hits:
        with session(engine) as s:
            if s.scalar(select(Command.id).where(Command.msgid == hit.msgid).limit(1)):
                continue  # handled in an earlier poll
        try:
            done = commands.handle_msgid(cfg, engine, list_url, hit.msgid)
        except commands.CommandError as e:  # the mail cannot be read: never will be
            skipped.append(f"command mail <{hit.msgid}>: {str(e).splitlines()[0]}")
            continue
        except MmuCiError as e:
            errors.append(f"command mail <{hit.msgid}>: {str(e).splitlines()[0]}")
            continue
        recorded += len(done.outcomes)
        answered = answered or done.answer_key is not None
    return len(hits), recorded, errors, skipped, answered


def poll_list(cfg: Config, engine: Engine, st: WatchSettings, list_url: str) -> ListPoll:
    started = utcnow()
    with session(engine) as s:
        c = s.get(PollCursor, list_url)
        last = c.last_received_at if c is not None else None
    since = (
        last - timedelta(seconds=st.overlap)
        if last is not None
        else started - timedelta(seconds=st.lookback)
    )
    limits = Limits.from_config(cfg)
    seen = in_scope = enqueued = recorded = 0
    errors: list[str] = []
    skipped: list[str] = []
    answered = False
    try:
        seen, in_scope, enqueued, errors, skipped = _series(
            engine, st, list_url, since, started, limits
        )
        n, recorded, cmd_errors, cmd_skipped, answered = _commands(cfg, engine, st, list_url, since)
        seen += n
        errors += cmd_errors
        skipped += cmd_skipped
    except search.SearchError as e:
        errors.append(str(e).splitlines()[0])
    if answered:
        from bot.publish.run import send_due

        for note in send_due(cfg, engine, list_url):
            log.info("%s", note)
    with session(engine) as s:
        c = _cursor(s, list_url)
        c.last_poll_at = started
        c.messages_seen = (c.messages_seen or 0) + seen
        c.last_error = "; ".join(errors)[:2000] or None
        if not errors:
            c.last_received_at = started  # a failed round is read again next time
    return ListPoll(list_url, seen, in_scope, enqueued, recorded, tuple(errors), tuple(skipped))


def poll_once(cfg: Config, engine: Engine) -> PollResult:
    """One poll of every list in ``watch.lists`` (else ``lore.url``)."""
    st = WatchSettings.from_config(cfg)
    return PollResult(tuple(poll_list(cfg, engine, st, u) for u in st.lists))


def loop(
    cfg: Config,
    engine: Engine,
    *,
    tick: Callable[[PollResult], object] | None = None,
    stop: threading.Event | None = None,
    log: Callable[[str], object] = log.info,
) -> None:
    """Poll every ``watch.interval`` seconds until ``stop`` is set; ``tick`` after each
    poll (the watch command hands the new jobs to the workers there)."""
    st = WatchSettings.from_config(cfg)
    stop = stop or threading.Event()
    while not stop.is_set():
        try:
            r = poll_once(cfg, engine)
            for p in r.lists:
                log(p.line())
            if tick is not None:
                tick(r)
        except Exception as e:  # noqa: BLE001 - the database away: say so, poll again
            log(f"poll failed: {type(e).__name__}: {e}")
        stop.wait(st.interval)

"""Typed SQLAlchemy 2 models. Every table here has an alembic migration in migrations/."""

from __future__ import annotations

import enum
from datetime import UTC, datetime

from sqlalchemy import (
    DateTime,
    Enum,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship


def utcnow() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)  # stored naive, always UTC


class Base(DeclarativeBase):
    pass


class Kind(enum.StrEnum):
    MAIL = "mail"  # a reply to the list, keyed by its Message-ID
    CHECK = "check"  # a patchwork check, keyed by "<patch msgid> <context>"


class State(enum.StrEnum):
    DRY_RUN = "dry-run"  # publish.mode = dry-run: written to a file, never sent
    HELD = "held"  # publish.mode = moderate: waits for `mmubot outbox release ID`
    PENDING = "pending"  # to send (again) when next_attempt_at has passed
    SENDING = "sending"  # an attempt started: uncertain until marked sent or failed
    FAILED = "failed"  # every attempt of the last run failed; `outbox retry ID`
    SENT = "sent"  # on the list / on patchwork
    DROPPED = "dropped"  # an operator dropped it; kept so it is never sent again


class OutboxItem(Base):
    """One mail or one patchwork check. Stored before any attempt to send it."""

    __tablename__ = "outbox"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    kind: Mapped[Kind] = mapped_column(Enum(Kind, native_enum=False, length=16))
    key: Mapped[str] = mapped_column(String(512), unique=True)  # Message-ID or patch+context
    state: Mapped[State] = mapped_column(Enum(State, native_enum=False, length=16), index=True)
    series_msgid: Mapped[str] = mapped_column(String(512), index=True)
    revision: Mapped[int] = mapped_column(Integer)
    digest: Mapped[str] = mapped_column(String(64))  # the report's digest
    target: Mapped[str] = mapped_column(Text)  # mail: envelope recipients; check: patch msgid
    summary: Mapped[str] = mapped_column(Text)  # one line for `outbox list`
    payload: Mapped[bytes] = mapped_column(LargeBinary)  # the mail as sent / the check JSON
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    last_error: Mapped[str | None] = mapped_column(Text, nullable=True)
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    attempted_at: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)
    next_attempt_at: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)
    sent_at: Mapped[datetime | None] = mapped_column(DateTime, nullable=True, index=True)
    sent_how: Mapped[str | None] = mapped_column(Text, nullable=True)  # "smtp", "archive", ...


# --- the service: what the watcher saw, what ran, what it found (migration 0002) ---


class Series(Base):
    """A patch series across its revisions, as the watcher (or an import) first saw it."""

    __tablename__ = "series"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    key: Mapped[str] = mapped_column(String(512), unique=True)  # series_key(): change-id or subject
    subject: Mapped[str] = mapped_column(Text)  # the newest revision's, without "[PATCH v2 1/3]"
    author: Mapped[str] = mapped_column(String(512), index=True)  # "Name <email>"
    list_name: Mapped[str] = mapped_column(String(256), index=True)  # the inbox it came from
    change_id: Mapped[str | None] = mapped_column(String(256), nullable=True, index=True)
    first_seen_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow, index=True)
    revisions: Mapped[list[Revision]] = relationship(
        back_populates="series", order_by="Revision.revision"
    )


class Revision(Base):
    """One posting of a series (v1, v2, ...): its first message and its patches."""

    __tablename__ = "revisions"
    __table_args__ = (UniqueConstraint("series_id", "revision"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    series_id: Mapped[int] = mapped_column(ForeignKey("series.id"), index=True)
    revision: Mapped[int] = mapped_column(Integer)
    msgid: Mapped[str] = mapped_column(String(512), unique=True)  # cover letter, else patch 1
    subject: Mapped[str] = mapped_column(Text)
    n_patches: Mapped[int] = mapped_column(Integer)
    base_commit: Mapped[str | None] = mapped_column(String(64), nullable=True)
    posted_at: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)  # its Date:
    received_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow, index=True)
    series: Mapped[Series] = relationship(back_populates="revisions")
    patches: Mapped[list[Patch]] = relationship(back_populates="revision", order_by="Patch.index")


class Patch(Base):
    """One patch mail of a revision (index 1..n; the cover letter is not a patch)."""

    __tablename__ = "patches"
    __table_args__ = (UniqueConstraint("revision_id", "index"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    revision_id: Mapped[int] = mapped_column(ForeignKey("revisions.id"), index=True)
    index: Mapped[int] = mapped_column(Integer)
    msgid: Mapped[str] = mapped_column(String(512), index=True)
    subject: Mapped[str] = mapped_column(Text)
    revision: Mapped[Revision] = relationship(back_populates="patches")


class JobState(enum.StrEnum):
    QUEUED = "queued"  # waits for a worker
    RUNNING = "running"  # claimed: lease_owner holds it until lease_until
    DONE = "done"  # finished; its Run row is the result
    FAILED = "failed"  # attempts exhausted (or not retryable); reason says why


class Job(Base):
    """One unit of work (fetch → check → store → publish). The row is the truth; a queue
    message carries only its id."""

    __tablename__ = "jobs"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    key: Mapped[str] = mapped_column(String(512), unique=True)  # never two jobs for one key
    revision_id: Mapped[int | None] = mapped_column(
        ForeignKey("revisions.id"), nullable=True, index=True
    )
    ref: Mapped[str] = mapped_column(Text)  # what `mmubot check` is given: a message-id or URL
    tree: Mapped[str | None] = mapped_column(String(256), nullable=True)
    base: Mapped[str | None] = mapped_column(String(64), nullable=True)
    trigger: Mapped[str] = mapped_column(String(32))  # watch, command, manual
    state: Mapped[JobState] = mapped_column(
        Enum(JobState, native_enum=False, length=16), index=True, default=JobState.QUEUED
    )
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    max_attempts: Mapped[int] = mapped_column(Integer, default=3)
    lease_owner: Mapped[str | None] = mapped_column(String(256), nullable=True)
    lease_until: Mapped[datetime | None] = mapped_column(DateTime, nullable=True, index=True)
    reason: Mapped[str | None] = mapped_column(Text, nullable=True)  # why it failed / retried
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow, index=True)
    started_at: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)
    finished_at: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)
    # When its id was last handed to the worker backend (0004): dispatch() sends it again
    # only when it is claimable and no message for it can still be on its way.
    sent_at: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)


class Run(Base):
    """The result of one check of one revision: the full report JSON and its verdict."""

    __tablename__ = "runs"
    # 0005_web: a revision's newest run, its verdict and tree, without reading the report
    __table_args__ = (
        Index("ix_runs_revision_newest", "revision_id", "id", "verdict", "tree"),
        Index("ix_runs_history", "created_at", "id", "verdict", "revision_id", "job_id"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    job_id: Mapped[int | None] = mapped_column(
        ForeignKey("jobs.id"),
        nullable=True,
        unique=True,  # one result per job, ever
    )
    revision_id: Mapped[int] = mapped_column(ForeignKey("revisions.id"), index=True)
    verdict: Mapped[str] = mapped_column(String(32), index=True)  # checks.verdict.Verdict
    exit_status: Mapped[int] = mapped_column(Integer)
    reason: Mapped[str] = mapped_column(Text)
    digest: Mapped[str] = mapped_column(String(64), index=True)  # bot.publish.view.digest
    tree: Mapped[str | None] = mapped_column(String(256), nullable=True, index=True)
    base_commit: Mapped[str | None] = mapped_column(String(64), nullable=True)
    report: Mapped[str] = mapped_column(Text)  # `check --json`, as written
    seconds: Mapped[float | None] = mapped_column(Float, nullable=True)  # report timings total
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow, index=True)
    checks: Mapped[list[CheckRow]] = relationship(back_populates="run", order_by="CheckRow.id")


class CheckRow(Base):
    """One check's result on one patch of a run (patch 0: the whole series)."""

    __tablename__ = "check_results"
    # 0005_web: the history's states per second without reading the table
    __table_args__ = (Index("ix_check_results_speed", "run_id", "check", "states", "seconds"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    run_id: Mapped[int] = mapped_column(ForeignKey("runs.id"), index=True)
    patch_index: Mapped[int] = mapped_column(Integer)
    check: Mapped[str] = mapped_column(String(64))
    verdict: Mapped[str] = mapped_column(String(32), index=True)
    states: Mapped[int] = mapped_column(Integer)
    differing: Mapped[int] = mapped_column(Integer)  # states that differ, inside or outside
    seconds: Mapped[float | None] = mapped_column(Float, nullable=True)
    run: Mapped[Run] = relationship(back_populates="checks")


class PollCursor(Base):
    """Where the watcher's last poll of one list ended."""

    __tablename__ = "poll_cursors"

    list_url: Mapped[str] = mapped_column(String(512), primary_key=True)
    last_received_at: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)
    last_poll_at: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)
    last_error: Mapped[str | None] = mapped_column(Text, nullable=True)
    messages_seen: Mapped[int] = mapped_column(Integer, default=0)


class Command(Base):
    """A `#mmu-ci ...` line in a reply: handled once, answered once."""

    __tablename__ = "commands"
    __table_args__ = (UniqueConstraint("msgid", "line_no"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    msgid: Mapped[str] = mapped_column(String(512), index=True)  # the reply carrying it
    line_no: Mapped[int] = mapped_column(Integer)  # its position among the mail's commands
    series_id: Mapped[int | None] = mapped_column(ForeignKey("series.id"), nullable=True)
    sender: Mapped[str] = mapped_column(String(512))
    line: Mapped[str] = mapped_column(Text)
    outcome: Mapped[str] = mapped_column(Text)  # "queued job 12", "refused: ...", "unknown"
    job_id: Mapped[int | None] = mapped_column(ForeignKey("jobs.id"), nullable=True)
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)

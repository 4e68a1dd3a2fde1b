"""Typed SQLAlchemy 2 models. Every table here has an alembic migration in migrations/."""

from __future__ import annotations

import enum
from datetime import UTC, datetime

from sqlalchemy import DateTime, Enum, Integer, LargeBinary, String, Text
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column


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

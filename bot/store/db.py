"""Engine and sessions from `database.url` (default: SQLite in the data dir); migrations.

engine = open_engine(cfg)   # upgraded to the newest migration
with session(engine) as s: ...
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import Engine, create_engine, event, inspect
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session

from bot.config import Config
from mmuci.errors import MmuCiError

if TYPE_CHECKING:
    from alembic.config import Config as AlembicConfig

MIGRATIONS = Path(__file__).with_name("migrations")


class StoreError(MmuCiError):
    """The database could not be opened or migrated."""


def database_url(cfg: Config) -> str:
    url = cfg.get("database", "url")
    if url:
        return str(url)
    cfg.data_dir.mkdir(parents=True, exist_ok=True)
    path = cfg.data_dir / "mmu-ci.sqlite3"
    # the bot's user only (SQLite gives its -wal and -shm files the same mode): the outbox
    # holds mail, addresses and patchwork state, whatever the umask
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        os.fchmod(fd, 0o600)  # also a database an older version made with the umask's mode
    finally:
        os.close(fd)
    return f"sqlite:///{path}"


def _sqlite_pragmas(dbapi_conn: Any, _record: object) -> None:  # a DB-API connection
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA journal_mode=WAL")  # readers do not block the sender
    cur.execute("PRAGMA busy_timeout=10000")
    cur.close()


def make_engine(url: str) -> Engine:
    try:
        engine = create_engine(url)
    except (SQLAlchemyError, ImportError) as e:
        raise StoreError(f"database.url {url!r}: {e}; set a valid SQLAlchemy URL") from e
    if engine.dialect.name == "sqlite":
        event.listen(engine, "connect", _sqlite_pragmas)
    return engine


def alembic_config(url: str) -> AlembicConfig:
    from alembic.config import Config as AlembicConfig

    ac = AlembicConfig()
    ac.set_main_option("script_location", str(MIGRATIONS))
    ac.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return ac


def upgrade(engine: Engine) -> str | None:
    """Migrate the database to the newest revision; returns it."""
    from alembic import command
    from alembic.runtime.migration import MigrationContext

    ac = alembic_config(engine.url.render_as_string(hide_password=False))
    try:
        with engine.begin() as conn:
            ac.attributes["connection"] = conn
            command.upgrade(ac, "head")
        with engine.connect() as conn:
            return MigrationContext.configure(conn).get_current_revision()
    except SQLAlchemyError as e:
        raise StoreError(
            f"could not migrate {engine.url.render_as_string(hide_password=True)}: {e}"
        ) from e


def open_engine(cfg: Config) -> Engine:
    """The project database, migrated to the newest revision."""
    engine = make_engine(database_url(cfg))
    upgrade(engine)
    return engine


def tables(engine: Engine) -> list[str]:
    return sorted(inspect(engine).get_table_names())


@contextlib.contextmanager
def session(engine: Engine) -> Iterator[Session]:
    """A session committed at the end of the block, rolled back on an exception."""
    with Session(engine, expire_on_commit=False) as s, s.begin():
        yield s

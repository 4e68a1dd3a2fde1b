"""The project database: migrations run programmatically, idempotently, and match the models."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext

from bot import config
from bot.store import db
from bot.store.models import Base

HEAD = "0005_web"


def test_upgrade_creates_every_table_and_is_idempotent(tmp_path):
    cfg = config.load(environ={"MMUCI_DATA_DIR": str(tmp_path)})
    engine = db.make_engine(db.database_url(cfg))
    assert db.upgrade(engine) == HEAD
    assert db.upgrade(engine) == HEAD
    assert set(db.tables(engine)) == set(Base.metadata.tables) | {"alembic_version"}
    assert (tmp_path / "mmu-ci.sqlite3").is_file()


def test_the_migrations_build_exactly_the_models(tmp_path):
    """A model changed without a migration (or the reverse) shows up here as a diff."""
    engine = db.make_engine(f"sqlite:///{tmp_path / 'db.sqlite3'}")
    db.upgrade(engine)
    with engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), Base.metadata)
    assert diff == []

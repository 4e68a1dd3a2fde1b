"""The project database: migrations run programmatically, idempotently."""

from __future__ import annotations

from bot import config
from bot.store import db


def test_upgrade_creates_the_outbox_and_is_idempotent(tmp_path):
    cfg = config.load(environ={"MMUCI_DATA_DIR": str(tmp_path)})
    engine = db.make_engine(db.database_url(cfg))
    assert db.upgrade(engine) == "0001_outbox"
    assert db.upgrade(engine) == "0001_outbox"
    assert "outbox" in db.tables(engine) and "alembic_version" in db.tables(engine)
    assert (tmp_path / "mmu-ci.sqlite3").is_file()

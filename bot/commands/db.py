"""`mmubot db upgrade`: migrate the project database (database.url) to the newest schema."""

from __future__ import annotations

import argparse

from bot.config import Config


def upgrade(args: argparse.Namespace, cfg: Config) -> int:
    from bot.store import db

    engine = db.make_engine(db.database_url(cfg))
    rev = db.upgrade(engine)
    print(f"{engine.url.render_as_string(hide_password=True)}: at revision {rev}")
    return 0

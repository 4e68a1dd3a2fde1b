"""Fixtures of the service tests: a throw-away PostgreSQL cluster and a redis-server,
each started once per session on 127.0.0.1 (tests/bot/service/servers.py)."""

from __future__ import annotations

import itertools

import pytest

from . import servers

_names = itertools.count()


@pytest.fixture(scope="session")
def postgres_server():
    with servers.postgres() as url:
        yield url


@pytest.fixture
def postgres_url(postgres_server):
    """A fresh, empty database of the session's cluster."""
    return servers.fresh_database(postgres_server, f"t{next(_names)}")


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory):
    with servers.redis(tmp_path_factory.mktemp("redis")) as url:
        yield url


@pytest.fixture
def redis_url(redis_server):
    """The session's redis-server, emptied."""
    import redis

    r = redis.Redis.from_url(redis_server)
    r.flushall()
    r.close()
    return redis_server


@pytest.fixture
def engine(tmp_path):
    """A migrated SQLite project database of the test's own."""
    from bot.store import db

    e = db.make_engine(f"sqlite:///{tmp_path / 'db.sqlite3'}")
    db.upgrade(e)
    return e


@pytest.fixture
def own_inbox(tmp_path):
    """A public-inbox of the test's own (the watcher sees every message of a list)."""
    from mmukit.inbox import LocalInbox

    with LocalInbox(tmp_path / "public-inbox") as inbox:
        yield inbox


@pytest.fixture
def watch_cfg(tmp_path, own_inbox):
    """A configuration polling ``own_inbox``, data and outbox in the test's directory."""
    from bot import config

    env = {
        "MMUCI_DATA_DIR": str(tmp_path / "data"),
        "MMUCI_LORE_URL": own_inbox.url,
        "MMUCI_WATCH_LISTS": own_inbox.url,
        "MMUCI_COMMANDS_MAINTAINERS": "Mai Ntainer <maint@example.org>",
        "XDG_CONFIG_HOME": str(tmp_path / "xdg"),
    }
    return config.load(environ=env)

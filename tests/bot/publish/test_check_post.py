"""`mmubot check SERIES --post` end to end: a real series on the prepared 6.1 tree through
the real pipeline, published through the outbox to a real SMTP server (aiosmtpd)."""

from __future__ import annotations

import sys

import pytest

from bot.commands.demo import zap_on_last_ref_nfc
from bot.store.models import State
from mmuci import proc
from mmukit.seriesgen import deliver, make_series

from .conftest import cfg_for, free_port
from .test_publish import items, thread_copies

pytestmark = pytest.mark.slow

MMUBOT = [sys.executable, "-m", "bot.cli"]


def _mmubot(env: dict[str, str], *args: str) -> proc.Completed:
    return proc.run([*MMUBOT, *args], extra_env=env, check=False, timeout=900)


def test_check_post_with_smtp_down_keeps_the_mail_and_retry_sends_it_once(
    tmp_path, local_inbox, smtp_server, data_dir, tree_61
):
    c, h = smtp_server
    gen = make_series(
        tree_61.path,
        tree_61.commit,
        [zap_on_last_ref_nfc()],
        workdir=tmp_path,
        series_id="pub-check-post",
    )
    deliver(local_inbox, gen)
    env = {
        "MMUCI_DATA_DIR": str(data_dir),
        "MMUCI_LORE_URL": local_inbox.url,
        "MMUCI_TREES_DEFAULT": "debian-6.1",
        "XDG_CONFIG_HOME": str(tmp_path / "cfg"),
        "MMUCI_DATABASE_URL": f"sqlite:///{tmp_path / 'mmu-ci.db'}",
        "MMUCI_PUBLISH_MODE": "send",
        "MMUCI_PUBLISH_ARCHIVE_GRACE": "0",
        "MMUCI_SMTP_HOST": "127.0.0.1",
        "MMUCI_SMTP_PORT": str(free_port()),  # nobody listens there: the server is down
        "MMUCI_SMTP_RETRIES": "1",
        "MMUCI_SMTP_BACKOFF": "0.01",
    }
    r = _mmubot(env, "check", gen.cover_message_id, "--post")
    assert r.returncode == 1, r.stdout + r.stderr  # the patch differs: a finding
    [it] = items(cfg_for(env))
    assert it.state == State.FAILED and it.last_error, it
    assert h.received == []

    up = {**env, "MMUCI_SMTP_PORT": str(c.port)}
    r = _mmubot(up, "outbox", "retry", str(it.id))
    assert r.returncode == 0, r.stdout + r.stderr
    assert len(h.received) == 1
    assert thread_copies(local_inbox, gen.cover_message_id, it.key) == 1

    # the same series checked and posted again: the same report, the same Message-ID
    r = _mmubot(up, "check", gen.cover_message_id, "--post")
    assert r.returncode == 1, r.stdout + r.stderr
    assert len(h.received) == 1
    assert [i.state for i in items(cfg_for(up))] == [State.SENT]

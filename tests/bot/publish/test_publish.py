"""Issue 12's must-show points, against a real SMTP server, public-inbox and patchwork fake."""

from __future__ import annotations

import gzip
import json
import mailbox
import os
import subprocess
import sys
import urllib.request

from sqlalchemy import select

from bot.publish.run import publish, send_due
from bot.store.db import open_engine, session
from bot.store.models import OutboxItem, State

from .conftest import cfg_for, env_for, free_port, post_series, report_json


def thread_copies(inbox, root: str, msgid: str) -> int:
    with urllib.request.urlopen(inbox.thread_url(root), timeout=30) as r:
        data = gzip.decompress(r.read())
    path = inbox.root / f"t-{root}.mbox"
    path.write_bytes(data)
    return sum(1 for m in mailbox.mbox(str(path)) if m["Message-ID"].strip("<>") == msgid)


def items(cfg) -> list[OutboxItem]:
    with session(open_engine(cfg)) as s:
        return list(s.scalars(select(OutboxItem).order_by(OutboxItem.id)))


def test_reply_reaches_smtp_and_threads_in_the_archive(tmp_path, local_inbox, smtp_server):
    c, h = smtp_server
    ids = post_series(local_inbox, "pub-thread")
    env = env_for(tmp_path, local_inbox, publish_mode="send", smtp_port=str(c.port))
    notes = publish(report_json(ids, local_inbox.url), cfg_for(env))
    assert len(h.received) == 1, notes
    got = h.received[0].decode()
    assert f"In-Reply-To: <{ids[0]}>" in got and f"References: <{ids[0]}>" in got
    assert "Subject: Re: [PATCH 0/2] KVM: x86/mmu: toy series" in got
    [it] = items(cfg_for(env))
    assert it.state == State.SENT and it.sent_how == "smtp"
    assert thread_copies(local_inbox, ids[0], it.key) == 1


def test_default_is_dry_run_and_writes_the_mail(tmp_path, local_inbox, smtp_server):
    c, h = smtp_server
    ids = post_series(local_inbox, "pub-dry")
    env = env_for(tmp_path, local_inbox, smtp_port=str(c.port))
    cfg = cfg_for(env)
    notes = publish(report_json(ids, local_inbox.url), cfg)
    assert h.received == []
    [it] = items(cfg)
    assert it.state == State.DRY_RUN
    written = cfg.data_dir / "outbox" / f"{it.key}.eml"
    assert written.read_bytes() == it.payload and any(str(written) in n for n in notes)


def test_smtp_down_then_retry_sends_once_and_post_twice_sends_once(
    tmp_path, local_inbox, smtp_server
):
    c, h = smtp_server
    ids = post_series(local_inbox, "pub-down")
    down = env_for(tmp_path, local_inbox, publish_mode="send", smtp_port=str(free_port()))
    report = report_json(ids, local_inbox.url)
    publish(report, cfg_for(down))
    [it] = items(cfg_for(down))
    assert it.state == State.FAILED and "ConnectionRefused" in it.last_error and it.attempts == 3
    up = cfg_for({**down, "MMUCI_SMTP_PORT": str(c.port)})
    publish(report, up)  # the same report again: already in the outbox, then sent
    send_due(up, open_engine(up), local_inbox.url, [it.id])
    assert len(h.received) == 1
    assert thread_copies(local_inbox, ids[0], it.key) == 1
    publish(report, up)
    assert len(h.received) == 1 and items(up)[0].state == State.SENT


def test_sigkill_after_smtp_accept_is_not_sent_again(tmp_path, local_inbox, smtp_server):
    c, h = smtp_server
    ids = post_series(local_inbox, "pub-kill")
    env = {
        **os.environ,
        **env_for(
            tmp_path, local_inbox, publish_mode="send", smtp_port=str(c.port), smtp_retries="1"
        ),
    }
    path = tmp_path / "report.json"
    path.write_text(json.dumps(report_json(ids, local_inbox.url)))
    mmubot = [sys.executable, "-m", "bot.cli"]
    p = subprocess.Popen([*mmubot, "db", "upgrade"], env=env)
    assert p.wait(60) == 0
    p = subprocess.Popen([*mmubot, "post", str(path)], env=env)
    h.kill_pid = p.pid
    assert p.wait(120) == -9
    h.kill_pid = None
    [it] = items(cfg_for(env))
    assert it.state == State.SENDING and len(h.received) == 1
    out = subprocess.run(
        [*mmubot, "outbox", "retry", str(it.id)],
        env=env,
        text=True,
        capture_output=True,
        timeout=120,
    )
    assert out.returncode == 0 and "found in the archive" in out.stdout, out
    assert len(h.received) == 1 and items(cfg_for(env))[0].sent_how == "archive"
    assert thread_copies(local_inbox, ids[0], it.key) == 1


def test_patchwork_gets_one_check_per_patch_and_context(
    tmp_path, local_inbox, smtp_server, patchwork_fake
):
    c, _ = smtp_server
    url, pw = patchwork_fake
    ids = post_series(local_inbox, "pub-pw")
    pw.patches = {ids[1]: 11, ids[2]: 12}
    env = env_for(
        tmp_path,
        local_inbox,
        publish_mode="send",
        smtp_port=str(c.port),
        patchwork_url=url,
        patchwork_project="kvm",
        patchwork_token=pw.token,
    )
    report = report_json(ids, local_inbox.url)
    publish(report, cfg_for(env))
    publish(report, cfg_for(env))
    for pid, state in ((11, "success"), (12, "fail")):
        contexts = [ch["context"] for ch in pw.checks[pid]]
        assert sorted(contexts) == ["mmu-ci", "mmu-ci-free_roots"]
        assert {ch["state"] for ch in pw.checks[pid]} == {state}
        assert all("\n" not in ch["description"] for ch in pw.checks[pid])


def test_patchwork_403_is_a_clear_error(tmp_path, local_inbox, patchwork_fake):
    url, pw = patchwork_fake
    ids = post_series(local_inbox, "pub-403")
    pw.patches = {ids[1]: 21, ids[2]: 22}
    env = env_for(
        tmp_path,
        local_inbox,
        publish_mode="send",
        publish_when="never",
        patchwork_url=url,
        patchwork_project="kvm",
        patchwork_token="wrong",
    )
    env["MMUCI_PUBLISH_WHEN"] = "always"
    env["MMUCI_SMTP_PORT"] = str(free_port())
    publish(report_json(ids, local_inbox.url), cfg_for(env))
    checks = [i for i in items(cfg_for(env)) if i.kind == "check"]
    assert checks and all("403" in i.last_error and i.state == State.FAILED for i in checks)
    assert pw.checks == {}


def test_reply_to_patch_answers_the_patch_with_the_finding(tmp_path, local_inbox, smtp_server):
    c, h = smtp_server
    ids = post_series(local_inbox, "pub-perpatch")
    env = env_for(
        tmp_path, local_inbox, publish_mode="send", smtp_port=str(c.port), publish_reply_to="patch"
    )
    publish(report_json(ids, local_inbox.url), cfg_for(env))
    assert len(h.received) == 1  # patch 2 has the finding; patch 1 is the same: no mail
    got = h.received[0].decode()
    assert f"In-Reply-To: <{ids[2]}>" in got
    assert f"References: <{ids[0]}> <{ids[2]}>" in " ".join(got.split())
    assert "Subject: Re: [PATCH 2/2] KVM: x86/mmu: toy 2" in got


def test_max_per_hour_holds_back_the_next_mail(tmp_path, local_inbox, smtp_server):
    c, h = smtp_server
    first, second = post_series(local_inbox, "pub-rate1"), post_series(local_inbox, "pub-rate2")
    env = env_for(
        tmp_path, local_inbox, publish_mode="send", smtp_port=str(c.port), publish_max_per_hour="1"
    )
    publish(report_json(first, local_inbox.url), cfg_for(env))
    notes = publish(report_json(second, local_inbox.url), cfg_for(env))
    assert len(h.received) == 1
    assert any("rate limit reached (publish.max_per_hour = 1)" in n for n in notes), notes
    sent, held = items(cfg_for(env))
    assert sent.state == State.SENT and held.state not in (State.SENT, State.SENDING)
    assert held.attempts == 0  # never tried: it goes out in a later hour

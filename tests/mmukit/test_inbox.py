"""A generated series through a real public-inbox and back over HTTP, as b4 fetches it."""

from __future__ import annotations

import mailbox
import os
import signal
import socket
import sys
import time
from pathlib import Path

import pytest

from mmuci import proc
from mmukit import seriesgen
from mmukit.inbox import InboxError, LocalInbox
from tests.mmukit.test_seriesgen import comment_series, v1_and_v2

REPO = Path(__file__).resolve().parents[2]


def _thread(inbox: LocalInbox, message_id: str, tmp_path: Path) -> list:
    path = tmp_path / f"thread-{abs(hash(message_id))}.mbox"
    path.write_bytes(inbox.fetch_thread(message_id))
    return list(mailbox.mbox(path))


def test_series_round_trip(local_inbox: LocalInbox, tree_61, tmp_path: Path) -> None:
    s = seriesgen.make_series(
        tree_61.path,
        tree_61.commit,
        comment_series(),
        workdir=tmp_path,
        cover_subject="KVM: x86/mmu: inbox round trip",
        series_id="roundtrip",
    )
    assert local_inbox.url.startswith("http://127.0.0.1:") and local_inbox.url.endswith("/kvm/")
    assert seriesgen.deliver(local_inbox, s) == 4
    assert local_inbox.thread_url(s.cover_message_id) == (
        f"{local_inbox.url}roundtrip-v1-0-3@mmu-ci.example.org/t.mbox.gz"
    )
    got = _thread(local_inbox, s.cover_message_id, tmp_path)
    assert len(got) == 4
    by_id = {m["Message-ID"]: m for m in got}
    assert set(by_id) == set(s.message_ids)
    assert by_id[s.cover_message_id]["Subject"] == "[PATCH 0/3] KVM: x86/mmu: inbox round trip"
    for p in s.patches:
        m = by_id[p.message_id]
        assert m["In-Reply-To"] == s.cover_message_id
        assert m["Subject"].startswith(f"[PATCH {p.index}/3] ")
        assert f"diff --git a/{p.mail and 'arch/x86/kvm/mmu/mmu.c'}" in m.get_payload()
    # Any message of the thread names the whole thread, as on lore.
    for mid in s.message_ids[1:]:
        assert {m["Message-ID"] for m in _thread(local_inbox, mid, tmp_path)} == set(by_id)
    # Delivering again adds nothing.
    assert seriesgen.deliver(local_inbox, s) == 0
    assert len(_thread(local_inbox, s.patches[0].message_id, tmp_path)) == 4


def test_v1_then_v2_in_one_thread(local_inbox: LocalInbox, tree_61, tmp_path: Path) -> None:
    v1, v2 = v1_and_v2(tree_61, tmp_path, "twice")
    assert seriesgen.deliver(local_inbox, v1) == 4
    assert seriesgen.deliver(local_inbox, v2) == 3
    thread = _thread(local_inbox, v2.patches[-1].message_id, tmp_path)
    assert {m["Message-ID"] for m in thread} == set(v1.message_ids) | set(v2.message_ids)
    v2_cover = next(m for m in thread if m["Message-ID"] == v2.cover_message_id)
    assert v2_cover["In-Reply-To"] == v1.cover_message_id
    assert v2_cover["Subject"].startswith("[PATCH v2 0/2]")


def test_refused_mail_is_an_error(local_inbox: LocalInbox) -> None:
    mail = (
        b"From: A <a@example.org>\nTo: someone-else@example.org\nSubject: off list\n"
        b"Date: Thu, 1 Jan 2026 00:00:00 +0000\nMessage-ID: <refused@example.org>\n\nhi\n"
    )
    with pytest.raises(InboxError, match="refused a message"):
        local_inbox.deliver(mail)
    with pytest.raises(InboxError, match="HTTP 404"):
        local_inbox.fetch_thread("<refused@example.org>")


def test_stop_leaves_nothing_running(tmp_path: Path) -> None:
    inbox = LocalInbox(tmp_path / "pi", name="test", address="test@example.org")
    with inbox:
        server = inbox._server
        assert server is not None
        pid, port = server.pid, inbox.port
        assert port is not None
        os.kill(pid, 0)
    with pytest.raises(ProcessLookupError):
        os.killpg(pid, 0)
    with pytest.raises(ConnectionRefusedError), socket.create_connection(("127.0.0.1", port)):
        pass
    with pytest.raises(InboxError, match="not being served"):
        _ = inbox.url
    inbox.stop()  # twice is fine


def test_server_dies_with_its_owner(tmp_path: Path) -> None:
    """Even a SIGKILLed owner (a test run killed by CI) leaves no server behind."""
    pid_file = tmp_path / "server.pid"
    owner_code = (
        "import sys, time; from pathlib import Path; from mmukit.inbox import LocalInbox\n"
        "inbox = LocalInbox(Path(sys.argv[1])).start()\n"
        "Path(sys.argv[2]).write_text(str(inbox._server.pid))\n"
        "time.sleep(120)\n"
    )
    owner = proc.spawn(
        [sys.executable, "-c", owner_code, str(tmp_path / "pi"), str(pid_file)],
        cwd=REPO,
        log=tmp_path / "owner.log",
    )
    try:
        deadline = time.monotonic() + 60
        while not pid_file.exists() or not pid_file.read_text():
            assert owner.poll() is None, (tmp_path / "owner.log").read_text()
            assert time.monotonic() < deadline, "the owner did not start the server"
            time.sleep(0.05)
        server = int(pid_file.read_text())
        os.kill(server, 0)
    finally:
        owner.kill()
        owner.wait()
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        try:
            os.kill(server, 0)
        except ProcessLookupError:
            return
        time.sleep(0.05)
    os.kill(server, signal.SIGKILL)
    pytest.fail("public-inbox-httpd outlived its killed owner")

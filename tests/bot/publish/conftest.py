"""Real parts for publishing tests: an aiosmtpd server, the session's public-inbox, and a
patchwork fake in the documented REST 1.2 shape (the one fake the guide allows)."""

from __future__ import annotations

import json
import os
import signal
import socket
import threading
from email.utils import formatdate
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

import pytest
from aiosmtpd.controller import Controller

from bot import config
from bot.report import PatchReport, Report
from checks.result import CheckResult, DiffGroup, Example
from checks.verdict import Verdict

LIST = "kvm@vger.kernel.org"
AUTHOR = "A. U. Thor <author@example.org>"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def mail(msgid: str, subject: str, body: str, refs: list[str] = ()) -> bytes:
    head = [
        f"From: {AUTHOR}",
        f"To: {LIST}",
        "Cc: Reviewer <rev@example.org>",
        f"Subject: {subject}",
        f"Date: {formatdate()}",
        f"Message-ID: <{msgid}>",
    ]
    if refs:
        head += [f"In-Reply-To: <{refs[-1]}>", "References: " + " ".join(f"<{r}>" for r in refs)]
    return ("\n".join(head) + "\n\n" + body + "\n").encode()


def post_series(inbox, sid: str) -> list[str]:
    """A cover letter and two patches (our own toy C, not kernel code) on the list."""
    ids = [f"{sid}-{i}@example.org" for i in range(3)]
    inbox.deliver(mail(ids[0], "[PATCH 0/2] KVM: x86/mmu: toy series", "Two toy patches."))
    for i in (1, 2):
        diff = f"--- a/toy.c\n+++ b/toy.c\n@@ -1 +1 @@\n-int x = {i};\n+int x = {i + 1};\n"
        inbox.deliver(mail(ids[i], f"[PATCH {i}/2] KVM: x86/mmu: toy {i}", diff, [ids[0]]))
    return ids


def report_json(ids: list[str], lore_url: str, finding: bool = True) -> dict:
    ex = Example(
        {"roots_to_free": "KVM_MMU_ROOT_CURRENT", "mmu->root": "shadow sp#3"},
        ["write_lock(&kvm->mmu_lock)", "  sp#3 freed = no"],
        ["write_lock(&kvm->mmu_lock)", "kvm_mmu_prepare_zap_page(sp#3)"],
        index=18,
    )
    group = DiffGroup(("zap", "freed"), 60258, True, (), None, ex)
    bad = CheckResult("free_roots", Verdict.DIFFERS, 200000, 60258, 0, (group,))
    ok = CheckResult("free_roots", Verdict.SAME, 200000, 0, 0, ())
    p1 = PatchReport(
        1, "KVM: x86/mmu: toy 1", ids[1], Verdict.SAME, "no difference", True, checks=[ok]
    )
    p2 = PatchReport(
        2,
        "KVM: x86/mmu: toy 2",
        ids[2],
        Verdict.DIFFERS if finding else Verdict.SAME,
        "free_roots differs",
        True,
        checks=[bad if finding else ok],
        scope={"files": ["arch/x86/kvm/mmu/mmu.c"]},
    )
    series = {
        "source": ids[0],
        "msgid": ids[0],
        "subject": "KVM: x86/mmu: toy series",
        "revision": 1,
        "author": AUTHOR,
        "msgids": ids,
        "lore_url": lore_url,
        "patches": [{"msgid": ids[1]}, {"msgid": ids[2]}],
    }
    base = {
        "tree": "debian-6.1",
        "version": "6.1.192",
        "commit": "ad03f84ed25a" * 3,
        "reason": "base-commit ad03f84ed25a found in debian-6.1",
    }
    r = Report(
        series,
        base,
        [p1, p2],
        p2.verdict,
        "2 patch(es)",
        reproduce=f"MMUCI_LORE_URL={lore_url} mmubot check {ids[0]}",
    )
    return json.loads(json.dumps(r.to_json(), default=str))


class Handler:
    def __init__(self, inbox) -> None:
        self.inbox, self.received, self.kill_pid = inbox, [], None

    async def handle_DATA(self, server, session, envelope):  # noqa: N802 - aiosmtpd's name
        self.received.append(envelope.content)
        self.inbox.deliver(envelope.content)  # the list: what it accepts is archived
        if self.kill_pid:  # accepted and archived, the sender dies before it hears 250
            os.kill(self.kill_pid, signal.SIGKILL)
        return "250 OK"


@pytest.fixture
def smtp_server(local_inbox):
    h = Handler(local_inbox)
    c = Controller(h, hostname="127.0.0.1", port=free_port())
    c.start()
    yield c, h
    c.stop()


class Patchwork(BaseHTTPRequestHandler):
    patches: dict[str, int] = {}
    checks: dict[int, list[dict]] = {}
    token = "secret-token"

    def log_message(self, *a) -> None:
        pass

    def _send(self, code: int, body: object) -> None:
        data = json.dumps(body).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self) -> None:  # noqa: N802
        u = urlsplit(self.path)
        if u.path == "/api/1.2/patches/":
            q = parse_qs(u.query)
            if q.get("project") != ["kvm"]:
                return self._send(404, {"detail": "Not found."})
            mid = q["msgid"][0]
            pid = self.patches.get(mid)
            return self._send(200, [{"id": pid, "msgid": f"<{mid}>"}] if pid else [])
        pid = int(u.path.split("/")[4])
        self._send(200, self.checks.get(pid, []))

    def do_POST(self) -> None:  # noqa: N802
        if self.headers.get("Authorization") != f"Token {self.token}":
            return self._send(403, {"detail": "You do not have permission."})
        pid = int(self.path.split("/")[4])
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        self.checks.setdefault(pid, []).append(body)
        self._send(201, body)


@pytest.fixture
def patchwork_fake():
    Patchwork.patches, Patchwork.checks = {}, {}
    srv = ThreadingHTTPServer(("127.0.0.1", 0), Patchwork)
    t = threading.Thread(target=srv.serve_forever, daemon=True)
    t.start()
    yield f"http://127.0.0.1:{srv.server_address[1]}", Patchwork
    srv.shutdown()


def env_for(tmp_path, inbox, **over: str) -> dict[str, str]:
    env = {
        "MMUCI_DATA_DIR": str(tmp_path / "data"),
        "MMUCI_LORE_URL": inbox.url,
        "MMUCI_SMTP_HOST": "127.0.0.1",
        "MMUCI_SMTP_BACKOFF": "0.01",
        "MMUCI_PUBLISH_ARCHIVE_GRACE": "0",
        "XDG_CONFIG_HOME": str(tmp_path / "cfg"),
    }
    env.update({f"MMUCI_{k.upper()}": v for k, v in over.items()})
    return env


def cfg_for(env: dict[str, str]) -> config.Config:
    return config.load(environ=env)

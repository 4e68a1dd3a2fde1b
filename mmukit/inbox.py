"""A real local mailing list: a public-inbox (v2) served over HTTP on 127.0.0.1.

Tests and `mmubot demo` post generated series to it with ``public-inbox-mda`` and the
bot fetches them back the way it fetches from lore: ``<url><msgid>/t.mbox.gz``.

    with LocalInbox(tmp / "pi") as inbox:
        inbox.deliver(mail_bytes)
        inbox.url  # http://127.0.0.1:PORT/kvm/
"""

from __future__ import annotations

import gzip
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

from mmuci import proc
from mmuci.errors import MmuCiError

# Characters public-inbox leaves unescaped in a Message-ID path component.
_MID_SAFE = "@!$&'()*+,;=:.-_~"
# Socket activation: the listening socket must be fd 3 and LISTEN_PID the server's pid.
# PR_SET_PDEATHSIG: the server dies with the process that started it, even on SIGKILL.
_EXEC_WITH_FD3 = """
import ctypes, os, signal, sys
ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM)
if os.getppid() != int(sys.argv[1]):
    sys.exit("parent exited before the server started")
fd = int(sys.argv[2])
if fd != 3:
    os.dup2(fd, 3)
    os.close(fd)
os.environ.update(LISTEN_FDS="1", LISTEN_PID=str(os.getpid()))
os.execvp(sys.argv[3], sys.argv[3:])
"""
PACKAGE_HINT = (
    "install it with `apt-get install public-inbox` "
    "(or `make deps` as root in mmu-ci's source tree)"
)


class InboxError(MmuCiError):
    """The local public-inbox could not be set up, fed or served."""


@dataclass
class LocalInbox:
    """One public-inbox named ``name`` under ``root``, with its own config and server.

    ``start()`` (or ``with``) initialises the inbox if needed and starts
    ``public-inbox-httpd``; ``stop()`` ends it. The directory is kept, so a later
    ``start()`` on the same root serves the same archive.
    """

    root: Path
    name: str = "kvm"
    address: str = "kvm@vger.kernel.org"
    port: int | None = None
    _server: subprocess.Popen[bytes] | None = field(default=None, repr=False)

    @property
    def config_path(self) -> Path:
        return self.root / "config"

    @property
    def inboxdir(self) -> Path:
        return self.root / self.name

    @property
    def emergency_dir(self) -> Path:
        return self.root / "emergency"

    @property
    def log_path(self) -> Path:
        return self.root / "httpd.log"

    @property
    def url(self) -> str:
        """Lore-style base URL of the inbox, with a trailing slash."""
        if self.port is None:
            raise InboxError("the inbox is not being served; call start() first")
        return f"http://127.0.0.1:{self.port}/{self.name}/"

    def _env(self) -> dict[str, str]:
        return {
            "PI_CONFIG": str(self.config_path),
            "PI_EMERGENCY": str(self.emergency_dir),
            "ORIGINAL_RECIPIENT": self.address,
        }

    def init(self) -> None:
        """Create the inbox (idempotent); spam checking is off, as for a test list."""
        self.root = Path(self.root).resolve()
        self.root.mkdir(parents=True, exist_ok=True)
        hint = f"public-inbox-init failed; {PACKAGE_HINT}"
        # The URL in the config is only used in generated links; the real port changes.
        proc.run(
            [
                "public-inbox-init",
                "-V2",
                "-L",
                "basic",
                self.name,
                self.inboxdir,
                f"http://127.0.0.1/{self.name}",
                self.address,
            ],
            extra_env=self._env(),
            hint=hint,
        )
        proc.run(
            ["git", "config", "-f", self.config_path, "publicinboxmda.spamcheck", "none"],
            hint=hint,
        )

    def start(self, timeout: float = 30.0) -> LocalInbox:
        """Initialise if needed, serve on a free 127.0.0.1 port, wait until it answers."""
        if self._server is not None:
            return self
        self.init()
        # We bind the socket ourselves and hand it over (systemd-style socket activation),
        # so no other process can take the port between choosing and listening.
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.bind(("127.0.0.1", 0))
        sock.listen(64)
        sock.setblocking(False)
        self.port = sock.getsockname()[1]
        fd = os.dup(sock.fileno())
        try:
            self._server = proc.spawn(
                [sys.executable, "-c", _EXEC_WITH_FD3, str(os.getpid()), str(fd)]
                + ["public-inbox-httpd", "-W0"]
                + ["-l", f"127.0.0.1:{self.port}"],
                extra_env=self._env(),
                log=self.log_path,
                pass_fds=(fd,),
            )
        finally:
            os.close(fd)
            sock.close()
        try:
            self._wait_until_up(timeout)
        except BaseException:
            self.stop()
            raise
        return self

    def _wait_until_up(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        last = ""
        while time.monotonic() < deadline:
            assert self._server is not None
            if self._server.poll() is not None:
                raise InboxError(
                    f"public-inbox-httpd exited with status {self._server.returncode} "
                    f"(if it is missing, {PACKAGE_HINT}):\n{self._log_tail()}"
                )
            try:
                # The inbox page is a 404 while the inbox is empty; its config page is not.
                with urllib.request.urlopen(self.url + "_/text/config/raw", timeout=5) as r:
                    if r.status == 200:
                        return
            except (urllib.error.URLError, OSError) as e:
                last = str(e)
            time.sleep(0.05)
        raise InboxError(
            f"public-inbox-httpd did not answer on {self.url} within {timeout}s ({last}):\n"
            f"{self._log_tail()}"
        )

    def _log_tail(self) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-15:])
        except OSError:
            return "(no log)"

    def stop(self) -> None:
        """Stop the server and every process it started; safe to call twice."""
        server, self._server, self.port = self._server, None, None
        if server is None:
            return
        for sig, wait in ((signal.SIGTERM, 10.0), (signal.SIGKILL, 10.0)):
            try:
                os.killpg(server.pid, sig)
            except ProcessLookupError:
                break
            try:
                server.wait(wait)
                break
            except subprocess.TimeoutExpired:
                continue
        # Reap, and make sure nothing of the session outlives us.
        try:
            os.killpg(server.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        server.wait()

    def __enter__(self) -> LocalInbox:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def deliver(self, mail: bytes) -> bool:
        """Deliver one RFC 2822 message (a leading mbox ``From`` line is allowed).

        Returns False when the very same message is already archived (re-delivery is
        harmless). public-inbox-mda exits 0 even when its checks refuse a message (it
        files it in the emergency Maildir instead), so we look there and raise.
        """
        if not self.config_path.is_file():
            self.init()
        before = self._emergency_files()
        done = proc.run(
            ["public-inbox-mda"],
            input=mail,
            extra_env=self._env(),
            hint=f"delivery to {self.address} failed",
        )
        refused = self._emergency_files() - before
        if not refused:
            return True
        if "CONFLICT: Message-ID" in done.stderr:
            for p in refused:  # an identical copy is archived already
                p.unlink()
            return False
        head = mail.split(b"\n\n", 1)[0].decode(errors="replace")
        raise InboxError(
            f"public-inbox-mda refused a message for {self.address} (kept in "
            f"{self.emergency_dir}); it needs a Message-ID, a Date, a From, a Subject "
            f"and {self.address} in To: or Cc:. Headers:\n{head}"
        )

    def _emergency_files(self) -> set[Path]:
        new = self.emergency_dir / "new"
        return set(new.iterdir()) if new.is_dir() else set()

    def thread_url(self, message_id: str) -> str:
        """``<url><msgid>/t.mbox.gz``: the whole thread containing ``message_id``."""
        mid = message_id.strip().removeprefix("<").removesuffix(">")
        return f"{self.url}{urllib.parse.quote(mid, safe=_MID_SAFE)}/t.mbox.gz"

    def fetch_thread(self, message_id: str) -> bytes:
        """The thread's mbox, as b4 would download it (decompressed)."""
        try:
            with urllib.request.urlopen(self.thread_url(message_id), timeout=30) as r:
                return gzip.decompress(r.read())
        except urllib.error.HTTPError as e:
            raise InboxError(f"{self.thread_url(message_id)}: HTTP {e.code}") from e

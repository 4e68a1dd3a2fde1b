"""Hostile lore servers, real ones on 127.0.0.1: a trickling answer, gzip bombs, a redirect
loop. Each ends in one line within the configured deadline and size cap."""

from __future__ import annotations

import gzip
import socket
import subprocess
import sys
import threading
import time
import zlib
from collections.abc import Iterator
from pathlib import Path

import pytest

from bot import fetch, intake
from bot.mbox import IntakeError, Limits

REPO = Path(__file__).resolve().parents[2]
MSGID = "x@example.org"


class Server:
    """A raw HTTP server on a free 127.0.0.1 port answering every request with ``answer``."""

    def __init__(self, answer) -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(8)
        self.url = f"http://127.0.0.1:{self.sock.getsockname()[1]}/kvm"
        self.answer = answer
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        self.sock.settimeout(0.2)
        while not self.stop.is_set():
            try:
                conn, _ = self.sock.accept()
            except OSError:
                continue
            threading.Thread(target=self._one, args=(conn,), daemon=True).start()

    def _one(self, conn: socket.socket) -> None:
        try:
            conn.recv(65536)
            self.answer(conn, self.stop)
        except OSError:
            pass
        finally:
            conn.close()

    def close(self) -> None:
        self.stop.set()
        self.thread.join()
        self.sock.close()


@pytest.fixture
def serve() -> Iterator:
    servers: list[Server] = []

    def start(answer) -> Server:
        servers.append(Server(answer))
        return servers[-1]

    yield start
    for s in servers:
        s.close()


def _trickle(conn: socket.socket, stop: threading.Event) -> None:
    conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 100000000\r\n\r\n")
    while not stop.is_set():
        conn.sendall(b"F")
        time.sleep(0.05)


def _bomb(encoding: bool):
    body = gzip.compress(b"\0" * (64 << 20), compresslevel=9)

    def answer(conn: socket.socket, stop: threading.Event) -> None:
        head = "Content-Encoding: gzip\r\n" if encoding else "Content-Type: application/gzip\r\n"
        conn.sendall(
            f"HTTP/1.1 200 OK\r\n{head}Content-Length: {len(body)}\r\n\r\n".encode() + body
        )

    return answer


def _redirect_loop(conn: socket.socket, stop: threading.Event) -> None:
    conn.sendall(b"HTTP/1.1 302 Found\r\nLocation: /kvm/again\r\nContent-Length: 0\r\n\r\n")


def test_a_trickling_server_ends_at_the_deadline(serve) -> None:
    s = serve(_trickle)
    t0 = time.monotonic()
    with pytest.raises(IntakeError, match=r"lore.timeout \(1 s\)") as e:
        intake.load(MSGID, s.url, limits=Limits(fetch_timeout=1.0))
    assert time.monotonic() - t0 < 3.0
    assert "\n" not in str(e.value)


def test_a_server_that_never_answers_ends_at_the_deadline(serve) -> None:
    s = serve(lambda conn, stop: stop.wait(30))
    t0 = time.monotonic()
    with pytest.raises(IntakeError, match="lore.timeout"):
        intake.load(MSGID, s.url, limits=Limits(fetch_timeout=0.5))
    assert time.monotonic() - t0 < 2.5


@pytest.mark.parametrize("encoding", [True, False], ids=["content-encoding", "gzip-body"])
def test_a_gzip_bomb_ends_at_the_size_cap(serve, encoding: bool) -> None:
    s = serve(_bomb(encoding))
    with pytest.raises(IntakeError, match=r"lore.max_bytes") as e:
        intake.load(MSGID, s.url, limits=Limits(max_fetch_bytes=1 << 20))
    assert "\n" not in str(e.value)


def test_a_gzip_bomb_file_ends_at_the_size_cap(tmp_path: Path) -> None:
    bomb = tmp_path / "bomb.mbox.gz"
    bomb.write_bytes(gzip.compress(b"From x\n" + b"\0" * (32 << 20), compresslevel=9))
    with pytest.raises(IntakeError, match="lore.max_bytes"):
        intake.load(str(bomb), "http://127.0.0.1:9/x", limits=Limits(max_fetch_bytes=1 << 20))


def test_gunzip_is_exact_below_the_cap() -> None:
    data = b"".join(gzip.compress(bytes([i]) * 1000) for i in range(3))  # three members
    assert fetch.gunzip(data, 3000, "t") == b"\0" * 1000 + b"\1" * 1000 + b"\2" * 1000
    with pytest.raises(fetch.FetchError, match="larger than"):
        fetch.gunzip(data, 2999, "t")
    with pytest.raises(fetch.FetchError, match="corrupt"):
        fetch.gunzip(data[:40], 3000, "t")
    raw = zlib.compress(b"abc")
    assert fetch.gunzip(raw, 10, "t") == b""  # not gzip: nothing to decompress


def test_a_redirect_loop_is_one_line(serve) -> None:
    s = serve(_redirect_loop)
    with pytest.raises(IntakeError, match="redirects"):
        intake.load(MSGID, s.url)


def test_the_cli_says_it_in_one_line_and_exits_2(serve, tmp_path: Path) -> None:
    s = serve(_trickle)
    env = {
        "PATH": "/usr/bin:/bin",
        "MMUCI_DATA_DIR": str(tmp_path / "data"),
        "MMUCI_LORE_URL": s.url,
        "MMUCI_LORE_TIMEOUT": "1",
        "XDG_CONFIG_HOME": str(tmp_path),
    }
    t0 = time.monotonic()
    p = subprocess.run(
        [sys.executable, "-m", "bot.cli", "check", MSGID],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert p.returncode == 2, p.stderr
    assert p.stderr.count("\n") == 1 and "lore.timeout" in p.stderr
    assert time.monotonic() - t0 < 15  # the interpreter's start-up plus the 1 s deadline

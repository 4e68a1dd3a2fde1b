"""Network fetches with a total deadline and a cap on the decompressed answer.

Every byte mmu-ci takes from the network comes through ``get``: one HTTP(S) GET (redirects
followed within the same deadline), a watchdog that shuts the socket when the deadline
passes (a server that trickles its answer cannot hold the bot), and bounded decompression
of a gzip Content-Encoding or a gzip body (a gzip bomb ends at ``max_bytes``, not in
MemoryError). Failures are `FetchError`: one line, exit status 2.
"""

from __future__ import annotations

import http.client
import socket
import threading
import time
import urllib.parse
import zlib
from dataclasses import dataclass

from mmuci.errors import MmuCiError

GZIP_MAGIC = b"\x1f\x8b"
MAX_REDIRECTS = 5
_CHUNK = 1 << 16


class FetchError(MmuCiError):
    """A network fetch failed, took too long or answered too much (exit status 2)."""


@dataclass(frozen=True)
class Answer:
    url: str  # after redirects
    status: int
    body: bytes  # decompressed (Content-Encoding and a gzip body), at most max_bytes


def _mib(n: int) -> str:
    return f"{n / (1 << 20):g} MiB"


class _Sink:
    """Collects a body, decompressing gzip/deflate incrementally, never past ``cap``."""

    def __init__(self, cap: int, encoding: str, what: str) -> None:
        self.cap, self.what = cap, what
        self.out = bytearray()
        self.z = zlib.decompressobj(wbits=47) if encoding in ("gzip", "x-gzip", "deflate") else None

    def feed(self, data: bytes) -> None:
        if self.z is None:
            self.out += data
            self._check()
            return
        while data:
            try:
                self.out += self.z.decompress(data, self.cap + 1 - len(self.out))
            except zlib.error as e:
                raise FetchError(f"{self.what}: corrupt compressed answer ({e})") from e
            self._check()
            data = self.z.unconsumed_tail

    def _check(self) -> None:
        if len(self.out) > self.cap:
            raise FetchError(
                f"{self.what}: the answer is larger than lore.max_bytes ({_mib(self.cap)}) "
                "once decompressed; raise lore.max_bytes if the thread is really that big"
            )


def gunzip(data: bytes, cap: int, what: str) -> bytes:
    """Decompress gzip ``data`` (several members allowed) into at most ``cap`` bytes."""
    out = bytearray()
    while data[:2] == GZIP_MAGIC:
        z = zlib.decompressobj(wbits=31)
        while not z.eof:
            if not data:
                raise FetchError(f"{what}: corrupt gzip data (truncated)")
            try:
                out += z.decompress(data, cap + 1 - len(out))
            except zlib.error as e:
                raise FetchError(f"{what}: corrupt gzip data ({e})") from e
            if len(out) > cap:
                raise FetchError(
                    f"{what}: larger than {_mib(cap)} once decompressed "
                    "(lore.max_bytes); not a mailing-list thread"
                )
            data = z.unconsumed_tail
        data = z.unused_data
    return bytes(out)


def _connection(u: urllib.parse.SplitResult, timeout: float) -> http.client.HTTPConnection:
    if u.scheme == "https":
        return http.client.HTTPSConnection(u.hostname or "", u.port, timeout=timeout)
    return http.client.HTTPConnection(u.hostname or "", u.port, timeout=timeout)


def _split(url: str) -> urllib.parse.SplitResult:
    try:
        u = urllib.parse.urlsplit(url)
        u.port  # noqa: B018 - raises ValueError on a bad port
    except ValueError as e:
        raise FetchError(f"{url[:200]!r} is not a valid URL ({e})") from e
    if u.scheme not in ("http", "https") or not u.hostname:
        raise FetchError(f"{url[:200]!r}: only http:// and https:// URLs with a host are fetched")
    return u


def get(url: str, *, timeout: float, max_bytes: int) -> Answer:
    """GET ``url`` within ``timeout`` seconds in total; the body at most ``max_bytes``
    decompressed. A gzip body (``t.mbox.gz``) is decompressed too."""
    deadline = time.monotonic() + timeout
    for _ in range(MAX_REDIRECTS + 1):
        status, location, body = _get_once(url, deadline, timeout, max_bytes)
        if status in (301, 302, 303, 307, 308) and location:
            url = urllib.parse.urljoin(url, location)
            continue
        if body[:2] == GZIP_MAGIC:
            body = gunzip(body, max_bytes, url[:200])
        return Answer(url, status, body)
    raise FetchError(f"{url[:200]}: more than {MAX_REDIRECTS} redirects")


def _get_once(url: str, deadline: float, timeout: float, max_bytes: int) -> tuple[int, str, bytes]:
    u = _split(url)
    what = f"{u.scheme}://{u.netloc}{u.path}"[:200]
    path = urllib.parse.urlunsplit(("", "", u.path or "/", u.query, ""))
    left = deadline - time.monotonic()
    if left <= 0:
        raise FetchError(f"{what}: no answer within lore.timeout ({timeout:g} s)")
    conn = _connection(u, left)
    expired = threading.Event()

    def watchdog() -> None:  # a blocked connect or read returns as soon as the socket shuts
        expired.set()
        sock = conn.sock
        if sock is not None:
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    timer = threading.Timer(left, watchdog)
    timer.daemon = True
    timer.start()
    try:
        conn.request("GET", path, headers={"Accept-Encoding": "gzip", "User-Agent": "mmu-ci"})
        resp = conn.getresponse()
        encoding = (resp.getheader("Content-Encoding") or "").strip().lower()
        sink = _Sink(max_bytes, encoding, what)
        while True:
            if conn.sock is not None:
                conn.sock.settimeout(max(0.001, deadline - time.monotonic()))
            data = resp.read1(_CHUNK)
            if not data:
                break
            sink.feed(data)
            if time.monotonic() > deadline:
                expired.set()
                break
        if expired.is_set():
            raise FetchError(
                f"{what}: the answer did not arrive within lore.timeout ({timeout:g} s); "
                "the server is slow or stalling: try again later or raise lore.timeout"
            )
        return resp.status, resp.getheader("Location") or "", bytes(sink.out)
    except FetchError:
        raise
    except (OSError, http.client.HTTPException, ValueError) as e:
        if expired.is_set() or isinstance(e, TimeoutError) or time.monotonic() >= deadline:
            raise FetchError(
                f"{what}: no answer within lore.timeout ({timeout:g} s); "
                "try again later or raise lore.timeout"
            ) from e
        raise FetchError(f"could not fetch {what}: {type(e).__name__}: {e}") from e
    finally:
        timer.cancel()
        conn.close()

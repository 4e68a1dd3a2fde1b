"""Real servers for the service tests, from Debian's packages, started by the test on
127.0.0.1 in a temporary directory on a free port, stopped at the end; never a system
service. PostgreSQL: a throw-away cluster (initdb, pg_ctl), run as an unprivileged user
when the tests run as root (PostgreSQL refuses root). Redis: redis-server without
persistence. Also the worker processes (`mmubot worker`) the tests start and kill."""

from __future__ import annotations

import contextlib
import glob
import os
import pwd
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

from mmuci import proc

MMUBOT = [sys.executable, "-m", "bot.cli"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for(what: str, ok, timeout: float = 60.0, every: float = 0.1):  # noqa: ANN001
    """Poll ``ok()`` until it returns something true; fail the test saying what."""
    deadline = time.monotonic() + timeout
    while True:
        got = ok()
        if got:
            return got
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(every)


def _pg_bin(name: str) -> str:
    found = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}")) or [shutil.which(name) or ""]
    if not found[-1]:
        raise AssertionError(f"{name} not found: `make test` installs the postgresql package")
    return found[-1]


def _as_user(argv: list[str], user: str | None) -> list[str]:
    return ["runuser", "-u", user, "--", *argv] if user else argv


@contextlib.contextmanager
def postgres() -> Iterator[str]:
    """A PostgreSQL cluster of its own; yields the SQLAlchemy URL of its `postgres` db."""
    user = None
    if os.geteuid() == 0:  # PostgreSQL will not run as root
        for name in ("postgres", "nobody"):
            with contextlib.suppress(KeyError):
                pwd.getpwnam(name)
                user = name
                break
    top = Path(tempfile.mkdtemp(prefix="mmuci-pg-"))  # under /tmp: the user can reach it
    data, log = top / "data", top / "log"
    if user:
        pw = pwd.getpwnam(user)
        os.chown(top, pw.pw_uid, pw.pw_gid)
    initdb = [_pg_bin("initdb"), "-D", str(data), "-A", "trust", "-U", "mmuci", "--no-sync"]
    proc.run(_as_user([*initdb, "-E", "UTF8", "--locale=C"], user), timeout=120)
    port = free_port()
    opts = f"-c listen_addresses=127.0.0.1 -p {port} -k {top} -c fsync=off"
    pg_ctl = _pg_bin("pg_ctl")
    start = [pg_ctl, "-D", str(data), "-l", str(log), "-w", "-t", "60", "-o", opts, "start"]
    proc.run(_as_user(start, user), timeout=90)
    try:
        yield f"postgresql+psycopg://mmuci@127.0.0.1:{port}/postgres"
    finally:
        proc.run(
            _as_user([pg_ctl, "-D", str(data), "-m", "immediate", "-w", "stop"], user),
            check=False,
            timeout=60,
        )
        shutil.rmtree(top, ignore_errors=True)


def fresh_database(server_url: str, name: str) -> str:
    """A new empty database on the cluster; its URL."""
    import psycopg

    dsn = server_url.replace("postgresql+psycopg://", "postgresql://")
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}"')
        conn.execute(f'CREATE DATABASE "{name}"')
    return server_url.rsplit("/", 1)[0] + f"/{name}"


@contextlib.contextmanager
def redis(workdir: Path) -> Iterator[str]:
    """redis-server on a free 127.0.0.1 port, nothing saved; yields its redis:// URL."""
    import redis as redis_client

    exe = shutil.which("redis-server") or "/usr/bin/redis-server"
    port = free_port()
    workdir.mkdir(parents=True, exist_ok=True)
    argv = [exe, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"]
    argv += ["--dir", str(workdir), "--maxmemory-policy", "noeviction", "--daemonize", "no"]
    server = proc.spawn(argv, log=workdir / "redis.log")
    url = f"redis://127.0.0.1:{port}/0"
    try:

        def up() -> bool:
            try:
                return bool(redis_client.Redis.from_url(url, socket_timeout=1).ping())
            except redis_client.RedisError:
                if server.poll() is not None:
                    raise AssertionError((workdir / "redis.log").read_text()[-2000:]) from None
                return False

        wait_for("redis-server to answer PING", up, timeout=30)
        yield url
    finally:
        stop(server)


def stop(p: subprocess.Popen[bytes], sig: int = signal.SIGTERM) -> None:
    """End a process started with proc.spawn and everything in its session."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(p.pid, sig)
    try:
        p.wait(20)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(p.pid, signal.SIGKILL)
        p.wait()


def start_worker(env: dict[str, str], log: Path, *args: str) -> subprocess.Popen[bytes]:
    """A real `mmubot worker` process (its own session), output into ``log``."""
    return proc.spawn([*MMUBOT, "worker", *args], extra_env=env, log=log)

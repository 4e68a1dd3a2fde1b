"""Issue 10.4: started as root, no process of the jail is host uid 0.

The tests run as root (as `make test` does on Debian 12); everything is real: jailinit,
bwrap, the sandbox child, the bot's memo and database. Files are put *in* the jail's
view on purpose: only their owner and mode may keep the child out.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import pytest

from bot import config
from bot.memo import Memo
from bot.store import db
from mmuci import proc
from mmucore import jail, jailinit, sandbox
from mmucore.build import Build
from mmucore.sandbox import Limits, Outcome
from tests.mmucore.test_jail import _descendants
from tests.mmucore.test_sandbox import CALLS, builds  # noqa: F401 - the fixture

REPO = Path(__file__).resolve().parents[2]
NOBODY = jailinit.JAIL_UID
CLONE_NEWUSER = 0x10000000

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="the bot runs as root here")


def _ids(pid: int) -> tuple[list[int], list[int], bytes]:
    """(Uid, Gid, cmdline) of a process as the host sees it."""
    status = Path(f"/proc/{pid}/status").read_text()
    rows = dict(line.split(":", 1) for line in status.splitlines() if ":" in line)
    cmd = Path(f"/proc/{pid}/cmdline").read_bytes()
    return [int(x) for x in rows["Uid"].split()], [int(x) for x in rows["Gid"].split()], cmd


def test_the_sandbox_child_is_host_uid_65534_seen_from_outside(
    builds: list[Build],  # noqa: F811
) -> None:
    done: list[Outcome] = []
    t = threading.Thread(
        target=lambda: done.append(
            sandbox.run(f"{CALLS}:block", {}, builds[:1], Limits(wall_seconds=300))
        )
    )
    t.start()
    seen: dict[int, tuple[list[int], list[int], bytes]] = {}
    child = None
    deadline = time.monotonic() + 60
    try:
        while child is None and time.monotonic() < deadline:
            for pid in _descendants(os.getpid()):
                try:
                    seen[pid] = _ids(pid)
                except OSError:
                    continue
                if b"mmucore.sandbox_child" in seen[pid][2] and b"bwrap" not in seen[pid][2]:
                    child = pid
            time.sleep(0.05)
        assert child is not None, "the sandbox child never started"
        time.sleep(0.3)  # the child is blocked in its call: the built module is loaded
        # the jail: every jailinit under us and all below it (other children of this test
        # session, such as a public-inbox-httpd of a session fixture, are not the jail's)
        seen = {}
        for pid in _descendants(os.getpid()):
            try:
                seen[pid] = _ids(pid)
            except OSError:
                continue
        tops = [p for p, v in seen.items() if b"jailinit" in v[2].split(b"\0")[0]]
        jail = {q for p in tops for q in _descendants(p) | {p}} & seen.keys()
        uid, gid, _ = seen[child]
        assert uid == [NOBODY] * 4 and gid == [NOBODY] * 4, (uid, gid)
        # jailinit (after its drop), bwrap, the namespace's init and the child: none is root
        assert child in jail and len(jail) >= 3, {p: seen[p] for p in jail}
        assert all(seen[p][0] == [NOBODY] * 4 for p in jail), {p: seen[p] for p in jail}
    finally:
        if child is not None:
            os.kill(child, signal.SIGKILL)
        t.join(timeout=120)
    assert done and not done[0].ok


_READ_ALL = textwrap.dedent(
    """
    import errno, json, sys
    out = {}
    for p in sys.argv[1:]:
        try:
            with open(p, "rb") as f:
                out[p] = "read %d bytes" % len(f.read())
        except OSError as e:
            out[p] = errno.errorcode[e.errno]
    print(json.dumps(out))
    """
)


def _read_in_jail(paths: list[Path], view: list[Path]) -> dict[str, str]:
    """What the jail's Python (the child's interpreter) gets opening each path."""
    argv = jail.command(
        [sys.executable, "-I", "-c", _READ_ALL, *map(str, paths)],
        ro=[*jail.python_paths(), *view],
    )
    res = proc.run(argv, env={"PATH": "/usr/bin:/bin"}, timeout=60, check=False)
    assert res.returncode == 0, res.stderr
    return json.loads(res.stdout)


def test_a_root_only_file_in_the_view_is_refused(tmp_path: Path) -> None:
    view = tmp_path / "view"  # under pytest's 0700 directory: reached only through staging
    view.mkdir()
    view.chmod(0o755)
    secret, public = view / "root-only", view / "public"
    secret.write_text("hunter2")
    secret.chmod(0o600)
    public.write_text("hello")
    public.chmod(0o644)
    assert secret.stat().st_uid == 0
    got = _read_in_jail([secret, public], [view])
    assert got == {str(secret): "EACCES", str(public): "read 5 bytes"}


def test_the_bot_data_dir_is_unreadable_even_when_in_the_view(tmp_path: Path) -> None:
    data = tmp_path / "data"
    cfg = config.load(environ={"MMUCI_DATA_DIR": str(data)})
    Memo(data / "memo").put(["check", "k"], {"verdict": "differs"})
    engine = db.open_engine(cfg)  # the outbox database, made and migrated by the bot
    engine.dispose()
    conf = data / "config.toml"  # as deploy/OPERATORS.md says: the operator's file, 0600
    fd = os.open(conf, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    os.write(fd, b'[smtp]\npassword = "hunter2"\n')
    os.close(fd)
    files = [data / "memo" / ".key", conf, data / "mmu-ci.sqlite3"]
    assert all(f.stat().st_uid == 0 for f in files)
    for d in (data, data / "memo"):
        d.chmod(0o755)  # a careless data directory: only the files' own modes are left
    got = _read_in_jail(files, [data])
    assert got == {str(f): "EACCES" for f in files}, got


def test_the_database_is_the_bot_users_only_whatever_the_umask(tmp_path: Path) -> None:
    old = os.umask(0o022)
    try:
        cfg = config.load(environ={"MMUCI_DATA_DIR": str(tmp_path / "data")})
        db.open_engine(cfg).dispose()
    finally:
        os.umask(old)
    for f in (tmp_path / "data").glob("mmu-ci.sqlite3*"):
        assert f.stat().st_mode & 0o077 == 0, f


def test_the_network_is_still_refused(builds: list[Build]) -> None:  # noqa: F811
    with socket.socket() as srv:
        srv.bind(("127.0.0.1", 0))
        srv.listen()
        srv.settimeout(0.2)
        out = sandbox.run(f"{CALLS}:connect", {"port": srv.getsockname()[1]}, builds[:1])
        assert out.ok, out.detail
        with pytest.raises(TimeoutError):
            srv.accept()
    assert out.value.startswith("refused:")


def test_the_build_reads_its_inputs_under_a_root_only_directory(tmp_path: Path) -> None:
    src = tmp_path / "build"  # /tmp/pytest-of-root is 0700: gcc reaches it by staging
    src.mkdir()
    src.chmod(0o755)
    (src / "t.c").write_text("int f(int x) { return x + 1; }\n")
    (src / "t.c").chmod(0o644)
    old = os.umask(0o077)  # a careful operator's umask
    try:
        jail.compile_c(["gcc", "-c", str(src / "t.c")], tmp_path / "t.o", ro=[src], timeout=120)
    finally:
        os.umask(old)
    assert (tmp_path / "t.o").read_bytes()[:4] == b"\x7fELF"
    assert (tmp_path / "t.o").stat().st_mode & 0o777 == 0o644  # the jail's uid loads it


_NO_UNPRIVILEGED_USERNS = textwrap.dedent(
    """
    import json, sys
    from pathlib import Path
    from mmucore import seccomp
    from mmucore.seccomp import Rule
    # what kernel.unprivileged_userns_clone=0 does to bwrap once it runs as uid 65534:
    # no new user namespace (root's own unshare of PID and mount namespaces still works)
    seccomp.load(deny=[Rule("unshare", ((0, "masked_eq", {flag}, {flag}),)),
                       Rule("clone", ((0, "masked_eq", {flag}, {flag}),)),
                       Rule("clone3", action=seccomp.act_errno(38))])
    from mmucore import jail
    from mmuci import proc
    why = jail.unavailable()
    try:
        jail.compile_c(["gcc", "-c", "-x", "c", "/dev/null"], Path(sys.argv[1]), ro=[],
                       timeout=60)
        compiled = "compiled"
    except jail.JailUnavailable as e:
        compiled = str(e)
    ran = proc.run(jail.command(["/usr/bin/touch", sys.argv[2]]), env={{"PATH": "/usr/bin"}},
                   timeout=60, check=False)
    print(json.dumps({{"why": why, "compiled": compiled, "status": ran.returncode}}))
    """
).format(flag=CLONE_NEWUSER)


def test_without_unprivileged_user_namespaces_nothing_runs_as_root(tmp_path: Path) -> None:
    marker = tmp_path / "ran-as-root"
    tmp_path.chmod(0o777)  # so only the missing namespace, not the mode, stops the touch
    res = subprocess.run(
        [sys.executable, "-c", _NO_UNPRIVILEGED_USERNS, str(tmp_path / "o"), str(marker)],
        capture_output=True, text=True, cwd=REPO, timeout=120,
        env={**os.environ, "PYTHONPATH": str(REPO)},
    )  # fmt: skip
    assert res.returncode == 0, res.stderr
    r = json.loads(res.stdout.splitlines()[-1])
    assert r["why"].startswith("sandbox unavailable: bwrap cannot set up its namespaces")
    assert r["compiled"] == r["why"]
    assert r["status"] != 0 and not marker.exists()  # no silent fallback to uid 0


@pytest.mark.parametrize(
    ("name", "value", "named"),
    [
        ("kernel/unprivileged_userns_clone", "0", "kernel.unprivileged_userns_clone = 0"),
        ("user/max_user_namespaces", "0", "user.max_user_namespaces = 0"),
        ("kernel/unprivileged_userns_clone", "1", ""),
    ],
)
def test_disabled_user_namespaces_are_named_by_their_sysctl(
    tmp_path: Path, name: str, value: str, named: str
) -> None:
    (tmp_path / name).parent.mkdir(parents=True)
    (tmp_path / name).write_text(value + "\n")
    why = jail.userns_disabled(tmp_path)
    assert (named in why and "sysctl -w" in why) if named else why == ""


def test_this_machine_allows_them() -> None:
    assert jail.userns_disabled() == "" and jail.unavailable() == ""


def test_not_root_nothing_changes(tmp_path: Path) -> None:
    """The helper run by an unprivileged user maps that user's own uid, and refuses -u."""
    exe = tmp_path / "jailinit"
    shutil.copy(jailinit.binary(), exe)
    tmp_path.chmod(0o755)
    exe.chmod(0o755)
    user = ["setpriv", "--reuid=1000", "--regid=1000", "--clear-groups", str(exe)]
    me = str(os.getpid())
    ok = subprocess.run([*user, me, "--", "/usr/bin/id", "-u"], capture_output=True, text=True)
    assert ok.returncode == 0 and ok.stdout.strip() == "1000", ok.stderr
    refused = subprocess.run([*user, me, "-u", "0:0", "--", "/usr/bin/id", "-u"],
                             capture_output=True, text=True)  # fmt: skip
    assert refused.returncode == 125 and refused.stdout == ""
    assert "-u needs root" in refused.stderr

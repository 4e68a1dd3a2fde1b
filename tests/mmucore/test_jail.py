"""The jail (issue 10.3, 10.4, 10.6, 10.7, 10.8, 10.11): hostile code, run and compiled.

Everything runs for real: bwrap, gcc, libseccomp, the sandbox child. The tests run as
root; the code under test must not.
"""

from __future__ import annotations

import os
import pickle
import signal
import socket
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from bot.memo import Memo
from mmuci.errors import CommandError
from mmucore import jail, sandbox
from mmucore.build import Build
from mmucore.sandbox import Limits
from tests.mmucore.test_sandbox import CALLS, builds  # noqa: F401 - the fixture

REPO = Path(__file__).resolve().parents[2]
CLONE_NEWUSER = 0x10000000


def test_started_as_root_the_code_runs_as_nobody_without_network(
    builds: list[Build],  # noqa: F811
    tmp_path: Path,
) -> None:
    assert os.geteuid() == 0  # the point of the test: we are root
    secret = tmp_path / "smtp-password"
    secret.write_text("hunter2")
    with socket.socket() as srv:
        srv.bind(("127.0.0.1", 0))
        srv.listen()
        srv.settimeout(0.2)
        paths = ["/etc/passwd", str(secret), str(REPO / "bot"), "/dev/kmsg", "/proc/kcore"]
        paths += [str(p) for p in Path.home().iterdir() if p.name != ".pyenv"][:5]
        assert all(os.path.exists(p) for p in paths[:3])
        payload = {"port": srv.getsockname()[1], "paths": paths}
        out = sandbox.run(f"{CALLS}:identity", payload, builds[:1])
        assert out.ok, out.detail
        with pytest.raises(TimeoutError):
            srv.accept()
    v = out.value
    assert v["uid"] == ["65534"] * 4 and v["gid"] == ["65534"] * 4
    assert int(v["caps"], 16) == 0
    assert v["interfaces"] == ["lo"]  # a network namespace of its own
    assert v["connect"].startswith("refused:")
    assert not any(v["seen"].values()), v["seen"]  # no host /etc, home, our bot, kmsg, kvm


def test_a_child_cannot_touch_the_memo_or_the_status_file(
    builds: list[Build],  # noqa: F811
    tmp_path: Path,
) -> None:
    memo = Memo(tmp_path / "data" / "memo")
    memo.put(["check", "k"], {"verdict": "differs"})
    entry = memo._path(["check", "k"])
    status = tmp_path / "data" / "status.json"
    status.write_text('{"ok": true}')
    before = {p: p.read_bytes() for p in (entry, status, memo.dir / ".key")}
    out = sandbox.run(f"{CALLS}:plant", {"paths": [str(p) for p in before]}, builds[:1])
    assert out.ok, out.detail
    assert all(v.startswith("refused:") for v in out.value.values()), out.value
    assert {p: p.read_bytes() for p in before} == before
    assert Memo(memo.dir).get(["check", "k"]) == {"verdict": "differs"}


def test_a_memo_entry_the_bot_did_not_write_is_never_unpickled(tmp_path: Path) -> None:
    memo = Memo(tmp_path / "memo")
    memo.put(["check", "k"], "same")
    marker = tmp_path / "pwned"

    class Evil:
        def __reduce__(self):
            return (os.system, (f"touch {marker}",))

    entry = memo._path(["check", "k"])
    entry.write_bytes(pickle.dumps(Evil()))  # a bare pickle, as the old memo stored
    assert Memo(memo.dir).get(["check", "k"]) is None
    blob = entry.read_bytes()
    memo.put(["check", "k"], "same")
    good = entry.read_bytes()
    entry.write_bytes(good[:-1] + bytes([good[-1] ^ 1]))  # one bit of the payload
    assert Memo(memo.dir).get(["check", "k"]) is None
    assert not marker.exists() and blob


_NO_USERNS = textwrap.dedent(
    """
    import json, sys
    from mmucore import seccomp
    from mmucore.seccomp import Rule
    # a container's default profile: no new user namespaces, no unshare
    # (clone3 answers ENOSYS there, so glibc falls back to clone for threads)
    seccomp.load(deny=["unshare", Rule("clone", ((0, "masked_eq", {flag}, {flag}),)),
                       Rule("clone3", action=seccomp.act_errno(38))])
    from mmucore import jail, sandbox
    from mmucore.build import Build
    from pathlib import Path
    b = Build("k", sys.argv[1], Path(sys.argv[2]), Path(sys.argv[2]), "", 0.0, False, False)
    out = sandbox.run("tests.mmucore.sandbox_calls:add", {{"a": 1, "b": 2}}, [b])
    try:
        jail.compile_c(["gcc", "-c", "-x", "c", "/dev/null"], Path(sys.argv[3]), ro=[],
                       timeout=60)
        compiled = "compiled"
    except jail.JailUnavailable as e:
        compiled = str(e)
    print(json.dumps({{"failure": out.failure, "message": out.message, "value": out.value,
                      "compiled": compiled}}))
    """
).format(flag=CLONE_NEWUSER)


def _constructor_module(tmp_path: Path, marker: Path) -> tuple[str, Path]:
    """A module whose load writes ``marker`` (a patch's code running at load time)."""
    from cffi import FFI

    name = f"_jail_ctor_{os.getpid()}"
    ffi = FFI()
    ffi.cdef("int add(int, int);")
    ffi.set_source(
        name,
        "#include <stdio.h>\n"
        f'__attribute__((constructor)) static void ran(void) {{ FILE *f = fopen("{marker}", "w");'
        " if (f) fclose(f); }\n"
        "int add(int a, int b) { return a + b; }\n",
    )
    return name, Path(ffi.compile(tmpdir=str(tmp_path)))


def _run_without_userns(tmp_path: Path, extra_env: dict[str, str]) -> dict:
    import json

    marker = tmp_path / "built-code-ran"
    name, so = _constructor_module(tmp_path, marker)
    env = {**os.environ, "PYTHONPATH": str(REPO), **extra_env}
    res = subprocess.run(
        [sys.executable, "-c", _NO_USERNS, name, str(so), str(tmp_path / "o")],
        capture_output=True, text=True, env=env, cwd=REPO, timeout=120,
    )  # fmt: skip
    assert res.returncode == 0, res.stderr
    return {**json.loads(res.stdout.splitlines()[-1]), "ran": marker.exists(), "log": res.stderr}


def test_without_namespaces_no_built_code_runs_and_the_outcome_says_why(tmp_path: Path) -> None:
    r = _run_without_userns(tmp_path, {})
    assert r["failure"] == "unavailable" and r["value"] is None
    assert r["message"].startswith("sandbox unavailable:") and "bwrap" in r["message"]
    assert r["compiled"].startswith("sandbox unavailable:")
    assert not r["ran"]  # the module was never even loaded


def test_the_operator_override_runs_it_unjailed_and_says_so(tmp_path: Path) -> None:
    r = _run_without_userns(tmp_path, {jail.OVERRIDE_ENV: "1"})
    assert r["failure"] is None and r["value"] == 3, r
    assert r["compiled"] == "compiled"
    assert r["ran"]  # the same test above sees built code run when it does
    assert "WITHOUT the jail" in r["log"]


def _compile(tmp_path: Path, body: str) -> bytes:
    """The object gcc made in the jail, or its diagnostics."""
    c = tmp_path / "t.c"
    c.write_text(body)
    tmp_path.chmod(0o755)
    try:
        jail.compile_c(["gcc", "-c", str(c)], tmp_path / "t.o", ro=[tmp_path], timeout=120)
    except CommandError as e:
        return e.stderr.encode()
    return (tmp_path / "t.o").read_bytes()


def test_the_assembler_sees_no_host_file(tmp_path: Path) -> None:
    secret = tmp_path.parent / "secret-of-the-bot"
    secret.write_text("hunter2")
    for path in ("/etc/passwd", str(secret), str(Path.home() / ".bashrc")):
        out = _compile(tmp_path, f'asm(".incbin \\"{path}\\"");\nint x;\n')
        assert b"root:" not in out and b"hunter2" not in out, path
        assert b"No such file" in out or b"can't open" in out or b"not found" in out, out


def test_the_compiler_output_is_capped(tmp_path: Path) -> None:
    mb = jail.COMPILER_OUTPUT_MB + 16
    out = _compile(tmp_path, f'asm(".section .data\\n.skip {mb << 20}");\nint x;\n')
    assert len(out) < mb << 20 and b"error" in out.lower() or b"signal" in out
    assert not (tmp_path / "t.o").exists() or (tmp_path / "t.o").stat().st_size < mb << 20


def _descendants(pid: int) -> set[int]:
    kids: dict[int, list[int]] = {}
    for d in Path("/proc").iterdir():
        if d.name.isdigit():
            try:
                ppid = int((d / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            kids.setdefault(ppid, []).append(int(d.name))
    out, todo = set(), [pid]
    while todo:
        for k in kids.get(todo.pop(), []):
            out.add(k)
            todo.append(k)
    return out


def _alive(pids: set[int]) -> set[int]:
    left = set()
    for p in pids:
        try:
            state = Path(f"/proc/{p}/stat").read_text().rsplit(")", 1)[1].split()[0]
        except OSError:
            continue
        if state != "Z":
            left.add(p)
    return left


_KILL_ME = textwrap.dedent(
    """
    import sys
    from concurrent.futures import ProcessPoolExecutor
    import multiprocessing, time
    from pathlib import Path
    from mmucore import jail, sandbox
    from mmuci import proc
    from mmucore.build import Build
    what = sys.argv[1]
    if what == "run":
        b = Build("k", sys.argv[2], Path(sys.argv[3]), Path(sys.argv[3]), "", 0.0, False, False)
        sandbox.run("tests.mmucore.sandbox_calls:block", {}, [b])
    elif what == "build":
        jail.compile_c(["gcc", "-O2", "-c", sys.argv[2]], Path(sys.argv[2] + ".o"),
                       ro=[Path(sys.argv[2]).parent], timeout=600)
    else:  # the prebuild pool's workers
        ctx = multiprocessing.get_context("fork")
        with ProcessPoolExecutor(2, mp_context=ctx, initializer=proc.set_pdeathsig) as pool:
            list(pool.map(time.sleep, [600, 600]))
    """
)


def _kill_mid(args: list[str], wait_for: int) -> tuple[set[int], set[int]]:
    p = subprocess.Popen(
        [sys.executable, "-c", _KILL_ME, *args], cwd=REPO,
        env={**os.environ, "PYTHONPATH": str(REPO)},
    )  # fmt: skip
    deadline = time.monotonic() + 60
    seen: set[int] = set()
    while time.monotonic() < deadline and len(seen) < wait_for:
        seen |= _descendants(p.pid)
        time.sleep(0.2)
    seen |= _descendants(p.pid)
    time.sleep(1.0)  # well into the build or run
    seen |= _descendants(p.pid)
    os.kill(p.pid, signal.SIGKILL)
    p.wait()
    time.sleep(1.5)
    return seen, _alive(seen)


def test_sigkill_mid_run_leaves_no_process(builds: list[Build]) -> None:  # noqa: F811
    b = builds[0]
    seen, left = _kill_mid(["run", b.module_name, str(b.path)], wait_for=3)
    assert len(seen) >= 3  # bwrap, its init, the child
    assert left == set()


def test_sigkill_mid_build_leaves_no_process(tmp_path: Path) -> None:
    body = "".join(
        f"int g{i}(int x) {{ int s = 0; for (int j = 0; j < x; j++) s += j * {i}; return s; }}\n"
        for i in range(40000)
    )  # seconds of cc1 at -O2
    c = tmp_path / "slow.c"
    c.write_text(body)
    tmp_path.chmod(0o755)
    seen, left = _kill_mid(["build", str(c)], wait_for=4)
    assert len(seen) >= 4  # bwrap, its init, prlimit/sh, gcc, cc1
    assert left == set()


def test_sigkill_leaves_no_pool_worker() -> None:
    seen, left = _kill_mid(["pool"], wait_for=2)
    assert len(seen) >= 2
    assert left == set()


def test_sigterm_removes_the_private_directories(builds: list[Build]) -> None:  # noqa: F811
    import tempfile

    b = builds[0]
    code = _KILL_ME.replace("import sys\n", "import sys\nfrom mmuci import proc\n")
    code = code.replace("what = sys.argv[1]", "proc.exit_on_sigterm()\nwhat = sys.argv[1]")
    p = subprocess.Popen(
        [sys.executable, "-c", code, "run", b.module_name, str(b.path)], cwd=REPO,
        env={**os.environ, "PYTHONPATH": str(REPO)},
    )  # fmt: skip
    tmp = Path(tempfile.gettempdir())
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and not list(tmp.glob(f"{sandbox.TMP_PREFIX}{p.pid}-*")):
        time.sleep(0.1)
    time.sleep(1.0)
    seen = _descendants(p.pid)
    p.send_signal(signal.SIGTERM)
    assert p.wait(timeout=20) == 128 + signal.SIGTERM
    time.sleep(0.5)
    assert list(tmp.glob(f"{sandbox.TMP_PREFIX}{p.pid}-*")) == []
    assert _alive(seen) == set()


def test_stale_private_directories_of_a_killed_bot_are_removed(tmp_path: Path) -> None:
    import tempfile

    dead = subprocess.Popen(["true"])
    dead.wait()
    stale = Path(tempfile.mkdtemp(prefix=f"{sandbox.TMP_PREFIX}{dead.pid}-"))
    (stale / "request.json").write_text("{}")
    sandbox.clean_stale()
    assert not stale.exists()


def test_lowered_hard_limits_are_never_raised(builds: list[Build]) -> None:  # noqa: F811
    b = builds[0]
    code = textwrap.dedent(
        """
        import resource, sys
        from pathlib import Path
        for kind, lim in ((resource.RLIMIT_NOFILE, 48), (resource.RLIMIT_CPU, 30),
                          (resource.RLIMIT_FSIZE, 64 << 20)):
            resource.setrlimit(kind, (lim, lim))
        from mmucore import sandbox
        from mmucore.build import Build
        b = Build("k", sys.argv[1], Path(sys.argv[2]), Path(sys.argv[2]), "", 0.0, False, False)
        out = sandbox.run("tests.mmucore.sandbox_calls:add", {"a": 2, "b": 3}, [b])
        print(out.failure, out.value, out.message)
        """
    )
    res = subprocess.run(
        [sys.executable, "-c", code, b.module_name, str(b.path)], cwd=REPO,
        env={**os.environ, "PYTHONPATH": str(REPO)}, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert res.returncode == 0, res.stderr
    assert res.stdout.split()[:2] == ["None", "5"], res.stdout + res.stderr
    assert "not allowed to raise" not in res.stderr


def test_the_child_cannot_set_another_process_limits(builds: list[Build]) -> None:  # noqa: F811
    out = sandbox.run(f"{CALLS}:prlimit_other", {"pid": os.getpid()}, builds[:1], Limits())
    assert out.ok, out.detail
    assert out.value.startswith("refused:")


_CHECK_NO_USERNS = textwrap.dedent(
    """
    import sys, tempfile
    from pathlib import Path
    from mmucore import seccomp
    from mmucore.seccomp import Rule
    seccomp.load(deny=["unshare", Rule("clone", ((0, "masked_eq", {flag}, {flag}),)),
                       Rule("clone3", action=seccomp.act_errno(38))])
    from checks import engine
    from checks.space import all_checks
    from mmucore import extract
    ex = extract.extract(Path(sys.argv[1]))
    (chk,) = all_checks(["free_roots"])
    res = engine.compare(chk, ex, ex, cache_dir=Path(tempfile.mkdtemp()))
    print(res.verdict)
    print(res.error)
    """
).format(flag=CLONE_NEWUSER)


def test_without_namespaces_a_check_is_an_internal_error_not_the_patchs(tree_61) -> None:
    res = subprocess.run(
        [sys.executable, "-c", _CHECK_NO_USERNS, str(tree_61.path)], cwd=REPO,
        env={**os.environ, "PYTHONPATH": str(REPO)}, capture_output=True, text=True,
        timeout=300,
    )  # fmt: skip
    assert res.returncode == 0, res.stderr
    verdict, error = res.stdout.splitlines()[:2]
    assert verdict == "internal-error"
    assert error.startswith("sandbox unavailable: bwrap cannot set up its namespaces")

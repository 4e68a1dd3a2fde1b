"""The one place that runs subprocesses (git, gcc, nm, b4, public-inbox, the sandbox child).

Not a pipeline stage: every stage may use it. Errors carry the command, the exit
status and the tail of stderr.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mmuci.errors import CommandError


@dataclass(frozen=True)
class Completed:
    argv: list[str]
    returncode: int
    stdout: str
    stderr: str


def run(
    argv: Sequence[str | os.PathLike[str]],
    *,
    cwd: str | os.PathLike[str] | None = None,
    env: Mapping[str, str] | None = None,
    extra_env: Mapping[str, str] | None = None,
    input: str | bytes | None = None,
    timeout: float | None = None,
    check: bool = True,
    hint: str = "",
    binary: bool = False,
    pass_fds: Sequence[int] = (),
    die_with_us: bool = False,
) -> Completed:
    """Run a command, capture its output, raise CommandError on a non-zero exit if check.

    ``env`` replaces the environment; ``extra_env`` is added to the current one.
    With ``binary`` stdout is returned undecoded (as latin-1 text is not wanted).
    """
    args = [os.fspath(a) for a in argv]
    full_env = dict(env) if env is not None else dict(os.environ)
    if extra_env:
        full_env.update(extra_env)
    if isinstance(input, str):
        input = input.encode()
    try:
        proc = subprocess.run(
            args,
            cwd=cwd,
            env=full_env,
            input=input,
            capture_output=True,
            timeout=timeout,
            pass_fds=tuple(pass_fds),
            preexec_fn=_dies_with_us() if die_with_us else None,
        )
    except FileNotFoundError as e:
        raise CommandError(args, 127, str(e), hint or f"is {args[0]} installed?") from e
    except subprocess.TimeoutExpired as e:
        err = (e.stderr or b"").decode(errors="replace")
        raise CommandError(args, -1, f"{err}\ntimed out after {timeout}s", hint) from e
    stdout = proc.stdout if binary else proc.stdout.decode(errors="replace")
    stderr = proc.stderr.decode(errors="replace")
    if check and proc.returncode != 0:
        raise CommandError(args, proc.returncode, stderr or str(stdout)[-2000:], hint)
    return Completed(args, proc.returncode, stdout, stderr)  # type: ignore[arg-type]


def git(repo: str | Path, *args: str, **kw: Any) -> str:
    """Run git in ``repo`` and return its stdout, stripped of the final newline."""
    env = {"GIT_TERMINAL_PROMPT": "0", "LC_ALL": "C"}
    env.update(kw.pop("extra_env", None) or {})
    return run(["git", "-C", str(repo), *args], extra_env=env, **kw).stdout.rstrip("\n")


def spawn(
    argv: Sequence[str | os.PathLike[str]],
    *,
    cwd: str | os.PathLike[str] | None = None,
    extra_env: Mapping[str, str] | None = None,
    log: str | os.PathLike[str] | None = None,
    pass_fds: Sequence[int] = (),
) -> subprocess.Popen[bytes]:
    """Start a long-running child (a server) in its own session; the caller stops it.

    Its stdout and stderr go to ``log`` (or /dev/null); a missing program raises
    CommandError like ``run``.
    """
    args = [os.fspath(a) for a in argv]
    full_env = dict(os.environ)
    if extra_env:
        full_env.update(extra_env)
    out = open(log, "ab") if log else subprocess.DEVNULL
    try:
        return subprocess.Popen(
            args,
            cwd=cwd,
            env=full_env,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            pass_fds=tuple(pass_fds),
            start_new_session=True,  # so stopping it reaches every process it forked
        )
    except FileNotFoundError as e:
        raise CommandError(args, 127, str(e), f"is {args[0]} installed?") from e
    finally:
        if log:
            out.close()  # type: ignore[union-attr]


_live: set[subprocess.Popen[bytes]] = set()  # contained children running now (for SIGTERM)
_live_lock = threading.Lock()


def kill_contained() -> None:
    """SIGKILL every contained child still running (their whole process groups)."""
    with _live_lock:
        live = list(_live)
    for p in live:
        try:
            os.killpg(p.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass


def exit_on_sigterm() -> None:
    """In the main thread of a command: SIGTERM kills the contained children and exits
    with 143 through the normal unwinding, so private directories are removed."""

    def handler(signum: int, frame: object) -> None:
        kill_contained()
        sys.exit(128 + signum)

    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, handler)


def _prctl() -> Callable[..., int]:
    import ctypes

    f = ctypes.CDLL(None, use_errno=True).prctl
    f.argtypes = [ctypes.c_int, ctypes.c_ulong, ctypes.c_ulong, ctypes.c_ulong, ctypes.c_ulong]
    return f


_PRCTL = _prctl()  # resolved now: the forked child must not load anything


def set_pdeathsig(parent: int | None = None) -> None:
    """Die (SIGKILL) with the parent (the forking thread): for a worker process a bot
    forks (a pool) or, before exec, a jail. A parent that died before the prctl (the
    race) is caught by its pid: ``parent``, or anything but init."""
    _PRCTL(1, int(signal.SIGKILL), 0, 0, 0)  # PR_SET_PDEATHSIG
    if os.getppid() != parent if parent is not None else os.getppid() == 1:
        os._exit(1)


def _dies_with_us() -> Callable[[], None]:
    """A preexec_fn: the child (a jail, a compiler) gets SIGKILL when we die."""
    me = os.getpid()
    return lambda: set_pdeathsig(me)


@dataclass(frozen=True)
class Contained:
    argv: list[str]
    returncode: int  # negative: killed by that signal number
    timed_out: bool  # the wall-clock limit expired and the whole process group was killed
    seconds: float


def run_contained(
    argv: Sequence[str | os.PathLike[str]],
    *,
    cwd: str | os.PathLike[str],
    env: Mapping[str, str],
    stdin_path: str | os.PathLike[str],
    stdout_path: str | os.PathLike[str],
    stderr_path: str | os.PathLike[str],
    timeout: float,
    dump_signal: int | None = None,
    pass_fds: Sequence[int] = (),
) -> Contained:
    """Run an untrusted child in its own session with a wall-clock limit; never raises on it.

    Output goes to files (bounded by the child's RLIMIT_FSIZE, never into our memory).
    On timeout ``dump_signal`` (if any) asks the child for a traceback, then the whole
    process group is killed; leftovers of the group are killed after a normal exit too.
    ``pass_fds`` stay open in the child under their numbers. ``kill_contained`` (e.g. on
    SIGTERM) kills every such child at once.
    """
    import time

    args = [os.fspath(a) for a in argv]
    t0 = time.monotonic()
    with open(stdin_path, "rb") as fin, open(stdout_path, "wb") as fout:
        with open(stderr_path, "wb") as ferr:
            try:
                p = subprocess.Popen(
                    args,
                    cwd=cwd,
                    env=dict(env),
                    stdin=fin,
                    stdout=fout,
                    stderr=ferr,
                    pass_fds=tuple(pass_fds),
                    start_new_session=True,  # so a kill reaches everything it started
                    preexec_fn=_dies_with_us(),
                )
            except FileNotFoundError as e:
                raise CommandError(args, 127, str(e), f"is {args[0]} installed?") from e
    with _live_lock:
        _live.add(p)
    timed_out = False
    try:
        p.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        timed_out = True
        if dump_signal is not None:
            try:
                os.kill(p.pid, dump_signal)
                p.wait(timeout=0.5)
            except (ProcessLookupError, subprocess.TimeoutExpired):
                pass
    finally:
        try:
            os.killpg(p.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
        p.wait()
        with _live_lock:
            _live.discard(p)
    return Contained(args, p.returncode, timed_out, time.monotonic() - t0)


def pid_alive(pid: int) -> bool:
    """Whether a process with this pid exists (one of another user counts)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True

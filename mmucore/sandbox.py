"""Run built (untrusted) code in a confined child process and classify how it ended.

Operator note - what the sandbox does:
  * Every call runs in a fresh child (``python -m mmucore.sandbox_child``) started
    through ``mmucore.proc.run_contained`` in its own session, with a minimal
    environment (PATH, LANG=C, PYTHONPATH to the project; no proxies, no HOME, no
    secrets of the bot), a private temporary directory as cwd, HOME and TMPDIR (removed
    afterwards), and the request as a JSON file on stdin.
  * Before any built module is mapped the child: enters a new network and IPC namespace
    (no interfaces; where the kernel refuses, the bot logs "no network namespace: ..."
    once and carries on); enters a private mount namespace in which every mount is
    read-only except the private directory; sets RLIMIT_CPU (SIGXCPU, then SIGKILL),
    RLIMIT_AS (memory), RLIMIT_FSIZE, RLIMIT_NOFILE, RLIMIT_NPROC=0, RLIMIT_CORE=0;
    closes inherited fds; drops every capability (also from the bounding set); sets
    no_new_privs and a seccomp filter (x86_64) that answers EPERM to fork/clone/exec,
    sockets, ptrace, mount/unshare/setns, module loading, bpf, keys, io_uring, and to
    signals aimed at any other process. Each missing layer is logged once.
  * The parent enforces a wall-clock limit by killing the whole process group (after
    asking for a faulthandler traceback), reads the child's result with ``json`` only
    (never pickle; no symlink, FIFO or oversized file is followed or read), and
    classifies the end: a fatal signal is ``crash`` (with the faulthandler traceback,
    or the ASan/UBSan report at the kernel file:line in a sanitizer build), SIGXCPU or
    the wall limit is ``timeout``, MemoryError/ENOMEM is ``memory``, any other
    exception is ``error``. The bot's own process never loads a built module.
  * Before this, ``mmucore.validate`` refused directives, asm, code-placing
    attributes and unknown function declarations, and checked ``nm -u`` of the module.

What it does not protect against:
  * The child runs untrusted code in the same process as our driver code, so a
    malicious patch can forge its own result (e.g. claim ``same``): a verdict is only
    as trustworthy as the patch. A human still reads the patch.
  * The compiler (gcc via cffi) reads the untrusted C in the bot's process tree,
    without these limits; a compiler bug is reachable by a crafted patch.
  * The child can read every file its uid owns or that is world-readable (mounts are
    read-only, not hidden), and could smuggle it into a result that a report shows.
    Run the bot as a dedicated user that owns no secrets beyond its own config; as
    root the child stays uid 0 (without capabilities): root-owned files are readable.
  * Without seccomp (not x86_64), without namespaces or capabilities to drop (logged),
    RLIMIT_NPROC and the nm allow-list are the only barriers left against new
    processes and network access; RLIMIT_NPROC does not bind root.
  * Side channels, CPU contention and writing up to RLIMIT_FSIZE into the private
    directory are not prevented.

For callers: the child may not start threads or processes (seccomp), so a call must
do its work in the calling thread. One ``run`` starts one child; start-up plus a
trivial call is ~65 ms median here (``bench/sandbox_startup.py``), so the engine can
bisect a crashing chunk by calling ``run`` on halves until one state is left; calls
are independent and may run in parallel (one per core).
"""

from __future__ import annotations

import functools
import json
import logging
import os
import shutil
import signal
import stat
import sys
import tempfile
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mmucore import proc

if TYPE_CHECKING:
    from mmucore.build import Build

log = logging.getLogger(__name__)

PROJECT_ROOT = Path(__file__).resolve().parent.parent
CRASH_SIGNALS = {signal.SIGSEGV, signal.SIGBUS, signal.SIGILL, signal.SIGFPE, signal.SIGABRT}
MAX_RESULT_BYTES = 64 << 20
MAX_FILES_BYTES = 512 << 20
_reported: dict[str, str] = {}


@dataclass(frozen=True)
class Limits:
    cpu_seconds: float = 60
    memory_mb: int = 2048
    wall_seconds: float = 120
    file_mb: int = 256  # RLIMIT_FSIZE: largest file (out_file, result) the child may write


@dataclass(frozen=True)
class Outcome:
    ok: bool
    value: Any  # JSON value returned by the call (None unless ok)
    failure: str | None  # None | "crash" | "timeout" | "memory" | "error"
    signal: int | None
    message: str  # one line for a human
    detail: str  # stderr tail, traceback
    seconds: float
    files: dict[str, bytes] = field(default_factory=dict)  # out_file name -> bytes


def _child_env(work: Path, sanitize: bool) -> dict[str, str]:
    env = {
        "PATH": "/usr/bin:/bin",
        "LANG": "C",
        "LC_ALL": "C",
        "PYTHONPATH": str(PROJECT_ROOT),
        "PYTHONDONTWRITEBYTECODE": "1",
        "PYTHONNOUSERSITE": "1",
        "PYTHONHASHSEED": "0",
        "HOME": str(work),
        "TMPDIR": str(work),
    }
    if sanitize:
        env["LD_PRELOAD"] = _sanitizer_runtime()
        env["ASAN_OPTIONS"] = "detect_leaks=0:abort_on_error=1:allocator_may_return_null=1"
        env["UBSAN_OPTIONS"] = "print_stacktrace=1:halt_on_error=1:abort_on_error=1"
    return env


@functools.cache
def _sanitizer_runtime() -> str:
    """libasan for LD_PRELOAD: an ASan module cannot load into a plain interpreter."""
    out = proc.run(["gcc", "-print-file-name=libasan.so"], hint="gcc is needed").stdout
    return out.strip()


def _tail(path: Path, limit: int = 16000) -> str:
    try:
        with open(path, "rb") as f:
            f.seek(0, os.SEEK_END)
            size = f.tell()
            f.seek(max(0, size - limit))
            return f.read().decode(errors="replace")
    except OSError:
        return ""


def _read_regular(path: Path, cap: int) -> bytes | None:
    """A regular file's bytes, at most ``cap``: no symlink, FIFO or device the child made."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    except OSError:
        return None
    with os.fdopen(fd, "rb") as f:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            return None
        data = f.read(cap + 1)
    return data if len(data) <= cap else None


def _read_json(path: Path) -> Any:
    data = _read_regular(path, MAX_RESULT_BYTES)
    try:
        return json.loads(data) if data is not None else None
    except ValueError:
        return None


def _read_files(out: Path) -> dict[str, bytes]:
    files: dict[str, bytes] = {}
    if not out.is_dir() or out.is_symlink():
        return files
    budget = MAX_FILES_BYTES
    for p in sorted(out.iterdir()):
        data = _read_regular(p, budget)
        if data is not None:
            files[p.name] = data
            budget -= len(data)
    return files


def _log_status(status: Any) -> None:
    """Say once per process that a confinement layer is missing, and why."""
    if not isinstance(status, dict):
        return
    names = {
        "net": "no network namespace",
        "fs": "no read-only filesystem",
        "seccomp": "no seccomp",
    }
    for key, what in names.items():
        why = status.get(key)
        if isinstance(why, str) and why and key not in _reported:
            _reported[key] = f"{what}: {why}"
            log.warning("%s: %s", what, why)


def missing_confinement() -> dict[str, str]:
    """Confinement layers a child could not set up so far ("net", "fs", "seccomp")."""
    return dict(_reported)


def _first_line(detail: str, *needles: str) -> str:
    for line in detail.splitlines():
        if any(n in line for n in needles):
            return line.strip()
    return ""


def _classify(res: proc.Contained, work: Path, stderr: str, limits: Limits) -> Outcome:
    def out(failure: str | None, message: str, sig: int | None = None, value: Any = None):
        return Outcome(failure is None, value, failure, sig, message, stderr, res.seconds)

    if res.timed_out:
        return out("timeout", f"killed after the wall-clock limit of {limits.wall_seconds:g}s")
    if res.returncode < 0:
        sig = -res.returncode
        name = signal.Signals(sig).name if sig in signal.Signals._value2member_map_ else str(sig)
        if sig == signal.SIGXCPU or (sig == signal.SIGKILL and res.seconds >= limits.cpu_seconds):
            return out("timeout", f"CPU limit of {limits.cpu_seconds:g}s exceeded ({name})", sig)
        where = _first_line(stderr, "SUMMARY:", 'File "', "runtime error:")
        if "out-of-memory" in stderr or "allocation-size-too-big" in stderr:
            return out("memory", f"allocation failure ({name}) {where}".strip(), sig)
        if sig == signal.SIGKILL:
            return out("memory", "killed by SIGKILL (likely the out-of-memory killer)", sig)
        return out("crash", f"crashed with {name}" + (f" at {where}" if where else ""), sig)
    result = _read_json(work / "result.json")
    if not isinstance(result, dict):
        return out("error", f"the child exited with status {res.returncode} without a result")
    if result.get("ok") is True:
        return out(None, "ok", value=result.get("value"))
    failure = result.get("failure") if result.get("failure") in ("memory", "error") else "error"
    message = str(result.get("message", ""))[:500] or "the call failed"
    detail = str(result.get("traceback", ""))[-8000:]
    o = out(failure, message)
    return Outcome(False, None, failure, None, message, (detail + "\n" + stderr).strip(), o.seconds)


def run(call: str, payload: dict, builds: Sequence[Build], limits: Limits = Limits()) -> Outcome:
    """Call ``package.module:function(mods, payload)`` in a confined child over ``builds``.

    ``mods[i]`` has ``.ffi``, ``.lib``, ``.build_key`` and ``.out_file(name)``; the value
    returned must be JSON-serialisable. Never raises for anything the child does.
    """
    priv = Path(tempfile.mkdtemp(prefix="mmuci-sandbox-"))
    try:
        work = priv / "work"
        work.mkdir()
        sanitize = any(getattr(b, "sanitize", False) for b in builds)
        request = {
            "call": call,
            "payload": payload,
            "builds": [
                {"module_name": b.module_name, "path": str(b.path), "key": b.key} for b in builds
            ],
            "limits": asdict(limits),
            "sanitize": sanitize,
        }
        (priv / "request.json").write_text(json.dumps(request))
        res = proc.run_contained(
            [sys.executable, "-P", "-B", "-m", "mmucore.sandbox_child"],
            cwd=work,
            env=_child_env(work, sanitize),
            stdin_path=priv / "request.json",
            stdout_path=priv / "stdout",
            stderr_path=priv / "stderr",
            timeout=limits.wall_seconds,
            dump_signal=signal.SIGUSR1,
        )
        _log_status(_read_json(work / "status.json"))
        outcome = _classify(res, work, _tail(priv / "stderr"), limits)
        if outcome.ok:
            files = _read_files(work / "out")
            return Outcome(**{**asdict(outcome), "files": files})
        return outcome
    finally:
        shutil.rmtree(priv, ignore_errors=True)

"""Run built (untrusted) code in a confined child process and classify how it ended.

Operator note - what the sandbox does:
  * Every call runs in a fresh child (``python -m mmucore.sandbox_child``) inside the
    jail (``mmucore.jail``: bubblewrap with new user, mount, PID, network, IPC and UTS
    namespaces, uid 65534 without capabilities, a read-only view of only /usr, the
    Python installation, our packages and the modules it loads, a size-capped private
    tmpfs as cwd/HOME/TMPDIR, /dev with null, zero and urandom only, and death with its
    parent). The request goes in on stdin as JSON; the bot's data directory, memo,
    configuration, home and /etc are not in the child's view at all.
  * Before any built module is mapped the child sets RLIMIT_CPU (SIGXCPU, then
    SIGKILL), RLIMIT_AS (memory), RLIMIT_FSIZE, RLIMIT_NOFILE, RLIMIT_NPROC=0,
    RLIMIT_CORE=0 (never raising a hard limit), closes inherited fds, and loads a
    default-deny seccomp allow-list written by syscall name (libseccomp, every thread):
    no fork/clone/exec, sockets, ptrace, mount/unshare/setns, keys, bpf, ioctl,
    io_uring, blocking waits, no signal or prlimit64 aimed at another process.
  * Fail closed: when the jail cannot be set up here (``jail.unavailable()``) or the
    child cannot load its filter, no built code runs and the outcome is
    ``unavailable`` with the reason ("sandbox unavailable: ..."); only the operator's
    MMUCI_UNSAFE_NO_JAIL=1 runs the child without the jail (logged at every call).
  * The parent enforces a wall-clock limit by killing the jail (the child's own
    faulthandler dumps its traceback just before), reads the child's result from a
    file only the parent created and passed as an fd (never a path in the child's
    view), size-capped, as JSON validated against the expected shape (never pickle),
    and classifies the end: a fatal signal is ``crash`` (with the faulthandler
    traceback, or the ASan/UBSan report at the kernel file:line in a sanitizer build),
    SIGXCPU or the wall limit is ``timeout``, MemoryError/ENOMEM is ``memory``, any
    other exception is ``error``. The bot's own process never loads a built module.
  * Before this, ``mmucore.validate`` refused directives, asm, code-placing
    attributes and unknown function declarations, and checked ``nm -u`` of the module.

What it does not protect against:
  * The child runs untrusted code in the same process as our driver code, so a
    malicious patch can forge its own result (e.g. claim ``same``): a verdict is only
    as trustworthy as the patch. A human still reads the patch.
  * Kernel bugs reachable through the allowed syscalls and namespaces, side channels,
    CPU contention; the files of the read-only view (the Python installation, our
    sources and modules) are readable and could be smuggled into a result.

For callers: the child may not start threads or processes (seccomp), so a call must
do its work in the calling thread. One ``run`` starts one child; start-up plus a
trivial call is ~130 ms median here on a loaded machine (``bench/sandbox_startup.py``),
so the engine can bisect a crashing chunk by calling ``run`` on halves; calls are
independent and may run in parallel (one per core).
"""

from __future__ import annotations

import base64
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

from mmuci import proc
from mmucore import jail

if TYPE_CHECKING:
    from mmucore.build import Build

log = logging.getLogger(__name__)

PROJECT_ROOT = Path(__file__).resolve().parent.parent
CRASH_SIGNALS = {signal.SIGSEGV, signal.SIGBUS, signal.SIGILL, signal.SIGFPE, signal.SIGABRT}
MAX_RESULT_BYTES = 64 << 20
MAX_FILES_BYTES = 512 << 20
_FAILURES = ("memory", "error", "unavailable")
_cleaned: list[bool] = []
TMP_PREFIX = "mmuci-sandbox-"


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


def _child_env(work: str, sanitize: bool) -> dict[str, str]:
    env = {
        "PATH": "/usr/bin:/bin",
        "LANG": "C",
        "LC_ALL": "C",
        "PYTHONPATH": str(PROJECT_ROOT),
        "PYTHONDONTWRITEBYTECODE": "1",
        "PYTHONNOUSERSITE": "1",
        "PYTHONHASHSEED": "0",
        "HOME": work,
        "TMPDIR": work,
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


def _read_result(path: Path) -> dict[str, Any] | None:
    """The child's result, if it has the expected shape; anything else is None."""
    data = _read_regular(path, MAX_RESULT_BYTES)
    try:
        r = json.loads(data) if data else None
    except ValueError:
        return None
    if not isinstance(r, dict) or not isinstance(r.get("ok"), bool):
        return None
    if r["ok"]:
        files = r.get("files", {})
        if not isinstance(files, dict) or not all(isinstance(v, str) for v in files.values()):
            return None
        return r
    if r.get("failure") not in _FAILURES or not isinstance(r.get("message", ""), str):
        return None
    return r


def _decode_files(files: dict[str, str]) -> dict[str, bytes]:
    out: dict[str, bytes] = {}
    budget = MAX_FILES_BYTES
    for name, b64 in sorted(files.items()):
        try:
            data = base64.b64decode(b64, validate=True)
        except ValueError:
            continue
        budget -= len(data)
        if budget < 0 or "/" in name or name.startswith("."):
            continue
        out[name] = data
    return out


def missing_confinement() -> dict[str, str]:
    """Why built code cannot run here ({"jail": reason}), or {} when every layer is in
    place; {"override": ...} when the operator runs it without the jail."""
    if jail.override():
        return {"override": f"{jail.OVERRIDE_ENV}=1: no jail"}
    why = jail.unavailable()
    return {"jail": why} if why else {}


def _first_line(detail: str, *needles: str) -> str:
    for line in detail.splitlines():
        if any(n in line for n in needles):
            return line.strip()
    return ""


def _classify(res: proc.Contained, result: Path, stderr: str, limits: Limits) -> Outcome:
    def out(
        failure: str | None, message: str, sig: int | None = None, value: Any = None
    ) -> Outcome:
        return Outcome(failure is None, value, failure, sig, message, stderr, res.seconds)

    if res.timed_out:
        return out("timeout", f"killed after the wall-clock limit of {limits.wall_seconds:g}s")
    code = res.returncode
    if 128 < code < 192:  # bwrap reports a child killed by signal N as 128 + N
        code = 128 - code
    if code < 0:
        sig = -code
        name = signal.Signals(sig).name if sig in signal.Signals._value2member_map_ else str(sig)
        if sig == signal.SIGXCPU or (sig == signal.SIGKILL and res.seconds >= limits.cpu_seconds):
            return out("timeout", f"CPU limit of {limits.cpu_seconds:g}s exceeded ({name})", sig)
        where = _first_line(stderr, "SUMMARY:", 'File "', "runtime error:")
        if "out-of-memory" in stderr or "allocation-size-too-big" in stderr:
            return out("memory", f"allocation failure ({name}) {where}".strip(), sig)
        if sig == signal.SIGKILL:
            return out("memory", "killed by SIGKILL (likely the out-of-memory killer)", sig)
        return out("crash", f"crashed with {name}" + (f" at {where}" if where else ""), sig)
    r = _read_result(result)
    jail_error = _first_line(stderr, "bwrap: ")
    if r is None and jail_error.startswith("bwrap: "):
        return out("unavailable", f"sandbox unavailable: {jail_error} (no built code ran)")
    if r is None:
        return out("error", f"the child exited with status {code} without a result")
    if r["ok"]:
        o = out(None, "ok", value=r.get("value"))
        return Outcome(**{**asdict(o), "files": _decode_files(r.get("files", {}))})
    message = str(r.get("message", ""))[:500] or "the call failed"
    if r["failure"] == "unavailable":
        message = f"sandbox unavailable: {message} (no built code ran)"
    detail = str(r.get("traceback", ""))[-8000:]
    return Outcome(False, None, r["failure"], None, message, (detail + "\n" + stderr).strip(),
                   res.seconds)  # fmt: skip


def clean_stale() -> None:
    """Remove private directories of sandbox runs whose bot process is gone (SIGKILL)."""
    for d in Path(tempfile.gettempdir()).glob(f"{TMP_PREFIX}*-*"):
        pid = d.name[len(TMP_PREFIX) :].split("-", 1)[0]
        if pid.isdigit() and int(pid) != os.getpid() and not proc.pid_alive(int(pid)):
            shutil.rmtree(d, ignore_errors=True)


def _unavailable(why: str) -> Outcome:
    return Outcome(False, None, "unavailable", None, why, "", 0.0)


def run(
    call: str, payload: dict[str, Any], builds: Sequence[Build], limits: Limits = Limits()
) -> Outcome:
    """Call ``package.module:function(mods, payload)`` in a confined child over ``builds``.

    ``mods[i]`` has ``.ffi``, ``.lib``, ``.build_key`` and ``.out_file(name)``; the value
    returned must be JSON-serialisable. Never raises for anything the child does; without
    the jail the outcome is ``unavailable`` and nothing built ran.
    """
    if not _cleaned:
        _cleaned.append(True)
        clean_stale()
    jailed = not jail.override()
    if jailed and (why := jail.unavailable()):
        return _unavailable(why)
    priv = Path(tempfile.mkdtemp(prefix=f"{TMP_PREFIX}{os.getpid()}-"))
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
        result = priv / "result.json"
        fd = os.open(result, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            res = _start(call, builds, limits, sanitize, priv, work if not jailed else None, fd)
        finally:
            os.close(fd)
        return _classify(res, result, _tail(priv / "stderr"), limits)
    finally:
        shutil.rmtree(priv, ignore_errors=True)


def _start(
    call: str, builds: Sequence[Build], limits: Limits, sanitize: bool, priv: Path,
    unjailed_cwd: Path | None, fd: int,
) -> proc.Contained:  # fmt: skip
    """The child, in the jail (or, under the operator's override, in ``unjailed_cwd``)."""
    child = [sys.executable, "-P", "-B", "-m", "mmucore.sandbox_child", "--result-fd", str(fd)]
    if unjailed_cwd is None:
        top = call.partition(":")[0].split(".")[0]
        ro = [
            *jail.python_paths(),
            *(PROJECT_ROOT / p for p in {"mmuci", "mmucore", "checks", top}),
        ]
        ro = [p for p in ro if p.exists()] + [Path(b.path) for b in builds]
        env = _child_env(jail.TMP, sanitize)
        argv, cwd = jail.command(child, ro=ro, tmpfs_mb=limits.file_mb, env=env), priv
    else:
        argv, cwd, env = child, unjailed_cwd, _child_env(str(unjailed_cwd), sanitize)
    return proc.run_contained(
        argv,
        cwd=cwd,
        env=env if unjailed_cwd is not None else {"PATH": "/usr/bin:/bin"},
        stdin_path=priv / "request.json",
        stdout_path=priv / "stdout",
        stderr_path=priv / "stderr",
        timeout=limits.wall_seconds,
        pass_fds=(fd,),
    )

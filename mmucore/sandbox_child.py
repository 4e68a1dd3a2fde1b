"""The sandbox child: confine this process, then load built modules and run one call.

Started by ``mmucore.sandbox.run`` inside the jail (mmucore/jail.py) as
``python -m mmucore.sandbox_child --result-fd N`` with the JSON request on stdin and the
jail's private tmpfs as cwd. Everything before ``_load`` happens before any untrusted
code is mapped: limits, our own imports, then the seccomp allow-list; without it nothing
built is loaded. The result is JSON written to fd N, a file only the parent can name.
"""

from __future__ import annotations

import base64
import contextlib
import ctypes
import errno
import faulthandler
import importlib
import importlib.util
import json
import math
import os
import resource
import signal
import struct
import sys
import traceback
from pathlib import Path
from typing import Any

# The allow-list of the confined child once it is set up, by syscall name: what CPython,
# cffi, the driver and faulthandler need to load a module and run states. Everything
# else (fork/clone/exec, sockets, ptrace, mount/unshare/setns, keys, bpf, io_uring,
# modules, reboot, ioctl but TCGETS, blocking waits such as pause) is answered EPERM.
_ALLOW = (
    "read", "write", "readv", "writev", "pread64", "pwrite64", "lseek", "close",
    "openat", "fstat", "newfstatat", "statx", "stat", "lstat", "access", "faccessat",
    "faccessat2", "getdents64", "readlink", "readlinkat", "getcwd", "fcntl", "dup",
    "dup2", "dup3", "unlink", "unlinkat", "rename", "renameat", "renameat2", "mkdir",
    "mkdirat", "ftruncate", "fsync", "fdatasync",
    "mmap", "munmap", "mprotect", "mremap", "brk", "madvise", "msync", "mlock", "munlock",
    "rt_sigaction", "rt_sigprocmask", "rt_sigreturn", "sigaltstack", "setitimer",
    "getitimer", "futex", "sched_yield", "sched_getaffinity", "set_robust_list",
    "get_robust_list", "rseq", "set_tid_address", "restart_syscall",
    "clock_gettime", "clock_getres", "gettimeofday", "time", "getrusage", "times",
    "getpid", "gettid", "getppid", "getuid", "geteuid", "getgid", "getegid",
    "getgroups", "getrandom", "uname", "sysinfo", "arch_prctl",
    "exit", "exit_group",
)  # fmt: skip


def _allow_rules() -> list[Any]:
    from mmucore.seccomp import Rule

    me = os.getpid()
    return [
        *_ALLOW,
        # limits of this process only (pid 0 = self): never another process's (10.7)
        Rule("prlimit64", ((0, "eq", 0),)),
        Rule("ioctl", ((1, "eq", 0x5401),)),  # TCGETS only: isatty() when opening a file
        # raise()/abort() signal ourselves; no signal reaches another process
        Rule("tgkill", ((0, "eq", me),)),
        Rule("kill", ((0, "eq", me),)),
        Rule("tkill", ((0, "eq", me),)),
    ]


def _seccomp() -> str:
    """Default-deny allow-list (by name, libseccomp) on every thread; '' or why not."""
    from mmucore import seccomp

    try:
        seccomp.load(allow=_allow_rules(), tsync=True)
    except (OSError, AttributeError) as e:
        return f"seccomp: {e}"
    return ""


def _set_limits(limits: dict[str, Any], sanitize: bool) -> None:
    """RLIMITs for the call; a hard limit is never raised (10.11): ours may be lower."""
    from mmucore.rlimits import clamp_hard

    r = resource
    cpu = max(1, math.ceil(limits["cpu_seconds"]))
    soft, hard = clamp_hard(r.RLIMIT_CPU, cpu + 1)
    r.setrlimit(r.RLIMIT_CPU, (min(cpu, hard), hard))  # SIGXCPU, then SIGKILL
    if not sanitize:  # ASan reserves terabytes of shadow; it bounds allocations itself
        r.setrlimit(r.RLIMIT_AS, clamp_hard(r.RLIMIT_AS, limits["memory_mb"] << 20))
    r.setrlimit(r.RLIMIT_FSIZE, clamp_hard(r.RLIMIT_FSIZE, limits.get("file_mb", 256) << 20))
    r.setrlimit(r.RLIMIT_NOFILE, clamp_hard(r.RLIMIT_NOFILE, 64))
    r.setrlimit(r.RLIMIT_NPROC, clamp_hard(r.RLIMIT_NPROC, 0))  # seccomp backs it
    r.setrlimit(r.RLIMIT_CORE, (0, 0))


def _drop_capabilities() -> str:
    """Give up every capability (the jail has none; this matters only under the override)."""
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl.argtypes = [ctypes.c_int, ctypes.c_ulong, ctypes.c_ulong, ctypes.c_ulong,
                           ctypes.c_ulong]  # fmt: skip
    for cap in range(64):
        libc.prctl(24, cap, 0, 0, 0)  # PR_CAPBSET_DROP; EINVAL past the last capability
    libc.prctl(47, 4, 0, 0, 0)  # PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL
    header = ctypes.create_string_buffer(struct.pack("Ii", 0x20080522, 0))  # v3, this process
    data = ctypes.create_string_buffer(24)  # effective, permitted, inheritable: all zero
    if libc.capset(header, data) != 0:
        e = ctypes.get_errno()
        return f"capset: {os.strerror(e)}"
    return ""


class Module:
    """One loaded build as the call sees it: ``.ffi``, ``.lib``, ``.build_key``."""

    def __init__(self, mod: Any, build_key: str, out_dir: Path) -> None:
        self.ffi = mod.ffi
        self.lib = mod.lib
        self.build_key = build_key
        self._out_dir = out_dir

    def out_file(self, name: str) -> str:
        """Path for a binary result ``name``; the parent gets it in ``Outcome.files``."""
        if not name or "/" in name or name.startswith(".") or "\0" in name:
            raise ValueError(f"bad out_file name {name!r}")
        self._out_dir.mkdir(exist_ok=True)
        return str(self._out_dir / name)


def _load(builds: list[dict[str, str]], out_dir: Path) -> list[Module]:
    mods = []
    for b in builds:
        spec = importlib.util.spec_from_file_location(b["module_name"], b["path"])
        if spec is None or spec.loader is None:
            raise ImportError(f"cannot load {b['path']}")
        mod = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(mod)
        mods.append(Module(mod, b["key"], out_dir))
    return mods


def _call(spec: str) -> Any:
    modname, _, func = spec.partition(":")
    return getattr(importlib.import_module(modname), func)


def _failure(e: BaseException) -> dict[str, Any]:
    memory = isinstance(e, MemoryError) or (isinstance(e, OSError) and e.errno == errno.ENOMEM)
    tb = "".join(traceback.format_exception(e))
    message = f"{type(e).__name__}: {e}".splitlines()[0][:500] if str(e) else type(e).__name__
    return {
        "ok": False,
        "failure": "memory" if memory else "error",
        "message": message,
        "traceback": tb[-8000:],
    }


def _files(out_dir: Path, cap: int) -> dict[str, str]:
    """out_file results, base64, at most ``cap`` bytes together."""
    files: dict[str, str] = {}
    if out_dir.is_dir():
        for p in sorted(out_dir.iterdir()):
            data = p.read_bytes()[: cap + 1]
            cap -= len(data)
            if cap < 0:
                raise OSError(errno.EFBIG, "out_file results too large")
            files[p.name] = base64.b64encode(data).decode()
    return files


def _emit(fd: int, obj: dict[str, Any]) -> None:
    with os.fdopen(fd, "w") as f:
        f.write(json.dumps(obj))


def main() -> int:
    """Confine, load, call, write the result to the parent's fd; a fault kills us and the
    parent sees it. Nothing built is mapped before every layer is in place."""
    result_fd = int(sys.argv[sys.argv.index("--result-fd") + 1])
    faulthandler.enable()
    faulthandler.register(signal.SIGXCPU, chain=True)
    request = json.load(sys.stdin)
    limits = request["limits"]
    # the parent kills us at the wall limit; dump where we were just before it
    with contextlib.suppress(RuntimeError):  # no thread (a seccomp profile): no dump
        faulthandler.dump_traceback_later(max(0.2, limits["wall_seconds"] - 0.4), exit=False)
    work = Path.cwd()
    _set_limits(limits, request.get("sanitize", False))
    os.closerange(3, result_fd)
    os.closerange(result_fd + 1, 1 << 16)
    try:
        func = _call(request["call"])  # trusted code of ours, imported before any build
    except BaseException as e:  # noqa: BLE001 - a bug of ours, reported as such
        _emit(result_fd, _failure(e))
        return 0
    why = _drop_capabilities() or _seccomp()
    if why:  # fail closed: no built code runs without every layer
        _emit(result_fd, {"ok": False, "failure": "unavailable", "message": why})
        return 0
    try:
        mods = _load(request["builds"], work / "out")
        value = func(mods, request["payload"])
        result: dict[str, Any] = {"ok": True, "value": value}
        result["files"] = _files(work / "out", limits.get("file_mb", 256) << 20)
        text = json.dumps(result)
    except BaseException as e:  # everything, also SystemExit from the call, is reported
        text = json.dumps(_failure(e))
    with os.fdopen(result_fd, "w") as f:
        f.write(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())

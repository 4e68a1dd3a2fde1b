"""The sandbox child: confine this process, then load built modules and run one call.

Started by ``mmucore.sandbox.run`` as ``python -m mmucore.sandbox_child`` with the JSON
request on stdin and a private directory as cwd. Everything before ``_load`` happens
before any untrusted code is mapped; the result goes to ``result.json`` in the cwd.
"""

from __future__ import annotations

import ctypes
import errno
import faulthandler
import importlib
import importlib.util
import json
import math
import os
import platform
import resource
import signal
import struct
import sys
import traceback
from pathlib import Path
from typing import Any

CLONE_NEWNS = 0x00020000
CLONE_NEWIPC = 0x08000000
CLONE_NEWUSER = 0x10000000
CLONE_NEWNET = 0x40000000
MS_RDONLY, MS_NOSUID, MS_NODEV, MS_NOEXEC = 1, 2, 4, 8
MS_REMOUNT, MS_BIND, MS_REC, MS_PRIVATE = 32, 4096, 16384, 1 << 18
MS_NOATIME, MS_NODIRATIME, MS_RELATIME = 1024, 2048, 1 << 21
_MOUNT_FLAGS = {
    "nosuid": MS_NOSUID,
    "nodev": MS_NODEV,
    "noexec": MS_NOEXEC,
    "noatime": MS_NOATIME,
    "nodiratime": MS_NODIRATIME,
    "relatime": MS_RELATIME,
}

# x86_64 syscalls the confined code never needs: new processes, sockets, namespaces,
# mounts, tracing other processes, kernel modules, keys, bpf, io_uring
# fmt: off
_DENIED_X86_64 = (
    56, 57, 58, 59, 322, 435,  # clone fork vfork execve execveat clone3
    41, 42, 43, 49, 50, 53, 288,  # socket connect accept bind listen socketpair accept4
    101, 310, 311, 312, 440,  # ptrace process_vm_readv/writev kcmp process_madvise
    165, 166, 155, 161, 163, 428, 429, 430, 431, 432, 433, 442,  # mount family
    272, 308, 169, 175, 176, 313, 246, 320,  # unshare setns reboot modules kexec
    248, 249, 250, 321, 298, 323, 425, 426, 427, 135, 434, 424,  # keys bpf ... pidfd
    62, 200, 129, 297,  # kill tkill rt_sigqueueinfo rt_tgsigqueueinfo: no other process
)
# fmt: on
_TGKILL = 234  # raise() and abort() need it: allowed for our own pid only
AUDIT_ARCH_X86_64 = 0xC000003E
SECCOMP_RET_ALLOW = 0x7FFF0000
SECCOMP_RET_KILL_PROCESS = 0x80000000
SECCOMP_RET_ERRNO = 0x00050000

_libc = ctypes.CDLL(None, use_errno=True)
_ul = ctypes.c_ulong
_libc.prctl.argtypes = [ctypes.c_int, _ul, _ul, _ul, _ul]  # a pointer must not be cut to int
_libc.mount.argtypes = [ctypes.c_char_p, ctypes.c_char_p, ctypes.c_char_p, _ul, ctypes.c_void_p]


def _err(what: str) -> str:
    e = ctypes.get_errno()
    return f"{what}: {os.strerror(e)} (errno {e})"


def _enter_network_namespace() -> str:
    """A network namespace without interfaces but a downed loopback; '' or why not."""
    if _libc.unshare(CLONE_NEWNET | CLONE_NEWIPC) == 0:
        return ""
    first = _err("unshare(CLONE_NEWNET)")
    # without privilege a user namespace may still allow it (Debian/Ubuntu defaults)
    if _libc.unshare(CLONE_NEWUSER | CLONE_NEWNET | CLONE_NEWIPC) == 0:
        return ""
    return first


def _readonly_filesystem(writable: Path) -> str:
    """Make every mount read-only in a private mount namespace, except ``writable``."""
    if _libc.unshare(CLONE_NEWNS) != 0:
        return _err("unshare(CLONE_NEWNS)")
    if _libc.mount(None, b"/", None, MS_REC | MS_PRIVATE, None) != 0:
        return _err("mount(MS_PRIVATE)")
    w = str(writable).encode()
    if _libc.mount(w, w, None, MS_BIND, None) != 0:
        return _err("bind mount of the private directory")
    failed = []
    with open("/proc/self/mountinfo") as f:
        entries = [line.split() for line in f]
    for fields in entries:
        mp = fields[4].encode().decode("unicode_escape").encode()
        if mp == w:
            continue
        flags = MS_REMOUNT | MS_BIND | MS_RDONLY
        for opt in fields[5].split(","):
            flags |= _MOUNT_FLAGS.get(opt, 0)
        if _libc.mount(None, mp, None, flags, None) != 0:
            failed.append(mp.decode(errors="replace"))
    os.chdir(writable)  # the old cwd is the directory under the bind mount
    return f"could not make read-only: {', '.join(failed)}" if failed else ""


def _set_limits(limits: dict[str, Any], sanitize: bool) -> None:
    cpu = max(1, math.ceil(limits["cpu_seconds"]))
    resource.setrlimit(resource.RLIMIT_CPU, (cpu, cpu + 1))  # SIGXCPU, then SIGKILL
    if not sanitize:  # ASan reserves terabytes of shadow; it bounds allocations itself
        mem = limits["memory_mb"] << 20
        resource.setrlimit(resource.RLIMIT_AS, (mem, mem))
    fsize = limits.get("file_mb", 256) << 20
    resource.setrlimit(resource.RLIMIT_FSIZE, (fsize, fsize))
    resource.setrlimit(resource.RLIMIT_NOFILE, (64, 64))
    resource.setrlimit(resource.RLIMIT_NPROC, (0, 0))  # root ignores it: seccomp backs it
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))


def _close_inherited_fds() -> None:
    os.closerange(3, 1 << 16)


def _seccomp_deny() -> str:
    """Deny the syscalls in _DENIED_X86_64 with EPERM; '' or why not."""
    if _libc.prctl(38, 1, 0, 0, 0) != 0:  # PR_SET_NO_NEW_PRIVS
        return _err("PR_SET_NO_NEW_PRIVS")
    if platform.machine() != "x86_64":
        return f"no seccomp filter for {platform.machine()}"

    def stmt(code: int, k: int, jt: int = 0, jf: int = 0) -> bytes:
        return struct.pack("HBBI", code, jt, jf, k)

    deny = SECCOMP_RET_ERRNO | errno.EPERM
    n = len(_DENIED_X86_64)
    prog = [
        stmt(0x20, 4),  # ld arch
        stmt(0x15, AUDIT_ARCH_X86_64, 1, 0),  # jeq
        stmt(0x06, SECCOMP_RET_KILL_PROCESS),
        stmt(0x20, 0),  # ld nr
        stmt(0x35, 0x40000000, n + 3, 0),  # jge: x32 ABI -> deny
    ]
    for i, nr in enumerate(_DENIED_X86_64):
        prog.append(stmt(0x15, nr, n + 2 - i, 0))  # jeq nr -> deny
    prog += [
        stmt(0x15, _TGKILL, 0, 3),  # tgkill? else allow
        stmt(0x20, 16),  # ld args[0] (low word): the target tgid
        stmt(0x15, os.getpid(), 1, 0),  # our own -> allow
        stmt(0x06, deny),
        stmt(0x06, SECCOMP_RET_ALLOW),
    ]
    buf = ctypes.create_string_buffer(b"".join(prog))
    fprog = struct.pack("HxxxxxxQ", len(prog), ctypes.addressof(buf))
    fbuf = ctypes.create_string_buffer(fprog)
    if _libc.prctl(22, 2, ctypes.addressof(fbuf), 0, 0) != 0:  # PR_SET_SECCOMP, FILTER
        return _err("seccomp")
    return ""


def _drop_capabilities() -> str:
    """Give up every capability (root stays uid 0 but loses DAC override, raw I/O, ...)."""
    for cap in range(64):
        _libc.prctl(24, cap, 0, 0, 0)  # PR_CAPBSET_DROP; EINVAL past the last capability
    _libc.prctl(47, 4, 0, 0, 0)  # PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL
    header = ctypes.create_string_buffer(struct.pack("Ii", 0x20080522, 0))  # v3, this process
    data = ctypes.create_string_buffer(24)  # effective, permitted, inheritable: all zero
    if _libc.capset(header, data) != 0:
        return _err("capset")
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


def _write(path: str, obj: dict[str, Any]) -> None:
    with open(path + ".tmp", "w") as f:
        json.dump(obj, f)
    os.replace(path + ".tmp", path)


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


def main() -> int:
    """Confine, load, call, write result.json; a fault kills us and the parent sees it."""
    faulthandler.enable()
    faulthandler.register(signal.SIGUSR1)  # the parent asks for a traceback on timeout
    faulthandler.register(signal.SIGXCPU, chain=True)
    request = json.load(sys.stdin)
    work = Path.cwd()
    status = {
        "net": _enter_network_namespace(),
        "fs": _readonly_filesystem(work),
    }
    _set_limits(request["limits"], request.get("sanitize", False))
    _close_inherited_fds()
    status["caps"] = _drop_capabilities()
    status["seccomp"] = _seccomp_deny()
    _write("status.json", status)
    try:
        func = _call(request["call"])  # trusted code of ours, imported before any build
        mods = _load(request["builds"], work / "out")
        value = func(mods, request["payload"])
        result: dict[str, Any] = {"ok": True, "value": value}
        text = json.dumps(result)
    except BaseException as e:  # everything, also SystemExit from the call, is reported
        text = json.dumps(_failure(e))
    with open("result.json.tmp", "w") as f:
        f.write(text)
    os.replace("result.json.tmp", "result.json")
    return 0


if __name__ == "__main__":
    sys.exit(main())

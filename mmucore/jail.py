"""The jail: one bubblewrap (bwrap) confinement for gcc/as and for the sandbox child.

``command(argv, ...)`` wraps a command in bwrap with new user, mount, PID, network, IPC,
UTS (and cgroup) namespaces, itself the init of an outer PID namespace (mmucore/jailinit.c)
that dies with the caller; uid/gid 65534 in the user namespace, and host uid/gid 65534 too:
started as root, the outer init drops to 65534 before bwrap starts, so bwrap runs
unprivileged (never host uid 0) and the paths named read-only are staged for that uid
first (``jailinit.c``); no capabilities, no nested user namespaces; a read-only
root holding only ``/usr`` (+ the usual /bin, /lib symlinks), ``/etc/ld.so.cache``, the
paths the caller names read-only (the Python installation, our packages, a module) and
a private size-capped tmpfs at ``/tmp`` (the cwd); a new ``/proc`` of its own PID
namespace; ``/dev`` with only null, zero and urandom. When the caller dies (even by
SIGKILL, at any point of bwrap's set-up) the outer init dies and the kernel kills every
process of the jail; bwrap's ``--die-with-parent`` alone leaves a window (jailinit.c).

Fail closed: ``unavailable()`` says why the jail cannot be set up here ('' when it can);
callers then run no built code, unless the operator set MMUCI_UNSAFE_NO_JAIL=1 (logged on
every use; documented in deploy/OPERATORS.md).
"""

from __future__ import annotations

import functools
import logging
import os
import resource
import shutil
import sys
from collections.abc import Iterable
from pathlib import Path

from mmuci import proc
from mmuci.errors import MmuCiError
from mmucore import jailinit
from mmucore.rlimits import clamp_hard

log = logging.getLogger(__name__)

UID = jailinit.JAIL_UID  # the jail's uid and gid, inside its user namespace and on the host
OVERRIDE_ENV = "MMUCI_UNSAFE_NO_JAIL"
TMP = "/tmp"  # the private tmpfs inside the jail, also the cwd
_HOST_RO = ("/usr",)
_LOADER_FILES = ("/etc/ld.so.cache",)
_SYMLINKS = ("bin", "sbin", "lib", "lib32", "lib64", "libx32")
_DEVICES = ("/dev/null", "/dev/zero", "/dev/urandom")


class JailUnavailable(MmuCiError):
    """The jail cannot be set up here: built code must not run."""


def override() -> bool:
    """True when the operator explicitly allowed running built code without the jail."""
    if os.environ.get(OVERRIDE_ENV) != "1":
        return False
    log.warning(
        "%s=1: running built (untrusted) code WITHOUT the jail (no namespaces, host "
        "filesystem visible); never do this on a bot that reads public mail",
        OVERRIDE_ENV,
    )
    return True


def python_paths() -> list[Path]:
    """What the interpreter needs to start: its installation and the venv."""
    paths = {Path(sys.base_prefix).resolve(), Path(sys.prefix).resolve()}
    exe = Path(sys.executable).resolve()
    if not any(exe.is_relative_to(p) for p in paths):
        paths.add(exe)
    return sorted(paths)


def prlimit_args(*, cpu: int, memory: int, fsize: int, nofile: int = 256) -> list[str]:
    """``prlimit`` options (util-linux) for a command in the jail, clamped to our limits."""
    r = resource
    out = ["prlimit"]
    for opt, kind, want in (
        ("cpu", r.RLIMIT_CPU, cpu), ("as", r.RLIMIT_AS, memory), ("fsize", r.RLIMIT_FSIZE, fsize),
        ("nofile", r.RLIMIT_NOFILE, nofile), ("core", r.RLIMIT_CORE, 0),
    ):  # fmt: skip
        soft, hard = clamp_hard(kind, want)
        out.append(f"--{opt}={soft}:{hard}")
    return [*out, "--"]


def command(
    argv: Iterable[str],
    *,
    ro: Iterable[Path] = (),
    tmpfs_mb: int = 256,
    status_fd: int | None = None,
    seccomp_fd: int | None = None,
    env: dict[str, str] | None = None,
) -> list[str]:
    """``argv`` wrapped in bwrap (see the module doc); ``ro``: host paths (files or
    directories) bound read-only at the same path."""
    bw = shutil.which("bwrap")
    if bw is None:
        raise JailUnavailable("sandbox unavailable: bwrap not found (apt-get install bubblewrap)")
    binds = sorted({str(Path(p)) for p in ro})
    # as root, every path bound beyond the system's own is staged for the jail's uid
    stage = [p for p in binds if jailinit.drops() and not _system_path(p)]
    try:
        init = jailinit.prefix(stage)  # bwrap as init of a PID namespace that dies with us
        source = {p: jailinit.staged(i) for i, p in enumerate(stage)}
    except MmuCiError as e:
        raise JailUnavailable(f"sandbox unavailable: {e}") from e
    out = [
        *init, bw, "--unshare-user", "--unshare-ipc", "--unshare-pid", "--unshare-net",
        "--unshare-uts", "--unshare-cgroup-try", "--uid", str(UID), "--gid", str(UID),
        "--disable-userns", "--die-with-parent", "--new-session", "--cap-drop", "ALL",
        "--hostname", "mmu-ci", "--clearenv",
    ]  # fmt: skip
    # the tmpfs first: a read-only path under /tmp (a module) is then bound inside it
    out += ["--size", str(tmpfs_mb << 20), "--tmpfs", TMP]
    for p in _HOST_RO:
        out += ["--ro-bind", p, p]
    for name in _SYMLINKS:
        target = Path("/") / name
        if target.is_symlink():
            out += ["--symlink", os.readlink(target), str(target)]
        elif target.is_dir():
            out += ["--ro-bind", str(target), str(target)]
    for f in _LOADER_FILES:
        out += ["--ro-bind-try", f, f]
    for p in binds:
        out += ["--ro-bind", source.get(p, p), p]
    out += ["--proc", "/proc", "--dir", "/dev"]
    for d in _DEVICES:
        out += ["--dev-bind", d, d]
    out += ["--chdir", TMP]
    for k, v in (env or {}).items():
        out += ["--setenv", k, v]
    if status_fd is not None:
        out += ["--json-status-fd", str(status_fd)]
    if seccomp_fd is not None:
        out += ["--seccomp", str(seccomp_fd)]
    out += ["--remount-ro", "/", "--"]
    return out + list(argv)


def _system_path(p: str) -> bool:
    """World-readable system paths every uid reaches: never staged."""
    return any(Path(p).is_relative_to(s) for s in _HOST_RO)


def userns_disabled(sysctl: Path = Path("/proc/sys")) -> str:
    """Why unprivileged user namespaces are off ('' when they are not): the jail needs
    them even when mmu-ci runs as root, since it drops to uid 65534 before bwrap."""
    for name, fix in (
        ("kernel/unprivileged_userns_clone", "1"),
        ("user/max_user_namespaces", "10000"),
    ):
        try:
            value = (sysctl / name).read_text().strip()
        except OSError:
            continue  # not this kernel's knob (unprivileged_userns_clone is Debian's)
        if value == "0":
            key = name.replace("/", ".")
            return (
                f"sandbox unavailable: unprivileged user namespaces are disabled ({key} = 0);"
                f" the jail runs as uid {UID} even when mmu-ci runs as root, and needs them:"
                f" sysctl -w {key}={fix} (and keep it in /etc/sysctl.d/)"
            )
    return ""


@functools.cache
def unavailable() -> str:
    """Why the jail cannot be set up on this machine ('' when it can); probed once."""
    if why := userns_disabled():
        return why
    try:
        argv = command(["/usr/bin/true"], tmpfs_mb=1)
    except JailUnavailable as e:
        return str(e)
    res = proc.run(argv, env={"PATH": "/usr/bin"}, timeout=30, check=False)
    if res.returncode != 0:
        why = (res.stderr.strip().splitlines() or [f"exit status {res.returncode}"])[-1]
        return f"sandbox unavailable: bwrap cannot set up its namespaces here ({why})"
    return ""


# what gcc, cc1, as and ld never need; they fork and exec, so this is a deny-list
_COMPILER_DENY = (
    "socket", "socketpair", "connect", "bind", "listen", "accept", "accept4", "ptrace",
    "process_vm_readv", "process_vm_writev", "mount", "umount2", "pivot_root", "move_mount",
    "open_tree", "fsopen", "fsmount", "fsconfig", "unshare", "setns", "keyctl", "add_key",
    "request_key", "bpf", "perf_event_open", "userfaultfd", "init_module", "finit_module",
    "delete_module", "kexec_load", "kexec_file_load", "reboot", "io_uring_setup",
    "io_uring_enter", "io_uring_register", "ioperm", "iopl", "personality",
)  # fmt: skip
COMPILER_OUTPUT_MB = 64  # the largest object/.so a build may produce (RLIMIT_FSIZE)
COMPILER_TMP_MB = 512  # the compiler's private tmpfs (its temporary files, the output)


def _compiler_filter() -> int:
    """A memfd holding the compiler's seccomp filter as BPF (for bwrap --seccomp)."""
    from mmucore import seccomp

    fd = os.memfd_create("mmuci-seccomp", 0)
    deny: list[str | seccomp.Rule] = [
        *_COMPILER_DENY,
        seccomp.Rule("prlimit64", ((0, "ne", 0),)),
    ]  # others' limits
    seccomp.export_bpf(fd, deny=deny)
    os.lseek(fd, 0, os.SEEK_SET)
    return fd


def compile_c(argv: list[str], output: Path, *, ro: Iterable[Path], timeout: float) -> str:
    """Run a compiler command ``argv`` (its ``-o`` output left out) in the jail; write what
    it produced to ``output``; return its stderr. Raises CommandError (its diagnostics)
    when it fails, JailUnavailable when the jail cannot be set up here. The compiler sees
    only /usr, the ``ro`` paths and its tmpfs; the output is capped at COMPILER_OUTPUT_MB,
    its temporary files by the tmpfs size, its CPU time and memory by limits."""
    if override():
        res = proc.run([*argv, "-o", str(output)], timeout=timeout, hint="gcc builds the code")
        return res.stderr
    why = unavailable()
    if why:
        raise JailUnavailable(why)
    out = f"{TMP}/mmuci-out.so"
    limits = prlimit_args(
        cpu=int(timeout), memory=4 << 30, fsize=COMPILER_OUTPUT_MB << 20, nofile=1024
    )
    # the output leaves the jail on stdout (a pipe to us), never through a host path
    script = '"$@" -o "$MMUCI_OUT" && exec cat -- "$MMUCI_OUT"'
    inner = [*limits, "/bin/sh", "-c", script, "sh", *argv]
    fd = _compiler_filter()
    try:
        env = {"PATH": "/usr/bin:/bin", "LC_ALL": "C", "TMPDIR": TMP, "MMUCI_OUT": out}
        wrapped = command(inner, ro=ro, tmpfs_mb=COMPILER_TMP_MB, seccomp_fd=fd, env=env)
        res = proc.run(
            wrapped, env={"PATH": "/usr/bin:/bin"}, timeout=timeout, binary=True,
            hint="gcc builds the extracted code", pass_fds=(fd,), die_with_us=True,
        )  # fmt: skip
    finally:
        os.close(fd)
    output.write_bytes(res.stdout)  # type: ignore[arg-type]
    output.chmod(0o644)  # a module is loaded by the jail's uid, whatever our umask
    return res.stderr

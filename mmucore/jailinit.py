"""The jail's outer init (mmucore/jailinit.c), compiled once per user from our own C.

``prefix()`` is the argv that puts a command (bwrap) at the top of a new PID namespace
that dies with the calling process: the one rule that a SIGKILLed bot leaves nothing of
the jail (see the C file for bwrap's race it closes). Started as root, the helper also
drops to host uid/gid ``JAIL_UID`` before it starts the command, so no process of the jail
is host uid 0; the paths the jail binds are staged first (``staged``), so that uid reaches
them even under a directory only root may enter (``/root`` is 0700).
"""

from __future__ import annotations

import functools
import hashlib
import os
import stat
import tempfile
from collections.abc import Sequence
from pathlib import Path

from mmuci import proc
from mmuci.errors import MmuCiError

SOURCE = Path(__file__).with_name("jailinit.c")
JAIL_UID = 65534  # nobody/nogroup: the host uid and gid of the jail when we are root


class JailInitError(MmuCiError):
    """The helper cannot be built or its directory is not ours."""


def _private_dir() -> Path:
    """/tmp/mmuci-UID, created 0700; refused when another user could write into it."""
    d = Path(tempfile.gettempdir()) / f"mmuci-{os.getuid()}"
    try:
        d.mkdir(mode=0o700)
    except FileExistsError:
        pass
    st = d.lstat()
    if not stat.S_ISDIR(st.st_mode) or st.st_uid != os.getuid() or st.st_mode & 0o022:
        raise JailInitError(
            f"{d} is not a private directory of uid {os.getuid()}: remove it and retry"
        )
    return d


@functools.cache
def binary() -> Path:
    """The compiled helper (built on first use, atomically; keyed by its source)."""
    src = SOURCE.read_bytes()
    exe = _private_dir() / f"jailinit-{hashlib.sha256(src).hexdigest()[:16]}"
    if not exe.exists():
        tmp = exe.with_name(f"{exe.name}.{os.getpid()}.tmp")
        proc.run(["gcc", "-O2", "-Wall", "-o", str(tmp), str(SOURCE)],
                 timeout=120, hint="gcc builds mmucore/jailinit.c")  # fmt: skip
        os.replace(tmp, exe)
    return exe


def drops() -> bool:
    """True when the helper drops to JAIL_UID: we are root (else the jail's user
    namespace maps our own uid, and nothing changes)."""
    return os.geteuid() == 0


def stage_point() -> Path:
    """Where the helper mounts its staging tmpfs (in a mount namespace of its own, so
    one directory serves every jail): a root-owned directory nobody else can replace."""
    d = Path(tempfile.gettempdir()) / f"mmuci-{os.getuid()}.stage"
    try:
        d.mkdir(mode=0o711)
    except FileExistsError:
        pass
    st = d.lstat()
    if not stat.S_ISDIR(st.st_mode) or st.st_uid != os.getuid() or st.st_mode & 0o022:
        raise JailInitError(f"{d} is not a directory of uid {os.getuid()} only: remove it")
    closed = [a for a in d.parents if not os.stat(a).st_mode & stat.S_IXOTH]
    if closed:
        raise JailInitError(
            f"uid {JAIL_UID} cannot enter {closed[0]}, so the jail cannot reach its staged "
            "paths: set TMPDIR to a directory every user may enter (e.g. /tmp)"
        )
    return d


def staged(index: int) -> str:
    """The path at which the helper binds the ``index``-th staged path (see ``prefix``)."""
    return f"{stage_point()}/{index}"


def prefix(stage: Sequence[str] = ()) -> list[str]:
    """``[jailinit, <our pid>, ..., "--"]``: call it in the process that starts the
    command. As root, with ``-u JAIL_UID:JAIL_UID`` and each ``stage`` path bound
    read-only at ``staged(i)`` (the command then names those instead of the originals)."""
    out = [str(binary()), str(os.getpid())]
    if drops():
        out += ["-u", f"{JAIL_UID}:{JAIL_UID}", "-s", str(stage_point())]
        for p in stage:
            out += ["-b", p]
    elif stage:
        raise JailInitError("paths are staged only when the helper drops root")
    return [*out, "--"]

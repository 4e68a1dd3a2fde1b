"""The jail's outer init (mmucore/jailinit.c), compiled once per user from our own C.

``prefix()`` is the argv that puts a command (bwrap) at the top of a new PID namespace
that dies with the calling process: the one rule that a SIGKILLed bot leaves nothing of
the jail (see the C file for bwrap's race it closes).
"""

from __future__ import annotations

import functools
import hashlib
import os
import stat
import tempfile
from pathlib import Path

from mmucore import proc
from mmucore.errors import MmuCiError

SOURCE = Path(__file__).with_name("jailinit.c")


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


def prefix() -> list[str]:
    """``[jailinit, <our pid>, "--"]``: call it in the process that starts the command."""
    return [str(binary()), str(os.getpid()), "--"]

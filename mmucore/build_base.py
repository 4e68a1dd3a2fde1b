"""The split build: what a revision shares with its neighbours is compiled once.

A module's C is the TU's head (the shim, macros, types), its code (the revision's globals
and functions), its tail (the C generated after them) and the driver. The shim's C, the
tail and the driver's shared part (`Driver.shared`: the world, the run loops) do not
change from one revision of a tree generation to the next: they compile into `shared.o`
in the jail, cached under the build cache by their text (the TU's banner, which names
the revision, left out), the compiler flags and this code. Per revision only the head's
declarations, the code, the driver's revision part (`drv_set_env`, `drv_<check>_call`)
and cffi's glue compile, linked against shared.o by the same jailed gcc invocation.

Nothing is validated less: `mmucore.build.build` checks the whole TU before and the linked
module (its sections, symbols and imports) after, as for a module built in one piece, and
shared.o is made only of the TU's own lines and ours.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import shutil
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from mmuci.errors import CommandError
from mmucore import jail, tu
from mmucore.shim_api import SHIM_DIR

SHARED_FORMAT = "1"  # bump when the shared object's layout or command changes
SHARED_FILE = "mmu-ci-shared.c"  # what compiler messages about the shared part name


@dataclass(frozen=True)
class Shared:
    """A compiled shared part: the object, its cache entry, whether it was reused."""

    key: str
    path: Path
    seconds: float
    cached: bool


@dataclass(frozen=True)
class SplitSource:
    """The two C files of a split module."""

    shared: str  # head with the shim's C, tail, the driver's shared part
    revision: str  # head without the shim's C, code, the driver's revision part


class SharedBuildError(Exception):
    """gcc refused the shared part; ``stderr`` holds its diagnostics."""

    def __init__(self, stderr: str, log_path: Path) -> None:
        self.stderr = stderr
        self.log_path = log_path
        super().__init__(stderr[-2000:])


def sources(tu_text: str, piece_texts: list[str], shared: str, revision: str) -> SplitSource:
    """The C of both parts, from the TU (cut at its markers) and the driver's two parts."""
    parts = tu.split(tu_text, piece_texts)
    drv = '\n/* driver */\n#line 1 "{}"\n{}\n'
    head_decls = parts.head.replace(tu.SHIM_C_INCLUDE + "\n", "\n", 1)
    return SplitSource(
        shared=parts.head + parts.tail + "\n" + drv.format(SHARED_FILE, shared),
        revision=head_decls + parts.code + drv.format("mmu-ci-driver.c", revision),
    )


def shared_key(text: str, flags: tuple[str, ...], own_code: str, shim_dir: Path) -> str:
    """The cache key of a shared part: its text, the shim's files it includes, the flags
    and the build code."""
    h = hashlib.sha256()
    shim = [
        (shim_dir / f).read_text() for f in sorted(os.listdir(shim_dir)) if f.endswith((".c", ".h"))
    ]
    for part in (SHARED_FORMAT, own_code, text, *shim, " ".join(flags)):
        h.update(part.encode() + b"\0")
    return h.hexdigest()


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _load(final: Path) -> Path | None:
    """The entry's object when it is whole (its recorded hash), else None."""
    try:
        meta = json.loads((final / "shared.json").read_text())
        obj = final / "shared.o"
        return obj if _sha256(obj) == meta["sha256"] else None
    except (OSError, ValueError, KeyError, TypeError):
        return None


def compile_shared(
    text: str,
    flags: tuple[str, ...],
    own_code: str,
    *,
    cache_dir: Path,
    shim_dir: Path = SHIM_DIR,
) -> Shared:
    """shared.o of ``text`` (which includes the shim's C from ``shim_dir``) under cache_dir
    (``_shared_<key>/``), compiled in the jail with ``flags`` once per key; an entry that is
    not whole is rebuilt. Raises SharedBuildError when gcc refuses it (its log kept in
    cache_dir/logs)."""
    t0 = time.monotonic()
    key = shared_key(text, flags, own_code, shim_dir)
    final = Path(cache_dir) / f"_shared_{key[:20]}"
    hit = _load(final)
    if hit is not None:
        return Shared(key, hit, time.monotonic() - t0, True)
    final.parent.mkdir(parents=True, exist_ok=True)
    with open(final.parent / f".{final.name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        hit = _load(final)
        if hit is not None:
            return Shared(key, hit, time.monotonic() - t0, True)
        if final.exists():  # not whole: out of the way atomically, then gone
            trash = Path(tempfile.mkdtemp(prefix=f".{final.name}-corrupt-", dir=final.parent))
            os.rename(final, trash / final.name)
            shutil.rmtree(trash, ignore_errors=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{final.name}-", dir=final.parent))
        try:
            c_path = tmp / SHARED_FILE
            c_path.write_text(text)
            tmp.chmod(0o755)  # the jail's uid reads the C file
            c_path.chmod(0o644)
            obj = tmp / "shared.o"
            argv = ["gcc", *flags, "-c", f"-I{shim_dir}", str(c_path)]
            try:
                log = jail.compile_c(argv, obj, ro=[tmp, shim_dir], timeout=300)
            except CommandError as e:
                logs = final.parent / "logs"
                logs.mkdir(exist_ok=True)
                (logs / f"{final.name}.log").write_text(e.stderr)
                raise SharedBuildError(e.stderr, logs / f"{final.name}.log") from None
            (tmp / "build.log").write_text(log)
            (tmp / "shared.json").write_text(json.dumps({"key": key, "sha256": _sha256(obj)}))
            os.rename(tmp, final)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
    return Shared(key, final / "shared.o", time.monotonic() - t0, False)

"""Extraction (+ driver) -> a cffi extension module, cached by content hash.

cffi API mode: `FFI.set_source` gives the C file (`emit_c_code`), gcc compiles it
through `mmuci.proc`, so flags, diagnostics and the log are ours. One module per
key, named after it, so baseline and patched builds load side by side. The module
is never imported here: only the sandbox child loads it.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import logging
import os
import re
import shutil
import sysconfig
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from mmuci.errors import CommandError, MmuCiError
from mmuci.owncode import code_version
from mmucore import build_base, cdef, jail, validate, validate_object
from mmucore.extract import SHIM_DIR, Extraction

log = logging.getLogger(__name__)

BUILD_FORMAT = "2"  # bump when the compile command or the module layout changes
DRIVER_FILE = "mmu-ci-driver.c"  # what compiler messages about a driver name
# -O1: a cold build stays under 1 s on a loaded 2-core machine (-O2 costs ~50% more)
CFLAGS = (
    "-std=gnu11", "-O1", "-fPIC", "-fvisibility=hidden", "-fno-strict-aliasing",
    "-fno-strict-overflow", "-fno-delete-null-pointer-checks", "-Wall",
    "-Wno-unused-function", "-Wno-unused-variable", "-Wno-unused-but-set-variable",
    # an object of fixed size past this is refused by gcc before it writes anything (a
    # 200 MB initialised array would be a 200 MB object); mmucore.validate_object checks
    # the same bound on the result
    f"-Werror=larger-than={validate_object.MAX_SYMBOL_BYTES}",
)  # fmt: skip
SANITIZE_FLAGS = ("-fsanitize=address,undefined", "-fno-omit-frame-pointer", "-O1")
_DIAG = re.compile(
    r"^(?P<file>[^:\n]+):(?P<line>\d+):(?:\d+:)? (?P<sev>fatal error|error|warning): (?P<msg>.*)$",
    re.M,
)


@dataclass(frozen=True)
class Driver:
    """Trusted C of ours compiled into the same module after the extracted code."""

    name: str
    source: str
    cdef: str
    # True: cffi declares only the driver's cdef, the module's whole Python API; the
    # extracted functions and types stay C-only (a smaller, faster build)
    exports_only: bool = False
    # the driver's part that names none of the revision's code: given, the module is built
    # split (mmucore/build_base.py): this with the TU's head and tail once into shared.o,
    # ``source`` with the revision's code
    shared: str = ""


@dataclass(frozen=True)
class Build:
    key: str
    module_name: str
    path: Path
    tu_path: Path
    log: str
    seconds: float
    cached: bool
    sanitize: bool


class BuildError(MmuCiError):
    """The compiler refused the translation unit; diagnostics name kernel file:line."""

    def __init__(self, message: str, diagnostics: list[tuple[str, int, str]], log: str) -> None:
        self.diagnostics = diagnostics
        self.log = log
        super().__init__(message)


# The code that turns an extraction into a module: a change to it is a new key. The checks
# are part of it: a module built under older rules is not reused.
_OWN_CODE = tuple(
    f"mmucore/{f}"
    for f in ("build.py", "build_base.py", "cdef.py", "validate.py", "validate_lex.py",
              "validate_ast.py", "validate_headers.py", "validate_object.py")
)  # fmt: skip


def own_code() -> str:
    """The hash of the code that turns an extraction into a module (a key's part)."""
    return code_version(*_OWN_CODE)


def build_key(extraction: Extraction, driver: Driver | None, sanitize: bool) -> str:
    """Content hash of everything that goes into the module."""
    h = hashlib.sha256()
    for part in (
        BUILD_FORMAT,
        code_version(*_OWN_CODE),
        extraction.key,
        driver.name if driver else "",
        driver.source if driver else "",
        driver.cdef if driver else "",
        "exports-only" if driver and driver.exports_only else "",
        f"split\0{driver.shared}" if driver and driver.shared else "",
        " ".join(CFLAGS + (SANITIZE_FLAGS if sanitize else ())),
    ):
        h.update(part.encode() + b"\0")
    return h.hexdigest()


def diagnostics(log: str) -> list[tuple[str, int, str]]:
    """(file, line, message) of each compiler error, file as the #line directives name it."""
    return [
        (m.group("file"), int(m.group("line")), m.group("msg"))
        for m in _DIAG.finditer(log)
        if m.group("sev") != "warning"
    ]


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _load_cached(final: Path, t0: float) -> Build | None:
    """The cached build in ``final`` if it is whole: its metadata parses and every file
    has the content hash recorded when it was stored. None when there is no entry; raises
    _CorruptEntry when there is one that must not be used (then it is rebuilt)."""
    meta = final / "build.json"
    if not final.exists():
        return None
    try:
        d = json.loads(meta.read_text())
        hashes = d.pop("sha256")
        for name in (d["path"], d["tu_path"], "build.log"):
            if _sha256(final / name) != hashes[name]:
                raise _CorruptEntry(f"{name} does not have the content hash it was stored with")
        d.update(path=final / d["path"], tu_path=final / d["tu_path"])
        d.update(cached=True, seconds=time.monotonic() - t0)
        d["log"] = (final / "build.log").read_text()
        return Build(**d)
    except _CorruptEntry:
        raise
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as e:
        raise _CorruptEntry(f"unreadable metadata or files ({type(e).__name__}: {e})") from e


class _CorruptEntry(Exception):
    """A cache entry that exists but is not whole (truncated, edited, half-deleted)."""


def _cached(final: Path, t0: float) -> tuple[Build | None, str]:
    """(the cached build or None, why an existing entry was not usable or '')."""
    try:
        return _load_cached(final, t0), ""
    except _CorruptEntry as e:
        return None, str(e)


def _discard(final: Path, cache_dir: Path, why: str) -> None:
    """Move a corrupt entry out of the way (atomically: a reader sees it whole or not at
    all) and delete it."""
    log.warning("build cache entry %s is corrupt (%s): rebuilding it", final, why)
    trash = Path(tempfile.mkdtemp(prefix=f".{final.name}-corrupt-", dir=cache_dir))
    os.rename(final, trash / final.name)
    shutil.rmtree(trash, ignore_errors=True)


def build(
    extraction: Extraction,
    driver: Driver | None = None,
    *,
    cache_dir: Path,
    sanitize: bool = False,
) -> Build:
    """Compile extraction (+ driver) into a cffi module under cache_dir, or reuse it."""
    t0 = time.monotonic()
    key = build_key(extraction, driver, sanitize)
    module = f"_mmu_{key[:20]}"
    cache_dir = Path(cache_dir)
    final = cache_dir / module
    hit, _ = _cached(final, t0)
    if hit is not None:
        return hit
    cache_dir.mkdir(parents=True, exist_ok=True)
    with open(cache_dir / f".{module}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        hit, corrupt = _cached(final, t0)
        if hit is not None:
            return hit
        if corrupt:
            _discard(final, cache_dir, corrupt)
        validate.check_translation_unit(extraction)
        for stale in cache_dir.glob(f".{module}-*"):  # a build killed under this lock
            shutil.rmtree(stale, ignore_errors=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{module}-", dir=cache_dir))
        try:
            b = _compile(extraction, driver, module, key, tmp, sanitize, t0)
            validate.check_symbols(b.path, extraction)
            validate.check_object(b.path, extraction, module, sanitize=sanitize)
            # build.json last, then one rename: an entry is whole or absent
            (tmp / "build.json").write_text(json.dumps(_meta(b, tmp), indent=1))
            os.rename(tmp, final)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
    return Build(**{**asdict(b), "path": final / b.path.name, "tu_path": final / b.tu_path.name})


def failed_before(
    extraction: Extraction, driver: Driver | None, *, cache_dir: Path, sanitize: bool = False
) -> bool:
    """True when this very module failed to compile under cache_dir before (its log is
    kept in cache_dir/logs): a caller with a smaller alternative can skip it."""
    key = build_key(extraction, driver, sanitize)
    return (Path(cache_dir) / "logs" / f"_mmu_{key[:20]}.log").is_file()


def _meta(b: Build, base: Path) -> dict[str, Any]:
    d = asdict(b)
    d.update(path=b.path.name, tu_path=b.tu_path.name)
    del d["log"], d["cached"]
    names = (b.path.name, b.tu_path.name, "build.log")
    d["sha256"] = {name: _sha256(base / name) for name in names}
    return d


def _compile(
    extraction: Extraction,
    driver: Driver | None,
    module: str,
    key: str,
    tmp: Path,
    sanitize: bool,
    t0: float,
) -> Build:
    if driver and driver.exports_only:
        ffi, dropped = cdef.exports_cdef(driver.cdef), list[str]()
    else:
        ffi, _, dropped = cdef.build_cdef(extraction, driver.cdef if driver else "")
    flags = CFLAGS + (SANITIZE_FLAGS if sanitize else ())
    source = extraction.tu
    shared: list[str] = []  # the shared object a split build links, as an argument
    head = ""
    if driver and driver.shared:
        source, obj = _split(extraction, driver, flags, tmp.parent)
        shared.append(str(obj.path))
        state = "reused" if obj.cached else f"compiled in {obj.seconds:.2f} s"
        head = f"shared part {obj.path} ({state}; mmucore/build_base.py)\n"
    elif driver:
        source += f'\n/* driver {driver.name} */\n#line 1 "{DRIVER_FILE}"\n{driver.source}\n'
    if shared:  # cffi's glue follows: wrappers called once per chunk, not per state
        source += '\n#pragma GCC optimize ("O0")\n'
    # quiet: no "generating ..." on stdout, which a redirect (not thread-safe) would need
    ffi.set_source(module, source, compiler_verbose=False)
    c_path = tmp / f"{module}.c"
    ffi.emit_c_code(str(c_path))
    (tmp / "tu.c").write_text(extraction.tu)
    so = tmp / f"{module}{sysconfig.get_config_var('EXT_SUFFIX') or '.so'}"
    include = sysconfig.get_paths()["include"]
    argv = ["gcc", *flags, "-shared", f"-I{include}", f"-I{SHIM_DIR}", str(c_path), *shared]
    head += f"$ {' '.join(argv)} -o {so}   (in the jail: mmucore/jail.py)\n"
    if dropped:
        head += "cffi could not declare (not callable from Python):\n  " + "\n  ".join(dropped)
        head += "\n"
    try:
        tmp.chmod(0o755)  # the jail's uid (65534) reads the C file; it writes nothing here
        c_path.chmod(0o644)
        ro = [tmp, SHIM_DIR, Path(include), *map(Path, shared)]
        log = head + jail.compile_c(argv, so, ro=ro, timeout=300)
    except CommandError as e:
        log = head + e.stderr
        diags = diagnostics(e.stderr)
        logs = Path(tmp).parent / "logs"
        logs.mkdir(exist_ok=True)
        (logs / f"{module}.log").write_text(log)
        shown = "\n".join(f"  {f}:{ln}: {m}" for f, ln, m in diags[:8]) or e.stderr[-2000:]
        what, why = "the extracted code", ""
        if driver and diags and all(f == DRIVER_FILE for f, _, _ in diags):
            what = f"mmu-ci's driver ({driver.name}) for the extracted code"
            why = "\n(the code no longer offers what the check calls: its model needs updating)"
        raise BuildError(
            f"{what} of {extraction.version} ({extraction.rev[:12]}) does not "
            f"compile:\n{shown}{why}\nfull log: {logs / f'{module}.log'}",
            diags,
            log,
        ) from None
    (tmp / "build.log").write_text(log)
    return Build(
        key=key,
        module_name=module,
        path=so,
        tu_path=c_path,
        log=log,
        seconds=time.monotonic() - t0,
        cached=False,
        sanitize=sanitize,
    )


def shared_flags(flags: tuple[str, ...]) -> tuple[str, ...]:
    """The shared part's flags: -O2 unless sanitizing (compiled once per key and cached,
    it holds the per-state loop, the digest and the shim every state runs)."""
    if any(f.startswith("-fsanitize") for f in flags):
        return flags
    return tuple("-O2" if f == "-O1" else f for f in flags)


def _split(
    extraction: Extraction, driver: Driver, flags: tuple[str, ...], cache_dir: Path
) -> tuple[str, build_base.Shared]:
    """The revision's C of a split build, and the shared object it links (compiled now
    when no build before had the same shared part)."""
    try:
        src = build_base.sources(
            extraction.tu, [p.text for p in extraction.pieces], driver.shared, driver.source
        )
    except ValueError as e:
        raise MmuCiError(
            f"the translation unit of {extraction.rev[:12]} cannot be split ({e}): "
            "extract it again with this mmu-ci (its build cache may be stale)"
        ) from None
    try:
        return src.revision, build_base.compile_shared(
            src.shared, shared_flags(flags), own_code(), cache_dir=cache_dir
        )
    except build_base.SharedBuildError as e:
        diags = diagnostics(e.stderr)
        shown = "\n".join(f"  {f}:{ln}: {m}" for f, ln, m in diags[:8]) or e.stderr[-2000:]
        ours = bool(diags) and all(f == build_base.SHARED_FILE for f, _, _ in diags)
        what = f"mmu-ci's driver ({driver.name})" if ours else "the extracted types and macros"
        raise BuildError(
            f"{what} of {extraction.version} ({extraction.rev[:12]}) do not compile in the "
            f"shared part:\n{shown}\nfull log: {e.log_path}",
            diags,
            e.stderr,
        ) from None

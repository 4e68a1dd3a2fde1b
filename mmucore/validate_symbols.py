"""Refuse a built module that reaches too far: its undefined dynamic symbols must be on an
allow-list, its sections and sizes those of plain C (mmucore.validate_object); a refusal
names the symbol and the patch line that introduced it."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING

from mmuci import proc
from mmucore import validate_object
from mmucore.refusal import RefusedInput, refuse
from mmucore.validate_lex import ALLOWED_PREFIXES, LexError, tokenize

if TYPE_CHECKING:
    from mmucore.extract import Extraction, Piece

# libc that the shim and the cffi glue use; everything else is refused
ALLOWED_LIBC = frozenset(
    "memcpy memmove memset memcmp memchr strlen strnlen strcmp strncmp strchr strrchr "
    "strstr strcpy strncpy __memcpy_chk __memmove_chk __memset_chk __strcpy_chk "
    "__strncpy_chk malloc calloc realloc free aligned_alloc posix_memalign "
    "abort __assert_fail __stack_chk_fail __stack_chk_guard __errno_location "
    "printf fprintf vfprintf snprintf vsnprintf sprintf __printf_chk __fprintf_chk "
    "__vfprintf_chk __snprintf_chk __vsnprintf_chk __sprintf_chk puts fputs fputc "
    "putchar fwrite fflush stderr stdout qsort bsearch "
    "_setjmp setjmp __sigsetjmp longjmp _longjmp siglongjmp __longjmp_chk "
    "__tls_get_addr __cxa_finalize __gmon_start__ _ITM_registerTMCloneTable "
    "_ITM_deregisterTMCloneTable".split()
)
SANITIZER_PREFIXES = ("__asan_", "__ubsan_", "__sanitizer_", "__lsan_")


def undefined_symbols(so_path: Path) -> list[str]:
    """Undefined dynamic symbols of a shared object (``nm -u -D``), without versions."""
    out = proc.run(["nm", "-u", "-D", str(so_path)], hint="nm comes with binutils").stdout
    syms = []
    for line in out.splitlines():
        parts = line.split()
        if parts:
            syms.append(parts[-1].split("@", 1)[0])
    return syms


def symbol_allowed(sym: str, sanitize: bool = False) -> bool:
    """True if a module may import ``sym`` (see ALLOWED_LIBC and the prefixes)."""
    if sym in ALLOWED_LIBC or sym.startswith(ALLOWED_PREFIXES):
        return True
    return sanitize and sym.startswith(SANITIZER_PREFIXES)


def _introduced_by(sym: str, pieces: Iterable[Piece]) -> tuple[Piece, int] | None:
    """The piece (and its 1-based relative line) whose text names ``sym``."""
    ordered = sorted(pieces, key=lambda p: p.kind != "function")
    for p in ordered:
        if sym not in p.text:
            continue
        try:
            toks = tokenize(p.text)
        except LexError:
            continue
        for t in toks:
            if t.kind == "ident" and t.text == sym:
                return p, t.line
    return None


def check_symbols(so_path: Path, extraction: Extraction, *, sanitize: bool | None = None) -> None:
    """Raise RefusedInput if the built module imports a symbol outside the allow-list.

    ``sanitize`` allows the ASan/UBSan runtime; None infers it from ``__asan_init`` or
    ``__ubsan_handle_*`` among the symbols (only sanitizer entry points are added).
    """
    syms = undefined_symbols(so_path)
    if sanitize is None:
        sanitize = any(s == "__asan_init" or s.startswith("__ubsan_handle_") for s in syms)
    for sym in syms:
        if symbol_allowed(sym, sanitize):
            continue
        reason = f"the built module calls {sym}(), which is not on the allow-list"
        found = _introduced_by(sym, extraction.pieces)
        if found is None:
            raise RefusedInput(reason + " (no extracted line names it; a macro may)")
        raise refuse(found[0], found[1], reason)


def check_object(so_path: Path, extraction: Extraction, module: str, *, sanitize: bool) -> None:
    """Raise RefusedInput if the built object holds more than plain C builds to (see
    mmucore.validate_object); names the patch line of the symbol responsible if any."""
    try:
        validate_object.check_object(so_path, module, sanitize=sanitize)
    except validate_object.ObjectProblem as e:
        found = _introduced_by(e.symbol, extraction.pieces) if e.symbol else None
        if found is None:
            raise RefusedInput(e.what) from None
        raise refuse(found[0], found[1], e.what) from None

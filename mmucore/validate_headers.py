"""Macros of the headers every TU sees that kernel code must not name.

The extracted code is compiled inside cffi's C file, after Python.h, the C library
headers and the shim: every macro those define is in scope. A few would build what
validate refuses from harmless-looking tokens: glibc's ``__CONCAT(__as, m__)`` pastes
its arguments into ``__asm__``, ``__REDIRECT`` holds an ``__asm__``, ``__attribute_used__``
an attribute that keeps code. The list is computed from the real headers once per
process (``gcc -E -dM`` of the same prelude the build compiles, in the jail like every
compile: one rule, no exception) and holds each macro
whose replacement pastes from an argument (or onto a refused word), holds a refused
construct, or names such a macro. The shim's own macros are trusted (``barrier()`` is
an ``asm`` of ours, with no argument of the patch in it).
"""

from __future__ import annotations

import contextlib
import io
import re
import sysconfig
import tempfile
from pathlib import Path

from mmucore import jail
from mmucore.validate_lex import (
    ALLOWED_PREFIXES,
    SHIM_INTERNAL_PREFIXES,
    LexError,
    Token,
    check_tokens,
    paste_problem,
    tokenize,
)

SHIM_DIR = Path(__file__).resolve().parent / "shim"
_DEFINE = re.compile(r"#define ([A-Za-z_$][\w$]*)(\(([^)]*)\))? ?(.*)")

_DANGEROUS: dict[str, str] | None = None


def _prelude_macros() -> str:
    """``gcc -E -dM`` of a cffi module whose source is the shim's kernel header."""
    from cffi import FFI  # the build's own generator, so the prelude is the same

    ffi = FFI()
    ffi.cdef("")
    ffi.set_source("_mmu_ci_probe", '#include "mmu_shim_kernel.h"\n')
    with tempfile.TemporaryDirectory(prefix="mmu-ci-probe-") as tmp:
        c = Path(tmp) / "probe.c"
        with contextlib.redirect_stdout(io.StringIO()):
            ffi.emit_c_code(str(c))
        Path(tmp).chmod(0o755)  # readable by the jail's uid (65534)
        c.chmod(0o644)
        argv = [
            "gcc", "-std=gnu11", "-E", "-dM", f"-I{sysconfig.get_paths()['include']}",
            f"-I{SHIM_DIR}", str(c),
        ]  # fmt: skip
        out = Path(tmp) / "macros.txt"
        ro = [*jail.python_paths(), SHIM_DIR, Path(tmp)]
        jail.compile_c(argv, out, ro=ro, timeout=60)
        return out.read_text(errors="replace")


_SUSPECT = re.compile(r'##|asm|__attribute|_Pragma|__builtin_|__seg_|[^\x00-\x7f]|R"|\?\?')
_IDENT = re.compile(r"[A-Za-z_$][\w$]*")
_INT_SUFFIX = re.compile(r"[uUlL]*")


def _why(params: list[str], text: str) -> str | None:
    """Why a replacement list is refused by itself, or None."""
    if not _SUSPECT.search(text):
        return None
    try:
        body = tokenize(text)
    except LexError as e:
        return e.what
    bad = check_tokens(body)
    if bad:
        return bad[1]
    pasted = paste_problem(body, set(params), start=0)
    if pasted and not _integer_suffix_paste(body, set(params)):
        return pasted[1]
    return None


def _integer_suffix_paste(body: list[Token], params: set[str]) -> bool:
    """Every paste is ``argument ## L`` (an integer suffix, as INT64_C has): harmless."""
    for k, t in enumerate(body):
        if t.text != "##":
            continue
        if k == 0 or k + 1 == len(body) or body[k - 1].text not in params:
            return False
        if body[k + 1].kind != "ident" or not _INT_SUFFIX.fullmatch(body[k + 1].text):
            return False
    return True


def dangerous_macros() -> dict[str, str]:
    """{macro name: why kernel code may not use it} for the headers every TU sees."""
    global _DANGEROUS
    if _DANGEROUS is None:
        from mmucore.extract import shim_names  # the stage to our left; only its names

        shim = shim_names()
        uses: dict[str, set[str]] = {}
        why: dict[str, str] = {}
        for line in _prelude_macros().splitlines():
            m = _DEFINE.match(line)
            if not m or m.group(1) in shim:
                continue
            name, params = m.group(1), [p.strip() for p in (m.group(3) or "").split(",")]
            params = ["__VA_ARGS__" if p == "..." else p for p in params if p]
            if name.startswith(ALLOWED_PREFIXES + SHIM_INTERNAL_PREFIXES):
                why[name] = "a name of Python or cffi"  # refused by name anyway
                continue
            w = _why(params, m.group(4))
            if w:
                why[name] = w
            else:
                uses[name] = set(_IDENT.findall(m.group(4))) - set(params)
        changed = True
        while changed:  # a macro that names a refused macro is refused too
            changed = False
            for name, idents in uses.items():
                if name in why:
                    continue
                hit = next(
                    (i for i in sorted(idents) if i in why or i.startswith(ALLOWED_PREFIXES)),
                    None,
                )
                if hit:
                    why[name] = f"it expands {hit}"
                    changed = True
        _DANGEROUS = why
    return _DANGEROUS

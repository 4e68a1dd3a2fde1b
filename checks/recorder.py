"""The shim's recorder moved out of the module's reach, done from the (trusted) sandbox child.

The module must not import mmap or mprotect (the sandbox's nm allow-list), so, as the
signal set-up of checks/guard.py, the child does it through ctypes, once per module
before its first state: the event log and the ledger each get a mapping of their own
at a random page address in [2^40, 2^46 + 2^40), between two PROT_NONE guard pages;
the module is told where (``mmu_shim_recorder_attach``); then the page of the module
that holds those two pointers is made read-only, so a write there faults. What the
code under test can still do, and what is seen, is in mmucore/shim/mmu_shim.c.
"""

from __future__ import annotations

import ctypes
import secrets
from typing import Any

_PROT_NONE, _PROT_READ, _PROT_WRITE = 0, 1, 2
_MAP_PRIVATE, _MAP_ANONYMOUS, _MAP_FIXED_NOREPLACE = 0x02, 0x20, 0x100000
_MAP_FAILED = ctypes.c_void_p(-1).value
PAGE = 4096

_libc = ctypes.CDLL(None, use_errno=True)
_libc.mmap.restype = ctypes.c_void_p
_libc.mmap.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int, ctypes.c_int,
                       ctypes.c_int, ctypes.c_long]  # fmt: skip
_libc.munmap.argtypes = [ctypes.c_void_p, ctypes.c_size_t]
_libc.mprotect.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int]
_placed: set[int] = set()  # modules (by address of their anchor) already placed


def _map_apart(size: int) -> int:
    """``size`` bytes read-write between two guard pages at a random address."""
    body = (size + PAGE - 1) // PAGE * PAGE
    length = body + 2 * PAGE
    flags = _MAP_PRIVATE | _MAP_ANONYMOUS
    base: int | None = None
    for _ in range(16):
        hint = (secrets.randbelow(1 << 34) + (1 << 28)) * PAGE
        got = _libc.mmap(hint, length, _PROT_NONE, flags | _MAP_FIXED_NOREPLACE, -1, 0)
        if got == hint:
            base = got
            break
        if got not in (None, _MAP_FAILED):  # a kernel that takes the flag as a hint
            _libc.munmap(got, length)
    if base is None:  # no free random place: where the kernel puts it, still apart
        got = _libc.mmap(None, length, _PROT_NONE, flags, -1, 0)
        if got in (None, _MAP_FAILED):
            raise OSError(ctypes.get_errno(), "mmap of the recorder's mapping")
        base = got
    if _libc.mprotect(base + PAGE, body, _PROT_READ | _PROT_WRITE):
        raise OSError(ctypes.get_errno(), "mprotect of the recorder's mapping")
    return base + PAGE


def place(mod: Any) -> None:
    """Give mod's recorder its own mappings and lock its pointers (once per module)."""
    ffi, lib = mod.ffi, mod.lib
    # a checks' module exports the driver's names only; a module without a driver the shim's
    prefix = "drv_recorder_" if hasattr(lib, "drv_recorder_anchor") else "mmu_shim_recorder_"
    anchor = int(ffi.cast("uintptr_t", getattr(lib, prefix + "anchor")()))
    if anchor in _placed:
        return
    sizes = int(getattr(lib, prefix + "sizes")())
    log, ledger = _map_apart(sizes >> 32), _map_apart(sizes & 0xFFFFFFFF)
    getattr(lib, prefix + "attach")(ffi.cast("void *", log), ffi.cast("void *", ledger))
    if _libc.mprotect(anchor, PAGE, _PROT_READ):
        raise OSError(ctypes.get_errno(), "mprotect of the recorder's anchor page")
    _placed.add(anchor)

"""Signal and timer set-up for the driver, done from the (trusted) sandbox child.

The built module must not import signal APIs (the sandbox's nm allow-list), so the
child installs the driver's `drv_on_signal` itself through ctypes: for SIGSEGV,
SIGBUS, SIGFPE and SIGILL on an alternate stack, and for SIGPROF driven by a periodic
ITIMER_PROF. The driver turns a fault into status 1 and two timer periods inside one
state into status 2 (hang). Linux x86_64 layouts.
"""

from __future__ import annotations

import ctypes
import signal
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

_SA_ONSTACK, _SA_RESTART, _SA_NODEFER = 0x08000000, 0x10000000, 0x40000000
_ITIMER_PROF = 2
FAULT_SIGNALS = (signal.SIGSEGV, signal.SIGBUS, signal.SIGFPE, signal.SIGILL)


class _SigAction(ctypes.Structure):
    _fields_ = [
        ("handler", ctypes.c_void_p),
        ("mask", ctypes.c_ulong * 16),
        ("flags", ctypes.c_int),
        ("restorer", ctypes.c_void_p),
    ]


class _StackT(ctypes.Structure):
    _fields_ = [("sp", ctypes.c_void_p), ("flags", ctypes.c_int), ("size", ctypes.c_size_t)]


class _Timeval(ctypes.Structure):
    _fields_ = [("sec", ctypes.c_long), ("usec", ctypes.c_long)]


class _Itimerval(ctypes.Structure):
    _fields_ = [("interval", _Timeval), ("value", _Timeval)]


_libc = ctypes.CDLL(None, use_errno=True)
_ALTSTACK = ctypes.create_string_buffer(1 << 16)


def _timer(period: float) -> None:
    tv = _Timeval(int(period), int((period - int(period)) * 1e6))
    it = _Itimerval(tv, tv)
    if _libc.setitimer(_ITIMER_PROF, ctypes.byref(it), None):
        raise OSError(ctypes.get_errno(), "setitimer")


@contextmanager
def guarded(mod: Any, hang_seconds: float = 1.0) -> Iterator[None]:
    """Within the block, faults and hangs in mod's driver calls become per-state statuses."""
    handler = int(mod.ffi.cast("uintptr_t", mod.ffi.addressof(mod.lib, "drv_on_signal")))
    st = _StackT(ctypes.cast(_ALTSTACK, ctypes.c_void_p), 0, len(_ALTSTACK))
    old_st = _StackT()
    _libc.sigaltstack(ctypes.byref(st), ctypes.byref(old_st))
    new = _SigAction(handler, (ctypes.c_ulong * 16)(), _SA_ONSTACK | _SA_NODEFER | _SA_RESTART)
    olds = {}
    for sig in (*FAULT_SIGNALS, signal.SIGPROF):
        old = _SigAction()
        if _libc.sigaction(int(sig), ctypes.byref(new), ctypes.byref(old)):
            raise OSError(ctypes.get_errno(), f"sigaction({sig})")
        olds[sig] = old
    _timer(hang_seconds / 2)
    try:
        yield
    finally:
        _timer(0)
        for sig, old in olds.items():
            _libc.sigaction(int(sig), ctypes.byref(old), None)
        _libc.sigaltstack(ctypes.byref(old_st), None)

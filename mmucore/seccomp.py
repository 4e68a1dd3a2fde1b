"""seccomp filters through libseccomp (ctypes over libseccomp.so.2), written by syscall name.

``load(allow=..., deny=...)`` installs a filter on the calling thread and its future
children: the default is EPERM (default-deny) when ``allow`` is given, else ALLOW with
``deny`` answered EPERM. Arguments can be pinned (``Rule``): e.g. ``prlimit64`` only for
pid 0 (ourselves), ``tgkill`` only at our own pid. A syscall name this kernel/libseccomp
does not know is skipped (it cannot be called anyway). Syscalls of a foreign ABI (x32,
i386 on x86_64) kill the process. Also used by tests to take namespaces away from a bot.
"""

from __future__ import annotations

import ctypes
import errno
import functools
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

ACT_KILL_PROCESS = 0x80000000
ACT_ALLOW = 0x7FFF0000
_ACT_ERRNO = 0x00050000
_CMP = {"ne": 1, "lt": 2, "le": 3, "eq": 4, "ge": 5, "gt": 6, "masked_eq": 7}
_FLTATR_CTL_NNP = 3
_FLTATR_CTL_TSYNC = 4


def act_errno(err: int = errno.EPERM) -> int:
    return _ACT_ERRNO | (err & 0xFFFF)


class SeccompError(OSError):
    """libseccomp is missing or refused the filter."""


class _ArgCmp(ctypes.Structure):
    _fields_ = [
        ("arg", ctypes.c_uint),
        ("op", ctypes.c_int),
        ("datum_a", ctypes.c_uint64),
        ("datum_b", ctypes.c_uint64),
    ]


@dataclass(frozen=True)
class Rule:
    """``name`` gets ``action`` when every (arg index, op, value[, value2]) holds."""

    name: str
    args: tuple[tuple[Any, ...], ...] = ()
    action: int | None = None  # None: the action of the list it is in (allow or deny)


@functools.cache
def _lib() -> ctypes.CDLL:
    try:  # by soname: ctypes.util.find_library would run ldconfig/gcc (~200 ms)
        lib = ctypes.CDLL("libseccomp.so.2", use_errno=True)
    except OSError as e:
        raise SeccompError(errno.ENOENT, f"libseccomp not found ({e}): install libseccomp2") from e
    lib.seccomp_init.restype = ctypes.c_void_p
    lib.seccomp_init.argtypes = [ctypes.c_uint32]
    lib.seccomp_release.argtypes = [ctypes.c_void_p]
    lib.seccomp_load.argtypes = [ctypes.c_void_p]
    lib.seccomp_attr_set.argtypes = [ctypes.c_void_p, ctypes.c_int, ctypes.c_uint32]
    lib.seccomp_syscall_resolve_name.argtypes = [ctypes.c_char_p]
    lib.seccomp_rule_add_array.argtypes = [
        ctypes.c_void_p, ctypes.c_uint32, ctypes.c_int, ctypes.c_uint, ctypes.POINTER(_ArgCmp),
    ]  # fmt: skip
    lib.seccomp_export_bpf.argtypes = [ctypes.c_void_p, ctypes.c_int]
    return lib


def resolve(name: str) -> int | None:
    """The native syscall number of ``name``, or None when unknown here."""
    nr = _lib().seccomp_syscall_resolve_name(name.encode())
    return None if nr < 0 else nr


def _check(rc: int, what: str) -> None:
    if rc < 0:
        raise SeccompError(-rc, f"seccomp {what}: {errno.errorcode.get(-rc, -rc)}")


def _rules(items: Iterable[str | Rule], action: int) -> list[Rule]:
    out = []
    for r in items:
        r = r if isinstance(r, Rule) else Rule(r)
        out.append(r if r.action is not None else Rule(r.name, r.args, action))
    return out


def _build(default: int, rules: Sequence[Rule], tsync: bool = False) -> int:
    lib = _lib()
    ctx: int | None = lib.seccomp_init(default)
    if not ctx:
        raise SeccompError(errno.EINVAL, "seccomp_init failed")
    try:
        _check(lib.seccomp_attr_set(ctx, _FLTATR_CTL_NNP, 1), "no_new_privs")
        if tsync:  # every thread of the process, not only the caller
            _check(lib.seccomp_attr_set(ctx, _FLTATR_CTL_TSYNC, 1), "tsync")
        for r in rules:
            nr = resolve(r.name)
            if nr is None:
                continue
            cmps = (_ArgCmp * max(1, len(r.args)))()
            for i, (arg, op, a, *b) in enumerate(r.args):
                cmps[i] = _ArgCmp(arg, _CMP[op], a & (2**64 - 1), (b[0] if b else 0))
            act = r.action if r.action is not None else default
            _check(lib.seccomp_rule_add_array(ctx, act, nr, len(r.args), cmps), r.name)
    except BaseException:
        lib.seccomp_release(ctx)
        raise
    return ctx


def load(
    *, allow: Iterable[str | Rule] = (), deny: Iterable[str | Rule] = (), tsync: bool = False
) -> None:
    """Install a filter on this thread (``tsync``: every thread) and its future children
    (see the module doc); raises SeccompError."""
    allow, deny = list(allow), list(deny)
    default = act_errno() if allow else ACT_ALLOW
    ctx = _build(default, _rules(allow, ACT_ALLOW) + _rules(deny, act_errno()), tsync)
    try:
        _check(_lib().seccomp_load(ctx), "load")
    finally:
        _lib().seccomp_release(ctx)


def export_bpf(fd: int, *, deny: Iterable[str | Rule]) -> None:
    """Write a deny-list filter as BPF to ``fd`` (for ``bwrap --seccomp FD``)."""
    ctx = _build(ACT_ALLOW, _rules(deny, act_errno()))
    try:
        _check(_lib().seccomp_export_bpf(ctx, fd), "export")
    finally:
        _lib().seccomp_release(ctx)

"""Calls that tests run inside the sandbox child (imported there, not by pytest).

Kept free of pytest so the child starts fast; each is ``function(mods, payload)``.
"""

from __future__ import annotations

import os
import socket
from typing import Any

from checks import recorder


def add(mods: list[Any], payload: dict) -> int:
    return mods[0].lib.add(payload["a"], payload["b"])


def build_keys(mods: list[Any], payload: dict) -> list[str]:
    return [m.build_key for m in mods]


def crash_null(mods: list[Any], payload: dict) -> int:
    return mods[0].lib.crash_null()


def spin_forever(mods: list[Any], payload: dict) -> int:
    return mods[0].lib.spin_forever()


def alloc_huge(mods: list[Any], payload: dict) -> int:
    """C malloc of 16 GiB under RLIMIT_AS: the C side reports the failure as -1."""
    return mods[0].lib.alloc_huge()


def alloc_huge_python(mods: list[Any], payload: dict) -> int:
    buf = mods[0].ffi.new("char[]", payload["bytes"])
    return len(buf)


def raise_error(mods: list[Any], payload: dict) -> None:
    raise ValueError("bad state " + payload["why"])


def connect(mods: list[Any], payload: dict) -> str:
    try:
        s = socket.create_connection(("127.0.0.1", payload["port"]), timeout=2)
    except OSError as e:
        return f"refused: {e}"
    s.close()
    return "connected"


def environment(mods: list[Any], payload: dict) -> dict[str, str]:
    return dict(os.environ)


def write_outside(mods: list[Any], payload: dict) -> str:
    try:
        with open(payload["path"], "w") as f:
            f.write("x")
    except OSError as e:
        return f"refused: {e}"
    return "written"


def spawn(mods: list[Any], payload: dict) -> str:
    try:
        pid = os.fork()
    except OSError as e:
        return f"refused: {e}"
    if pid == 0:
        os._exit(0)
    return "forked"


def digest(mods: list[Any], payload: dict) -> int:
    path = mods[0].out_file("digest.bin")
    with open(path, "wb") as f:
        f.write(bytes(range(256)) * payload["n"])
    return payload["n"]


def not_json(mods: list[Any], payload: dict) -> object:
    return object()


def forge_fifo(mods: list[Any], payload: dict) -> int:
    os.mkfifo("result.json.tmp")
    os.replace("result.json.tmp", "result.json")
    os._exit(0)


def free_roots_null(mods: list[Any], payload: dict) -> int:
    """kvm_mmu_free_roots on NULL: only code a patch put before any dereference runs."""
    ffi, lib = mods[0].ffi, mods[0].lib
    lib.kvm_mmu_free_roots(ffi.NULL, ffi.NULL, payload.get("roots_to_free", 1))
    return 0


def capabilities(mods: list[Any], payload: dict) -> dict[str, str]:
    """The child's capability sets and whether it can read a file it does not own."""
    with open("/proc/self/status") as f:
        caps = {k: v.strip() for k, v in (line.split(":", 1) for line in f) if k.startswith("Cap")}
    try:
        with open(payload["path"]) as f:
            caps["read"] = f.read()
    except OSError as e:
        caps["read"] = f"refused: {e}"
    return caps


def signal_parent(mods: list[Any], payload: dict) -> list[str]:
    """kill() and a raw tgkill() at another process (the parent): both must fail."""
    import ctypes
    import signal

    results = []
    try:
        os.kill(payload["pid"], signal.SIGUSR2)
        results.append("sent")
    except OSError as e:
        results.append(f"refused: {e}")
    libc = ctypes.CDLL(None, use_errno=True)
    pid = payload["pid"]
    if libc.syscall(234, pid, pid, int(signal.SIGUSR2)) == 0:  # tgkill on x86_64
        results.append("sent")
    else:
        results.append(f"refused: {os.strerror(ctypes.get_errno())}")
    return results


def recorder_place(mods: list[Any], payload: dict) -> dict[str, int]:
    """Where the shim's event log sits, and where the module's own data does."""
    ffi, lib = mods[0].ffi, mods[0].lib
    recorder.place(mods[0])  # as checks/child.py does before the first state
    lib.mmu_shim_reset()
    lib.mmu_shim_record(lib.MMU_EV_STUB, 1, 2, ffi.NULL)
    log = int(ffi.cast("uintptr_t", lib.mmu_shim_event_at(0)))
    data = int(ffi.cast("uintptr_t", lib.mmu_shim_page_virt(0)))
    return {"log": log, "data": data, "intact": lib.mmu_shim_recorder_intact()}


def recorder_guard(mods: list[Any], payload: dict) -> int:
    """Read the page right after the log's mapping (past its last event): a guard page."""
    ffi, lib = mods[0].ffi, mods[0].lib
    recorder.place(mods[0])  # as checks/child.py does before the first state
    lib.mmu_shim_reset()
    lib.mmu_shim_record(lib.MMU_EV_STUB, 1, 2, ffi.NULL)
    log = int(ffi.cast("uintptr_t", lib.mmu_shim_event_at(0)))
    end = (log + 256 * ffi.sizeof("struct mmu_shim_event") + 4095) // 4096 * 4096
    return int(ffi.cast("volatile unsigned char *", end + payload.get("slack", 0))[0])


def recorder_tamper(mods: list[Any], payload: dict) -> list[int]:
    """Intact after records; not intact once the count or an event is changed behind it."""
    ffi, lib = mods[0].ffi, mods[0].lib
    recorder.place(mods[0])  # as checks/child.py does before the first state
    out = []
    for how in ("none", "count", "event"):
        lib.mmu_shim_reset()
        lib.mmu_shim_record(lib.MMU_EV_STUB, 1, 2, ffi.NULL)
        lib.mmu_shim_record(lib.MMU_EV_STUB, 3, 4, ffi.NULL)
        ev = ffi.cast("struct mmu_shim_event *", lib.mmu_shim_event_at(1))
        if how == "count":  # the int before the log is its count (struct layout)
            ffi.cast("int *", lib.mmu_shim_event_at(0))[-2] = 1
        elif how == "event":
            ev.a = 5
        out.append(lib.mmu_shim_recorder_intact())
    return out


def identity(mods: list[Any], payload: dict) -> dict[str, Any]:
    """Who the code under test runs as, what network it has, what host files it sees."""
    with open("/proc/self/status") as f:
        status = {k: v.split() for k, v in (line.split(":", 1) for line in f)}
    with open("/proc/net/dev") as f:
        interfaces = sorted(line.split(":")[0].strip() for line in f if ":" in line)
    seen = {p: os.path.exists(p) for p in payload["paths"]}
    return {
        "uid": status["Uid"],
        "gid": status["Gid"],
        "caps": status["CapEff"][0],
        "interfaces": interfaces,
        "connect": connect(mods, payload),
        "seen": seen,
    }


def plant(mods: list[Any], payload: dict) -> dict[str, str]:
    """Try to overwrite each path (memo entries, the status file, ...)."""
    out = {}
    for p in payload["paths"]:
        try:
            with open(p, "wb") as f:
                f.write(b"planted")
            out[p] = "written"
        except OSError as e:
            out[p] = f"refused: {e}"
    return out


def block(mods: list[Any], payload: dict) -> int:
    """Block for ever in a futex (a wait the CPU limit never sees)."""
    import threading

    lock = threading.Lock()
    lock.acquire()
    lock.acquire()
    return 0


def prlimit_other(mods: list[Any], payload: dict) -> str:
    """prlimit64 on another pid (the bot's): must be refused."""
    import resource

    try:
        resource.prlimit(payload["pid"], resource.RLIMIT_NOFILE, (1, 1))
    except OSError as e:
        return f"refused: {e}"
    return "set"


def probe_tamper(mods: list[Any], payload: dict) -> list[list[int]]:
    """[intact, probe word] after two probes: untouched, then with the ledger's copy of
    the word cleared, then with the log's (reached through the anchor, as code would)."""
    ffi, lib = mods[0].ffi, mods[0].lib
    recorder.place(mods[0])
    anchor = ffi.cast("void **", lib.mmu_shim_recorder_anchor())
    log_size = int(lib.mmu_shim_recorder_sizes()) >> 32
    out = []
    for how in ("none", "ledger", "log"):
        lib.mmu_shim_reset()
        lib.mmu_shim_probe(1)
        lib.mmu_shim_probe(4)
        if how == "ledger":  # struct mmu_shim_ledger: int count; uint64_t chain, probes
            ffi.cast("uint64_t *", anchor[1])[2] = 0
        elif how == "log":  # the last word of struct mmu_shim_recorder
            ffi.cast("uint64_t *", ffi.cast("char *", anchor[0]) + log_size - 8)[0] = 0
        out.append([int(lib.mmu_shim_recorder_intact()), int(lib.mmu_shim_probes())])
    return out

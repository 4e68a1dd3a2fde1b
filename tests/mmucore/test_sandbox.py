"""The sandbox runs a real cffi module of ours in a confined child and classifies its end."""

from __future__ import annotations

import hashlib
import os
import signal
import socket
import tempfile
import time
from pathlib import Path

import pytest
from cffi import FFI

from mmucore import sandbox
from mmucore.build import Build
from mmucore.sandbox import Limits

CALLS = "tests.mmucore.sandbox_calls"

C_SOURCE = r"""
#include <stdlib.h>
#include <string.h>
int add(int a, int b) { return a + b; }
int crash_null(void) { volatile int *p = 0; return *p; }
int spin_forever(void) { volatile unsigned long n = 0; for (;;) n++; return 0; }
long alloc_huge(void)
{
	size_t n = 16UL << 30;
	char *p = malloc(n);
	if (!p)
		return -1;
	memset(p, 1, n);
	free(p);
	return 0;
}
"""
CDEF = """
int add(int, int);
int crash_null(void);
int spin_forever(void);
long alloc_huge(void);
"""


def _compile(tmp: Path, tag: str) -> Build:
    key = hashlib.sha256((C_SOURCE + tag).encode()).hexdigest()
    name = f"_sbx_test_{key[:12]}"
    ffi = FFI()
    ffi.cdef(CDEF)
    ffi.set_source(name, C_SOURCE + f"/* {tag} */\n")
    so = ffi.compile(tmpdir=str(tmp))
    return Build(key, name, Path(so), tmp / f"{name}.c", log="", seconds=0.0, cached=False,
                 sanitize=False)  # fmt: skip


@pytest.fixture(scope="module")
def builds(tmp_path_factory: pytest.TempPathFactory) -> list[Build]:
    tmp = tmp_path_factory.mktemp("sandbox-build")
    return [_compile(tmp, "baseline"), _compile(tmp, "patched")]


def test_normal_call_returns_its_json_value(builds: list[Build]) -> None:
    out = sandbox.run(f"{CALLS}:add", {"a": 2, "b": 40}, builds[:1])
    assert out.ok, out.detail
    assert out.value == 42
    assert out.failure is None and out.signal is None


def test_two_builds_load_side_by_side(builds: list[Build]) -> None:
    out = sandbox.run(f"{CALLS}:build_keys", {}, builds)
    assert out.ok, out.detail
    assert out.value == [b.key for b in builds]


def test_null_dereference_is_a_crash_and_the_next_call_runs(builds: list[Build]) -> None:
    out = sandbox.run(f"{CALLS}:crash_null", {}, builds[:1])
    assert not out.ok
    assert out.failure == "crash"
    assert out.signal == signal.SIGSEGV
    assert "SIGSEGV" in out.message
    # faulthandler shows the Python frame that called into the module
    assert "sandbox_calls.py" in out.detail and "crash_null" in out.detail
    again = sandbox.run(f"{CALLS}:add", {"a": 1, "b": 1}, builds[:1])
    assert again.ok and again.value == 2


def test_infinite_loop_hits_the_cpu_limit(builds: list[Build]) -> None:
    t0 = time.monotonic()
    out = sandbox.run(f"{CALLS}:spin_forever", {}, builds[:1], Limits(cpu_seconds=1))
    assert out.failure == "timeout"
    assert out.signal == signal.SIGXCPU
    assert "CPU limit" in out.message
    assert time.monotonic() - t0 < 8


def test_infinite_loop_hits_the_wall_clock_limit(builds: list[Build]) -> None:
    t0 = time.monotonic()
    limits = Limits(cpu_seconds=60, wall_seconds=1.5)
    out = sandbox.run(f"{CALLS}:spin_forever", {}, builds[:1], limits)
    assert out.failure == "timeout"
    assert "wall-clock" in out.message
    assert time.monotonic() - t0 < 6
    assert "spin_forever" in out.detail  # the traceback asked for before the kill


def test_huge_c_allocation_fails_cleanly(builds: list[Build]) -> None:
    out = sandbox.run(f"{CALLS}:alloc_huge", {}, builds[:1], Limits(memory_mb=512))
    assert out.ok, out.detail
    assert out.value == -1  # malloc returned NULL under RLIMIT_AS


def test_huge_python_allocation_is_memory(builds: list[Build]) -> None:
    limits = Limits(memory_mb=512)
    out = sandbox.run(f"{CALLS}:alloc_huge_python", {"bytes": 4 << 30}, builds[:1], limits)
    assert out.failure == "memory"
    assert "MemoryError" in out.message


def test_exception_is_an_error_with_its_message(builds: list[Build]) -> None:
    out = sandbox.run(f"{CALLS}:raise_error", {"why": "pae_root"}, builds[:1])
    assert out.failure == "error"
    assert out.message == "ValueError: bad state pae_root"
    assert "raise_error" in out.detail


def test_result_that_is_not_json_is_an_error(builds: list[Build]) -> None:
    out = sandbox.run(f"{CALLS}:not_json", {}, builds[:1])
    assert out.failure == "error"
    assert "JSON serializable" in out.message


def test_forged_fifo_result_does_not_hang_the_parent(builds: list[Build]) -> None:
    out = sandbox.run(f"{CALLS}:forge_fifo", {}, builds[:1], Limits(wall_seconds=10))
    assert out.failure == "error"
    # seccomp refuses mknod; the result never was a path in the child's view anyway
    assert "Operation not permitted" in out.message or "without a result" in out.message


def test_child_has_no_network(builds: list[Build]) -> None:
    with socket.socket() as srv:
        srv.bind(("127.0.0.1", 0))
        srv.listen()
        srv.settimeout(0.2)
        port = srv.getsockname()[1]
        out = sandbox.run(f"{CALLS}:connect", {"port": port}, builds[:1])
        assert out.ok, out.detail
        assert out.value.startswith("refused:")
        with pytest.raises(TimeoutError):
            srv.accept()


def test_child_cannot_see_the_parents_secrets(
    builds: list[Build], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MMUCI_SMTP_PASSWORD", "hunter2")
    monkeypatch.setenv("https_proxy", "http://proxy.invalid:3128")
    out = sandbox.run(f"{CALLS}:environment", {}, builds[:1])
    assert out.ok, out.detail
    env = out.value
    assert "hunter2" not in repr(env)
    assert not {k for k in env if "proxy" in k.lower()}
    assert env["HOME"] == env["TMPDIR"] != os.environ.get("HOME")
    assert set(env) <= {
        "PATH", "LANG", "LC_ALL", "PYTHONPATH", "PYTHONDONTWRITEBYTECODE",
        "PYTHONNOUSERSITE", "PYTHONHASHSEED", "HOME", "TMPDIR", "LC_CTYPE", "PWD",
    }  # fmt: skip


def test_child_cannot_write_outside_its_directory(builds: list[Build], tmp_path: Path) -> None:
    target = tmp_path / "planted"
    out = sandbox.run(f"{CALLS}:write_outside", {"path": str(target)}, builds[:1])
    assert out.ok, out.detail
    assert out.value.startswith("refused:")
    assert not target.exists()


def test_child_cannot_start_processes(builds: list[Build]) -> None:
    out = sandbox.run(f"{CALLS}:spawn", {}, builds[:1])
    assert out.ok, out.detail
    assert out.value.startswith("refused:")


def test_child_has_no_capabilities(builds: list[Build], tmp_path: Path) -> None:
    secret = tmp_path / "someone-elses"
    secret.write_text("hunter2")
    secret.chmod(0o600)
    os.chown(secret, 1, 1)  # another user's file: read only with CAP_DAC_OVERRIDE
    out = sandbox.run(f"{CALLS}:capabilities", {"path": str(secret)}, builds[:1])
    assert out.ok, out.detail
    assert int(out.value["CapEff"], 16) == 0 and int(out.value["CapBnd"], 16) == 0
    assert out.value["read"].startswith("refused:")


def test_child_cannot_signal_other_processes(builds: list[Build]) -> None:
    out = sandbox.run(f"{CALLS}:signal_parent", {"pid": os.getpid()}, builds[:1])
    assert out.ok, out.detail
    kill, tgkill = out.value
    assert kill == "refused: [Errno 1] Operation not permitted"
    assert tgkill == "refused: Operation not permitted"


def test_binary_results_come_back_as_files(builds: list[Build]) -> None:
    out = sandbox.run(f"{CALLS}:digest", {"n": 4}, builds[:1])
    assert out.ok, out.detail
    assert out.files == {"digest.bin": bytes(range(256)) * 4}


def test_file_size_limit_stops_a_runaway_writer(builds: list[Build]) -> None:
    out = sandbox.run(f"{CALLS}:digest", {"n": 8192}, builds[:1], Limits(file_mb=1))
    assert out.failure == "error"
    assert "File too large" in out.message


def test_private_directory_is_removed(builds: list[Build]) -> None:
    out = sandbox.run(f"{CALLS}:environment", {}, builds[:1])
    assert out.ok
    assert out.value["TMPDIR"] == "/tmp"  # the jail's own tmpfs, gone with the jail
    mine = list(Path(tempfile.gettempdir()).glob(f"{sandbox.TMP_PREFIX}{os.getpid()}-*"))
    assert mine == []  # the parent's private directory (request, result, stderr)


def test_every_confinement_layer_is_in_place_here(builds: list[Build]) -> None:
    # this machine runs the tests as root on x86_64: namespaces and seccomp must work
    assert sandbox.run(f"{CALLS}:add", {"a": 0, "b": 0}, builds[:1]).ok
    assert sandbox.missing_confinement() == {}

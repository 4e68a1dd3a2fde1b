"""The jail's outer init: a caller SIGKILLed at any moment of bwrap's set-up leaves no
process of the jail (bwrap 0.8 alone leaves its sandbox process waiting forever when the
outer bwrap dies between its clone and the uid map; about 1 start in 3 in this loop)."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from mmucore import jail, jailinit

REPO = Path(__file__).resolve().parents[2]
_START = (
    "import sys\nfrom mmucore import jail, jailinit\nfrom mmuci import proc\n"
    "jailinit.binary()\nprint('ready', flush=True)\nsys.stdin.readline()\n"
    "proc.run(jail.command(['/usr/bin/sleep', sys.argv[1]]), env={'PATH': '/usr/bin:/bin'},"
    " die_with_us=True, check=False, timeout=100)\n"
)


def _holding(tag: str) -> list[int]:
    """Processes whose command line holds ``tag`` (jailinit, bwrap, its init, sleep)."""
    out = []
    for d in Path("/proc").iterdir():
        try:
            if d.name.isdigit() and tag.encode() in (d / "cmdline").read_bytes():
                out.append(int(d.name))
        except OSError:
            pass
    return out


@pytest.mark.skipif(bool(jail.unavailable()), reason="no jail on this machine")
def test_sigkill_during_jail_setup_leaves_no_process() -> None:
    left: dict[int, list[int]] = {}
    started = 0
    for i in range(25):
        tag = f"{9000 + i}.{random.randrange(10**6)}"
        p = subprocess.Popen([sys.executable, "-c", _START, tag], cwd=REPO,
                             env={**os.environ, "PYTHONPATH": str(REPO)},
                             stdin=subprocess.PIPE, stdout=subprocess.PIPE)  # fmt: skip
        assert p.stdout.readline() == b"ready\n"  # type: ignore[union-attr]
        p.stdin.write(b"go\n")  # type: ignore[union-attr]
        p.stdin.flush()  # type: ignore[union-attr]
        time.sleep(random.uniform(0.0, 0.012))  # from before the fork to inside bwrap's set-up
        started += bool(_holding(tag))
        os.kill(p.pid, signal.SIGKILL)
        p.wait()
        deadline = time.monotonic() + 3
        while (now := _holding(tag)) and time.monotonic() < deadline:
            time.sleep(0.05)
        if now:
            left[i] = now
            for pid in now:
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
    assert started >= 5  # the kills did land inside the jail's start, not before it
    assert left == {}


def test_the_helper_refuses_a_parent_already_gone() -> None:
    """Started with the pid of a parent that is not its parent: it runs nothing."""
    res = subprocess.run([*jailinit.prefix()[:1], "1", "--", "/usr/bin/echo", "ran"],
                         capture_output=True)  # fmt: skip
    assert res.returncode == 125 and b"ran" not in res.stdout


def test_the_helper_passes_exit_status_and_signal() -> None:
    assert subprocess.run([*jailinit.prefix(), "/bin/sh", "-c", "exit 7"]).returncode == 7
    p = subprocess.Popen([*jailinit.prefix(), "/usr/bin/sleep", "30"])
    deadline = time.monotonic() + 10
    while not (kids := Path(f"/proc/{p.pid}/task/{p.pid}/children").read_text().split()):
        assert time.monotonic() < deadline
        time.sleep(0.01)
    os.kill(int(kids[0]), signal.SIGKILL)  # the namespace's init, from outside
    assert p.wait(timeout=10) == -signal.SIGKILL


def test_the_command_is_init_of_its_own_pid_namespace() -> None:
    out = subprocess.run([*jailinit.prefix(), "/bin/sh", "-c", "echo $$"],
                         capture_output=True, text=True).stdout  # fmt: skip
    assert out.strip() == "1"

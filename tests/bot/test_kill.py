"""SIGKILL of `mmubot check` mid-build and mid-run leaves no process of ours (issue 10.3,
10.8): every jail, gcc and pool worker dies with the bot."""

from __future__ import annotations

import os
import secrets
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from mmukit.seriesgen import deliver, make_series
from mmukit.transforms import Transformation, replace_once, within_function
from tests.bot.test_pipeline import MMU_C, env  # noqa: F401 - the fixture
from tests.mmucore.test_jail import _alive, _descendants

pytestmark = pytest.mark.slow
REPO = Path(__file__).resolve().parents[2]


def _fresh_edit() -> Transformation:
    """A code change no cache or memo has seen: the check must build and run."""
    token = secrets.randbelow(1 << 30)
    return Transformation(
        f"free-roots-bound-{token}",
        MMU_C,
        within_function(
            "kvm_mmu_free_roots",
            replace_once("i == KVM_MMU_NUM", f"i + 0 * {token} == KVM_MMU_NUM"),
        ),
        "KVM: x86/mmu: Spell the early-out bound differently",
    )


def _comm(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/comm").read_text().strip()
    except OSError:
        return ""


def _ppid(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1]
    except OSError:
        return "?"


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return ""


def _kill_when(
    environ: dict, ref: str, wanted: str, tmp_path: Path
) -> tuple[dict[int, str], set[str]]:
    """Start `mmubot check`, SIGKILL it once a descendant's command line holds ``wanted``
    (every |-separated part: the build's cc1, not the header probe's);
    (its descendants still alive afterwards, the names of all seen)."""
    p = subprocess.Popen(
        [sys.executable, "-m", "bot.cli", "check", ref, "--json", str(tmp_path / "r.json")],
        cwd=REPO, env={**os.environ, **environ}, stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )  # fmt: skip
    seen: set[int] = set()
    names: set[str] = set()
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline and p.poll() is None:
        now = _descendants(p.pid)
        seen |= now
        names |= {_comm(x) for x in now}
        if any(all(w in _cmdline(x) for w in wanted.split("|")) for x in now):
            break
        time.sleep(0.02)
    assert p.poll() is None, f"the check ended before {wanted} ran"
    os.kill(p.pid, signal.SIGKILL)
    p.wait()
    seen |= _descendants(p.pid)
    left = _alive(seen)
    t0 = time.monotonic()
    while left and time.monotonic() - t0 < 5:  # SIGKILL'd processes still exiting
        time.sleep(0.2)
        left = _alive(left)
    return {x: f"{_comm(x)} ppid={_ppid(x)} {_cmdline(x)[:300]}" for x in left}, names


def test_sigkill_mid_build_leaves_no_process(local_inbox, env, tree_61, tmp_path):  # noqa: F811
    gen = make_series(tree_61.path, tree_61.commit, [_fresh_edit()], workdir=tmp_path,
                      series_id="t-kill-build")  # fmt: skip
    deliver(local_inbox, gen)
    left, names = _kill_when(env, gen.patches[0].message_id, "/cc1 |_mmu_", tmp_path)
    assert "bwrap" in names  # gcc ran in the jail
    assert left == {}


def test_sigkill_mid_run_leaves_no_process(local_inbox, env, tree_61, tmp_path):  # noqa: F811
    gen = make_series(tree_61.path, tree_61.commit, [_fresh_edit()], workdir=tmp_path,
                      series_id="t-kill-run")  # fmt: skip
    deliver(local_inbox, gen)
    # the check child: python in the jail, after the builds
    left, names = _kill_when(env, gen.patches[0].message_id, "mmucore.sandbox_child", tmp_path)
    assert "bwrap" in names
    assert left == {}

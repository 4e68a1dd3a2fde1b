"""`mmubot`'s argument errors and exit statuses, through a real process."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


def mmubot(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {
        **os.environ,
        "MMUCI_DATA_DIR": str(tmp_path / "data"),
        "XDG_CONFIG_HOME": str(tmp_path / "config"),
    }
    return subprocess.run(
        [sys.executable, "-m", "bot.cli", *args],
        capture_output=True,
        text=True,
        env=env,
        cwd=REPO,
        timeout=120,
    )


def test_help_lists_the_commands(tmp_path: Path) -> None:
    r = mmubot(tmp_path, "--help")
    assert r.returncode == 0
    for cmd in ("kernel", "check", "extract", "diff", "demo", "serve", "import", "watch", "config"):
        assert cmd in r.stdout


@pytest.mark.parametrize(
    "args",
    [
        (),
        ("no-such-command",),
        ("check",),
        ("diff", "--tree", "t", "a"),
        ("check", "x", "--revision", "two"),
    ],
)
def test_argument_errors_exit_2_with_usage(tmp_path: Path, args: tuple[str, ...]) -> None:
    r = mmubot(tmp_path, *args)
    assert r.returncode == 2 and "usage: mmubot" in r.stderr and not r.stdout


def test_bad_input_is_one_line_and_exit_2(tmp_path: Path) -> None:
    r = mmubot(tmp_path, "check", str(tmp_path / "missing.mbox"))
    assert r.returncode == 2
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("mmubot: ") and "Traceback" not in r.stderr


def test_a_broken_config_file_is_one_line_and_exit_2(tmp_path: Path) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text("[lore\nurl = 1\n")
    r = mmubot(tmp_path, "--config", str(bad), "config", "show")
    assert r.returncode == 2 and r.stderr.startswith("mmubot: ") and "Traceback" not in r.stderr


def test_kernel_list_on_an_empty_data_dir_exits_0(tmp_path: Path) -> None:
    r = mmubot(tmp_path, "kernel", "list")
    assert r.returncode == 0, r.stderr

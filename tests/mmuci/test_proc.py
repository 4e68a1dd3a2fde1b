"""The one subprocess wrapper: output, errors that carry the command, deadlines."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from mmuci import proc
from mmuci.errors import CommandError

PY = sys.executable


def test_run_returns_output_and_status() -> None:
    done = proc.run([PY, "-c", "import sys; print('out'); print('err', file=sys.stderr)"])
    assert (done.returncode, done.stdout, done.stderr) == (0, "out\n", "err\n")


def test_a_failure_carries_command_status_stderr_tail_and_hint() -> None:
    script = "import sys; [print(f'line {i}', file=sys.stderr) for i in range(40)]; sys.exit(3)"
    with pytest.raises(CommandError) as e:
        proc.run([PY, "-c", script], hint="do this next")
    err = e.value
    assert err.returncode == 3 and err.argv[0] == PY
    msg = str(err)
    assert msg.startswith("command failed (exit 3): ") and msg.endswith("do this next")
    assert "line 39" in msg and "line 24" not in msg  # only the tail of stderr


def test_check_false_returns_the_failure() -> None:
    done = proc.run([PY, "-c", "raise SystemExit(5)"], check=False)
    assert done.returncode == 5


def test_a_missing_program_says_to_install_it() -> None:
    with pytest.raises(CommandError, match="is no-such-program-mmuci installed") as e:
        proc.run(["no-such-program-mmuci"])
    assert e.value.returncode == 127


def test_a_deadline_kills_and_says_so() -> None:
    with pytest.raises(CommandError, match="timed out after 0.5s") as e:
        proc.run([PY, "-c", "import time; time.sleep(30)"], timeout=0.5)
    assert e.value.returncode == -1


def test_environment_input_and_binary_output() -> None:
    code = (
        "import os, sys; "
        "sys.stdout.buffer.write(os.environ['MMUCI_T'].encode() + sys.stdin.buffer.read())"
    )
    done = proc.run([PY, "-c", code], extra_env={"MMUCI_T": "a"}, input=b"\xff", binary=True)
    assert done.stdout == b"a\xff"
    replaced = proc.run([PY, "-c", "import os; print(sorted(os.environ))"], env={"ONLY": "1"})
    assert "'ONLY'" in replaced.stdout and "'HOME'" not in replaced.stdout


def test_git_strips_the_final_newline_and_never_prompts(tmp_path: Path) -> None:
    proc.git(tmp_path, "init", "-q")
    assert proc.git(tmp_path, "rev-parse", "--is-inside-work-tree") == "true"
    with pytest.raises(CommandError, match="rev-parse"):
        proc.git(tmp_path, "rev-parse", "--verify", "HEAD")

"""Every command an error message suggests works as written: each test provokes one
message, takes the command out of its backticks and runs it.

`test_every_suggested_command_is_run_here` reads the sources and fails when a message
suggests a command this file does not run, so a new one cannot slip in untested.
"""

from __future__ import annotations

import ast
import os
import re
import shlex
import shutil
import sys
from pathlib import Path

import pytest

from bot import kernels, tarball
from mmuci import proc
from mmuci.errors import MmuCiError
from mmukit.seriesgen import make_series, mbox_bytes
from tests.bot.test_kernels import _makefile_less
from tests.bot.test_tree import note
from tests.debian import V61

REPO = Path(__file__).resolve().parents[2]
COMMAND = re.compile(r"`([^`]*\b(?:mmubot|apt-get|make) [^`]*)`")

# every suggestion in the sources (f-string fields as {}) -> the test here that runs it
RUN_BY = {
    "mmubot kernel prepare {}": "test_unregistered_tree",
    "mmubot kernel list": "test_unknown_tree_name",
    "mmubot kernel prepare 6.1": "test_nothing_registered",
    "mmubot kernel prepare {} --version X.Y[.Z]": "test_makefile_less_tree",
    "{}mmubot check {} --tree {}": "test_base_in_no_tree_with_several_trees",
    "apt-get install {}": "test_missing_tarball",
    "apt-get install public-inbox": "test_public_inbox_hint",
    "make deps": "test_public_inbox_hint",
    "mmubot outbox retry {}": "test_outbox_suggestions",
    "mmubot outbox list": "test_outbox_suggestions",
}


def _templates(source: str) -> set[str]:
    """The backticked commands in a module's string literals (not docstrings)."""
    tree = ast.parse(source)
    docs = {
        id(n.body[0].value)
        for n in ast.walk(tree)
        if isinstance(n, ast.Module | ast.FunctionDef | ast.ClassDef)
        and n.body
        and isinstance(n.body[0], ast.Expr)
        and isinstance(n.body[0].value, ast.Constant)
    }
    out: set[str] = set()
    inner = {id(v) for n in ast.walk(tree) if isinstance(n, ast.JoinedStr) for v in n.values}
    for n in ast.walk(tree):
        if isinstance(n, ast.JoinedStr):
            text = "".join(v.value if isinstance(v, ast.Constant) else "{}" for v in n.values)
        elif isinstance(n, ast.Constant) and isinstance(n.value, str):
            if id(n) in docs or id(n) in inner:
                continue
            text = n.value
        else:
            continue
        out.update(COMMAND.findall(text))
    return out


def test_every_suggested_command_is_run_here() -> None:
    found: dict[str, list[str]] = {}
    files = sorted(
        f for d in ("bot", "mmuci", "mmucore", "checks", "mmukit") for f in (REPO / d).rglob("*.py")
    )
    for f in files:
        for t in _templates(f.read_text()):
            found.setdefault(t, []).append(str(f.relative_to(REPO)))
    missing = {t: where for t, where in found.items() if t not in RUN_BY}
    assert not missing, f"suggested commands no test here runs: {missing}"
    assert set(found) == set(RUN_BY), f"RUN_BY names commands no message suggests: {found}"


def _env(data_dir: Path, tmp_path: Path) -> dict[str, str]:
    return {"MMUCI_DATA_DIR": str(data_dir), "XDG_CONFIG_HOME": str(tmp_path / "xdg")}


def _mmubot(args: list[str], data_dir: Path, tmp_path: Path, **env: str) -> proc.Completed:
    return proc.run(
        [sys.executable, "-m", "bot.cli", *args],
        cwd=REPO,
        extra_env={**_env(data_dir, tmp_path), **env},
        check=False,
    )


def _suggested(message: str, start: str) -> str:
    """The one suggested command in ``message`` that starts with ``start``."""
    (cmd,) = [c for c in COMMAND.findall(message) if start in c]
    return cmd


def _run(cmd: str, data_dir: Path, tmp_path: Path, cwd: Path = REPO) -> proc.Completed:
    """Run a suggested command as written: VAR=value prefixes, then mmubot or a program."""
    words = shlex.split(cmd)
    env = {}
    while words and re.fullmatch(r"[A-Z_]+=.*", words[0]):
        k, v = words.pop(0).split("=", 1)
        env[k] = v
    if words[0] == "mmubot":
        return _mmubot(words[1:], data_dir, tmp_path, **env)
    return proc.run(words, cwd=cwd, extra_env=env, check=False)


def test_nothing_registered(tree_61, tmp_path, data_dir) -> None:
    empty = tmp_path / "empty"
    mbox = _mbox(tree_61, tmp_path)
    for args in (["check", str(mbox)], ["kernel", "list"]):
        r = _mmubot(args, empty, tmp_path)
        cmd = _suggested(r.stderr + r.stdout, "mmubot kernel prepare")
        assert cmd == "mmubot kernel prepare 6.1"
    r = _mmubot(["check", "--tree", "debian-6.12", str(mbox)], empty, tmp_path)
    assert r.returncode == 2 and "`mmubot kernel prepare 6.12`" in r.stderr
    # Preparing 6.1 from its tarball takes ~15 s: run the command where the test session
    # has prepared it already (it checks the tarball's stamp and is done).
    done = _run(cmd, data_dir, tmp_path)
    assert done.returncode == 0 and f"debian-6.1: Linux {V61} already prepared" in done.stdout
    assert _run("mmubot kernel prepare 6.12", data_dir, tmp_path).returncode == 0


def test_unregistered_tree(tree_61, tmp_path) -> None:
    proc.git(tmp_path, "clone", "-q", "--shared", str(tree_61.path), "my kvm")
    mine = tmp_path / "my kvm"
    data = tmp_path / "data"
    r = _mmubot(["diff", "--tree", "my-kvm", "HEAD", "HEAD"], data, tmp_path)
    assert r.returncode == 2 and "`mmubot kernel list`" in r.stderr  # not a path: no guess
    r = _mmubot(["check", "--tree", str(mine), str(_mbox(tree_61, tmp_path))], data, tmp_path)
    assert r.returncode == 2
    cmd = _suggested(r.stderr, "mmubot kernel prepare")
    assert cmd == f"mmubot kernel prepare {shlex.quote(str(mine))}"
    assert _run(cmd, data, tmp_path).returncode == 0
    assert kernels.find_tree(data, str(mine)).commit == tree_61.commit


def test_unknown_tree_name(tmp_path) -> None:
    r = _mmubot(["extract", "--tree", "kvm-next"], tmp_path / "data", tmp_path)
    assert r.returncode == 2 and "no kernel tree 'kvm-next'" in r.stderr
    listed = _run(_suggested(r.stderr, "mmubot kernel list"), tmp_path / "data", tmp_path)
    assert listed.returncode == 0 and "mmubot kernel prepare 6.1" in listed.stdout


def test_makefile_less_tree(tree_61, tmp_path) -> None:
    mine = _makefile_less(tree_61, tmp_path)
    data = tmp_path / "data"
    r = _mmubot(["kernel", "prepare", str(mine)], data, tmp_path)
    assert r.returncode == 2
    cmd = _suggested(r.stderr, "mmubot kernel prepare").replace("X.Y[.Z]", "5.19")
    done = _run(cmd, data, tmp_path)
    assert done.returncode == 0 and "version 5.19 (from --version)" in done.stdout


def _mbox(tree_61, tmp_path: Path, base_commit: str | None = None) -> Path:
    gen = make_series(
        tree_61.path,
        "HEAD",
        [note("kvm_mmu_unload", "c0")],
        workdir=tmp_path / "gen",
        series_id="suggest",
    )
    data = mbox_bytes(gen.mails)
    if base_commit:
        data = data.replace(
            f"base-commit: {gen.base}".encode(), f"base-commit: {base_commit}".encode()
        )
    out = tmp_path / "series.mbox"
    out.write_bytes(data)
    return out


def test_base_in_no_tree_with_several_trees(tree_61, tree_612, tmp_path) -> None:
    """Only users' trees, none of them the default: the series' base-commit is unknown,
    so the bot asks which tree, and the command it suggests checks the series there."""
    data = tmp_path / "data"
    for src, name in ((tree_61, "kvm"), (tree_612, "next")):
        proc.git(tmp_path, "clone", "-q", "--shared", str(src.path), name)
        kernels.prepare(data, str(tmp_path / name))
    mbox = _mbox(tree_61, tmp_path, base_commit="0123456789abcdef0123456789abcdef01234567")
    r = _mmubot(["check", str(mbox)], data, tmp_path)
    assert r.returncode == 2 and len(r.stderr.strip().splitlines()) == 1, r.stderr
    assert "is in no registered tree (kvm, next)" in r.stderr
    cmd = _suggested(r.stderr, "mmubot check")
    assert cmd == f"mmubot check {mbox} --tree kvm"
    done = _run(cmd, data, tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr
    out = " ".join(done.stdout.split())  # rich wraps long lines at 120 columns in a log
    assert "base: kvm " in out and "in no registered tree (kvm, next); using kvm HEAD" in out


def _apt_simulated(cmd: str, tmp_path: Path) -> proc.Completed:
    """apt-get as written, with --simulate: a test must not install packages."""
    words = shlex.split(cmd)
    assert words[:2] == ["apt-get", "install"]
    return proc.run(["apt-get", "install", "--simulate", *words[2:]], check=False)


@pytest.mark.skipif(shutil.which("apt-get") is None, reason="no apt-get on this machine")
def test_missing_tarball(tmp_path, monkeypatch) -> None:
    monkeypatch.setattr(tarball, "DEBIAN_TARBALL", str(tmp_path / "linux-source-{ver}.tar.xz"))
    with pytest.raises(MmuCiError) as e:
        kernels.prepare(tmp_path, "6.12")
    cmd = _suggested(str(e.value), "apt-get install")
    assert cmd == "apt-get install linux-source-6.12"
    assert _apt_simulated(cmd, tmp_path).returncode == 0


@pytest.mark.skipif(shutil.which("apt-get") is None, reason="no apt-get on this machine")
def test_public_inbox_hint(tmp_path) -> None:
    from mmukit.inbox import PACKAGE_HINT

    assert _apt_simulated(_suggested(PACKAGE_HINT, "apt-get install"), tmp_path).returncode == 0
    # `make deps` in the source tree: every package is there (make test needs them), so it
    # installs nothing; as root it would install what is missing.
    assert _suggested(PACKAGE_HINT, "make deps") == "make deps"
    if os.geteuid() == 0:
        assert _run("make deps", tmp_path, tmp_path).returncode == 0


def test_outbox_suggestions(tmp_path, local_inbox) -> None:
    """A mail the SMTP server never took names `mmubot outbox retry N`; an unknown item
    names `mmubot outbox list`. Both run as written."""
    from tests.bot.publish.conftest import free_port, post_series, report_json

    ids = post_series(local_inbox, "suggest-outbox")
    env = {
        "MMUCI_LORE_URL": local_inbox.url,
        "MMUCI_PUBLISH_MODE": "send",
        "MMUCI_SMTP_HOST": "127.0.0.1",
        "MMUCI_SMTP_PORT": str(free_port()),
        "MMUCI_SMTP_RETRIES": "1",
        "MMUCI_PUBLISH_ARCHIVE_GRACE": "0",
    }
    report = tmp_path / "report.json"
    report.write_text(__import__("json").dumps(report_json(ids, local_inbox.url)))
    r = _mmubot(["post", str(report)], tmp_path, tmp_path, **env)
    assert r.returncode == 0, r.stderr
    words = shlex.split(_suggested(r.stdout, "mmubot outbox retry"))
    retry = _mmubot(words[1:], tmp_path, tmp_path, **env)
    assert retry.returncode == 1 and "not sent after 1 attempts" in retry.stdout
    r = _mmubot(["outbox", "show", "99"], tmp_path, tmp_path, **env)
    assert r.returncode == 2
    words = shlex.split(_suggested(r.stderr, "mmubot outbox list"))
    listed = _mmubot(words[1:], tmp_path, tmp_path, **env)
    assert listed.returncode == 0 and "#1 mail failed" in listed.stdout

"""`mmubot diff` prints where the time went, as `mmubot check` does."""

from __future__ import annotations

import json
import re

import pytest

from bot import cli
from mmuci import proc
from tests.checks.edits import REFACTORS

pytestmark = pytest.mark.slow

LINE = re.compile(
    r"^  (?P<name>\w+): build (?P<build>[\d.]+)s, run (?P<run>[\d.]+)s, "
    r"explain (?P<explain>[\d.]+)s, (?P<rate>[\d.]+) M states/s$",
    re.M,
)


def test_diff_prints_timings_per_check_and_total(tree_612, data_dir, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("MMUCI_DATA_DIR", str(data_dir))  # the session's build cache
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "xdg"))
    proc.git(tmp_path, "clone", "-q", "--shared", str(tree_612.path), "tree")
    path = tmp_path / "tree"
    case = next(c for c in REFACTORS if c.t.name == "de-morgan")
    case.t.apply(path)
    ident = {"GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@t", "GIT_CONFIG_GLOBAL": "/dev/null"}
    ident |= {"GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@t"}
    proc.git(path, "commit", "-q", "-a", "-m", case.t.subject, extra_env=ident)
    out = tmp_path / "diff.json"
    argv = ["diff", "--tree", str(path), "HEAD~1", "HEAD", "--json", str(out)]
    code = cli.main([*argv, "--check", "guest_mode_roots", "--check", "obsolete_roots"])
    assert code == 0
    text = capsys.readouterr().out
    timings = text[text.index("\ntimings:\n") :]
    rows = {m["name"]: m for m in LINE.finditer(timings)}
    assert set(rows) == {"guest_mode_roots", "obsolete_roots"}, timings
    doc = json.loads(out.read_text())
    for chk in doc["checks"]:
        m, t = rows[chk["name"]], chk["timings"]
        # the terminal shows what the JSON holds, rounded
        assert float(m["run"]) == pytest.approx(t["run"], abs=0.006)
        assert float(m["rate"]) == pytest.approx(chk["states"] / t["run"] / 1e6, rel=0.02)
        assert float(m["build"]) == pytest.approx(t["build_base"] + t["build_patched"], abs=0.01)
    total = timings.strip().splitlines()[-1]
    assert re.fullmatch(r"  extract [\d.]+s, checks [\d.]+s, total [\d.]+s", total), total
    assert set(doc["timings"]) == {"extract", "checks", "total"}

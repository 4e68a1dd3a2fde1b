"""The build cache faulted: a truncated module, edited or unreadable metadata, a half
entry. Each is rebuilt (once, like a cold build), the verdict does not change, and a module
that does not load in the child is mmu-ci's internal error, never a bisected crash."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pytest

from checks import engine
from checks.space import all_checks
from mmuci.errors import ModuleLoadError
from mmucore import build, extract, sandbox

pytestmark = pytest.mark.slow
CHECK = "pgd_switch"  # the smallest state space: a whole run is quick


@pytest.fixture(scope="module")
def ex(tree_61) -> extract.Extraction:
    return extract.extract(tree_61.path)


@pytest.fixture
def children(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Counts the real sandbox children started (each call still runs the real child)."""
    calls: list[str] = []
    real = sandbox.run

    def counted(call, payload, builds, *args, **kwargs):
        calls.append(call)
        return real(call, payload, builds, *args, **kwargs)

    monkeypatch.setattr(sandbox, "run", counted)
    return calls


def _entry(b: build.Build) -> Path:
    return b.path.parent


def _truncate(b: build.Build) -> None:
    size = b.path.stat().st_size
    with open(b.path, "r+b") as f:
        f.truncate(size // 2)


def _garble_meta(b: build.Build) -> None:
    (_entry(b) / "build.json").write_text('{"key": "')


def _edit_meta(b: build.Build) -> None:
    meta = _entry(b) / "build.json"
    d = json.loads(meta.read_text())
    d["sha256"][b.path.name] = "0" * 64
    meta.write_text(json.dumps(d))


def _drop_meta(b: build.Build) -> None:
    (_entry(b) / "build.json").unlink()


def _drop_log(b: build.Build) -> None:
    (_entry(b) / "build.log").unlink()


@pytest.mark.parametrize("fault", [_truncate, _garble_meta, _edit_meta, _drop_meta, _drop_log])
def test_a_corrupt_entry_is_rebuilt_once(ex, tmp_path: Path, fault) -> None:
    first = build.build(ex, cache_dir=tmp_path)
    good = first.path.read_bytes()
    fault(first)
    again = build.build(ex, cache_dir=tmp_path)
    assert not again.cached, "a corrupt entry must be rebuilt, not reused"
    assert again.path == first.path and again.path.read_bytes() == good
    third = build.build(ex, cache_dir=tmp_path)
    assert third.cached  # the rebuilt entry is whole again
    leftovers = [p.name for p in tmp_path.iterdir() if "corrupt" in p.name or p.name[0] == "."]
    assert all(name.endswith(".lock") for name in leftovers), leftovers


def test_a_truncated_cached_module_keeps_the_verdict_and_starts_no_bisection(
    ex, tmp_path: Path, children: list[str]
) -> None:
    chk = all_checks([CHECK])[0]
    cold = engine.compare(chk, ex, ex, cache_dir=tmp_path)
    assert cold.verdict == "same"
    cold_children = len(children)
    b, _ = engine.build_one(chk, ex, tmp_path)
    _truncate(b)
    children.clear()
    again = engine.compare(chk, ex, ex, cache_dir=tmp_path)
    assert again.verdict == cold.verdict and again.states == cold.states
    assert cold.states + cold.stood_for == chk.size
    assert not again.crash
    assert len(children) == cold_children  # as many children as a cold run: no bisection


def test_a_module_that_does_not_load_is_an_internal_error_not_a_crash(
    ex, tmp_path: Path, children: list[str]
) -> None:
    chk = all_checks([CHECK])[0]
    b, _ = engine.build_one(chk, ex, tmp_path)
    broken = tmp_path / "broken" / b.path.name
    broken.parent.mkdir()
    broken.write_bytes(b.path.read_bytes()[: b.path.stat().st_size // 2])
    bad = replace(b, key="broken-" + b.key, path=broken)
    with pytest.raises(ModuleLoadError) as e:
        engine.run_states(chk, [bad, bad], hi=64, chunk=8, jobs=1)
    msg = str(e.value)
    assert "internal error of mmu-ci" in msg and "does not load" in msg
    assert str(broken) in msg and "\n" not in msg
    assert children == ["checks.child:run_chain", "checks.child:load_only"]
    with pytest.raises(ModuleLoadError):  # a chain of three, too
        engine.run_states(chk, [bad, bad, bad], [(0, 1), (1, 2)], hi=64, chunk=8, jobs=1)


def test_mmubot_diff_after_the_cache_is_damaged_keeps_its_exit_status(
    tree_61, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys
) -> None:
    from bot import cli

    monkeypatch.setenv("MMUCI_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "xdg"))
    argv = ["diff", "--tree", str(tree_61.path), "HEAD", "HEAD", "--check", CHECK]
    assert cli.main(argv) == 0
    first = capsys.readouterr().out
    cache = tmp_path / "data" / "build-cache"
    entries = [p for p in cache.iterdir() if p.name.startswith("_mmu_")]
    assert entries
    for e in entries:  # every module truncated, every metadata file garbled
        for so in e.glob("*.so"):
            so.write_bytes(so.read_bytes()[:1000])
        (e / "build.json").write_text("{")
    assert cli.main(argv) == 0

    def verdicts(out: str) -> list[str]:
        return [ln for ln in out.splitlines() if ln.startswith("verdict:")]

    assert verdicts(first) and verdicts(capsys.readouterr().out) == verdicts(first)


_BUILD_IN_A_PROCESS = """
import sys
from pathlib import Path
from mmucore import build, extract
b = build.build(extract.extract(Path(sys.argv[1])), cache_dir=Path(sys.argv[2]))
print("cached" if b.cached else "compiled", b.path)
"""


def test_two_processes_rebuild_a_corrupt_entry_once(ex, tree_61, tmp_path: Path) -> None:
    import sys
    from concurrent.futures import ThreadPoolExecutor

    from mmuci import proc

    cache = tmp_path / "shared-cache"
    _truncate(build.build(ex, cache_dir=cache))
    argv = [sys.executable, "-c", _BUILD_IN_A_PROCESS, str(tree_61.path), str(cache)]
    repo = Path(__file__).resolve().parents[2]
    with ThreadPoolExecutor(2) as pool:
        outs = list(pool.map(lambda _: proc.run(argv, cwd=repo, timeout=300).stdout, range(2)))
    assert sorted(o.split()[0] for o in outs) == ["cached", "compiled"], outs
    assert build.build(ex, cache_dir=cache).cached

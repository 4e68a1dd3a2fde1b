"""Fixtures for the checks: scratch clones of the prepared trees, edits made by code,
and one shared build cache, so each (tree, edit, check) is built and run once."""

from __future__ import annotations

from pathlib import Path

import pytest

from bot import kernels
from checks import engine
from checks.result import CheckResult
from mmuci import proc
from mmucore import extract
from mmukit.transforms import Transformation


class Scratch:
    """A clone of a prepared tree; each edit is one commit on the tree's base commit."""

    def __init__(self, tree: kernels.KernelTree, path: Path, cache_dir: Path) -> None:
        self.tree = tree
        self.path = path
        self.cache_dir = cache_dir
        self.base = proc.git(path, "rev-parse", "HEAD")
        self._revs: dict[str, str] = {}
        self._extractions: dict[str, extract.Extraction] = {}
        self._results: dict[tuple[str, str], CheckResult] = {}

    def commit(self, t: Transformation) -> str:
        """The commit of ``t`` applied to the base (made once)."""
        if t.name not in self._revs:
            proc.git(self.path, "checkout", "-q", "--force", "--detach", self.base)
            t.apply(self.path)
            proc.git(self.path, "commit", "-q", "-a", "-m", t.subject)
            self._revs[t.name] = proc.git(self.path, "rev-parse", "HEAD")
        return self._revs[t.name]

    def extraction(self, rev: str) -> extract.Extraction:
        if rev not in self._extractions:
            self._extractions[rev] = extract.extract(self.path, rev)
        return self._extractions[rev]

    def diff(self, t: Transformation, check: str) -> CheckResult:
        """``check`` between the base and the base with ``t`` applied."""
        key = (t.name, check)
        if key not in self._results:
            patched = self.extraction(self.commit(t))
            (res,) = engine.compare_each(
                self.extraction(self.base), patched, cache_dir=self.cache_dir, names=[check]
            )
            self._results[key] = res
        return self._results[key]

    def diff_from(self, t: Transformation, check: str) -> CheckResult:
        """``check`` between the base with ``t`` applied (as the baseline) and the base (as
        the patched revision): how a patch that *undoes* ``t`` is checked."""
        key = (f"from {t.name}", check)
        if key not in self._results:
            baseline = self.extraction(self.commit(t))
            (res,) = engine.compare_each(
                baseline, self.extraction(self.base), cache_dir=self.cache_dir, names=[check]
            )
            self._results[key] = res
        return self._results[key]


@pytest.fixture(scope="session")
def build_cache(data_dir: Path) -> Path:
    """Builds are content-addressed: sharing them across runs is safe and fast."""
    d = data_dir / "build-cache"
    d.mkdir(exist_ok=True)
    return d


def _scratch(tree, tmp_path_factory, build_cache) -> Scratch:
    path = tmp_path_factory.mktemp(f"scratch-{tree.version}") / "tree"
    proc.git(tree.path.parent, "clone", "-q", "--shared", str(tree.path), str(path))
    proc.git(path, "config", "user.name", "mmu-ci tests")
    proc.git(path, "config", "user.email", "tests@mmu-ci.invalid")
    return Scratch(tree, path, build_cache)


@pytest.fixture(scope="session")
def scratch_61(tree_61, tmp_path_factory, build_cache) -> Scratch:
    return _scratch(tree_61, tmp_path_factory, build_cache)


@pytest.fixture(scope="session")
def scratch_612(tree_612, tmp_path_factory, build_cache) -> Scratch:
    return _scratch(tree_612, tmp_path_factory, build_cache)


@pytest.fixture(scope="session")
def scratch(scratch_61, scratch_612):
    """Scratch clone by version: scratch["6.1"], scratch["6.12"]."""
    return {"6.1": scratch_61, "6.12": scratch_612}

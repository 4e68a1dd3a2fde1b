"""Scratch clones of a prepared tree with generated commits (for extraction tests)."""

from __future__ import annotations

from pathlib import Path

from mmuci import proc
from mmukit.transforms import Transformation

IDENTITY = {
    "GIT_AUTHOR_NAME": "mmu-ci test",
    "GIT_AUTHOR_EMAIL": "test@localhost",
    "GIT_COMMITTER_NAME": "mmu-ci test",
    "GIT_COMMITTER_EMAIL": "test@localhost",
}


def scratch_clone(tree: Path, dest: Path) -> Path:
    """A clone sharing the prepared tree's objects; the prepared tree is never touched."""
    proc.git(dest.parent, "clone", "-q", "--shared", str(tree), str(dest))
    return dest


def commit(clone: Path, t: Transformation, base: str = "HEAD") -> str:
    """Apply t on top of base in the clone and commit it; returns the new commit id."""
    proc.git(clone, "checkout", "-q", "--detach", base)
    changed = t.apply(clone)
    proc.git(clone, "add", "--", *changed)
    proc.git(clone, "commit", "-q", "-m", t.subject, extra_env=IDENTITY)
    return proc.git(clone, "rev-parse", "HEAD")

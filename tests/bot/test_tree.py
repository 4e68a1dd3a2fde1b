"""Base selection and `git am` per patch on real prepared trees."""

from __future__ import annotations

import dataclasses
import json
import re
import shutil
import signal
import sys
from pathlib import Path

import pytest

from bot import config, kernels, tarball, tree
from bot.series import build_series
from mmuci import proc
from mmuci.errors import MmuCiError
from mmukit.seriesgen import make_series, mbox_bytes
from mmukit.transforms import Transformation, regex_once, within_function
from tests.debian import V61, V612

pytestmark = pytest.mark.slow

MMU_C = "arch/x86/kvm/mmu/mmu.c"
REPO = Path(__file__).resolve().parents[2]


def note(func: str, comment: str) -> Transformation:
    edit = within_function(func, regex_once(r"\)\s*\n\{\n", rf")\n{{\n\t/* {comment} */\n"))
    return Transformation(f"note-{comment}", MMU_C, edit, f"KVM: x86/mmu: note {comment}")


@pytest.fixture
def cfg(tree_61, tree_612, tmp_path):
    """A data dir of its own holding the two prepared trees: what a test registers does
    not reach the session's registry, nor do other sessions' trees reach the test."""
    data = tmp_path / "data"
    for t in (tree_61, tree_612):
        kernels.save(data, t)
    return config.load(environ={"MMUCI_DATA_DIR": str(data)})


def _series(tree_path, tmp_path, funcs=("kvm_mmu_load", "kvm_mmu_unload"), sid="tree"):
    gen = make_series(
        tree_path,
        "HEAD",
        [note(f, f"c{i}") for i, f in enumerate(funcs)],
        workdir=tmp_path,
        series_id=sid,
    )
    return gen, build_series(list_of(gen.mails), "test")


def list_of(mails):
    from liblore.utils import split_mbox

    return split_mbox(mbox_bytes(mails))


def _worktrees(repo) -> int:
    return len(proc.git(repo, "worktree", "list", "--porcelain").split("worktree ")) - 1


def test_base_commit_found_and_patches_applied(cfg, tree_61, tmp_path):
    gen, series = _series(tree_61.path, tmp_path)
    # --tree 6.12: the default is 6.12, but the base-commit is found in the other tree
    base = tree.select_base(series, tree.candidate_trees(cfg, "6.12"))
    assert base.tree.name == "debian-6.1" and base.commit == tree_61.commit
    assert base.reason == (
        f"base-commit {tree_61.commit[:12]} found in debian-6.1, not in the default tree "
        "debian-6.12"
    )
    before = _worktrees(tree_61.path)
    applied = tree.apply_series(series, base, cfg.data_dir)
    assert applied.failure is None
    assert [a.index for a in applied.patches] == [1, 2]
    assert applied.patches[0].parent == tree_61.commit
    assert applied.patches[1].parent == applied.patches[0].revision
    rev = applied.patches[1].revision
    assert proc.git(applied.repo, "log", "-1", "--format=%s", rev) == "KVM: x86/mmu: note c1"
    # The same tree content as the series factory's commits: git am applied them exactly.
    want = proc.git(gen.clone, "rev-parse", f"{gen.head}^{{tree}}")
    assert proc.git(applied.repo, "rev-parse", f"{rev}^{{tree}}") == want
    assert _worktrees(tree_61.path) == before
    # Reproducible revisions: the same series gives the same commits.
    again = tree.apply_series(series, base, cfg.data_dir)
    assert [a.revision for a in again.patches] == [a.revision for a in applied.patches]


def test_no_base_commit_uses_default_head(cfg, tree_61, tree_612, tmp_path):
    _, series = _series(tree_61.path, tmp_path)
    base = tree.select_base(dataclasses.replace(series, base_commit=None), [tree_612])
    assert base.commit == tree_612.commit
    assert base.reason == f"the series names no base-commit; using debian-6.12 HEAD ({V612})"
    unknown = dataclasses.replace(series, base_commit="0123456789abcdef0123")
    base = tree.select_base(unknown, tree.candidate_trees(cfg))
    assert base.reason == (
        "base-commit 0123456789ab is in no registered tree (debian-6.1, debian-6.12); "
        f"using debian-6.1 HEAD ({V61})"
    )


def test_first_patch_that_does_not_apply_stops_with_hunk(cfg, tree_61, tmp_path):
    gen, _ = _series(tree_61.path, tmp_path, ("kvm_mmu_load", "kvm_mmu_unload", "kvm_mmu_load"))
    mails = list(gen.mails)
    # Patch 2's context no longer matches the tree: the kind of drift a stale series has.
    mails[2] = re.sub(rb"(?m)^ (void kvm_mmu_unload\()", rb" static \1", mails[2])
    series = build_series(list_of(mails), "test")
    base = tree.select_base(series, tree.candidate_trees(cfg))
    before = _worktrees(tree_61.path)
    applied = tree.apply_series(series, base, cfg.data_dir)
    assert [a.index for a in applied.patches] == [1]
    f = applied.failure
    assert f is not None and f.index == 2 and f.file == MMU_C
    assert "patch failed" in f.message and f.hunk and f.hunk.startswith("@@ -")
    assert " static void kvm_mmu_unload(" in f.hunk
    assert f.reason() == f"patch 2 'KVM: x86/mmu: note c1' does not apply at {MMU_C}"
    assert _worktrees(tree_61.path) == before


def test_worktree_removed_after_a_crash(tree_61):
    before = _worktrees(tree_61.path)
    with pytest.raises(RuntimeError), tree.worktree(tree_61.path, tree_61.commit) as wt:
        assert (wt / MMU_C).is_file()
        raise RuntimeError("boom")
    assert not wt.exists() and _worktrees(tree_61.path) == before


def test_worktree_of_a_killed_bot_is_reaped(tree_61, tmp_path):
    before = _worktrees(tree_61.path)
    # A bot process killed by SIGKILL inside the worktree: its `finally` never runs.
    code = (
        "import os, signal, sys\n"
        "from pathlib import Path\n"
        "from bot import tree\n"
        "with tree.worktree(Path(sys.argv[1]), sys.argv[2], ['Makefile']) as wt:\n"
        "    Path(sys.argv[3]).write_text(str(wt))\n"
        "    os.kill(os.getpid(), signal.SIGKILL)\n"
    )
    left = tmp_path / "left"
    r = proc.run(
        [sys.executable, "-c", code, str(tree_61.path), tree_61.commit, str(left)],
        cwd=REPO,
        check=False,
    )
    assert r.returncode == -signal.SIGKILL
    stale = Path(left.read_text())
    assert stale.is_dir() and _worktrees(tree_61.path) == before + 1
    assert stale in tree.reap_worktrees(tree_61.path)
    assert not stale.parent.exists() and _worktrees(tree_61.path) == before


def test_user_tree_is_not_written(cfg, tree_61, tmp_path):
    user = tmp_path / "kvm"
    proc.git(tmp_path, "clone", "-q", str(tree_61.path), "kvm")
    registered = kernels.prepare(cfg.data_dir, str(user))[0]
    assert not registered.prepared
    _, series = _series(tree_61.path, tmp_path, sid="user")
    base = tree.select_base(series, [registered])
    objects = sorted(p.name for p in (user / ".git" / "objects").rglob("*"))
    applied = tree.apply_series(series, base, cfg.data_dir)
    assert applied.failure is None and applied.repo != user
    assert sorted(p.name for p in (user / ".git" / "objects").rglob("*")) == objects
    rev = applied.patches[-1].revision
    assert proc.git(applied.repo, "cat-file", "-t", rev) == "commit"


def test_malformed_patch_is_an_apply_error(cfg, tree_61, tmp_path):
    gen, _ = _series(tree_61.path, tmp_path, sid="garbled")
    mails = list(gen.mails)
    # Cut patch 1 inside its hunk: git sees a corrupt patch, not a context mismatch.
    head, _, rest = mails[1].partition(b"\n@@ ")
    mails[1] = head + b"\n@@ " + rest.split(b"\n")[0] + b"\n+half a line"
    series = build_series(list_of(mails), "test")
    base = tree.select_base(series, tree.candidate_trees(cfg))
    applied = tree.apply_series(series, base, cfg.data_dir)
    assert applied.patches == () and applied.failure is not None
    assert applied.failure.index == 1 and "corrupt patch" in applied.failure.message


# --- users' trees only: the series' base-commit is looked for in every registered tree ---


def _user_tree(source, tmp_path, name, *, makefile=True):
    """A clone of a prepared tree, registered in a data dir of its own; without its top
    Makefile (a snapshot) it is registered with --version."""
    proc.git(tmp_path, "clone", "-q", "--shared", str(source.path), name)
    path = tmp_path / name
    version = None
    if not makefile:
        ident = {**tarball.GIT_IDENTITY, "GIT_CONFIG_GLOBAL": "/dev/null"}
        proc.git(path, "rm", "-q", "Makefile")
        proc.git(path, "commit", "-q", "-m", "snapshot", extra_env=ident)
        version = "6.12"
    return kernels.prepare(tmp_path / "data", str(path), version=version)[0]


@pytest.fixture
def users_trees(tree_61, tree_612, tmp_path):
    """Only non-Debian trees registered: kvm (a clone of 6.1) and next (6.12, no Makefile)."""
    kvm = _user_tree(tree_61, tmp_path, "kvm")
    nxt = _user_tree(tree_612, tmp_path, "next", makefile=False)
    cfg = config.load(environ={"MMUCI_DATA_DIR": str(tmp_path / "data")})
    return cfg, kvm, nxt


def test_base_commit_in_a_users_tree_when_no_debian_tree_is_registered(
    users_trees, tree_61, tree_612, tmp_path
):
    cfg, kvm, nxt = users_trees
    cands = tree.candidate_trees(cfg)  # the default, debian-6.1, is not registered: no error
    assert cands.default is None and [t.name for t in cands.trees] == ["kvm", "next"]
    _, series = _series(tree_61.path, tmp_path / "s61", sid="users-61")
    base = tree.select_base(series, cands)
    assert base.tree == kvm and base.commit == tree_61.commit
    assert base.reason == (
        f"base-commit {tree_61.commit[:12]} found in kvm; the default tree 'debian-6.1' "
        "is not registered (run `mmubot kernel prepare 6.1`)"
    )
    # a 6.12 series: found in the other user tree (its snapshot commit's parent)
    _, series = _series(tree_612.path, tmp_path / "s612", sid="users-612")
    base = tree.select_base(series, cands)
    assert base.tree == nxt and base.commit == tree_612.commit
    assert base.reason.startswith(f"base-commit {tree_612.commit[:12]} found in next;")
    applied = tree.apply_series(series, base, cfg.data_dir)
    assert applied.failure is None and len(applied.patches) == 2


def test_base_commit_in_no_tree_falls_back_and_says_why(users_trees, tree_61, tmp_path):
    cfg, kvm, nxt = users_trees
    _, series = _series(tree_61.path, tmp_path, sid="users-none")
    unknown = dataclasses.replace(series, base_commit="0123456789abcdef0123")
    # a default that is registered: its HEAD
    base = tree.select_base(unknown, tree.candidate_trees(cfg, "kvm"))
    assert base.tree == kvm and base.commit == kvm.commit
    assert base.reason == (
        f"base-commit 0123456789ab is in no registered tree (kvm, next); using kvm HEAD ({V61})"
    )
    # no registered default and several trees: which HEAD would be a guess, so ask
    with pytest.raises(MmuCiError, match=r"name the tree to apply it to \(registered: kvm, next\)"):
        tree.select_base(unknown, tree.candidate_trees(cfg))
    # no registered default and one tree: that one
    only = tree.Candidates((nxt,), None, ("the default tree 'debian-6.1' is not registered",))
    base = tree.select_base(unknown, only)
    assert base.tree == nxt and base.reason.endswith(
        "using next HEAD (6.12); the default tree 'debian-6.1' is not registered; "
        "next is the only registered tree"
    )


def test_a_tree_named_on_the_command_line_must_be_registered(users_trees):
    cfg, _, _ = users_trees
    with pytest.raises(MmuCiError, match=r"no kernel tree 'debian-6.12' .* `mmubot kernel prepare"):
        tree.candidate_trees(cfg, "debian-6.12")
    empty = config.load(environ={"MMUCI_DATA_DIR": str(cfg.data_dir.parent / "empty")})
    with pytest.raises(MmuCiError, match=r"run `mmubot kernel prepare 6\.1`$"):
        tree.candidate_trees(empty)


def test_check_with_only_users_trees_reports_where_the_base_was_found(
    users_trees, tree_61, tmp_path
):
    """`mmubot check` with no Debian tree registered: no error, and the report says where
    the base-commit was found and that the default tree is not registered."""
    cfg, kvm, _ = users_trees
    gen, _ = _series(tree_61.path, tmp_path / "gen", sid="users-check")
    mbox = tmp_path / "series.mbox"
    mbox.write_bytes(mbox_bytes(gen.mails))
    out = tmp_path / "report.json"
    r = proc.run(
        [sys.executable, "-m", "bot.cli", "check", str(mbox), "--json", str(out)],
        cwd=REPO,
        extra_env={"MMUCI_DATA_DIR": str(cfg.data_dir), "XDG_CONFIG_HOME": str(tmp_path / "x")},
        check=False,
    )
    assert r.returncode == 0, r.stdout + r.stderr
    reason = (
        f"base-commit {tree_61.commit[:12]} found in kvm; the default tree 'debian-6.1' is "
        "not registered (run `mmubot kernel prepare 6.1`)"
    )
    assert f"base: kvm {tree_61.commit[:12]} ({V61}): {reason}" in " ".join(r.stdout.split())
    base = json.loads(out.read_text())["base"]
    assert base["tree"] == "kvm" and base["path"] == str(kvm.path) and base["reason"] == reason


def test_a_registered_tree_whose_directory_is_gone_is_left_out(users_trees, tree_61, tmp_path):
    cfg, kvm, nxt = users_trees
    gone = _user_tree(tree_61, tmp_path, "old-clone")
    shutil.rmtree(gone.path)
    cands = tree.candidate_trees(cfg)
    assert [t.name for t in cands.trees] == ["kvm", "next"]
    _, series = _series(tree_61.path, tmp_path / "s", sid="users-gone")
    assert tree.select_base(series, cands).tree == kvm
    env = {"MMUCI_DATA_DIR": str(cfg.data_dir), "MMUCI_TREES_DEFAULT": "old-clone"}
    named = tree.candidate_trees(config.load(environ=env))
    assert named.default is None
    assert named.notes == (
        f"the default tree 'old-clone' is registered at {gone.path}, which is gone",
    )
    with pytest.raises(MmuCiError, match="which is gone; name another tree with --tree"):
        tree.candidate_trees(cfg, "old-clone")


def test_a_series_applied_before_is_taken_from_applied_if_git_still_has_it(cfg, tree_61, tmp_path):
    _, series = _series(tree_61.path, tmp_path / "a")
    _, other = _series(tree_61.path, tmp_path / "b", ("kvm_mmu_unload", "kvm_mmu_load"), "other")
    base = tree.select_base(series, tree.candidate_trees(cfg, "6.1"))
    first = tree.apply_series(series, base, cfg.data_dir)
    second = tree.apply_series(other, base, cfg.data_dir)
    (kept,) = [p for p in (cfg.data_dir / "applied").glob("*.json") if first.patches[0].revision
               in p.read_text()]  # fmt: skip
    assert json.loads(kept.read_text()) == [a.revision for a in first.patches]
    # what is kept is what the next run uses: (here) the other series' commits, a chain on
    # the base that git has
    kept.write_text(json.dumps([a.revision for a in second.patches]))
    again = tree.apply_series(series, base, cfg.data_dir)
    assert [a.revision for a in again.patches] == [a.revision for a in second.patches]
    assert again.patches[0].parent == base.commit
    # commits git does not have, or not a chain on the base: applied again, and kept again
    for wrong in (["0" * 40, "1" * 40], [second.patches[1].revision, first.patches[0].revision]):
        kept.write_text(json.dumps(wrong))
        again = tree.apply_series(series, base, cfg.data_dir)
        assert [a.revision for a in again.patches] == [a.revision for a in first.patches]
        assert json.loads(kept.read_text()) == [a.revision for a in first.patches]

"""Trees and base: pick the revision a series applies to, `git am` it patch by patch.

The candidate trees are every registered one (`bot.kernels`): the default (``--tree``,
else ``trees.default``) first, then ``trees.extra``, then the others. The base is the
series' ``base-commit:`` in the first candidate that has it, else the default tree's HEAD
(the only registered tree's when the default is not registered); the reason, kept for
the report, says which tree and why. Patches are applied in
a temporary worktree (prepared trees) or a shared clone (a user's tree stays untouched),
one commit per patch, and the worktree goes away on exit, also after a crash.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import shlex
import shutil
import tempfile
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bot import kernels
from bot.config import Config
from bot.series import Patch, Series
from mmuci import proc
from mmuci.errors import CommandError, MmuCiError

# Fixed committer: the same series gives the same revisions, so build caches stay warm.
_AM_ENV = {
    "GIT_COMMITTER_NAME": "mmu-ci",
    "GIT_COMMITTER_EMAIL": "mmu-ci@localhost",
    "GIT_CONFIG_GLOBAL": "/dev/null",
    "GIT_CONFIG_NOSYSTEM": "1",
}


@dataclass(frozen=True)
class Base:
    """The revision a series is applied to, and why that one."""

    tree: kernels.KernelTree
    commit: str
    reason: str

    def to_json(self) -> dict[str, Any]:
        return {
            "tree": self.tree.name,
            "path": str(self.tree.path),
            "version": self.tree.version,
            "commit": self.commit,
            "reason": self.reason,
        }


@dataclass(frozen=True)
class AppliedPatch:
    """One patch applied: the revision before it and the commit it made."""

    index: int
    subject: str
    parent: str
    revision: str


@dataclass(frozen=True)
class ApplyFailure:
    """The first patch that did not apply: git's message and the hunk it failed on."""

    index: int
    subject: str
    message: str
    file: str | None
    hunk: str | None

    def reason(self) -> str:
        where = f" at {self.file}" if self.file else ""
        return f"patch {self.index} {self.subject!r} does not apply{where}"


@dataclass(frozen=True)
class AppliedSeries:
    base: Base
    patches: tuple[AppliedPatch, ...]
    failure: ApplyFailure | None
    repo: Path  # the repository holding every revision (for extraction by sha)


@dataclass(frozen=True)
class Candidates:
    """The trees a series may apply to, in the order their base-commit is looked for:
    the default (``--tree``, else ``trees.default``), ``trees.extra``, then every other
    registered tree. ``default`` is None when the configured default is not registered;
    ``notes`` say which configured trees are not registered and how to register them."""

    trees: tuple[kernels.KernelTree, ...]
    default: kernels.KernelTree | None
    notes: tuple[str, ...] = ()


def candidate_trees(cfg: Config, tree: str | None = None) -> Candidates:
    """Every registered tree, the default first; a ``--tree`` that is not registered is
    an error (the user named it), a configured one only a note."""
    default_name = str(tree or cfg.get("trees", "default"))
    extras = [str(n) for n in cfg.get("trees", "extra") or []]
    registry = kernels.load_registry(cfg.data_dir)
    out: list[kernels.KernelTree] = []
    notes: list[str] = []
    default = None
    for i, name in enumerate([default_name, *extras]):
        what = "the default tree" if i == 0 else "trees.extra"
        try:
            t = kernels.find_tree(cfg.data_dir, name)
        except MmuCiError:
            if i == 0 and (tree is not None or not registry):
                raise
            notes.append(f"{what} {name!r} is not registered ({kernels.prepare_hint(name)})")
            continue
        if not t.path.is_dir():
            gone = f"{what} {t.name!r} is registered at {t.path}, which is gone"
            if i == 0 and tree is not None:
                raise MmuCiError(f"{gone}; name another tree with --tree")
            notes.append(gone)
            continue
        if i == 0:
            default = t
        if all(t.path != o.path for o in out):
            out.append(t)
    for t in sorted(registry.values(), key=lambda t: t.name):
        if t.path.is_dir() and all(t.path != o.path for o in out):
            out.append(t)
    return Candidates(tuple(out), default, tuple(notes))


def _has_commit(repo: Path, sha: str) -> str | None:
    """The full sha of commit ``sha`` in ``repo``, None when it has no such commit."""
    out = proc.git(
        repo, "rev-parse", "--verify", "--quiet", "--end-of-options", f"{sha}^{{commit}}",
        check=False,
    )  # fmt: skip
    return out or None


def select_base(series: Series, candidates: Candidates | Sequence[kernels.KernelTree]) -> Base:
    """The series' base-commit in the first candidate tree that has it, else the default
    tree's HEAD (the only registered tree's HEAD when the default is not registered);
    the reason says which tree and why. A plain sequence: its first tree is the default."""
    c = candidates
    if not isinstance(c, Candidates):
        c = Candidates(tuple(c), c[0] if c else None)
    notes = "".join(f"; {n}" for n in c.notes)
    if series.base_commit:
        for t in c.trees:  # the first that has it: each look-up starts a git process
            full = _has_commit(t.path, series.base_commit)
            if full:
                where = f"base-commit {series.base_commit[:12]} found in {t.name}"
                if c.default is not None and t != c.default:
                    where += f", not in the default tree {c.default.name}"
                return Base(t, full, where + notes)
        searched = ", ".join(t.name for t in c.trees)
        why = f"base-commit {series.base_commit[:12]} is in no registered tree ({searched})"
    else:
        why = "the series names no base-commit"
    fallback = c.default
    if fallback is None and len(c.trees) == 1:
        fallback = c.trees[0]
        notes += f"; {fallback.name} is the only registered tree"
    if fallback is None:
        ref = shlex.quote(series.msgid or series.source)
        env = f"MMUCI_LORE_URL={shlex.quote(series.lore_url)} " if series.lore_url else ""
        names = ", ".join(t.name for t in c.trees) or "none"
        raise MmuCiError(
            f"{why}{notes}; name the tree to apply it to (registered: {names}): "
            f"`{env}mmubot check {ref} --tree {shlex.quote(c.trees[0].name)}`"
            if c.trees
            else f"{why}{notes}; no kernel tree is registered: run `mmubot kernel prepare 6.1`"
        )
    head = proc.git(fallback.path, "rev-parse", "--verify", "HEAD^{commit}")
    return Base(fallback, head, f"{why}; using {fallback.name} HEAD ({fallback.version}){notes}")


def _hunk_at(diff: str, file: str, line: int | None) -> str | None:
    """The hunk of ``file`` in a patch's diff starting at old line ``line`` (or the first)."""
    diff = re.split(r"^-- \n", diff, maxsplit=1, flags=re.M)[0]  # the mail signature
    parts = re.split(r"^(?=diff --git )", diff, flags=re.M)
    for part in parts:
        if not part.startswith(f"diff --git a/{file} "):
            continue
        hunks = re.split(r"^(?=@@ )", part, flags=re.M)[1:]
        for h in hunks:
            m = re.match(r"@@ -(\d+)", h)
            if line is None or (m and int(m.group(1)) == line):
                return h.rstrip("\n")
        return hunks[0].rstrip("\n") if hunks else None
    return None


def _failure(patch: Patch, err: CommandError) -> ApplyFailure:
    text = err.stderr
    m = re.search(r"patch failed: (\S+?):(\d+)", text)
    m2 = re.search(r"error: (\S+): (does not exist in index|No such file or directory)", text)
    file = m.group(1) if m else (m2.group(1) if m2 else None)
    line = int(m.group(2)) if m else None
    lines = [ln for ln in text.splitlines() if ln.startswith(("error:", "fatal:", "Patch failed"))]
    hunk = _hunk_at(patch.diff, file, line) if file else None
    return ApplyFailure(patch.index, patch.subject, "\n".join(lines) or text.strip(), file, hunk)


def _repo_for(tree: kernels.KernelTree, data_dir: Path) -> Path:
    """Where series commits go: a prepared tree itself; a shared clone of a user's tree."""
    if tree.prepared:
        return tree.path
    clone = data_dir / "clones" / tree.name
    if not (clone / ".git").is_dir():
        clone.parent.mkdir(parents=True, exist_ok=True)
        proc.git(
            clone.parent, "clone", "-q", "--shared", "--no-checkout", str(tree.path), clone.name
        )
    else:
        proc.git(clone, "fetch", "-q", str(tree.path), "+refs/heads/*:refs/remotes/origin/*")
    return clone


def _paths(series: Series) -> list[str]:
    """Every path the series' diffs name (old and new)."""
    out: set[str] = set()
    for p in series.patches:
        for m in re.finditer(r"^diff --git a/(\S+) b/(\S+)$", p.diff, re.M):
            out.update(m.groups())
    return sorted(out)


_OWNER = "mmuci-owner"  # file beside each worktree: the pid of the process using it


def reap_worktrees(repo: Path) -> list[Path]:
    """Remove worktrees of ``repo`` left by a bot process that died (killed, power cut)."""
    reaped = []
    listing = proc.git(repo, "worktree", "list", "--porcelain", check=False)
    for line in listing.splitlines():
        wt = Path(line.removeprefix("worktree ")) if line.startswith("worktree ") else None
        if wt is None or not wt.parent.name.startswith("mmuci-wt-"):
            continue
        try:
            pid = int((wt.parent / _OWNER).read_text())
        except (OSError, ValueError):
            pid = 0
        if pid and proc.pid_alive(pid):
            continue
        with contextlib.suppress(MmuCiError):
            proc.git(repo, "worktree", "remove", "--force", str(wt))
        shutil.rmtree(wt.parent, ignore_errors=True)
        reaped.append(wt)
    proc.git(repo, "worktree", "prune", check=False)
    return reaped


@contextlib.contextmanager
def worktree(repo: Path, commit: str, paths: Sequence[str] | None = None) -> Iterator[Path]:
    """A detached worktree of ``repo`` at ``commit``, removed on exit whatever happens;
    one left by a process that was killed is removed by the next call.

    With ``paths`` only those files are checked out (the index is complete): `git am`
    needs no more, and a full kernel checkout costs seconds.
    """
    reap_worktrees(repo)
    tmp = Path(tempfile.mkdtemp(prefix="mmuci-wt-"))
    (tmp / _OWNER).write_text(str(os.getpid()))
    wt = tmp / "wt"
    try:
        if paths is None:
            proc.git(repo, "worktree", "add", "-q", "--detach", str(wt), commit)
        else:
            proc.git(repo, "worktree", "add", "-q", "--no-checkout", "--detach", str(wt), commit)
            proc.git(wt, "read-tree", "HEAD")
            if paths:  # a path the series creates is not in the index yet: not an error
                proc.git(wt, "checkout-index", "-q", "-f", "--", *paths, check=False)
        yield wt
    finally:
        with contextlib.suppress(MmuCiError):
            proc.git(repo, "worktree", "remove", "--force", str(wt))
        shutil.rmtree(tmp, ignore_errors=True)
        with contextlib.suppress(MmuCiError):
            proc.git(repo, "worktree", "prune")


_AM = ["am", "--quiet", "--committer-date-is-author-date", "--no-3way"]


def _applied_path(data_dir: Path, repo: Path, base: str, mbox: bytes) -> Path:
    """Where the commits of a series applied whole are remembered: by repository, base,
    the mail's bytes and the `git am` command (the same input gives the same commits)."""
    h = hashlib.sha256()
    for part in (str(repo), base, " ".join(_AM), repr(sorted(_AM_ENV.items()))):
        h.update(part.encode() + b"\0")
    h.update(mbox)
    return data_dir / "applied" / f"{h.hexdigest()}.json"


def _known_revs(path: Path, repo: Path, base: str, n: int) -> list[str] | None:
    """The remembered commits when the repository still has them as that chain on ``base``
    (`git rev-list`), else None."""
    try:
        revs = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    if not isinstance(revs, list) or len(revs) != n or not all(isinstance(r, str) for r in revs):
        return None
    if not revs:
        return None
    r = proc.run(["git", "-C", str(repo), "rev-list", "--reverse", f"{base}..{revs[-1]}"],
                 check=False)  # fmt: skip
    return revs if r.returncode == 0 and r.stdout.split() == revs else None


def apply_series(series: Series, base: Base, data_dir: Path) -> AppliedSeries:
    """`git am` the patches on top of the base; stop at the first that does not apply.
    A series applied whole before is not applied again (``<data dir>/applied/``)."""
    repo = _repo_for(base.tree, data_dir)
    failure: ApplyFailure | None = None
    # One `git am` for the whole series (one process, not one per patch); it stops at
    # the first patch that does not apply, with the ones before it committed.
    mbox = b"".join(p.mbox if p.mbox.endswith(b"\n") else p.mbox + b"\n" for p in series.patches)
    known = _applied_path(data_dir, repo, base.commit, mbox)
    revs = _known_revs(known, repo, base.commit, len(series.patches))
    if revs is not None:
        return _applied(series, base, repo, revs, None)
    with worktree(repo, base.commit, _paths(series)) as wt:
        err: CommandError | None = None
        try:
            proc.git(wt, *_AM, input=mbox, extra_env=_AM_ENV)
        except CommandError as e:
            err = e
        revs = proc.git(wt, "rev-list", "--reverse", f"{base.commit}..HEAD").split()
        if err is not None:
            patch = series.patches[min(len(revs), len(series.patches) - 1)]
            failure = _failure(patch, err)
    if failure is None and len(revs) == len(series.patches) and revs:
        known.parent.mkdir(parents=True, exist_ok=True)
        tmp = known.with_suffix(f".{os.getpid()}.tmp")
        tmp.write_text(json.dumps(revs))
        tmp.replace(known)
    return _applied(series, base, repo, revs, failure)


def _applied(
    series: Series, base: Base, repo: Path, revs: list[str], failure: ApplyFailure | None
) -> AppliedSeries:
    applied = []
    parent = base.commit
    for patch, rev in zip(series.patches, revs, strict=False):
        applied.append(AppliedPatch(patch.index, patch.subject, parent, rev))
        parent = rev
    return AppliedSeries(base, tuple(applied), failure, repo)

"""The guard's logic: does a text contain kernel source lines?

Kernel text is the set of distinct stripped lines (>= MIN_LEN characters) of the
prepared trees' ``arch/x86/kvm/mmu/*.c|*.h``. A file with THRESHOLD or more distinct
lines from that set holds kernel source; a few short generic lines do not count.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from mmuci import proc

MIN_LEN = 25
THRESHOLD = 8
MMU_DIR = "arch/x86/kvm/mmu"


def _lines(text: str) -> set[str]:
    return {
        s
        for s in (line.strip() for line in text.splitlines())
        if len(s) >= MIN_LEN and "SPDX-License-Identifier" not in s  # a tag, not code
    }


def kernel_lines(trees: Iterable[Path]) -> frozenset[str]:
    """Distinct long lines of the MMU sources of the given kernel trees."""
    out: set[str] = set()
    for tree in trees:
        files = [*Path(tree, MMU_DIR).glob("*.c"), *Path(tree, MMU_DIR).glob("*.h")]
        if not files:
            raise FileNotFoundError(f"{tree}/{MMU_DIR} has no sources: not a kernel tree?")
        for f in files:
            out |= _lines(f.read_text(errors="replace"))
    return frozenset(out)


def shared_lines(text: str, kernel: frozenset[str]) -> set[str]:
    return _lines(text) & kernel


def offenders(
    files: Iterable[Path], kernel: frozenset[str], threshold: int = THRESHOLD
) -> dict[Path, set[str]]:
    """Files holding ``threshold`` or more distinct kernel lines (binary files skipped)."""
    found = {}
    for f in files:
        try:
            data = f.read_bytes()
        except (FileNotFoundError, IsADirectoryError):
            continue  # deleted in the work tree, or a submodule
        if b"\0" in data:
            continue
        shared = shared_lines(data.decode(errors="replace"), kernel)
        if len(shared) >= threshold:
            found[f] = shared
    return found


def tracked_files(repo: Path) -> list[Path]:
    return [repo / p for p in proc.git(repo, "ls-files", "-z").split("\0") if p]

"""The house rule, mechanical: no tracked file holds kernel source text."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from tests import kernel_text

REPO = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def kernel(tree_61, tree_612) -> frozenset[str]:
    lines = kernel_text.kernel_lines([tree_61.path, tree_612.path])
    assert len(lines) > 5000, "the MMU sources of both trees should give many lines"
    return lines


def _report(found: dict[Path, set[str]]) -> str:
    return "\n".join(
        f"{f.relative_to(REPO) if f.is_relative_to(REPO) else f}: {len(lines)} kernel lines, "
        f"e.g. {sorted(lines)[:3]}"
        for f, lines in found.items()
    )


def test_no_tracked_file_holds_kernel_source(kernel: frozenset[str]) -> None:
    files = kernel_text.tracked_files(REPO)
    assert REPO / "pyproject.toml" in files
    found = kernel_text.offenders(files, kernel)
    assert not found, (
        "kernel source text is committed (write your own code; kernel code is read from "
        "the prepared trees at run time):\n" + _report(found)
    )


def test_guard_catches_a_kernel_file(kernel, tree_61, tmp_path: Path) -> None:
    copy = tmp_path / "copied.h"
    shutil.copy(tree_61.path / "arch/x86/kvm/mmu/mmu_internal.h", copy)
    found = kernel_text.offenders([copy], kernel)
    assert copy in found and len(found[copy]) >= kernel_text.THRESHOLD
    # A dozen kernel lines pasted into a file of our own are caught too.
    pasted = tmp_path / "pasted.py"
    some = sorted(kernel)[1000:1012]
    pasted.write_text("# notes\n" + "\n".join(f"    {line}" for line in some) + "\n")
    assert pasted in kernel_text.offenders([pasted], kernel)


def test_guard_passes_harmless_text(kernel, tmp_path: Path) -> None:
    own = tmp_path / "own.c"
    own.write_text(
        "/* our own shim code */\n"
        "static int mmu_shim_record_event(struct shim_log *log, int kind)\n"
        "{\n\treturn log_append(log, kind);\n}\n"
    )
    spdx = tmp_path / "spdx.h"
    spdx.write_text("/* SPDX-License-Identifier: GPL-2.0 */\n" * 2 + "int ours;\n")
    assert kernel_text.shared_lines(spdx.read_text(), kernel) == set()
    few = tmp_path / "few.py"
    few.write_text("\n".join(sorted(kernel)[:3]) + "\n")  # below the threshold
    assert kernel_text.offenders([own, few], kernel) == {}

"""The shim constants Python reads from mmu_shim.h are the ones gcc sees in it."""

from __future__ import annotations

from pathlib import Path

import pytest

from mmuci import proc
from mmuci.errors import MmuCiError
from mmucore.shim_api import API_HEADER, EVENT_PREFIX, SHIM_DIR, constants, read_constants


def _gcc_values(tmp_path: Path, names: list[str]) -> dict[str, int]:
    """Each name's value as gcc compiles it against the shipped mmu_shim.h."""
    prints = "\n".join(f'\tprintf("{n} %lld\\n", (long long)({n}));' for n in names)
    c = tmp_path / "values.c"
    c.write_text(f'#include <stdio.h>\n#include "{API_HEADER}"\nint main(void)\n{{\n{prints}\n}}\n')
    exe = tmp_path / "values"
    proc.run(["gcc", f"-I{SHIM_DIR}", "-o", str(exe), str(c)])
    out = proc.run([str(exe)]).stdout.split()
    return {out[i]: int(out[i + 1]) for i in range(0, len(out), 2)}


def test_event_kinds_and_defines_agree_with_gcc(tmp_path: Path) -> None:
    k = constants()
    enum = {f"{EVENT_PREFIX}{name}": i for i, name in enumerate(k.event_kinds)}
    enum[f"{EVENT_PREFIX}_COUNT"] = len(k.event_kinds)
    want = {**enum, **k.defines}
    assert _gcc_values(tmp_path, sorted(want)) == want
    for name in ("MMU_SHIM_PFN_BASE", "MMU_SHIM_ZERO_PFN", "MMU_SHIM_NR_PAGES"):
        assert name in k.defines
    assert k.kind("WARN") == want["MMU_EV_WARN"]


def test_explicit_values_and_suffixes_are_read() -> None:
    k = read_constants(
        '#define A 0x10UL /* sixteen */\n#define B 010\n#define F(x) 1\n#define S "s"\n'
        "enum mmu_shim_event_kind { MMU_EV_NONE = 0, MMU_EV_X, MMU_EV_Y, MMU_EV__COUNT };\n"
    )
    assert k.event_kinds == ("NONE", "X", "Y")
    assert k.defines == {"A": 16, "B": 8}


def test_a_gap_in_the_kinds_is_refused() -> None:
    with pytest.raises(MmuCiError, match="0, 1, 2"):
        read_constants("enum mmu_shim_event_kind { MMU_EV_NONE = 0, MMU_EV_X = 5 };\n")

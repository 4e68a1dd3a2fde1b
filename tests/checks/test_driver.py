"""The generated driver tables: named after the Python tables and agreeing with gcc."""

from __future__ import annotations

import inspect
from pathlib import Path

import pytest

from checks import driver, world
from checks.space import COMPONENTS, all_checks
from mmuci import proc
from mmucore.shim_api import SHIM_DIR, constants


def test_every_shim_event_kind_has_one_component() -> None:
    mapped = [k for kinds in driver.EVENT_COMP.values() for k in kinds]
    assert sorted(mapped) == sorted(constants().event_kinds)  # no kind left out, none unknown
    assert set(driver.EVENT_COMP) <= set(COMPONENTS)
    table = driver.event_comp_table()
    for k in constants().event_kinds:
        assert f"[MMU_EV_{k}] = " in table


def _compiled(tmp_path: Path, body: str) -> list[str]:
    """Output of a program made of drv.h, the generated header and ``body`` (main's)."""
    c = tmp_path / "t.c"
    c.write_text(
        '#include <stdint.h>\n#include <stdio.h>\n#include "mmu_shim.h"\n'
        + driver.c_file("drv.h")
        + world.world_header()
        + driver.event_comp_table()
        + f"int main(void)\n{{\n{body}\n\treturn 0;\n}}\n"
    )
    exe = tmp_path / "t"
    proc.run(["gcc", "-Wall", "-Werror", "-Wno-unused", f"-I{SHIM_DIR}", "-o", exe, c])
    return proc.run([str(exe)]).stdout.split()


def test_header_constants_and_world_layout_agree_with_the_python_tables(tmp_path) -> None:
    want: list[str] = []
    body = []
    for k, v in world.SLOT_CODES.items():
        body.append(f'\tprintf("%d\\n", SLOT_{k});')
        want.append(str(v))
    for i, m in enumerate(world.MODE_TABLE):
        body.append(
            f'\tprintf("%d %d %d %d\\n", MODE_{m.name}, drv_modes[MODE_{m.name}].root_level, '
            f"drv_modes[MODE_{m.name}].guest_level, drv_modes[MODE_{m.name}].direct);"
        )
        want += [str(i), str(m.root_level), str(m.guest_level), str(m.direct)]
    for i, c in enumerate(COMPONENTS):
        body.append(f'\tprintf("%d\\n", {world.component_macro(c)});')
        want.append(str(i))
    # every world variable is one int of struct drv_world, in WORLD_VARS order
    for i, var in enumerate(world.WORLD_VARS):
        body.append(f'\tprintf("%zu\\n", offsetof(struct drv_world, {world.world_field(var)}));')
        want.append(str(i * 4))
    body.append('\tprintf("%zu\\n", sizeof(struct drv_world));')
    want.append(str(4 * len(world.WORLD_VARS)))
    body.append('\tprintf("%d\\n", drv_event_comp[MMU_EV_WARN]);')
    want.append(str(COMPONENTS.index("warn")))
    assert _compiled(tmp_path, "\n".join(body)) == want


def test_every_dimension_sets_a_world_variable_by_name() -> None:
    for chk in all_checks():
        for d in chk.dims:
            assert d.world in world.WORLD_VARS, (chk.name, d.name)
        for var in chk.fixed:
            assert var in world.WORLD_VARS, (chk.name, var)


def test_setup_never_reads_a_call_only_variable() -> None:
    """The odometer reuses a setup across states that differ only in CALL_ONLY_VARS:
    world.c and the glue must not read them (else a state would run in its neighbour's
    world)."""
    setup_c = driver.c_file("world.c") + world.world_header()
    glue = inspect.getsource(world.glue_c) + inspect.getsource(world.kvm_init_c)
    for var in world.CALL_ONLY_VARS:
        assert f"drv_w.{var}" not in setup_c, var
        assert f"drv_w.{var}" not in glue, var
        assert not world.read_by_setup(var)
    assert all(world.read_by_setup(v) for v in world.WORLD_VARS if v not in world.CALL_ONLY_VARS)
    for chk in all_checks():  # every check's call-only dimensions come first or not at all
        assert any(world.read_by_setup(d.world) for d in chk.dims), chk.name


@pytest.mark.slow
@pytest.mark.parametrize(
    ("check", "lo", "hi"), [("free_roots", 0, 6000), ("free_roots", 9_000_000, 9_004_000),
                            ("pgd_switch", 0, 6000), ("pgd_switch", 700_000, 704_000)],
)  # fmt: skip
def test_odometer_states_digest_like_a_fresh_setup_each(scratch, check, lo, hi) -> None:
    """One run_range over many states (setups restored) gives the digests and statuses of
    one call per state (each a full setup), faulting states included (6.1, sandboxed)."""
    from checks import engine
    from mmucore import sandbox

    s = scratch["6.1"]
    (chk,) = all_checks([check])
    b, _ = engine.build_one(chk, s.extraction(s.base), s.cache_dir)
    payload = {"check": check, "lo": lo, "hi": hi}
    out = sandbox.run("tests.checks.probe:digests_both_ways", payload, [b])
    assert out.ok, out.message
    assert len(out.value["odometer"]) == (hi - lo) * 2
    assert len(set(out.value["odometer"][: hi - lo])) > 100  # words that tell states apart
    assert out.value["odometer"] == out.value["fresh"] == out.value["rows_at"]
    if check == "pgd_switch":  # the faults are there, and restored past
        assert any(out.value["odometer"][-(hi - lo) :])

"""The generated driver tables: named after the Python tables and agreeing with gcc."""

from __future__ import annotations

from pathlib import Path

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

"""The world's tables (checks/world.py): a code one table repeats from another is the
other's, so the generated header and the labels cannot drift apart."""

from __future__ import annotations

from checks import common, free_roots, pgd_switch, world


def test_mask_all_ones_is_the_code_of_roots_to_free_all_ones_label() -> None:
    dim = free_roots.ROOTS_TO_FREE
    assert world.MASK_ALL_ONES == dim.code(dim.labels.index("~0UL"))
    assert f"#define MASK_ALL_ONES {world.MASK_ALL_ONES}\n" in world.world_header()


def test_guest_pgds_are_one_table_for_the_header_and_the_labels() -> None:
    header = world.world_header()
    for name, pgd in world.GUEST_PGDS.items():
        assert f"#define DRV_{name} {pgd:#x}ULL\n" in header
    assert pgd_switch.NEW_PGD.labels == tuple(
        f"{n.lower()} ({v:#x})" for n, v in world.GUEST_PGDS.items()
    )
    stale = f"stale pgd {world.GUEST_PGDS['G3']:#x}"
    assert any(stale in label for label, _ in common.CURRENT_KINDS)


def test_page_names_are_the_root_pages() -> None:
    assert world.PAGE_NAMES == {0: "pae_root", 1: "pml4_root", 2: "pml5_root"}
    for i, name in world.PAGE_NAMES.items():
        assert f"#define PAGE_{name.upper()} {i}\n" in world.world_header()


def test_field_multipliers_are_named_slots_of_drv_kf() -> None:
    """Each field's multipliers start at DRV_KF_<name>, the slots tile drv_kf exactly, and
    the driver's C indexes drv_kf by those names only (no literal offset to drift)."""
    import re

    from checks import driver

    header = world.world_header()
    at = 0
    for name, n in world.KF_SLOTS.items():
        assert world.KF_AT[name] == at and f"#define DRV_KF_{name} {at}\n" in header
        at += n
    assert at == len(world.KF) == len(set(world.KF)) and all(k & 1 for k in world.KF)
    assert world.KF_SLOTS["COUNT"] == world.NR_SP_PAGES
    for name in ("world.c", "runner.c"):
        uses = re.findall(r"drv_kf\[([^\]]*)\]", driver.c_file(name))
        assert uses and all(u.startswith("DRV_KF_") for u in uses), (name, uses)

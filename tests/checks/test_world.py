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

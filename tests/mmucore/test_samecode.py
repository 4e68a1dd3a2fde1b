"""mmucore/samecode.py: two texts that gcc compiles to the same code have one image, and
every change that reaches the object (code, a string, a global, a site's condition)
makes another; the object is read with bounds checks (it is built from patch code)."""

from __future__ import annotations

from pathlib import Path

import pytest

from mmucore import samecode
from mmucore.build import CFLAGS

HEAD = '#include <stdint.h>\n#include "mmu_shim.h"\nextern void record(const void *site);\n'


def _digest(tmp_path: Path, body: str) -> str:
    img = samecode.image(HEAD + body, CFLAGS, cache_dir=tmp_path)
    assert img is not None
    return img.digest


def _site(cond: str) -> str:
    return (
        "{ static struct mmu_shim_site __mmu_site = "
        f'{{ __FILE__, __LINE__, 0, "{cond}", 0 }}; record(&__mmu_site); }}'
    )


FN = "int f(unsigned int *p, int n)\n{{\n\t{decl} s = 0;\n{body}\treturn s;\n}}\n"
LOOP = "\tfor (int i = 0; i < n; {inc})\n\t\ts += p[i];\n"


def test_spellings_of_the_same_code_have_one_image(tmp_path: Path) -> None:
    a = FN.format(decl="unsigned int", body=LOOP.format(inc="++i"))
    b = FN.format(decl="unsigned", body=LOOP.format(inc="i++"))
    assert _digest(tmp_path, a) == _digest(tmp_path, b)


def test_a_changed_operation_is_another_image(tmp_path: Path) -> None:
    a = FN.format(decl="unsigned int", body=LOOP.format(inc="++i"))
    b = FN.format(decl="unsigned int", body=LOOP.format(inc="i += 2"))
    assert _digest(tmp_path, a) != _digest(tmp_path, b)


@pytest.mark.parametrize(
    "other",
    [
        'const char *name(void) { return "tdp"; }\n',  # a string's bytes
        "int level = 5;\n",  # a global's initial value
        "static int level(void) { return 5; }\nint use(void) { return level(); }\n",  # a callee
    ],
    ids=["string", "global", "callee"],
)
def test_a_change_outside_the_code_that_runs_is_another_image(tmp_path: Path, other: str) -> None:
    base = other.replace('"tdp"', '"shadow"').replace("5", "4")
    assert _digest(tmp_path, base) != _digest(tmp_path, other)


def test_a_site_s_line_is_masked_but_not_its_condition(tmp_path: Path) -> None:
    def fn(cond: str, blank: str) -> str:
        return f"void g(int x)\n{{\n{blank}\tif (x)\n\t\t{_site(cond)}\n}}\n"

    here = _digest(tmp_path, fn("x", ""))
    assert _digest(tmp_path, fn("x", "\n\n\n")) == here  # moved down three lines: the same
    assert _digest(tmp_path, fn("!x", "")) != here  # the condition is in the explanation


def test_the_exact_digest_holds_the_sites_lines(tmp_path: Path) -> None:
    """A module run in place of another (checks/prune.py: twin_of) must name the same
    lines in its explanation: the exact digest tells moved sites apart."""

    def exact(blank: str) -> str:
        body = f"void g(int x)\n{{\n{blank}\tif (x)\n\t\t{_site('x')}\n}}\n"
        img = samecode.image(HEAD + body, CFLAGS, cache_dir=tmp_path)
        assert img is not None
        return img.exact

    assert exact("") == exact("")
    assert exact("\n") != exact("")


def test_code_that_does_not_compile_has_no_image(tmp_path: Path) -> None:
    assert samecode.image(HEAD + "int f(void) { return ; \n", CFLAGS, cache_dir=tmp_path) is None


def test_an_image_is_cached_by_its_text_and_a_broken_entry_is_made_again(tmp_path: Path) -> None:
    text = HEAD + FN.format(decl="int", body="")
    first = samecode.image(text, CFLAGS, cache_dir=tmp_path)
    (entry,) = tmp_path.glob("_image_*.json")
    entry.write_text("{not json")
    again = samecode.image(text, CFLAGS, cache_dir=tmp_path)
    assert first is not None and again == first


@pytest.mark.parametrize(
    "data",
    [b"", b"\x7fELF" + b"\0" * 60, b"MZ" + b"\0" * 100],
    ids=["empty", "elf-without-sections", "not-elf"],
)
def test_an_object_that_cannot_be_read_is_refused(data: bytes) -> None:
    with pytest.raises(samecode.BadObject):
        samecode.sections_of(data)


def test_a_truncated_object_is_refused(tmp_path: Path) -> None:
    text = HEAD + FN.format(decl="int", body=LOOP.format(inc="++i"))
    (tmp_path / "t.c").write_text(text)
    from mmuci import proc
    from mmucore.shim_api import SHIM_DIR

    obj = tmp_path / "t.o"
    proc.run(["gcc", *CFLAGS, "-c", f"-I{SHIM_DIR}", str(tmp_path / "t.c"), "-o", str(obj)])
    data = obj.read_bytes()
    assert samecode.sections_of(data)  # whole: read
    for cut in (len(data) // 2, len(data) - 100):
        with pytest.raises(samecode.BadObject):
            samecode.sections_of(data[:cut])

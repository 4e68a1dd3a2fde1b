"""The built object is inspected too: sections, sizes, constructors, exports, stack."""

from __future__ import annotations

from pathlib import Path

import pytest
from cffi import FFI

from mmuci import proc
from mmucore.extract import Piece
from mmucore.validate import RefusedInput, check_object
from tests.mmucore.test_validate import MMU_C, extraction


def _so(tmp: Path, src: str, *flags: str) -> Path:
    c = tmp / "m.c"
    c.write_text(src)
    so = tmp / "m.so"
    proc.run(["gcc", "-std=gnu11", "-O1", "-fPIC", "-fvisibility=hidden", "-shared", "-w",
              *flags, "-o", so, c])  # fmt: skip
    return so


def _refused(so: Path, *pieces: Piece, sanitize: bool = False) -> RefusedInput:
    with pytest.raises(RefusedInput) as e:
        check_object(so, extraction(pieces, ""), "m", sanitize=sanitize)
    return e.value


PLAIN = "int counter;\nint f(int x) { return x + counter; }\n"

OBJECTS = {
    "constructor": (
        "__attribute__((constructor)) static void c(void) { counter = 1; }\n",
        (),
        "constructor",
    ),
    "destructor": (
        "__attribute__((destructor)) static void d(void) { counter = 2; }\n",
        (),
        "destructor",
    ),
    "init_array by section": (
        '__attribute__((section(".init_array"), used)) static void (*p)(void) = 0;\n',
        (),
        "constructor",
    ),
    "own section": ('__attribute__((section("mmu_x"), used)) static int x = 1;\n', (), "mmu_x"),
    "ctors": ('__attribute__((section(".ctors"), used)) static long x = 1;\n', (), "constructor"),
    "huge initialised data": ("const char mmu_blob[17 << 20] = { 1 };\n", (), "MiB"),
    "huge object": ("const char mmu_blob[9 << 20] = { 1 };\n", (), "mmu_blob"),
    "huge bss": ("char mmu_zeros[65 << 20];\n", (), ".bss"),
    "executable stack": ("", ("-Wl,-z,execstack",), "executable stack"),
    "exported libc name": (
        '__attribute__((visibility("default"))) void free(void *p) { (void)p; }\n',
        (),
        "exports free",
    ),
}


@pytest.mark.parametrize("name", sorted(OBJECTS))
def test_an_object_holding_more_than_plain_c_is_refused(name: str, tmp_path: Path) -> None:
    extra, flags, why = OBJECTS[name]
    e = _refused(_so(tmp_path, PLAIN + extra, *flags))
    assert why in e.reason, e.reason


def test_the_symbol_responsible_is_named_at_its_patch_line(tmp_path: Path) -> None:
    p = Piece("global", "mmu_blob", MMU_C, 70, "const char mmu_blob[9 << 20] = { 1 };")
    so = _so(tmp_path, PLAIN + p.text + "\n")
    e = _refused(so, p)
    assert (e.file, e.line) == (MMU_C, 70) and "mmu_blob" in e.reason


def test_plain_objects_pass(tmp_path: Path) -> None:
    check_object(_so(tmp_path, PLAIN), extraction((), ""), "m", sanitize=False)
    san = _so(tmp_path, PLAIN + "int g[4];\nint h(int i) { return g[i]; }\n",
              "-fsanitize=address,undefined")  # fmt: skip
    check_object(san, extraction((), ""), "m", sanitize=True)
    ffi = FFI()
    ffi.cdef("int f(int);")
    ffi.set_source("_obj_probe", PLAIN, extra_compile_args=["-fvisibility=hidden"])
    so = Path(ffi.compile(tmpdir=str(tmp_path)))
    check_object(so, extraction((), ""), "_obj_probe", sanitize=False)

"""The cffi declarations (mmucore/cdef.py): the shim's types are read from
mmu_shim_kernel.h, so cffi and gcc see one definition of each."""

from __future__ import annotations

from pathlib import Path

import pytest
from cffi import FFI

from mmuci import proc
from mmuci.errors import MmuCiError
from mmucore import cdef
from mmucore.shim_api import SHIM_DIR

NAMES = sorted(cdef._KNOWN_TYPES | cdef._SHIM_TAGS)


def test_cffi_and_gcc_agree_on_every_shim_type(tmp_path: Path) -> None:
    ffi = FFI()
    ffi.cdef("typedef unsigned long uint64_t;\n" + cdef.shim_types())
    cffi_sizes = {n: ffi.sizeof(n) for n in NAMES}
    prints = "\n".join(f'\tprintf("%zu\\n", sizeof({n}));' for n in NAMES)
    src = tmp_path / "sizes.c"
    src.write_text(
        f'#include <stdio.h>\n#include "{cdef.KERNEL_HEADER}"\nint main(void)\n{{\n{prints}\n}}\n'
    )
    exe = tmp_path / "sizes"
    proc.run(["gcc", f"-I{SHIM_DIR}", "-o", str(exe), str(src)])
    gcc_sizes = dict(zip(NAMES, map(int, proc.run([str(exe)]).stdout.split()), strict=True))
    assert cffi_sizes == gcc_sizes


def test_the_definitions_follow_the_header() -> None:
    text = (SHIM_DIR / cdef.KERNEL_HEADER).read_text()
    assert "\tint counter;\n} atomic_t;" in text
    changed = text.replace("\tint counter;\n} atomic_t;", "\tlong counter, spare;\n} atomic_t;")
    got = cdef.read_shim_types(changed)
    assert "long counter, spare;" in got and "int counter;" not in got
    with pytest.raises(MmuCiError, match="defines no atomic_t: the cdef names fields"):
        cdef.read_shim_types(text.replace("} atomic_t;", "} atomic_other_t;"))

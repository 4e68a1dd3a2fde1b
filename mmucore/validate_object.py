"""Refuse a built module whose object holds more than the driver and the extracted code.

The source checks should leave nothing to find here; this is the second look, on what
gcc and the linker actually wrote (``readelf`` and ``nm`` through mmuci.proc):
only the sections a cffi module of plain C has; no constructor or destructor beyond the
C runtime's own one each (``.init_array``/``.fini_array``: 8 bytes, 16 with the
sanitizer runtime's); no section or symbol larger than a model needs (a blob embedded
by the assembler, a giant initialised array); no executable stack; no exported symbol
but the module's ``PyInit_`` (an exported ``free`` or ``malloc`` would interpose).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from mmuci import proc

# what gcc -shared -fPIC and ld give a cffi module of plain C (with or without sanitizers)
ALLOWED_SECTIONS = frozenset(
    ".note.gnu.build-id .note.gnu.property .note.ABI-tag .gnu.hash .hash .dynsym .dynstr "
    ".gnu.version .gnu.version_r .gnu.version_d .rela.dyn .rela.plt .init .plt .plt.got "
    ".plt.sec .text .fini .rodata .eh_frame_hdr .eh_frame .gcc_except_table .init_array "
    ".fini_array .data.rel.ro .dynamic .got .got.plt .data .bss .tbss .tdata .comment "
    ".symtab .strtab .shstrtab".split()
)
MAX_SECTION_BYTES = 16 << 20  # any one section of the file (text, data, rodata, ...)
MAX_BSS_BYTES = 64 << 20  # zero-filled data: no file size, but memory at load
MAX_SYMBOL_BYTES = 8 << 20  # any one object (the shim's page buffers are 256 KiB)
CRT_ARRAY_BYTES = 8  # crtbeginS.o's frame_dummy / __do_global_dtors_aux
SANITIZER_ARRAY_BYTES = 16  # ... plus the sanitizer runtime's module ctor / dtor

# "  [12] .text  PROGBITS  0000000000002160 002160 008175 ..." (the NULL entry has no name)
_SECTION = re.compile(
    r"^\s*\[\s*\d+\]\s+(\S+)\s+(\S+)\s+[0-9a-f]{16}\s+[0-9a-f]+\s+([0-9a-f]+)\s", re.M
)


@dataclass(frozen=True)
class Section:
    name: str
    kind: str
    size: int


class ObjectProblem(ValueError):
    """What is wrong with the object; ``symbol`` names the object responsible, if known."""

    def __init__(self, what: str, symbol: str | None = None) -> None:
        self.what = what
        self.symbol = symbol
        super().__init__(what)


def sections(so_path: Path) -> list[Section]:
    out = proc.run(["readelf", "-S", "-W", str(so_path)], hint="readelf comes with binutils")
    return [
        Section(m.group(1), m.group(2), int(m.group(3), 16)) for m in _SECTION.finditer(out.stdout)
    ]


def _largest_symbol(so_path: Path) -> tuple[str, int] | None:
    out = proc.run(["nm", "-S", "--size-sort", str(so_path)], check=False).stdout
    last = out.strip().splitlines()[-1:] if out.strip() else []
    for line in last:
        parts = line.split()
        if len(parts) == 4:
            return parts[3].split(".", 1)[0], int(parts[1], 16)
    return None


def check_object(so_path: Path, module: str, *, sanitize: bool) -> None:
    """Raise ObjectProblem unless the module's object is what plain C builds to."""
    arrays = SANITIZER_ARRAY_BYTES if sanitize else CRT_ARRAY_BYTES
    for s in sections(so_path):
        if s.name not in ALLOWED_SECTIONS and not s.name.startswith(".debug_"):
            raise ObjectProblem(f"the built module has an unexpected section {s.name} ({s.kind})")
        if s.name in (".init_array", ".fini_array") and s.size > arrays:
            what = "constructor" if s.name == ".init_array" else "destructor"
            raise ObjectProblem(
                f"the built module runs a {what} of its own ({s.name} holds {s.size // 8} "
                f"entries, the C runtime needs {arrays // 8})"
            )
        limit = MAX_BSS_BYTES if s.kind == "NOBITS" else MAX_SECTION_BYTES
        if s.size > limit:
            big = _largest_symbol(so_path)
            raise ObjectProblem(
                f"the built module's {s.name} is {s.size >> 20} MiB (at most {limit >> 20} "
                "MiB: a model needs kilobytes)",
                big[0] if big else None,
            )
    big = _largest_symbol(so_path)
    if big and big[1] > MAX_SYMBOL_BYTES:
        raise ObjectProblem(
            f"the built module holds an object of {big[1] >> 20} MiB ({big[0]}; at most "
            f"{MAX_SYMBOL_BYTES >> 20} MiB)",
            big[0],
        )
    phdrs = proc.run(["readelf", "-l", "-W", str(so_path)]).stdout
    stack = re.search(r"^\s*GNU_STACK\s.*\s(R?W?E)\s+0x[0-9a-f]+\s*$", phdrs, re.M)
    if stack and "E" in stack.group(1):
        raise ObjectProblem("the built module asks for an executable stack")
    exported = proc.run(["nm", "-D", "--defined-only", str(so_path)]).stdout.split("\n")
    for line in exported:
        parts = line.split()
        if len(parts) < 3:
            continue
        name = parts[2].split("@", 1)[0]
        if name == f"PyInit_{module}" or name in ("_init", "_fini"):
            continue
        if sanitize and name.startswith(("__asan", "__ubsan", "__sanitizer", "__odr_asan")):
            continue
        raise ObjectProblem(
            f"the built module exports {name}: only PyInit_{module} may be visible "
            "(an exported C-library name would replace the library's own)",
            name,
        )

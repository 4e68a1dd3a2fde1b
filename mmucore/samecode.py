"""What gcc makes of a revision's own code, to tell two revisions that compile the same.

Sound pruning (checks/prune.py) uses it: when a later revision's code compiles to the very
bytes an earlier one's does, every state runs the same in both, whatever their texts say
(`uint i` against `unsigned int i`, `!x` against `x == 0`, `++i` against `i++`), so the
later one need run no state the earlier one ran cleanly.

An image is the revision part of a split module (mmucore/build_base.py: the head's
declarations, the revision's functions and globals, the driver's revision part; the shim,
the driver's shared part and cffi's glue are the same in both by construction, or the pair
is refused before) compiled in the jail with the build's flags plus
``-ffunction-sections -fdata-sections``, then read here: every allocated section's bytes
and relocations (each by the symbol it names, or the section it points into, and the
addend), so a changed callee, string or global shows as a changed section. Left out:
unwind tables (``.eh_frame``: read only when unwinding, which C code here never does),
notes and what is not loaded. One thing is masked: the line number in each WARN/lockdep
site of the shim (``struct mmu_shim_site``, mmucore/shim/mmu_shim.h; the recorder reads it
for the explanation only, the whole-state word never does, and patch code cannot name it,
mmucore/validate_lex.py), so a patch that moves lines compiles the same.

Images are cached under the build cache by their C text and flags; the object's bytes are
untrusted (gcc ran on patch code) and read with bounds checks: anything odd is no image.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import shutil
import struct
import tempfile
from dataclasses import dataclass
from pathlib import Path

from mmuci.errors import CommandError
from mmucore import jail
from mmucore.shim_api import SHIM_DIR

IMAGE_FORMAT = "3"  # bump when what an image holds changes
IMAGE_FLAGS = ("-ffunction-sections", "-fdata-sections")
SITE_SECTION = "__mmu_site."  # a shim site's static (mmucore/shim/mmu_shim_kernel.h)
SITE_LINE = (8, 12)  # bytes of `int line` in struct mmu_shim_site on x86-64
_SKIP = (".eh_frame", ".note")

SHT_SYMTAB, SHT_RELA, SHT_NOBITS = 2, 4, 8
SHF_ALLOC = 2
STT_SECTION = 3


@dataclass(frozen=True)
class Image:
    """One revision's compiled code: a digest of every loaded section, by name."""

    key: str  # of the C text and flags it was compiled from
    sections: dict[str, str]  # section name -> sha256 of its (masked) bytes and relocations
    lines: str = ""  # sha256 of the sites' masked lines, in section order

    @property
    def digest(self) -> str:
        """One digest for the whole image: equal digests, the same code and data but for
        the sites' lines."""
        h = hashlib.sha256(IMAGE_FORMAT.encode())
        for name in sorted(self.sections):
            h.update(f"{name}\0{self.sections[name]}\0".encode())
        return h.hexdigest()

    @property
    def exact(self) -> str:
        """The digest with the sites' lines: equal, the same bytes to the last one (so an
        explanation made from one module's sites holds for the other)."""
        return hashlib.sha256(f"{self.digest}\0{self.lines}".encode()).hexdigest()


class BadObject(ValueError):
    """The object is not an ELF64 relocatable file we can read."""


def image_key(c_text: str, flags: tuple[str, ...]) -> str:
    h = hashlib.sha256()
    for part in (IMAGE_FORMAT, " ".join(flags), c_text):
        h.update(part.encode() + b"\0")
    return h.hexdigest()


def image(c_text: str, flags: tuple[str, ...], *, cache_dir: Path) -> Image | None:
    """The image of ``c_text`` compiled with ``flags`` (cached under cache_dir); None when
    it does not compile or its object cannot be read (then nothing is taken as the same)."""
    key = image_key(c_text, flags)
    final = Path(cache_dir) / f"_image_{key[:20]}.json"
    got = _load(final, key)
    if got is not None:
        return got
    final.parent.mkdir(parents=True, exist_ok=True)
    with open(final.parent / f".{final.name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        got = _load(final, key)
        if got is not None:
            return got
        compiled = _compile(c_text, flags, final.parent)
        if compiled is None:
            return None
        img = Image(key, *compiled)
        tmp = final.with_name(f".{final.name}.{os.getpid()}")
        tmp.write_text(json.dumps({"key": key, "sections": img.sections, "lines": img.lines}))
        os.replace(tmp, final)
    return img


def _load(final: Path, key: str) -> Image | None:
    try:
        d = json.loads(final.read_text())
        if d["key"] != key or not isinstance(d["sections"], dict):
            return None
        return Image(key, {str(k): str(v) for k, v in d["sections"].items()}, str(d["lines"]))
    except (OSError, ValueError, KeyError, TypeError):
        return None


def _compile(
    c_text: str, flags: tuple[str, ...], cache_dir: Path
) -> tuple[dict[str, str], str] | None:
    tmp = Path(tempfile.mkdtemp(prefix=".image-", dir=cache_dir))
    try:
        tmp.chmod(0o755)  # the jail's uid reads the C file
        c_path = tmp / "revision.c"
        c_path.write_text(c_text)
        c_path.chmod(0o644)
        obj = tmp / "revision.o"
        # __FILE__ outside the TU's #line directives names the file, not this temp dir
        where = f"-fmacro-prefix-map={tmp}/="
        argv = ["gcc", *flags, *IMAGE_FLAGS, where, "-w", "-c", f"-I{SHIM_DIR}", str(c_path)]
        try:
            jail.compile_c(argv, obj, ro=[tmp, SHIM_DIR], timeout=120)
        except CommandError:
            return None  # the build reports it; no image, so nothing is the same
        try:
            data = obj.read_bytes()
            return sections_of(data), site_lines(data)
        except BadObject:
            return None
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _cstr(table: bytes, at: int) -> str:
    if not 0 <= at < len(table):
        raise BadObject("a name outside its string table")
    end = table.find(b"\0", at)
    if end < 0:
        raise BadObject("an unterminated name")
    return table[at:end].decode("utf-8", "replace")


def _slice(data: bytes, off: int, size: int) -> bytes:
    if off < 0 or size < 0 or off + size > len(data):
        raise BadObject("a section outside the file")
    return data[off : off + size]


def site_lines(data: bytes) -> str:
    """The sha256 of the line of every site in the object, by section name."""
    h = hashlib.sha256()
    for name, body in sorted(_sites(data)):
        h.update(f"{name}\0".encode() + body[SITE_LINE[0] : SITE_LINE[1]])
    return h.hexdigest()


def _sites(data: bytes) -> list[tuple[str, bytes]]:
    out = []
    for name, kind, body in _loaded(data):
        if SITE_SECTION in name and kind != SHT_NOBITS and len(body) >= SITE_LINE[1]:
            out.append((name, body))
    return out


def _loaded(data: bytes) -> list[tuple[str, int, bytes]]:
    """(name, type, bytes) of each loaded section an image holds."""
    heads, names = _headers(data)
    out = []
    for h, name in zip(heads, names, strict=True):
        if h[2] & SHF_ALLOC and not name.startswith(_SKIP):
            out.append((name, h[1], b"" if h[1] == SHT_NOBITS else _slice(data, h[3], h[4])))
    return out


def _headers(data: bytes) -> tuple[list[tuple[int, int, int, int, int, int, int]], list[str]]:
    if len(data) < 64 or data[:4] != b"\x7fELF" or data[4] != 2 or data[5] != 1:
        raise BadObject("not an ELF64 little-endian object")
    shoff, = struct.unpack_from("<Q", data, 0x28)  # fmt: skip
    shentsize, shnum, shstrndx = struct.unpack_from("<HHH", data, 0x3A)
    if shentsize != 64 or not 0 < shnum <= 65535 or shstrndx >= shnum:
        raise BadObject("unexpected section headers")
    heads = []
    for i in range(shnum):
        at = shoff + 64 * i
        _slice(data, at, 64)
        name, kind, flags, _, off, size, link, info = struct.unpack_from("<IIQQQQII", data, at)
        heads.append((name, kind, flags, off, size, link, info))
    shstr = _slice(data, heads[shstrndx][3], heads[shstrndx][4])
    return heads, [_cstr(shstr, h[0]) for h in heads]


def sections_of(data: bytes) -> dict[str, str]:
    """Per loaded section of an ELF64 little-endian relocatable object: the sha256 of its
    bytes (a site's line masked) and of its relocations, each as (offset, type, target,
    addend) with the target by name (a symbol's, or the section's it points into)."""
    heads, names = _headers(data)
    shnum = len(heads)
    symtab = [i for i, h in enumerate(heads) if h[1] == SHT_SYMTAB]
    if len(symtab) != 1:
        raise BadObject("not one symbol table")
    st = heads[symtab[0]]
    if not 0 <= st[5] < shnum:
        raise BadObject("a symbol table without names")
    syms_raw, strtab = _slice(data, st[3], st[4]), _slice(data, heads[st[5]][3], heads[st[5]][4])
    symbols = []  # per symbol: the name a relocation against it stands for
    for k in range(len(syms_raw) // 24):
        sname, sinfo, _, shndx, value, _ = struct.unpack_from("<IBBHQQ", syms_raw, 24 * k)
        if sinfo & 0xF == STT_SECTION:
            symbols.append(f"[{names[shndx] if shndx < shnum else shndx}]")
        else:  # a local static's value is its place in its section: name it with the place
            symbols.append(f"{_cstr(strtab, sname)}@{names[shndx] if shndx < shnum else shndx}"
                           f"+{value}")  # fmt: skip
    relocs: dict[int, list[tuple[int, int, str, int]]] = {}
    for h in heads:
        if h[1] != SHT_RELA:
            continue
        raw = _slice(data, h[3], h[4])
        for k in range(len(raw) // 24):
            off, rinfo, addend = struct.unpack_from("<QQq", raw, 24 * k)
            sym = rinfo >> 32
            if sym >= len(symbols):
                raise BadObject("a relocation against no symbol")
            relocs.setdefault(h[6], []).append((off, rinfo & 0xFFFFFFFF, symbols[sym], addend))
    out = {}
    for i, (h, name) in enumerate(zip(heads, names, strict=True)):
        if not h[2] & SHF_ALLOC or name.startswith(_SKIP):
            continue
        body = b"" if h[1] == SHT_NOBITS else _slice(data, h[3], h[4])
        if SITE_SECTION in name and len(body) >= SITE_LINE[1]:
            body = body[: SITE_LINE[0]] + bytes(SITE_LINE[1] - SITE_LINE[0]) + body[SITE_LINE[1] :]
        d = hashlib.sha256(f"{h[1]}:{h[4]}\0".encode() + body)
        for r in sorted(relocs.get(i, [])):
            d.update(repr(r).encode())
        out[name] = d.hexdigest()
    return out

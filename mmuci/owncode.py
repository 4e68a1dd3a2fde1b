"""The hash over mmu-ci's own sources that versions a cache: a change to the code that made
an entry makes a new key, so nothing built or run under older rules is reused."""

from __future__ import annotations

import hashlib
from functools import cache
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
_SUFFIXES = (".py", ".h", ".c", ".toml", ".json")


@cache
def code_version(*parts: str) -> str:
    """A hash over the named parts of mmu-ci, each a package directory (every source file
    under it) or one file, given relative to the project root (``"mmucore"``,
    ``"mmucore/build.py"``)."""
    h = hashlib.sha256()
    for part in parts:
        top = ROOT / part
        if not top.exists():
            raise FileNotFoundError(f"{part}: no such part of mmu-ci under {ROOT}")
        files = [top] if top.is_file() else sorted(top.rglob("*"))
        for p in files:
            if p.suffix in _SUFFIXES and "__pycache__" not in p.parts:
                h.update(str(p.relative_to(ROOT)).encode())
                h.update(p.read_bytes())
    return h.hexdigest()[:20]

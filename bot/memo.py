"""On-disk memo of extractions and check results, keyed by content.

A commit never changes, and neither does what the same code makes of it: an extraction
is keyed by (commit sha, the extractor's own sources), a check result by (check name,
both extractions' keys, the sources of the checks and of the build). Editing mmu-ci's
code therefore invalidates every entry it could affect, never a stale hit.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import pickle
import tempfile
from collections.abc import Callable, Iterable
from functools import cache
from pathlib import Path
from typing import Any, TypeVar

T = TypeVar("T")
_ROOT = Path(__file__).resolve().parent.parent


@cache
def code_version(packages: tuple[str, ...]) -> str:
    """A hash over the sources of the given top-level packages of mmu-ci."""
    h = hashlib.sha256()
    for pkg in packages:
        for p in sorted((_ROOT / pkg).rglob("*")):
            if p.suffix in (".py", ".h", ".c", ".toml", ".json") and "__pycache__" not in p.parts:
                h.update(str(p.relative_to(_ROOT)).encode())
                h.update(p.read_bytes())
    return h.hexdigest()[:20]


class Memo:
    """A directory of pickled values by key; a corrupt or unreadable entry is a miss."""

    def __init__(self, directory: Path) -> None:
        self.dir = directory
        self.hits = 0
        self.misses = 0

    def _path(self, parts: Iterable[str]) -> Path:
        key = hashlib.sha256("\0".join(parts).encode()).hexdigest()
        return self.dir / key[:2] / key

    def get(self, parts: Iterable[str]) -> Any | None:
        """The stored value, or None."""
        with contextlib.suppress(OSError, pickle.UnpicklingError, EOFError, AttributeError):
            value = pickle.loads(self._path(parts).read_bytes())
            self.hits += 1
            return value
        self.misses += 1
        return None

    def put(self, parts: Iterable[str], value: Any) -> None:
        path = self._path(parts)
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-")
        with os.fdopen(fd, "wb") as f:
            pickle.dump(value, f)
        os.replace(tmp, path)  # atomic: concurrent bots never read half an entry

    def get_or_make(self, parts: Iterable[str], make: Callable[[], T]) -> T:
        parts = list(parts)
        value = self.get(parts)
        if value is None:
            value = make()
            self.put(parts, value)
        return value

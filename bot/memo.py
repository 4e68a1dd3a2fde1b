"""On-disk memo of extractions and check results, keyed by content.

A commit never changes, and neither does what the same code makes of it: an extraction
is keyed by (commit sha, the extractor's own sources), a check result by (check name,
both extractions' keys, the sources of the checks and of the build). Editing mmu-ci's
code therefore invalidates every entry it could affect, never a stale hit.

Entries are tagged JSON (bot/memo_codec.py: only our own dataclasses, NamedTuples and
Enums are rebuilt, field names checked, size-capped), never pickle. Each carries an
HMAC-SHA256 under a key only the bot's user can read (``<memo>/.key``, 0600, made on
first use), checked before anything is decoded; an entry that fails it, an old pickle
entry or one the codec refuses is a miss (and is rewritten). Built code never sees the
memo (the jail does not mount the data directory).
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import os
import secrets
import tempfile
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any, TypeVar

from bot import memo_codec

T = TypeVar("T")
_MAGIC = b"mmu-ci memo 3 json\n"
_KEY_FILE = ".key"


class Memo:
    """A directory of JSON values by key, each under an HMAC; a corrupt, unreadable or
    unauthenticated entry is a miss."""

    def __init__(self, directory: Path) -> None:
        self.dir = directory
        self.hits = 0
        self.misses = 0
        self._key: bytes | None = None

    def _secret(self) -> bytes:
        if self._key is None:
            self.dir.mkdir(parents=True, exist_ok=True)
            path = self.dir / _KEY_FILE
            with contextlib.suppress(FileExistsError):
                fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
                with os.fdopen(fd, "wb") as f:
                    f.write(secrets.token_bytes(32))
            key = path.read_bytes()
            if len(key) != 32:  # a half-written key from a killed run: start afresh
                path.unlink(missing_ok=True)
                return self._secret()
            self._key = key
        return self._key

    def _path(self, parts: Iterable[str]) -> Path:
        key = hashlib.sha256("\0".join(parts).encode()).hexdigest()
        return self.dir / key[:2] / key

    def _mac(self, name: str, data: bytes) -> bytes:
        return hmac.new(self._secret(), name.encode() + b"\0" + data, hashlib.sha256).digest()

    def get(self, parts: Iterable[str]) -> Any | None:
        """The stored value, or None (also when the entry is not authentic)."""
        path = self._path(parts)
        with contextlib.suppress(OSError, memo_codec.CodecError, ImportError, AttributeError):
            with path.open("rb") as f:
                blob = f.read(len(_MAGIC) + 32 + memo_codec.MAX_BYTES + 1)
            n = len(_MAGIC)
            head, mac, data = blob[:n], blob[n : n + 32], blob[n + 32 :]
            if head == _MAGIC and hmac.compare_digest(mac, self._mac(path.name, data)):
                value = memo_codec.loads(data)
                self.hits += 1
                return value
        self.misses += 1
        return None

    def put(self, parts: Iterable[str], value: Any) -> None:
        path = self._path(parts)
        path.parent.mkdir(parents=True, exist_ok=True)
        data = memo_codec.dumps(value)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-")
        with os.fdopen(fd, "wb") as f:
            f.write(_MAGIC + self._mac(path.name, data) + data)
        os.replace(tmp, path)  # atomic: concurrent bots never read half an entry

    def get_or_make(self, parts: Iterable[str], make: Callable[[], T]) -> T:
        parts = list(parts)
        value = self.get(parts)
        if value is None:
            value = make()
            self.put(parts, value)
        return value

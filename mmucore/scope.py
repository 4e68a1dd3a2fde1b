"""Scope: does a patch reach the modelled code, and which functions does it change?

Two answers, cheap first:

* ``files_touched`` vs the files the extraction reads (its pieces' files): a patch that
  touches none of them cannot change the model; decided from the diff alone.
* ``changed_pieces``: the exact criterion. Extract (no build) the revision before and
  after and compare the pieces' texts, ignoring line numbers: if none changed, the patch
  is `out-of-scope` whatever it touched.

``hunk_definitions`` names the functions, types and macros the hunks fall in (modelled
or not), for the report.
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from mmuci import proc
from mmucore.validate_lex import LexError, tokenize

if TYPE_CHECKING:
    from mmucore.extract import Extraction


@dataclass(frozen=True)
class Scope:
    """What one patch (or a whole series) changes of the modelled code."""

    in_scope: bool
    files: tuple[str, ...]  # files the diff touches
    functions: tuple[str, ...]  # "kind name" of every definition the hunks fall in
    pieces: tuple[str, ...]  # changed extraction pieces, "kind name" (the exact criterion)
    reason: str

    def to_json(self) -> dict[str, object]:
        return {
            "in_scope": self.in_scope,
            "files": list(self.files),
            "functions": list(self.functions),
            "pieces": list(self.pieces),
            "reason": self.reason,
        }


def files_touched(diff: str) -> tuple[str, ...]:
    """Tree-relative paths a unified git diff changes (old and new names)."""
    out: list[str] = []
    for m in re.finditer(r"^diff --git a/(\S+) b/(\S+)$", diff, re.M):
        for p in m.groups():
            if p not in out:
                out.append(p)
    return tuple(out)


def _hunks(diff: str) -> Iterable[tuple[str, int, int, int, int]]:
    """(file, old_start, old_len, new_start, new_len) for every hunk."""
    file = None
    for line in diff.splitlines():
        if line.startswith("+++ "):
            file = line[4:].removeprefix("b/") if line[4:] != "/dev/null" else None
        elif line.startswith("@@ ") and file:
            m = re.match(r"@@ -(\d+)(?:,(\d+))? \+(\d+)(?:,(\d+))? @@", line)
            if m:
                a, b, c, d = m.groups()
                yield file, int(a), int(b or 1), int(c), int(d or 1)


def _changed_new_lines(diff: str) -> dict[str, set[int]]:
    """New-side line numbers of added lines, plus the line after each pure deletion."""
    out: dict[str, set[int]] = {}
    file = None
    new = 0
    for line in diff.splitlines():
        if line.startswith("+++ "):
            file = line[4:].removeprefix("b/")
        elif line.startswith("@@ "):
            m = re.match(r"@@ -\d+(?:,\d+)? \+(\d+)", line)
            new = int(m.group(1)) if m else 0
        elif file and line.startswith("+"):
            out.setdefault(file, set()).add(new)
            new += 1
        elif file and line.startswith("-"):
            out.setdefault(file, set()).add(new)
        elif file and line.startswith(" "):
            new += 1
    return out


def definition_extents(path: str, text: str) -> list[tuple[str, str, int, int]]:
    """(kind, name, first line, last line), 1-based, of the top-level definitions in C text:
    functions, types and macros (tree-sitter, through `mmucore.cparse`)."""
    from mmucore import cparse

    out = []
    for d in cparse.parse(path, text).defs:
        out.append((d.kind, d.name, d.line, d.line + d.text.rstrip("\n").count("\n")))
    return out


def hunk_definitions(
    diff: str, new_texts: Mapping[str, str], cache: ModelFilesCache | None = None
) -> tuple[str, ...]:
    """ "kind name" of each definition the diff's changed lines fall in (file -> new text);
    with ``cache`` a file's extents are parsed once per text."""
    names: list[str] = []
    extents = cache.extents if cache is not None else definition_extents
    for file, lines in _changed_new_lines(diff).items():
        text = new_texts.get(file)
        if text is None or not file.endswith((".c", ".h")):
            continue
        for kind, name, a, b in extents(file, text):
            tag = f"{kind} {name}"
            if any(a <= n <= b for n in lines) and tag not in names:
                names.append(tag)
    return tuple(names)


def file_texts(repo: Path, rev: str, files: Iterable[str]) -> dict[str, str]:
    """The text of each C file at ``rev`` (absent files are left out)."""
    out = {}
    for f in files:
        if f.endswith((".c", ".h")):
            r = proc.run(["git", "-C", str(repo), "show", f"{rev}:{f}"], check=False)
            if r.returncode == 0:
                out[f] = r.stdout
    return out


@functools.lru_cache(maxsize=1 << 14)
def code_text(text: str) -> str:
    """C text as the compiler's tokens (the project's lexer), comments and layout gone;
    text the lexer refuses is kept as it is (so any change to it counts)."""
    try:
        return " ".join(t.text for t in tokenize(text))
    except LexError:
        return text


def _texts(extraction: Extraction, code_only: bool) -> dict[tuple[str, str], list[str]]:
    out: dict[tuple[str, str], list[str]] = {}
    for p in extraction.pieces:
        text = code_text(p.text) if code_only else p.text
        out.setdefault((p.kind, p.name), []).append(text)  # a struct may come in parts
    return out


def changed_pieces(
    before: Extraction, after: Extraction, code_only: bool = False
) -> tuple[str, ...]:
    """Pieces whose text differs between two extractions (line numbers ignored); with
    ``code_only`` comments and layout are ignored too (a comment fix changes no code)."""
    a, b = _texts(before, code_only), _texts(after, code_only)
    keys = sorted(set(a) | set(b))
    out = [f"{k} {n}" for k, n in keys if a.get((k, n)) != b.get((k, n))]
    if before.entry_points != after.entry_points:
        out.append("entry-points")
    if before.features != after.features:
        out.append("features")
    return tuple(out)


def model_files(extraction: Extraction) -> frozenset[str]:
    """The tree files the extraction read pieces from."""
    return frozenset(p.file for p in extraction.pieces)


def quick(diff: str, modelled_files: Iterable[str]) -> Scope | None:
    """`out-of-scope` from the diff alone when it touches no file the model reads, else None."""
    files = files_touched(diff)
    if set(files) & set(modelled_files):
        return None
    return Scope(False, files, (), (), "touches no file the modelled code is extracted from")


def decide(
    diff: str,
    before: Extraction,
    after: Extraction,
    new_texts: Mapping[str, str],
    cache: ModelFilesCache | None = None,
) -> Scope:
    """The exact scope of one change from the extractions before and after it."""
    files = files_touched(diff)
    funcs = hunk_definitions(diff, new_texts, cache)
    pieces = changed_pieces(before, after)
    if pieces:
        shown = ", ".join(p.split(" ", 1)[-1] for p in pieces[:6])
        more = f" and {len(pieces) - 6} more" if len(pieces) > 6 else ""
        return Scope(True, files, funcs, pieces, f"changes modelled code: {shown}{more}")
    why = "no extracted function, type or macro changes"
    if funcs:
        shown = ", ".join(f.split(" ", 1)[-1] for f in funcs[:4])
        why += f" (changes {shown}, which the model does not use)"
    return Scope(False, files, funcs, (), why)


class ModelFilesCache:
    """Per base commit, the files the model reads: a small JSON cache so the quick test
    needs no extraction on the next series against the same base; and per file text its
    definition extents (`extents`)."""

    def __init__(self, cache_dir: Path) -> None:
        self.dir = cache_dir / "scope"

    def get(self, commit: str) -> frozenset[str] | None:
        p = self.dir / f"{commit}.json"
        try:
            return frozenset(json.loads(p.read_text()))
        except (OSError, ValueError):
            return None

    def extents(self, path: str, text: str) -> list[tuple[str, str, int, int]]:
        """definition_extents(path, text), kept in ``scope/extents/`` by the text and the
        parser's code: a file seen before (the same blob) is not parsed again."""
        from mmucore import cparse

        h = hashlib.sha256()
        for part in (path, text, Path(cparse.__file__).read_text(), Path(__file__).read_text()):
            h.update(part.encode(errors="replace") + b"\0")
        p = self.dir / "extents" / f"{h.hexdigest()}.json"
        try:
            return [(str(k), str(n), int(a), int(b)) for k, n, a, b in json.loads(p.read_text())]
        except (OSError, ValueError, TypeError):
            pass
        out = definition_extents(path, text)
        p.parent.mkdir(parents=True, exist_ok=True)
        tmp = p.with_suffix(f".{os.getpid()}.tmp")
        tmp.write_text(json.dumps(out))
        tmp.replace(p)
        return out

    def put(self, commit: str, files: Iterable[str]) -> None:
        self.dir.mkdir(parents=True, exist_ok=True)
        tmp = self.dir / f"{commit}.json.tmp"
        tmp.write_text(json.dumps(sorted(files)))
        tmp.replace(self.dir / f"{commit}.json")

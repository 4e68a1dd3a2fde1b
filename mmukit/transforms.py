"""Named code transformations: how test series are made without storing kernel text.

A transformation is a short Python edit of one (or a few) files of a kernel tree,
with the commit subject and body it goes in with. The edits find a *short* anchor in
the tree's own text and change it; they fail loudly when the anchor is missing or
ambiguous, so a test never silently posts an empty or wrong patch.

    Transformation(
        name="free-roots-early-return",
        file="arch/x86/kvm/mmu/mmu.c",
        edit=within_function("kvm_mmu_free_roots", replace_once("free_active_root &&", "(")),
        subject="KVM: x86/mmu: ...",
        body="...",
    )
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import tree_sitter_c
from tree_sitter import Language, Node, Parser

from mmuci.errors import MmuCiError
from mmucore import cparse

Edit = Callable[[str], str]


class TransformError(MmuCiError):
    """A transformation does not fit the tree (anchor missing or not unique, no change)."""


@dataclass(frozen=True)
class Transformation:
    """One commit of a generated series: edits of tree files plus the commit message."""

    name: str
    file: str  # tree-relative path of the main file edited
    edit: Edit  # pure: the file's text -> the new text
    subject: str
    body: str = ""
    also: tuple[tuple[str, Edit], ...] = ()  # further (file, edit) pairs in the same commit

    @property
    def edits(self) -> tuple[tuple[str, Edit], ...]:
        return ((self.file, self.edit), *self.also)

    def apply(self, tree: Path) -> list[str]:
        """Edit the files in a checked-out tree; returns the files changed."""
        changed = []
        for rel, edit in self.edits:
            path = Path(tree) / rel
            if not path.is_file():
                raise TransformError(f"transformation {self.name!r}: {rel} is not in the tree")
            old = path.read_text(errors="surrogateescape")
            try:
                new = edit(old)
            except TransformError as e:
                raise TransformError(f"transformation {self.name!r} on {rel}: {e}") from e
            if new != old:
                path.write_text(new, errors="surrogateescape")
                changed.append(rel)
        if not changed:
            raise TransformError(
                f"transformation {self.name!r} changes nothing: fix its anchors or drop it"
            )
        return changed


def _short(s: str) -> str:
    return repr(s if len(s) <= 60 else s[:57] + "...")


def _find_once(text: str, anchor: str) -> int:
    n = text.count(anchor)
    if n != 1:
        what = "not found" if n == 0 else f"found {n} times; make it longer or use within_function"
        raise TransformError(f"anchor {_short(anchor)} {what}")
    return text.index(anchor)


def replace_once(anchor: str, new: str) -> Edit:
    """Replace the one occurrence of ``anchor``; an error if it is absent or repeated."""

    def edit(text: str) -> str:
        i = _find_once(text, anchor)
        return text[:i] + new + text[i + len(anchor) :]

    return edit


def insert_after(anchor: str, addition: str) -> Edit:
    """Insert ``addition`` right after the one occurrence of ``anchor``."""
    return replace_once(anchor, anchor + addition)


def insert_before(anchor: str, addition: str) -> Edit:
    """Insert ``addition`` right before the one occurrence of ``anchor``."""
    return replace_once(anchor, addition + anchor)


def delete_once(anchor: str) -> Edit:
    """Delete the one occurrence of ``anchor``."""
    return replace_once(anchor, "")


def regex_once(pattern: str, repl: str, flags: int = re.M) -> Edit:
    """``re.sub`` that must match exactly once (``repl`` may use group references)."""

    def edit(text: str) -> str:
        found = list(re.finditer(pattern, text, flags))
        if len(found) != 1:
            what = "no match" if not found else f"{len(found)} matches"
            raise TransformError(f"pattern {_short(pattern)}: {what}, expected exactly one")
        return re.sub(pattern, repl, text, count=1, flags=flags)

    return edit


def rename(old: str, new: str) -> Edit:
    """Rename an identifier everywhere in a file (whole words); an error if absent."""
    word = re.compile(rf"\b{re.escape(old)}\b")

    def edit(text: str) -> str:
        out, n = word.subn(new, text)
        if n == 0:
            raise TransformError(f"identifier {old!r} not found")
        return out

    return edit


def chain(*edits: Edit) -> Edit:
    """Apply several edits to one file, in order."""

    def edit(text: str) -> str:
        for e in edits:
            text = e(text)
        return text

    return edit


_PARSER = Parser(Language(tree_sitter_c.language()))


@dataclass(frozen=True)
class FunctionSpan:
    """Offsets in a file's text of one C function definition."""

    start: int  # first character of the definition (its return type or storage class)
    body: int  # the opening brace of its body
    end: int  # just after the closing brace


def function_span(text: str, name: str) -> tuple[int, int]:
    """Start and end offsets of the definition of C function ``name`` (with its braces).

    Read with tree-sitter-c (as `mmucore.cparse` reads the model files), so prototypes,
    calls, comments and strings never match; the first definition in the file wins, in
    any branch of an ``#if``.
    """
    span = find_function(text, name)
    return span.start, span.end


def find_function(text: str, name: str) -> FunctionSpan:
    """The definition of C function ``name`` in ``text``; TransformError if there is none."""
    # Same length, one byte a character: tree-sitter's byte offsets are the text's offsets.
    src = cparse.blank_attributes(_NON_ASCII.sub("?", text)).encode()
    for node in _function_definitions(_PARSER.parse(src).root_node):
        fd = cparse.function_declarator(node)
        ident = cparse.declarator_name(fd.child_by_field_name("declarator")) if fd else None
        body = node.child_by_field_name("body")
        if ident is not None and body is not None and cparse.node_text(ident) == name:
            return FunctionSpan(node.start_byte, body.start_byte, node.end_byte)
    raise TransformError(f"function {name!r} not defined here")


_NON_ASCII = re.compile(r"[^\x00-\x7f]")


def _function_definitions(node: Node) -> Iterator[Node]:
    """Every function definition below ``node``, in the order of the text."""
    for child in node.children:
        if child.type == "function_definition":
            yield child
        else:
            yield from _function_definitions(child)


def within_function(name: str, edit: Edit) -> Edit:
    """Apply ``edit`` to the definition of C function ``name`` only."""

    def scoped(text: str) -> str:
        start, end = function_span(text, name)
        try:
            body = edit(text[start:end])
        except TransformError as e:
            raise TransformError(f"in {name}(): {e}") from e
        return text[:start] + body + text[end:]

    return scoped


def at_body_start(name: str, addition: str) -> Edit:
    """Insert ``addition`` (whole lines) right after the opening brace of ``name``."""

    def edit(text: str) -> str:
        brace = find_function(text, name).body
        eol = text.index("\n", brace) + 1
        return text[:eol] + addition + text[eol:]

    return edit


def rename_identifier(
    old: str,
    new: str,
    files: Sequence[str],
    *,
    name: str | None = None,
    subject: str | None = None,
    body: str = "",
) -> Transformation:
    """A commit renaming an identifier in several files (each must contain it)."""
    if not files:
        raise TransformError("rename_identifier needs at least one file")
    edit = rename(old, new)
    return Transformation(
        name=name or f"rename-{old}",
        file=files[0],
        edit=edit,
        subject=subject or f"KVM: x86/mmu: Rename {old} to {new}",
        body=body or f"Rename {old} to {new}. No functional change intended.",
        also=tuple((f, edit) for f in files[1:]),
    )

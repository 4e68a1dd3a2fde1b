"""Where one function's earlier text needs probes for its later text: the two bodies
compared as token sequences (tree-sitter, as mmucore/cparse.py), each change mapped to
the statements it touches (`function_marks`).

The earlier revision gets a probe before every statement owning a changed token, at every
insertion point between statements, after every label and case label inside a touched
statement (a jump into it passes no probe before it), and a statement in body position
(an if/else/loop body without braces, a label's statement) is wrapped in braces with its
probe. A function-entry probe stands for a whole function when its body does not parse
cleanly, or a touched statement declares a static or a type. mmucore/probes.py inserts
the probes these marks say and decides which pairs of revisions can have them at all.
"""

from __future__ import annotations

import difflib
import functools
from collections.abc import Iterator
from dataclasses import dataclass, field

import tree_sitter_c
from tree_sitter import Language, Node, Parser

from mmucore import scope

_PARSER = Parser(Language(tree_sitter_c.language()))
code_text = functools.lru_cache(maxsize=1 << 14)(scope.code_text)  # pieces recur in revisions
_LISTS = ("compound_statement", "case_statement")
_BODY_FIELDS = {
    "if_statement": ("consequence",),
    "for_statement": ("body",),
    "while_statement": ("body",),
    "do_statement": ("body",),
}
_WRAPPERS = ("else_clause", "labeled_statement")  # their statement child is a body
_TYPES = ("struct_specifier", "union_specifier", "enum_specifier")
_ENDS = frozenset(b"; { } else case default :".split())
_STRUCTURAL = frozenset(
    b"; { } ( ) : , ? else case default if for while do switch goto return break continue".split()
)


@dataclass(frozen=True)
class Refusal:
    """Why a pair of revisions cannot be pruned: the later one runs every state."""

    why: str


@dataclass
class Marks:
    """Probe places in one function's text (byte offsets of its UTF-8 encoding)."""

    entry: bool = False
    points: set[int] = field(default_factory=set)  # a probe statement inserted here
    wraps: set[tuple[int, int]] = field(default_factory=set)  # "{ probe; " .. " }"

    def __bool__(self) -> bool:
        return self.entry or bool(self.points) or bool(self.wraps)


def _same(a: Node, b: Node | None) -> bool:
    return b is not None and (a.start_byte, a.end_byte, a.type) == (
        b.start_byte,
        b.end_byte,
        b.type,
    )


def _leaves(node: Node) -> Iterator[Node]:
    if node.type == "comment":
        return
    if node.child_count == 0:
        yield node
        return
    for c in node.children:
        yield from _leaves(c)


def _function(text: bytes) -> Node | None:
    root = _PARSER.parse(text).root_node
    fns = [c for c in root.named_children if c.type == "function_definition"]
    return fns[0] if len(fns) == 1 else None


def function_body(text: bytes) -> Node | None:
    """The body of the one function definition ``text`` holds (None: not one function)."""
    fn = _function(text)
    return fn.child_by_field_name("body") if fn is not None else None


def _clean(fn: Node, body: Node, text: bytes, leaves: list[Node]) -> bool:
    """No ERROR or MISSING node, and every byte of the body in a token or a comment."""
    stack = [fn]
    while stack:
        n = stack.pop()
        if n.type == "ERROR" or n.is_missing or n.has_error:
            return False
        stack.extend(n.children)
    covered = bytearray(len(text))
    for n in (*leaves, *(c for c in _walk(fn) if c.type == "comment")):
        covered[n.start_byte : n.end_byte] = b"\1" * (n.end_byte - n.start_byte)
    return all(covered[i] or chr(text[i]).isspace() for i in range(body.start_byte, body.end_byte))


def _walk(node: Node) -> Iterator[Node]:
    stack = [node]
    while stack:
        n = stack.pop()
        yield n
        stack.extend(n.children)


def _in_body(n: Node) -> bool:
    p = n.parent
    if p is None:
        return False
    if p.type in _WRAPPERS:
        return n.is_named and n.type.endswith(("statement", "declaration"))
    return any(_same(n, p.child_by_field_name(f)) for f in _BODY_FIELDS.get(p.type, ()))


def _item(n: Node) -> bool:
    """A statement in a statement list (a block's or after a case label's)."""
    p = n.parent
    if p is None or p.type not in _LISTS or not n.is_named or n.type == "comment":
        return False
    return not (p.type == "case_statement" and _same(n, p.child_by_field_name("value")))


def _owner(leaf: Node, body: Node) -> Node | None:
    """The innermost statement holding ``leaf`` that a probe can precede; None: the body."""
    n: Node | None = leaf
    while n is not None and not _same(n, body):
        if _item(n) or _in_body(n):
            return n
        n = n.parent
    return None


def _container(leaf: Node) -> Node | None:
    """The statement list that ``leaf`` opens or closes ({, }, a case's ':'), else None."""
    p = leaf.parent
    if p is not None and p.type in _LISTS and leaf.type in ("{", "}", ":"):
        return p
    return None


def _stmt_expr(block: Node) -> bool:
    return block.parent is not None and block.parent.type == "parenthesized_expression"


def _touch(s: Node, m: Marks) -> None:
    """Probes for a touched statement, and after every label inside it."""
    if s.type in ("declaration", "type_definition") and (
        s.type == "type_definition"
        or any(c.type == "storage_class_specifier" and c.text == b"static" for c in s.children)
        or any(c.type in _TYPES and c.child_by_field_name("body") for c in _walk(s))
    ):
        m.entry = True
        return
    _before(s, m)
    for n in _walk(s):
        if n.type in ("case_statement", "labeled_statement") and not _same(n, s):
            _before(n, m)


def _before(s: Node, m: Marks) -> None:
    if s.type == "case_statement":
        colon = next((c for c in s.children if c.type == ":"), None)
        if colon is None:
            m.entry = True
        else:
            m.points.add(colon.end_byte)
    elif s.type == "labeled_statement":
        inner = [c for c in s.named_children if _in_body(c)]
        if inner:
            m.wraps.add((inner[-1].start_byte, inner[-1].end_byte))
        else:
            m.entry = True
    elif _in_body(s):
        m.wraps.add((s.start_byte, s.end_byte))
    else:
        m.points.add(s.start_byte)


def function_marks(old: str, new: str) -> Marks | Refusal:
    """Where the earlier text ``old`` of a function needs probes for its later text ``new``.

    A function of the series usually has a few texts only, while a revision is probed for
    every later one (quadratic in the revisions): the marks of a pair of texts are made
    once per process (a copy each time, Marks being mutable)."""
    got = _function_marks(old, new)
    if isinstance(got, Refusal):
        return got
    return Marks(got.entry, set(got.points), set(got.wraps))


@functools.lru_cache(maxsize=1 << 12)
def _function_marks(old: str, new: str) -> Marks | Refusal:
    a, b = old.encode(), new.encode()
    fa, fb = _function(a), _function(b)
    if fa is None or fb is None:
        return Refusal("a changed function that does not parse as one function definition")
    ba, bb = fa.child_by_field_name("body"), fb.child_by_field_name("body")
    if ba is None or bb is None:
        return Refusal("a changed function without a body")
    name = fa.child_by_field_name("declarator")
    head_a = a[fa.start_byte : ba.start_byte].decode(errors="replace")
    head_b = b[fb.start_byte : bb.start_byte].decode(errors="replace")
    if code_text(head_a) != code_text(head_b):
        what = name.text.decode(errors="replace").split("(")[0] if name and name.text else "?"
        return Refusal(f"the head of {what.strip()} changes (its type or parameters)")
    la, lb = list(_leaves(ba)), list(_leaves(bb))
    m = Marks()
    ta = [n.text or b"" for n in la]
    tb = [n.text or b"" for n in lb]
    ops = difflib.SequenceMatcher(None, ta, tb, autojunk=False).get_opcodes()
    if not any(op != "equal" for op, *_ in ops):
        return m
    if not (_clean(fa, ba, a, la) and _clean(fb, bb, b, lb)):
        m.entry = True
        return m
    for op, i1, i2, j1, j2 in ops:
        if op == "equal":
            continue
        # tokens that can end, open or join statements: the statement list item around
        # them is touched, not only the innermost statement (an inserted "; else y = 5"
        # inside "y = 1;" changes the if around it)
        wide = bool(_STRUCTURAL.intersection([*ta[i1:i2], *tb[j1:j2]]))
        if wide and op == "replace" and _whole(la[i1:i2], tb[j1:j2], ba):
            wide = False  # one whole statement for another: the same place in the code
        if op in ("replace", "delete"):
            for leaf in la[i1:i2]:
                _touch_leaf(leaf, ba, m, wide)
        elif 0 < i1 < len(la):
            _gap(la, i1, ba, m, wide)
        else:
            m.entry = True
        near = la[i1:i2] or la[max(i1 - 1, 0) : i1 + 1]
        labels = {b"case", b"default"}.intersection([*ta[i1:i2], *tb[j1:j2]])
        if labels or any(_in_case_value(n) for n in near):
            _touch_switch(near, ba, m)
    return m


def _whole(old: list[Node], new: list[bytes], body: Node) -> bool:
    """``old`` is the start of one statement (or all of it) and ``new`` balanced tokens
    that, with the rest of it, are one statement in its place."""
    s = _owner(old[0], body)
    if s is None or s.type in _LISTS or s.start_byte != old[0].start_byte:
        return False
    if old[-1].end_byte > s.end_byte or not new or new[0] in (b"else", b"case", b"default"):
        return False
    depth, top = 0, 0  # top: tokens that end or join statements outside any bracket
    for t in new[:-1]:
        depth += (t in (b"(", b"{", b"[")) - (t in (b")", b"}", b"]"))
        top += depth == 0 and t in _ENDS
        if depth < 0:
            return False
    last = new[-1]
    depth -= last in (b")", b"}", b"]")
    if depth or top:
        return False
    if old[-1].end_byte == s.end_byte:
        return last in (b";", b"}")
    return last not in _ENDS


def _in_case_value(leaf: Node) -> bool:
    n: Node | None = leaf
    while n is not None and n.type != "case_statement":
        p = n.parent
        if (
            p is not None
            and p.type == "case_statement"
            and _same(n, p.child_by_field_name("value"))
        ):
            return True
        n = p
    return False


def _touch_switch(near: list[Node], body: Node, m: Marks) -> None:
    """A case label changed, came or went: the switch dispatches differently, so the
    switch around it is touched (its probe is before the dispatch)."""
    for leaf in near:
        n: Node | None = leaf
        while n is not None and n.type != "switch_statement" and not _same(n, body):
            n = n.parent
        if n is None or n.type != "switch_statement":
            m.entry = True  # not inside a switch: the text is not what it seems
        else:
            _touch(n, m)


def _touch_leaf(leaf: Node, body: Node, m: Marks, wide: bool = False) -> None:
    s = _owner(leaf, body)
    while wide and s is not None and not _item(s):
        s = _owner(s.parent, body) if s.parent is not None else None
    if s is None:
        m.entry = True
    else:
        _touch(s, m)


def _gap(leaves: list[Node], i: int, body: Node, m: Marks, wide: bool) -> None:
    """An insertion before old token ``i``: a probe in the gap when it lies between the
    statements of one list, else the statements on both sides count as touched."""
    prev, nxt = leaves[i - 1], leaves[i]  # the body's braces: i is never 0 or len
    sa, sb = _owner(prev, body), _owner(nxt, body)
    left = _container(prev) or (sa.parent if sa is not None and _item(sa) else None)
    right = _container(nxt) or (sb.parent if sb is not None and _item(sb) else None)
    ends_item = _container(prev) is not None or (sa is not None and sa.end_byte == prev.end_byte)
    starts_item = _container(nxt) is not None or (
        sb is not None and sb.start_byte == nxt.start_byte
    )
    if (
        left is not None
        and right is not None
        and _same(left, right)
        and ends_item
        and starts_item
        and not (_stmt_expr(left) and nxt.type == "}")
    ):
        m.points.add(prev.end_byte)
        return
    for leaf in (prev, nxt):
        _touch_leaf(leaf, body, m, wide)

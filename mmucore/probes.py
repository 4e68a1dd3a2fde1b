"""Probes for sound pruning (checks/prune.py): where an earlier revision's code must record
that a state reached what a later revision changes.

A state whose run of the earlier revision reaches no changed statement runs the same code
in the later one up to its end (both are deterministic functions of the state), so the
later revision need not run it. That holds when the change is confined to function
bodies: a changed macro, type, global, feature, entry point or function head makes the
pair refused (``Refusal``), and the later revision runs every state.

In a changed function (tree-sitter, as mmucore/cparse.py), the bodies are compared as
token sequences; the earlier revision gets a probe before every statement owning a
changed token, at every insertion point between statements, after every label and case
label inside a touched statement (a jump into it passes no probe before it), and a
statement in body position (an if/else/loop body without braces, a label's statement)
is wrapped in braces with its probe. A function-entry probe stands for a whole function
when its body does not parse cleanly, or a touched statement declares a static or a
type. A probe is ``mmu_shim_probe(bits)``: it sets the bits of the later revisions in the
recorder's ledger (mmucore/shim/mmu_shim.c), a name the validator refuses in patch code.
Probes are inserted within lines, so every ``#line`` and ``__LINE__`` stays as it was.
"""

from __future__ import annotations

import difflib
import functools
import hashlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING

import tree_sitter_c
from tree_sitter import Language, Node, Parser

from mmucore import scope

if TYPE_CHECKING:
    from mmucore.extract import Extraction

FALLBACKS = ("tdp_mmu_enabled",)  # mmucore/extract.py FALLBACKS: a global when shimmed

PROBE = "mmu_shim_probe"
MAX_REVISIONS = 64  # one bit of the probe word per revision
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
    """Where the earlier text ``old`` of a function needs probes for its later text ``new``."""
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


def _call(bits: int) -> str:
    return f"{PROBE}({bits:#x}ULL);"


def instrument(text: str, marks: dict[int, Marks]) -> str:
    """``text`` (one function) with the probes of every bit's marks inserted, within lines."""
    data = text.encode()
    fn = _function(data)
    body = fn.child_by_field_name("body") if fn is not None else None
    points: dict[int, int] = {}
    wraps: dict[tuple[int, int], int] = {}
    for bit, m in marks.items():
        if m.entry and body is not None:
            points[body.start_byte + 1] = points.get(body.start_byte + 1, 0) | bit
        for p in m.points:
            points[p] = points.get(p, 0) | bit
        for w in m.wraps:
            wraps[w] = wraps.get(w, 0) | bit
    ins: list[tuple[int, int, int, str]] = []  # (offset, order, tie, text)
    for (a, z), bits in wraps.items():
        ins.append((a, 2, -z, "{ " + _call(bits) + " "))
        ins.append((z, 0, -a, " }"))
    for p, bits in points.items():
        ins.append((p, 1, 0, " " + _call(bits) + " "))
    out, at = [], 0
    for off, _, _, s in sorted(ins):
        out += [data[at:off], s.encode()]
        at = off
    out.append(data[at:])
    return b"".join(out).decode(errors="replace")


def _by_kind(ex: Extraction) -> dict[tuple[str, str], list[str]]:
    out: dict[tuple[str, str], list[str]] = {}
    for p in ex.pieces:
        out.setdefault((p.kind, p.name), []).append(p.text)
    return out


def pair_marks(old: Extraction, new: Extraction) -> dict[str, Marks] | Refusal:
    """Probe marks per function of ``old`` for the later revision ``new``, or why none can
    be placed (a change outside function bodies)."""
    if old.features != new.features:
        return Refusal("the tree's features differ")
    if old.entry_points != new.entry_points:
        return Refusal("the entry points differ")
    for name in sorted(set(old.structs) | set(new.structs)):
        if old.structs.get(name) != new.structs.get(name):
            return Refusal(f"a type changes: {name}")
    fallbacks = set(FALLBACKS)
    if fallbacks.intersection(old.shimmed) != fallbacks.intersection(new.shimmed):
        return Refusal("a declaration the shim stands in for differs")
    a, b = _by_kind(old), _by_kind(new)
    for key in sorted(set(a) | set(b)):
        kind, name = key
        if kind == "function":
            continue
        if [code_text(t) for t in a.get(key, [])] != [code_text(t) for t in b.get(key, [])]:
            return Refusal(f"a {kind} changes: {name}")
    out: dict[str, Marks] = {}
    for (kind, name), texts in a.items():
        if kind != "function" or (kind, name) not in b or b[(kind, name)] == texts:
            continue
        got = function_marks(texts[0], b[(kind, name)][0])
        if isinstance(got, Refusal):
            return got
        if got:
            out[name] = got
    return out


@dataclass(frozen=True)
class Probed:
    """An earlier revision with the probes for its later revisions (by bit)."""

    extraction: Extraction  # the TU with probes (the pieces are the tree's, as validated)
    refused: dict[int, str]  # bit -> why that later revision cannot be pruned
    probes: int  # how many probe places


def probe(old: Extraction, later: Sequence[tuple[int, Extraction]]) -> Probed:
    """``old`` with a probe bit for each ``(bit, later revision)``."""
    refused: dict[int, str] = {}
    per_fn: dict[str, dict[int, Marks]] = {}
    for bit, new in later:
        got = pair_marks(old, new)
        if isinstance(got, Refusal):
            refused[bit] = got.why
            continue
        for name, m in got.items():
            per_fn.setdefault(name, {})[bit] = m
    tu, count = old.tu, 0
    for p in old.pieces:
        if p.kind != "function" or p.name not in per_fn:
            continue
        marks = per_fn[p.name]
        count += sum(len(m.points) + len(m.wraps) + m.entry for m in marks.values())
        placed = f'#line {p.line} "{p.file}"\n{p.text}'
        at = tu.rfind(placed)
        if at < 0:
            raise RuntimeError(f"internal error of mmu-ci: {p.name} is not in its TU as placed")
        done = f'#line {p.line} "{p.file}"\n{instrument(p.text, marks)}'
        tu = tu[:at] + done + tu[at + len(placed) :]
    if tu == old.tu:
        return Probed(old, refused, 0)
    key = hashlib.sha256(f"probed\0{old.key}\0{tu}".encode()).hexdigest()
    return Probed(replace(old, tu=tu, key=key), refused, count)

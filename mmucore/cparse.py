"""C parsing with tree-sitter-c: the definitions a file holds and what each one uses.

A file is first resolved by `mmucore.cpp` (conditional compilation for the extractor's
config), then kernel attribute words that confuse a C grammar are blanked (same
length, so offsets and lines stay the file's own), then parsed. The result is an
index of definitions: functions, macros, struct/union/enum types, typedefs,
enumerators and global variables, each with its text, line and the names it uses.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, field

import tree_sitter_c
from tree_sitter import Language, Node, Parser

_PARSER = Parser(Language(tree_sitter_c.language()))

# Attribute words (no arguments) that tree-sitter-c would read as declarators.
_ATTR_WORDS = (
    "__read_mostly", "__ro_after_init", "__always_inline", "__must_check", "__init",
    "__exit", "__maybe_unused", "__cold", "__weak", "noinline", "__rcu", "__percpu",
    "__iomem", "__user", "__force", "__initdata", "__noreturn", "__pure", "__packed",
    "__visible", "notrace", "__attribute_const__", "__always_unused",
)  # fmt: skip
_ATTR_RE = re.compile(
    r"\b(?:" + "|".join(_ATTR_WORDS) + r")\b|\b__aligned\(\w*\)|\b__section\([^)]*\)"
)
_IDENT_RE = re.compile(r"(->|\.|\b(?:struct|union|enum)\s)?\s*\b([A-Za-z_]\w*)\b(\s*\()?")
_KEYWORDS = frozenset(
    "if else while for do switch case default return break continue goto sizeof typeof "
    "__typeof__ typeof_unqual struct union enum const volatile static inline extern unsigned "
    "signed int long short char void float double _Bool bool register auto __builtin_expect "
    "_Static_assert static_assert __builtin_constant_p _Generic __auto_type __attribute__ "
    "__always_inline __extension__ asm __asm__ true false NULL".split()
)


@dataclass
class Definition:
    """One top-level definition of a model file."""

    kind: str  # "function" | "macro" | "type" | "global"
    name: str  # "kvm_mmu_free_roots", "INVALID_PAGE", "struct kvm_mmu", "hpa_t", ...
    file: str
    line: int  # 1-based line of the first line
    text: str
    node: Node | None = None  # tree-sitter node (None for macros)
    static: bool = False
    enumerators: tuple[str, ...] = ()
    params: tuple[str, ...] = ()  # macro parameters

    @property
    def tree(self) -> Node:
        """The syntax node of a definition that has one (every kind but a macro)."""
        if self.node is None:
            raise ValueError(f"{self.name}: a macro has no syntax node")
        return self.node


@dataclass
class FileIndex:
    path: str
    source: bytes
    defs: list[Definition] = field(default_factory=list)


def blank_attributes(text: str) -> str:
    """Replace attribute words by spaces of the same length."""
    return _ATTR_RE.sub(lambda m: " " * len(m.group(0)), text)


def node_text(node: Node) -> str:
    return node.text.decode(errors="replace") if node.text is not None else ""


def declarator_name(node: Node | None) -> Node | None:
    """The identifier a declarator declares (through pointers, arrays, functions, inits)."""
    while node is not None:
        if node.type in ("identifier", "field_identifier", "type_identifier"):
            return node
        nxt = node.child_by_field_name("declarator")
        if nxt is None:
            for c in node.named_children:
                if c.type in ("identifier", "field_identifier", "type_identifier"):
                    return c
            return None
        node = nxt
    return None


def function_declarator(node: Node) -> Node | None:
    d = node.child_by_field_name("declarator")
    while d is not None and d.type != "function_declarator":
        d = d.child_by_field_name("declarator")
    return d


def _is_static(node: Node) -> bool:
    return any(
        c.type == "storage_class_specifier" and node_text(c) == "static" for c in node.children
    )


def _has_extern(node: Node) -> bool:
    return any(
        c.type == "storage_class_specifier" and node_text(c) == "extern" for c in node.children
    )


def parse(path: str, text: str) -> FileIndex:
    """Parse resolved text into an index of its top-level definitions."""
    src = blank_attributes(text).encode()
    tree = _PARSER.parse(src)
    idx = FileIndex(path, src)
    for node in _top_level(tree.root_node):
        _index_node(idx, node)
        if node.type in ("struct_specifier", "union_specifier", "declaration", "type_definition"):
            for n in _walk(node):  # a #define inside a struct body is a file-scope macro
                if n.type in ("preproc_def", "preproc_function_def"):
                    _index_node(idx, n)
    return idx


def _top_level(root: Node) -> Iterator[Node]:
    for c in root.children:
        if c.type in ("ERROR", "preproc_ifdef", "preproc_if", "linkage_specification"):
            yield from _top_level(c)
        else:
            yield c


def _add(idx: FileIndex, kind: str, name: str, node: Node, *, static: bool = False) -> None:
    idx.defs.append(
        Definition(
            kind, name, idx.path, node.start_point[0] + 1, node_text(node), node, static=static
        )
    )


def _index_node(idx: FileIndex, node: Node) -> None:
    t = node.type
    if t == "function_definition":
        fd = function_declarator(node)
        name = declarator_name(fd.child_by_field_name("declarator")) if fd else None
        if name is not None:
            _add(idx, "function", node_text(name), node, static=_is_static(node))
    elif t in ("preproc_def", "preproc_function_def"):
        name = node.child_by_field_name("name")
        if name is None:
            return
        params: tuple[str, ...] = ()
        p = node.child_by_field_name("parameters")
        if p is not None:
            params = tuple(node_text(c) for c in p.named_children if c.type == "identifier")
            if "..." in node_text(p):
                params += ("__VA_ARGS__",)
        text = node_text(node).rstrip("\n")
        idx.defs.append(
            Definition(
                "macro", node_text(name), idx.path, node.start_point[0] + 1, text, params=params
            )
        )
    elif t in ("struct_specifier", "union_specifier", "enum_specifier"):
        _index_tagged(idx, node, node)
    elif t == "type_definition":
        tn = node.child_by_field_name("type")
        for d in node.children_by_field_name("declarator"):
            name = declarator_name(d)
            if name is not None:
                _add(idx, "type", node_text(name), node)
        if tn is not None and tn.type in ("struct_specifier", "union_specifier", "enum_specifier"):
            _enumerators_of(idx, tn, node)
    elif t == "declaration":
        tn = node.child_by_field_name("type")
        if tn is not None and tn.type in ("struct_specifier", "union_specifier", "enum_specifier"):
            _index_tagged(idx, tn, node)
        for d in node.children_by_field_name("declarator"):
            if d.type == "function_declarator" or function_declarator(d) is not None:
                fd = d if d.type == "function_declarator" else function_declarator(d)
                name = declarator_name(fd.child_by_field_name("declarator")) if fd else None
                if name is not None:
                    _add(idx, "prototype", node_text(name), node)
                continue
            if _has_extern(node):
                continue
            name = declarator_name(d)
            if name is not None and name.type == "identifier":
                _add(idx, "global", node_text(name), node, static=_is_static(node))


def _index_tagged(idx: FileIndex, spec: Node, whole: Node) -> None:
    name = spec.child_by_field_name("name")
    body = spec.child_by_field_name("body")
    if name is None or body is None:
        return
    kw = spec.type.split("_")[0]
    _add(idx, "type", f"{kw} {node_text(name)}", whole)
    _enumerators_of(idx, spec, whole)


def _enumerators_of(idx: FileIndex, spec: Node, whole: Node) -> None:
    if spec.type != "enum_specifier":
        return
    body = spec.child_by_field_name("body")
    if body is None:
        return
    names = tuple(
        node_text(n)
        for e in body.named_children
        if e.type == "enumerator" and (n := e.child_by_field_name("name")) is not None
    )
    d = idx.defs[-1] if idx.defs and idx.defs[-1].node is whole else None
    if d is None:
        _add(idx, "type", f"enum {id(spec)}", whole)
        d = idx.defs[-1]
    d.enumerators = names


def struct_body(node: Node) -> Node | None:
    """The field list of a struct/union definition, or of the one a declaration or typedef
    defines; None when it has none."""
    if node.type in ("struct_specifier", "union_specifier"):
        return node.child_by_field_name("body")
    t = node.child_by_field_name("type")
    return struct_body(t) if t is not None else None


def field_declarations(body: Node | None) -> Iterator[Node]:
    """The field declarations of a struct/union body, anonymous members' flattened in."""
    for fd in body.named_children if body is not None else ():
        if fd.type != "field_declaration":
            continue
        t = fd.child_by_field_name("type")
        inner = t.child_by_field_name("body") if t is not None else None
        if not fd.children_by_field_name("declarator") and inner is not None:
            yield from field_declarations(inner)
        else:
            yield fd


def field_names(fd: Node) -> list[str]:
    """The names one field declaration declares."""
    return [
        node_text(n)
        for d in fd.children_by_field_name("declarator")
        if (n := declarator_name(d)) is not None
    ]


def parameters(node: Node) -> tuple[tuple[str, str], ...]:
    """(type text, name) of each parameter of a function definition or prototype."""
    fd = node if node.type == "function_declarator" else function_declarator(node)
    if fd is None:
        for d in node.children_by_field_name("declarator"):
            fd = d if d.type == "function_declarator" else function_declarator(d)
            if fd is not None:
                break
    plist = fd.child_by_field_name("parameters") if fd is not None else None
    out: list[tuple[str, str]] = []
    for p in plist.named_children if plist is not None else ():
        if p.type != "parameter_declaration":
            continue
        text = node_text(p)
        nm = declarator_name(p.child_by_field_name("declarator"))
        if nm is None:
            out.append((" ".join(text.split()), ""))
            continue
        a, b = nm.start_byte - p.start_byte, nm.end_byte - p.start_byte
        raw = p.text or b""
        typ = (raw[:a] + raw[b:]).decode(errors="replace")
        out.append((" ".join(typ.split()), node_text(nm)))
    if len(out) == 1 and out[0] == ("void", ""):
        return ()
    return tuple(out)


def return_type(node: Node) -> str:
    """The return type text of a function definition, e.g. 'struct kvm_mmu_page *'."""
    t = node.child_by_field_name("type")
    stars = 0
    d = node.child_by_field_name("declarator")
    while d is not None and d.type == "pointer_declarator":
        stars += 1
        d = d.child_by_field_name("declarator")
    return (node_text(t) if t is not None else "int") + (" " + "*" * stars if stars else "")


# ---- what a definition uses ------------------------------------------------------------


@dataclass
class Uses:
    """Names a fragment refers to: calls (callee position), other identifiers, types."""

    calls: dict[str, int] = field(default_factory=dict)  # name -> first 0-based line
    idents: dict[str, int] = field(default_factory=dict)
    types: dict[str, int] = field(default_factory=dict)  # "struct x" / typedef names
    fields: set[str] = field(default_factory=set)  # member names accessed


def _walk(node: Node) -> Iterator[Node]:
    stack = [node]
    while stack:
        n = stack.pop()
        yield n
        stack.extend(reversed(n.children))


def local_names(node: Node) -> set[str]:
    """Parameters, locals and labels declared inside a function definition."""
    names: set[str] = set()
    for n in _walk(node):
        if n.type in ("parameter_declaration", "declaration", "init_declarator"):
            for d in n.children_by_field_name("declarator"):
                nm = declarator_name(d)
                if nm is not None:
                    names.add(node_text(nm))
        elif n.type == "labeled_statement":
            lab = n.child_by_field_name("label")
            if lab is not None:
                names.add(node_text(lab))
    return names


def uses_of_node(node: Node, skip: Node | None = None) -> Uses:
    """Names used by a function, type or global (tree-sitter nodes)."""
    u = Uses()
    for n in _walk(node):
        if skip is not None and n.id == skip.id:
            continue
        line = n.start_point[0]
        if n.type == "identifier":
            parent = n.parent
            if (
                parent is not None
                and parent.type == "call_expression"
                and (parent.child_by_field_name("function") == n)
            ):
                u.calls.setdefault(node_text(n), line)
            else:
                u.idents.setdefault(node_text(n), line)
        elif n.type == "type_identifier":
            parent = n.parent
            if parent is not None and parent.type in (
                "struct_specifier",
                "union_specifier",
                "enum_specifier",
            ):
                kw = parent.type.split("_")[0]
                u.types.setdefault(f"{kw} {node_text(n)}", line)
            else:
                u.types.setdefault(node_text(n), line)
        elif n.type == "field_identifier":
            parent = n.parent
            if parent is not None and parent.type == "field_expression":
                u.fields.add(node_text(n))
        elif n.type == "field_designator":
            u.fields.update(node_text(c) for c in n.named_children)
    return u


def uses_of_macro(d: Definition) -> Uses:
    """Names a macro body uses (a token scan: a macro body is not C on its own)."""
    u = Uses()
    body = d.text.split("\n", 1)
    head = re.match(r"\s*#\s*define\s+\w+(\([^)]*\))?", body[0])
    text = d.text[head.end() :] if head else d.text
    text = re.sub(r"/\*.*?\*/|//[^\n]*|\"(?:\\.|[^\"\\])*\"", " ", text, flags=re.S)
    for m in _IDENT_RE.finditer(text):
        member, name, call = m.groups()
        if name in d.params or name in _KEYWORDS:
            continue
        line = d.line - 1 + d.text.count("\n", 0, len(d.text) - len(text) + m.start())
        if member and member.strip() in ("struct", "union", "enum"):
            u.types.setdefault(f"{member.strip()} {name}", line)
        elif member:
            u.fields.add(name)
        elif call:
            u.calls.setdefault(name, line)
        else:
            u.idents.setdefault(name, line)
    return u

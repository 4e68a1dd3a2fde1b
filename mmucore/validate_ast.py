"""Rules validate applies to the parse of an untrusted fragment (tree-sitter-c).

What a token scan cannot see: a declaration of a function the extraction does not know
(the way to ``system``), a nested function, and the ways to a computed code address,
which defeat the ``nm -u`` allow-list: taking the address of a C-library function or
object (``(unsigned long)(void *)abort - off`` reaches any libc function), a cast to a
function-pointer type (``(long (*)(long, ...))addr``), a call whose callee is a cast or
arithmetic rather than a function, a variable or a member. Each finding is (1-based
row of the fragment, reason).
"""

from __future__ import annotations

from collections.abc import Iterator

import tree_sitter as ts
import tree_sitter_c as tsc

_PARSER = ts.Parser(ts.Language(tsc.language()))

# objects of the C library whose value or address is an address inside it
LIBC_OBJECTS = frozenset(
    "stdin stdout stderr environ __environ errno program_invocation_name "
    "program_invocation_short_name optarg __libc_single_threaded".split()
)
# callee expressions a call may go through: a function, a pointer held in a variable, a
# member or an element, a call's result; anything else computes the address
_CALLEES = frozenset(
    "identifier field_expression subscript_expression call_expression "
    "conditional_expression".split()
)


def _text(node: ts.Node) -> str:
    return node.text.decode() if node.text is not None else ""


def parse(text: str) -> ts.Node:
    return _PARSER.parse(text.encode()).root_node


def _walk(node: ts.Node) -> Iterator[ts.Node]:
    stack = [node]
    while stack:
        n = stack.pop()
        yield n
        stack.extend(reversed(n.children))


def _declared_function(decl: ts.Node) -> tuple[str, int] | None:
    """Name and row of a function (not a function pointer) that ``decl`` declares."""
    node: ts.Node | None = decl
    while node is not None and node.type in (
        "pointer_declarator",
        "init_declarator",
        "attributed_declarator",
    ):
        node = node.child_by_field_name("declarator")
    if node is None or node.type != "function_declarator":
        return None
    inner = node.child_by_field_name("declarator")
    while inner is not None and inner.type in ("parenthesized_declarator", "attributed_declarator"):
        inner = inner.named_children[0] if inner.named_children else None
    if inner is not None and inner.type == "identifier":
        return _text(inner), inner.start_point[0] + 1
    return None


def check_declarations(root: ts.Node, known: set[str]) -> tuple[int, str] | None:
    """A declaration of an unknown function, or a nested function: (row, reason)."""
    stack = [(root, False)]
    while stack:
        node, in_body = stack.pop()
        if node.type == "function_definition" and in_body:
            return node.start_point[0] + 1, "a nested function definition"
        if node.type == "declaration":
            for d in node.children_by_field_name("declarator"):
                found = _declared_function(d)
                if found and found[0] not in known:
                    return found[1], (
                        f"a declaration of function {found[0]}(), which the extraction "
                        "does not define or shim"
                    )
        inner = in_body or node.type == "compound_statement"
        stack.extend((c, inner) for c in reversed(node.children))
    return None


def function_typedefs(root: ts.Node) -> set[str]:
    """Names that a typedef makes a function or function-pointer type."""
    out = set()
    for n in _walk(root):
        if n.type != "type_definition":
            continue
        for d in n.children_by_field_name("declarator"):
            if any(x.type == "function_declarator" for x in _walk(d)):
                name = next((x for x in _walk(d) if x.type == "type_identifier"), None)
                if name is not None:
                    out.add(_text(name))
    return out


def _local_names(root: ts.Node) -> set[str]:
    """Every name the fragment declares (parameters, locals): they shadow libc's."""
    out = set()
    for n in _walk(root):
        if n.type in ("init_declarator", "parameter_declaration", "declaration"):
            d = n.child_by_field_name("declarator")
            while d is not None and d.type != "identifier":
                d = d.child_by_field_name("declarator")
            if d is not None:
                out.add(_text(d))
        for d in n.children_by_field_name("declarator") if n.type == "declaration" else ():
            while d is not None and d.type != "identifier":
                d = d.child_by_field_name("declarator")
            if d is not None:
                out.add(_text(d))
    return out


def _strip_parens(n: ts.Node) -> ts.Node:
    while n.type == "parenthesized_expression" and n.named_children:
        n = n.named_children[0]
    return n


def _is_callee(n: ts.Node) -> bool:
    """n (an identifier) is what a call calls directly: ``memcpy(...)``, ``(memcpy)(...)``."""
    child, p = n, n.parent
    while p is not None and p.type == "parenthesized_expression":
        child, p = p, p.parent
    if p is None or p.type != "call_expression":
        return False
    return p.child_by_field_name("function") == child


def _function_pointer_type(desc: ts.Node, fn_types: set[str]) -> bool:
    for x in _walk(desc):
        if x.type == "abstract_function_declarator":
            return True
        if x.type == "type_identifier" and _text(x) in fn_types:
            return True
    return False


def check_code_addresses(
    root: ts.Node, libc: frozenset[str], fn_types: set[str]
) -> tuple[int, str] | None:
    """The first way to a computed code address in the fragment: (row, reason)."""
    local = _local_names(root)
    for n in _walk(root):
        row = n.start_point[0] + 1
        if n.type == "cast_expression":
            desc = n.child_by_field_name("type")
            if desc is not None and _function_pointer_type(desc, fn_types):
                return row, (
                    f"a cast to a function-pointer type ({_text(desc)}): a call "
                    "through it can reach any address"
                )
        elif n.type == "call_expression":
            fn = n.child_by_field_name("function")
            callee = _strip_parens(fn) if fn is not None else None
            if callee is not None and callee.type == "pointer_expression":
                arg = callee.child_by_field_name("argument")
                callee = _strip_parens(arg) if arg is not None else callee
            if callee is not None and callee.type not in _CALLEES:
                return row, (
                    f"a call through a computed address ({_text(callee)[:60]}): "
                    "only functions and function pointers held in variables may be called"
                )
        elif n.type in ("identifier", "type_identifier"):  # typeof(abort): a type's name
            name = _text(n)
            if name in local:
                continue
            if name in LIBC_OBJECTS:
                return row, f"{name}, an object of the C library (its address is one in it)"
            if (name in libc or name.startswith("__builtin_")) and not _is_callee(n):
                return row, (
                    f"the address of {name}() taken (not a call): an address in the C "
                    "library or the compiler's runtime reaches any function there"
                )
    return None

"""Conditional compilation, resolved the way cpp would for a small x86-64 KVM config.

Only `#if`/`#ifdef`/`#ifndef`/`#elif`/`#else`/`#endif`, `#define`/`#undef` (for later
conditions) and `#include` of other model files are interpreted. Inactive lines and
conditional directives become empty lines, so line numbers of the result are the
file's own; other directives stay for the parser to see. `#if` expressions:
`defined`, `IS_ENABLED()` and friends, integer arithmetic; an unknown identifier
is 0, as in cpp. Untrusted text: never raises.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping

_DIRECTIVE = re.compile(r"^\s*#\s*(\w+)\b(.*)$", re.S)
_TOKEN = re.compile(
    r"\s*(?:(0[xX][0-9a-fA-F]+|\d+)[uUlL]*|([A-Za-z_]\w*)|('(?:\\.|[^'\\])')"
    r"|(<<|>>|<=|>=|==|!=|&&|\|\||[-+*/%<>!~&|^?:(),]))"
)
_CONFIG_CALLS = ("IS_ENABLED", "IS_BUILTIN", "IS_REACHABLE")
_MAX_DEPTH = 16
_CONDITIONALS = ("if", "ifdef", "ifndef", "elif", "else", "endif")

Include = Callable[[str], None]  # called with the include target, e.g. "linux/kvm_host.h"


def _strip_comments(s: str) -> str:
    s = re.sub(r"/\*.*?\*/", " ", s, flags=re.S)
    s = re.sub(r"/\*.*$", " ", s, flags=re.S)
    return re.sub(r"//.*$", "", s)


def _tokens(expr: str) -> list[str]:
    out: list[str] = []
    pos = 0
    while pos < len(expr):
        m = _TOKEN.match(expr, pos)
        if not m or m.end() == pos:
            if expr[pos:].strip():
                raise ValueError(f"bad token at {expr[pos : pos + 10]!r}")
            break
        pos = m.end()
        num, ident, char, op = m.groups()
        if num is not None:
            out.append(str(int(num, 16) if num[:2].lower() == "0x" else _dec_or_oct(num)))
        elif char is not None:
            body = char[1:-1]
            out.append(str(ord(body[-1]) if body else 0))
        else:
            out.append(ident or op)
    return out


def _dec_or_oct(num: str) -> int:
    return int(num, 8) if len(num) > 1 and num.startswith("0") else int(num)


def _expand(toks: list[str], macros: Mapping[str, str], depth: int = 0) -> list[str]:
    """Replace defined()/IS_ENABLED() and object-like macros; other identifiers -> 0."""
    out: list[str] = []
    i = 0
    while i < len(toks):
        t = toks[i]
        if t == "defined":
            if i + 1 < len(toks) and toks[i + 1] == "(":
                name = toks[i + 2] if i + 2 < len(toks) else ""
                i += 4
            else:
                name = toks[i + 1] if i + 1 < len(toks) else ""
                i += 2
            out.append("1" if name in macros else "0")
            continue
        if t[0].isalpha() or t[0] == "_":
            if i + 1 < len(toks) and toks[i + 1] == "(":
                j, level, args = i + 2, 1, []
                while j < len(toks) and level:
                    level += {"(": 1, ")": -1}.get(toks[j], 0)
                    if level:
                        args.append(toks[j])
                    j += 1
                if t in _CONFIG_CALLS and len(args) == 1:
                    val = macros.get(args[0])
                    out.append("1" if val is not None and val.strip() not in ("", "0") else "0")
                else:
                    out.append("0")
                i = j
                continue
            body = macros.get(t)
            if body is not None and depth < _MAX_DEPTH and body.strip():
                try:
                    out.extend(["("] + _expand(_tokens(body), macros, depth + 1) + [")"])
                except ValueError:
                    out.append("0")
            else:
                out.append("0")
            i += 1
            continue
        out.append(t)
        i += 1
    return out


_BINARY = {
    "||": 1, "&&": 2, "|": 3, "^": 4, "&": 5, "==": 6, "!=": 6,
    "<": 7, ">": 7, "<=": 7, ">=": 7, "<<": 8, ">>": 8, "+": 9, "-": 9, "*": 10, "/": 10, "%": 10,
}  # fmt: skip


class _Parser:
    def __init__(self, toks: list[str]) -> None:
        self.toks, self.pos = toks, 0

    def peek(self) -> str:
        return self.toks[self.pos] if self.pos < len(self.toks) else ""

    def take(self) -> str:
        t = self.peek()
        self.pos += 1
        return t

    def expr(self, min_prec: int = 0) -> int:
        left = self.unary()
        while True:
            op = self.peek()
            if op == "?" and min_prec == 0:
                self.take()
                a = self.expr()
                if self.take() != ":":
                    raise ValueError("expected ':'")
                b = self.expr()
                left = a if left else b
                continue
            prec = _BINARY.get(op)
            if prec is None or prec < min_prec:
                return left
            self.take()
            right = self.expr(prec + 1)
            left = _apply(op, left, right)

    def unary(self) -> int:
        t = self.take()
        if t == "(":
            v = self.expr()
            if self.take() != ")":
                raise ValueError("expected ')'")
            return v
        if t == "!":
            return int(not self.unary())
        if t == "~":
            return ~self.unary()
        if t == "-":
            return -self.unary()
        if t == "+":
            return self.unary()
        if t.isdigit():
            return int(t)
        raise ValueError(f"unexpected {t!r}")


def _apply(op: str, a: int, b: int) -> int:
    if op in ("/", "%") and b == 0:
        return 0
    if op in ("<<", ">>") and not 0 <= b < 128:
        return 0
    return {
        "||": lambda: int(bool(a) or bool(b)), "&&": lambda: int(bool(a) and bool(b)),
        "|": lambda: a | b, "^": lambda: a ^ b, "&": lambda: a & b,
        "==": lambda: int(a == b), "!=": lambda: int(a != b), "<": lambda: int(a < b),
        ">": lambda: int(a > b), "<=": lambda: int(a <= b), ">=": lambda: int(a >= b),
        "<<": lambda: a << b, ">>": lambda: a >> b, "+": lambda: a + b, "-": lambda: a - b,
        "*": lambda: a * b, "/": lambda: int(a / b), "%": lambda: a % b,
    }[op]()  # fmt: skip


def eval_if(expr: str, macros: Mapping[str, str]) -> bool:
    """Evaluate a `#if` expression; an expression we cannot read counts as false."""
    try:
        p = _Parser(_expand(_tokens(_strip_comments(expr)), macros))
        v = p.expr()
        return bool(v) and p.pos >= len(p.toks)
    except (ValueError, RecursionError, KeyError, IndexError, OverflowError, MemoryError):
        return False


def resolve(text: str, macros: dict[str, str], include: Include | None = None) -> str:
    """Blank inactive lines and conditional directives; update ``macros`` as cpp would."""
    lines = text.split("\n")
    out = list(lines)
    # each frame: [parent_active, this_branch_active, some_branch_taken]
    stack: list[list[bool]] = []
    active = True
    i = 0
    while i < len(lines):
        start = i
        logical = lines[i]
        while logical.endswith("\\") and i + 1 < len(lines):
            i += 1
            logical = logical[:-1] + " " + lines[i]
        i += 1
        m = _DIRECTIVE.match(logical)
        if not m:
            if not active:
                for k in range(start, i):
                    out[k] = ""
            continue
        name, rest = m.group(1), _strip_comments(m.group(2)).strip()
        keep = False
        if name in ("if", "ifdef", "ifndef"):
            if name == "if":
                cond = active and eval_if(rest, macros)
            else:
                word = rest.split()[0] if rest.split() else ""
                cond = active and ((word in macros) == (name == "ifdef"))
            stack.append([active, cond, cond])
            active = cond
        elif name == "elif" and stack:
            frame = stack[-1]
            cond = frame[0] and not frame[2] and eval_if(rest, macros)
            frame[1], frame[2] = cond, frame[2] or cond
            active = cond
        elif name == "else" and stack:
            frame = stack[-1]
            cond = frame[0] and not frame[2]
            frame[1], frame[2] = cond, True
            active = cond
        elif name == "endif" and stack:
            active = stack.pop()[0]
        elif active and name == "define":
            dm = re.match(r"([A-Za-z_]\w*)(\([^)]*\))?\s*(.*)$", rest, re.S)
            if dm:
                macros[dm.group(1)] = "" if dm.group(2) else dm.group(3)
            keep = True
        elif active and name == "undef":
            macros.pop(rest.split()[0] if rest.split() else "", None)
            keep = True
        elif active and name == "include" and include is not None:
            target = re.match(r"[<\"]([^>\"]+)[>\"]", rest)
            if target:
                include(target.group(1))
        if active and name not in _CONDITIONALS:
            keep = True  # the parser sees it: inside a definition, it is refused
        if not keep:
            for k in range(start, i):
                out[k] = ""
    return "\n".join(out)

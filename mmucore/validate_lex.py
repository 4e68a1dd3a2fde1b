"""A small C lexer for untrusted fragments, and the token-level rules validate applies.

It follows the translation phases that matter for hiding things from a naive search:
backslash-newline splicing (also with trailing blanks, as gcc accepts), ``//`` and
``/* */`` comments, string and character literals with their prefixes, digraphs.
Each token keeps the 1-based physical line it starts on, so a refusal can name it.
"""

from __future__ import annotations

import bisect
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass

_SPLICE = re.compile(r"\\[ \t]*\n")
_PUNCT = sorted(
    "%:%: ... <<= >>= -> ++ -- << >> <= >= == != && || *= /= %= += -= &= ^= |= ## "
    "<: :> <% %> %: [ ] ( ) { } . & * + - ~ ! / % < > ^ | ? : ; = , #".split(),
    key=len,
    reverse=True,
)  # longest first, so "%:%:" wins over "%:" and "<<=" over "<<"
_DIGRAPHS = {"<:": "[", ":>": "]", "<%": "{", "%>": "}", "%:": "#", "%:%:": "##"}
_ID = r"[A-Za-z_$\x80-\U0010ffff][A-Za-z0-9_$\x80-\U0010ffff]*"
_MASTER = re.compile(
    r"(?P<nl>\n)|(?P<ws>[ \t\f\v\r]+)|(?P<lc>//[^\n]*)|(?P<bc>/\*.*?\*/)|(?P<badbc>/\*)"
    r"|(?P<tri>\?\?[=(/)'<!>-])"
    r"|(?P<string>(?:u8|u|U|L)?\"(?:[^\"\\\n]|\\.)*\")"
    r"|(?P<char>(?:u8|u|U|L)?'(?:[^'\\\n]|\\.)*')"
    r"|(?P<badlit>(?:u8|u|U|L)?[\"'])"
    rf"|(?P<ident>{_ID})"
    r"|(?P<number>\.?[0-9](?:[eEpP][+-]|[A-Za-z0-9_.])*)"
    r"|(?P<punct>" + "|".join(re.escape(p) for p in _PUNCT) + r")"
    r"|(?P<other>.)",
    re.S,
)


@dataclass(frozen=True)
class Token:
    kind: str  # "ident" | "number" | "string" | "char" | "punct" | "other"
    text: str  # punctuators with digraphs normalised ("%:" -> "#")
    line: int  # 1-based physical line of the fragment where the token starts
    bol: bool  # first token of its logical line (a directive starts here)


class LexError(ValueError):
    """The fragment cannot be tokenised (unterminated comment or literal, trigraph)."""

    def __init__(self, line: int, what: str) -> None:
        self.line = line
        self.what = what
        super().__init__(f"line {line}: {what}")


def _splice(text: str) -> tuple[str, Callable[[int], int]]:
    """Join continued lines; return the text and a map from its offsets to physical lines."""
    out: list[str] = []
    splices: list[int] = []  # offsets in the result where a continuation was removed
    pos = 0
    size = 0
    for m in _SPLICE.finditer(text):
        out.append(text[pos : m.start()])
        size += m.start() - pos
        splices.append(size)
        pos = m.end()
    out.append(text[pos:])
    src = "".join(out)
    newlines = [m.start() for m in re.finditer("\n", src)]

    def line(offset: int) -> int:
        return 1 + bisect.bisect_left(newlines, offset) + bisect.bisect_right(splices, offset)

    return src, line


def tokenize(text: str) -> list[Token]:
    """Tokenise C (or a preprocessor line) into tokens; comments and blanks are dropped."""
    src, line = _splice(text.replace("\r\n", "\n"))
    toks: list[Token] = []
    bol = True
    for m in _MASTER.finditer(src):
        kind = m.lastgroup
        if kind == "nl":
            bol = True
        elif kind in ("ws", "lc"):
            pass
        elif kind == "bc":
            bol = bol or "\n" in m.group()  # stricter than C: no directive behind a comment
        elif kind == "badbc":
            raise LexError(line(m.start()), "unterminated comment")
        elif kind == "badlit":
            raise LexError(line(m.start()), "unterminated literal")
        elif kind == "tri":
            raise LexError(line(m.start()), f"trigraph {m.group()!r}")
        else:
            text_ = _DIGRAPHS.get(m.group(), m.group()) if kind == "punct" else m.group()
            toks.append(Token(kind or "other", text_, line(m.start()), bol))
            bol = False
    return toks


def logical_lines(text: str) -> list[tuple[int, str]]:
    """Split into logical lines (continuations joined): (first physical line, text)."""
    src, line = _splice(text.replace("\r\n", "\n"))
    out: list[tuple[int, str]] = []
    start = 0
    for m in re.finditer("\n", src):
        out.append((line(start), src[start : m.start()]))
        start = m.end()
    if start < len(src):
        out.append((line(start), src[start:]))
    return out


FORBIDDEN_IDENTS = {
    "asm": "inline assembly",
    "__asm": "inline assembly",
    "__asm__": "inline assembly",
    "_Pragma": "a _Pragma operator",
    "__pragma": "a pragma operator",
    "__declspec": "a __declspec",
    "__builtin_va_arg_pack": "a __builtin_va_arg_pack",
}

# builtins that only compute or hint: nothing here jumps, allocates or reads the frame
ALLOWED_BUILTINS = frozenset(
    "expect expect_with_probability constant_p offsetof types_compatible_p choose_expr "
    "unreachable trap memcpy memset memcmp memmove strlen ctz ctzl ctzll clz clzl clzll "
    "ffs ffsl ffsll popcount popcountl popcountll parity parityl parityll bswap16 bswap32 "
    "bswap64 add_overflow sub_overflow mul_overflow add_overflow_p sub_overflow_p "
    "mul_overflow_p object_size dynamic_object_size assume_aligned prefetch "
    "classify_type return_address va_list va_start va_end va_arg va_copy "
    "is_constant_evaluated".split()
)

# attribute names (without the __x__ wrapping) that neither run nor place code; cleanup
# only calls a named function, which must itself be known (guard() in 6.5+ kernels)
ALLOWED_ATTRIBUTES = frozenset(
    "unused maybe_unused packed aligned noreturn always_inline noinline gnu_inline pure "
    "const cold hot format format_arg warn_unused_result deprecated fallthrough nonnull "
    "returns_nonnull may_alias transparent_union designated_init noclone nonstring access "
    "mode counted_by unavailable error warning vector_size malloc alloc_size sentinel "
    "assume_aligned flatten no_sanitize no_sanitize_address no_sanitize_undefined "
    "no_instrument_function cleanup".split()
)
ALLOWED_PREFIXES = ("Py", "_Py")  # Python C-API: the cffi glue uses it, kernel C never does


def _attribute_names(toks: Sequence[Token], i: int) -> tuple[list[tuple[str, int]], int]:
    """Names inside ``__attribute__((...))`` starting at toks[i]; and the index after it."""
    names: list[tuple[str, int]] = []
    depth = 0
    j = i + 1
    expect_name = False
    while j < len(toks):
        t = toks[j]
        if t.text == "(":
            depth += 1
            expect_name = depth == 2
        elif t.text == ")":
            depth -= 1
            if depth == 0:
                return names, j + 1
        elif t.text == "," and depth == 2:
            expect_name = True
        elif expect_name and t.kind == "ident":
            names.append((t.text, t.line))
            expect_name = False
        else:
            expect_name = False
        j += 1
        if depth <= 0 and j > i + 1:
            break
    return names, j


def _token_problem(toks: Sequence[Token], i: int) -> str | None:
    """Why toks[i] is refused, or None."""
    t = toks[i]
    if t.kind == "other":
        return f"stray character {t.text!r}"
    if t.kind == "punct" and t.text == "[" and i + 1 < len(toks) and toks[i + 1].text == "[":
        return "a [[...]] attribute"
    if t.kind != "ident":
        return None
    if t.text in FORBIDDEN_IDENTS:
        return f"{FORBIDDEN_IDENTS[t.text]} ({t.text})"
    if t.text.startswith("__builtin_"):
        if t.text[len("__builtin_") :] not in ALLOWED_BUILTINS:
            return f"{t.text} is not on the allow-list of builtins"
    if t.text.startswith(ALLOWED_PREFIXES):
        return f"a Python C-API name ({t.text})"
    return None


def check_tokens(toks: Sequence[Token]) -> tuple[int, str] | None:
    """First refused construct in a token stream (not directives): (line, reason)."""
    for i, t in enumerate(toks):
        why = _token_problem(toks, i)
        if why:
            return t.line, why
        if t.kind == "ident" and t.text in ("__attribute__", "__attribute"):
            names, _ = _attribute_names(toks, i)
            for name, line in names:
                bare = name.strip("_") if name.startswith("__") and name.endswith("__") else name
                if bare not in ALLOWED_ATTRIBUTES:
                    return line, f"__attribute__(({name})) is not on the allow-list"
    return None

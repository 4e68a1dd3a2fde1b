"""A small C lexer for untrusted fragments, and the token-level rules validate applies.

It follows the translation phases that matter for hiding things from a naive search,
as gcc -std=gnu11 performs them: backslash-newline splicing (also with trailing blanks,
form feeds or vertical tabs, as gcc accepts), ``//`` and ``/* */`` comments, string and
character literals with their prefixes, digraphs. Where gcc would read the text
differently from a plain C lexer, the fragment is refused instead of guessed at: GNU raw
string literals (``R"x(...)x"`` and every prefix; gcc lexes them in gnu modes), a
carriage return without a line feed (a line end to gcc), NUL bytes, trigraphs, and any
non-ASCII character outside a literal or comment (gcc takes some in identifiers).
Each token keeps the 1-based physical line it starts on, so a refusal can name it.
"""

from __future__ import annotations

import bisect
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass

_SPLICE = re.compile(r"\\[ \t\f\v]*\n")  # gcc: backslash, blanks, newline
_PUNCT = sorted(
    "%:%: ... <<= >>= -> ++ -- << >> <= >= == != && || *= /= %= += -= &= ^= |= ## "
    "<: :> <% %> %: [ ] ( ) { } . & * + - ~ ! / % < > ^ | ? : ; = , #".split(),
    key=len,
    reverse=True,
)  # longest first, so "%:%:" wins over "%:" and "<<=" over "<<"
_DIGRAPHS = {"<:": "[", ":>": "]", "<%": "{", "%>": "}", "%:": "#", "%:%:": "##"}
_ID = r"[A-Za-z_$][A-Za-z0-9_$]*"  # non-ASCII is refused, never part of a name
_MASTER = re.compile(
    r"(?P<nl>\n)|(?P<ws>[ \t\f\v\r]+)|(?P<lc>//[^\n]*)|(?P<bc>/\*.*?\*/)|(?P<badbc>/\*)"
    r"|(?P<tri>\?\?[=(/)'<!>-])"
    r"|(?P<raw>(?:u8|u|U|L)?R\")"  # before string and ident: gcc reads a raw string here
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


def _refuse_bytes(text: str) -> None:
    """Refuse characters gcc reads as something our lexer would not (see module doc)."""
    for ch, what in (("\0", "a NUL character"), ("\r", "a carriage return without a line feed")):
        at = text.find(ch)
        if at >= 0:
            raise LexError(text.count("\n", 0, at) + 1, f"{what} (gcc reads it differently)")


def tokenize(text: str) -> list[Token]:
    """Tokenise C (or a preprocessor line) into tokens; comments and blanks are dropped."""
    text = text.replace("\r\n", "\n")
    _refuse_bytes(text)
    src, line = _splice(text)
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
        elif kind == "raw":
            raise LexError(
                line(m.start()),
                f"a raw string literal ({m.group()}...): gcc reads it as one token where "
                "C rules read code, so what it hides cannot be checked",
            )
        else:
            text_ = _DIGRAPHS.get(m.group(), m.group()) if kind == "punct" else m.group()
            toks.append(Token(kind or "other", text_, line(m.start()), bol))
            bol = False
    return toks


def logical_lines(text: str) -> list[tuple[int, str]]:
    """Split into logical lines (continuations joined): (first physical line, text)."""
    src, line = _splice(text.replace("\r\n", "\n"))  # a lone \r is refused by tokenize
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
    "__seg_fs": "a named address space (__seg_fs: thread memory of the process)",
    "__seg_gs": "a named address space (__seg_gs)",
    "__BASE_FILE__": "__BASE_FILE__ (a path of the build host)",
    "__TIMESTAMP__": "__TIMESTAMP__ (a fact of the build host)",
}

# Names of mmu-ci's own C that kernel code never needs: the recorder, the model API, the
# driver and the cffi glue. The kernel-facing API of the shim (mmu_shim_kernel.h,
# mmu_shim_stubs.h: locks, WARN_ON, lists, kvm_mmu_prepare_zap_page, ...) has kernel
# names; everything else of ours starts with one of these prefixes or is one of these
# names (the locals the shim's macros declare).
SHIM_INTERNAL_PREFIXES = ("mmu_shim_", "MMU_SHIM_", "MMU_EV_", "drv_", "DRV_", "_cffi_")
SHIM_INTERNAL_NAMES = frozenset("__mmu_site __mmu_c __mmu_gen __mmu_tmp".split())
SHIM_INTERNAL_LOCAL_PREFIXES = ("__mmu_guard_", "__mmu_sg_")


def shim_internal(name: str) -> bool:
    """True if ``name`` belongs to mmu-ci's recorder, model API, driver or cffi glue."""
    return (
        name.startswith(SHIM_INTERNAL_PREFIXES + SHIM_INTERNAL_LOCAL_PREFIXES)
        or name in SHIM_INTERNAL_NAMES
    )


# builtins that only compute or hint: nothing here jumps, allocates, reads the frame or
# gives a code address (return_address and frame_address would: the way to libc)
ALLOWED_BUILTINS = frozenset(
    "expect expect_with_probability constant_p offsetof types_compatible_p choose_expr "
    "unreachable trap memcpy memset memcmp memmove strlen ctz ctzl ctzll clz clzl clzll "
    "ffs ffsl ffsll popcount popcountl popcountll parity parityl parityll bswap16 bswap32 "
    "bswap64 add_overflow sub_overflow mul_overflow add_overflow_p sub_overflow_p "
    "mul_overflow_p object_size dynamic_object_size assume_aligned prefetch "
    "classify_type va_list va_start va_end va_arg va_copy "
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


# an identifier before "&&" ends an operand (binary "and"), except these keywords
_OPERATOR_WORDS = frozenset("return case sizeof goto do else".split())


def _label_address(toks: Sequence[Token], i: int) -> bool:
    """toks[i] is a unary ``&&`` before an identifier: GNU "labels as values"."""
    if toks[i].text != "&&" or i + 1 >= len(toks) or toks[i + 1].kind != "ident":
        return False
    if i == 0:
        return True
    prev = toks[i - 1]
    if prev.kind in ("number", "string", "char") or prev.text in (")", "]", "++", "--"):
        return False
    return not (prev.kind == "ident" and prev.text not in _OPERATOR_WORDS)


def _token_problem(toks: Sequence[Token], i: int) -> str | None:
    """Why toks[i] is refused, or None."""
    t = toks[i]
    if t.kind == "other" and ord(t.text[0]) > 127:
        return (
            f"a non-ASCII character (U+{ord(t.text[0]):04X}) outside a string or comment: "
            "gcc may read it as part of a name or as a stray token"
        )
    if t.kind == "other":
        return f"stray character {t.text!r}"
    if t.text == "goto" and i + 1 < len(toks) and toks[i + 1].text == "*":
        return "a computed goto (goto *): a jump to an address the code computes"
    if _label_address(toks, i):
        return f"the address of a label (&&{toks[i + 1].text}): code addresses are refused"
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


# a pasted identifier that starts like one of these could become a refused construct
PASTE_DANGER = (
    "asm",
    "__asm",
    "_Pragma",
    "__pragma",
    "__attribute",
    "__builtin_",
    "Py",
    "_Py",
    "__declspec",
    "__seg_",
    *SHIM_INTERNAL_PREFIXES,
)


def paste_problem(toks: Sequence[Token], params: set[str], start: int) -> tuple[Token, str] | None:
    """The ``##`` in toks[start:] that could build a refused word, and why; or None.

    A paste whose first operand is a macro argument can build anything; one whose first
    operand is a fixed word that starts a refused one (``__as ## m``) builds it.
    ``, ## __VA_ARGS__`` only swallows a comma.
    """
    for k in range(start + 1, len(toks)):
        if toks[k].text != "##" or toks[k - 1].text == ",":
            continue
        j = k - 1
        while j >= start + 2 and toks[j - 1].text == "##":
            j -= 2
        first = toks[j]
        if first.text in params:
            return toks[k], (
                f"token pasting that starts with macro argument {first.text!r}: what it "
                "builds cannot be checked"
            )
        if first.kind == "ident" and any(
            d.startswith(first.text) or first.text.startswith(d) for d in PASTE_DANGER
        ):
            return toks[k], f"token pasting onto {first.text!r}"
    return None

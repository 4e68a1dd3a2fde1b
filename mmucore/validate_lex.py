"""A small C lexer for checking untrusted fragments: comments, literals and continuations.

It follows the translation phases that matter for hiding things from a naive search:
backslash-newline splicing (also with trailing blanks, as gcc accepts), ``//`` and
``/* */`` comments, string and character literals with their prefixes, digraphs.
Each token keeps the 1-based physical line it starts on, so a refusal can name it.
"""

from __future__ import annotations

import bisect
import re
from collections.abc import Callable
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

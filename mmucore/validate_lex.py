"""A small C lexer for checking untrusted fragments: comments, literals and continuations.

It follows the translation phases that matter for hiding things from a naive search:
backslash-newline splicing (also with trailing blanks, as gcc accepts), ``//`` and
``/* */`` comments, string and character literals with their prefixes, digraphs.
Each token keeps the 1-based physical line it starts on, so a refusal can name it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

_SPLICE = re.compile(r"\\[ \t]*\r?\n")
_IDENT = re.compile(r"[A-Za-z_\$\x80-\U0010ffff][A-Za-z0-9_\$\x80-\U0010ffff]*")
_NUMBER = re.compile(r"\.?[0-9](?:[eEpP][+-]|[A-Za-z0-9_.])*")
_LITERAL_PREFIX = re.compile(r"(?:u8|u|U|L)?(?=['\"])")
# longest first, so "%:%:" wins over "%:" and "<<=" over "<<"
_PUNCT = sorted(
    "%:%: ... <<= >>= -> ++ -- << >> <= >= == != && || *= /= %= += -= &= ^= |= ## "
    "<: :> <% %> %: [ ] ( ) { } . & * + - ~ ! / % < > ^ | ? : ; = , #".split(),
    key=len,
    reverse=True,
)
_DIGRAPHS = {"<:": "[", ":>": "]", "<%": "{", "%>": "}", "%:": "#", "%:%:": "##"}
_TRIGRAPH = re.compile(r"\?\?[=(/)'<!>-]")


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


def _splice(text: str) -> tuple[str, list[int]]:
    """Join continued lines; return the text and, per character, its physical line."""
    out: list[str] = []
    lines: list[int] = []
    line = 1
    pos = 0
    for m in _SPLICE.finditer(text):
        chunk = text[pos : m.start()]
        for ch in chunk:
            out.append(ch)
            lines.append(line)
            if ch == "\n":
                line += 1
        line += 1
        pos = m.end()
    for ch in text[pos:]:
        out.append(ch)
        lines.append(line)
        if ch == "\n":
            line += 1
    lines.append(line)
    return "".join(out), lines


def tokenize(text: str) -> list[Token]:
    """Tokenise C (or a preprocessor line) into tokens; comments and blanks are dropped."""
    src, lines = _splice(text.replace("\r\n", "\n"))
    toks: list[Token] = []
    i = 0
    n = len(src)
    bol = True
    while i < n:
        c = src[i]
        if c == "\n":
            bol = True
            i += 1
            continue
        if c in " \t\f\v\r":
            i += 1
            continue
        if src.startswith("//", i):
            j = src.find("\n", i)
            i = n if j < 0 else j
            continue
        if src.startswith("/*", i):
            j = src.find("*/", i + 2)
            if j < 0:
                raise LexError(lines[i], "unterminated comment")
            if "\n" in src[i:j]:
                bol = True  # stricter than C: a directive may not hide behind a comment
            i = j + 2
            continue
        m = _TRIGRAPH.match(src, i)
        if m:
            raise LexError(lines[i], f"trigraph {m.group()!r}")
        m = _LITERAL_PREFIX.match(src, i)
        if m is not None and (m.end() > i or c in "'\""):
            q = src[m.end()]
            j = m.end() + 1
            while j < n and src[j] != q:
                if src[j] == "\n":
                    raise LexError(lines[i], "unterminated literal")
                j += 2 if src[j] == "\\" else 1
            if j >= n:
                raise LexError(lines[i], "unterminated literal")
            kind = "string" if q == '"' else "char"
            toks.append(Token(kind, src[i : j + 1], lines[i], bol))
            bol = False
            i = j + 1
            continue
        m = _IDENT.match(src, i)
        if m:
            toks.append(Token("ident", m.group(), lines[i], bol))
            bol = False
            i = m.end()
            continue
        m = _NUMBER.match(src, i)
        if m:
            toks.append(Token("number", m.group(), lines[i], bol))
            bol = False
            i = m.end()
            continue
        for p in _PUNCT:
            if src.startswith(p, i):
                toks.append(Token("punct", _DIGRAPHS.get(p, p), lines[i], bol))
                i += len(p)
                break
        else:
            # a stray backslash (e.g. a UCN "\u0061" outside an identifier) or other byte
            toks.append(Token("other", c, lines[i], bol))
            i += 1
        bol = False
    return toks


def logical_lines(text: str) -> list[tuple[int, str]]:
    """Split into logical lines (continuations joined): (first physical line, text)."""
    src, lines = _splice(text.replace("\r\n", "\n"))
    out: list[tuple[int, str]] = []
    start = 0
    for k, ch in enumerate(src):
        if ch == "\n":
            out.append((lines[start], src[start:k]))
            start = k + 1
    if start < len(src):
        out.append((lines[start], src[start:]))
    return out

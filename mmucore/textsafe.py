"""Patch and mail text made safe to show: no control characters reach a terminal or a page.

A subject, an author, a WARN condition or a hunk is untrusted text: an escape sequence in it
could repaint a reviewer's terminal (hide a verdict, fake a line) and bidirectional
overrides can reorder what a reader sees. Every such character is shown as a visible escape
(``\\x1b``, ``\\u202e``); newlines and tabs stay.
"""

from __future__ import annotations

import html
import re

# C0 (but tab and newline), DEL, C1, bidi embeddings/overrides/isolates, line/paragraph
# separators, zero-width and BOM characters
_UNSAFE = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u200b-\u200f\u2028-\u202e\u2066-\u2069\ufeff]")


def _visible(m: re.Match[str]) -> str:
    c = ord(m.group())
    return f"\\x{c:02x}" if c < 0x100 else f"\\u{c:04x}"


def printable(text: str) -> str:
    """``text`` with every control or invisible formatting character as a visible escape."""
    return _UNSAFE.sub(_visible, text)


def for_terminal(text: str) -> str:
    """Untrusted text for a rich console: markup escaped, control characters shown."""
    from rich.markup import escape  # only the renderers need rich

    return escape(printable(text))


def for_html(text: str) -> str:
    """Untrusted text for an HTML page: escaped, control characters shown."""
    return html.escape(printable(text))

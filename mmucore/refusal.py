"""The refusal of untrusted input, and where in the tree it points."""

from __future__ import annotations

from typing import TYPE_CHECKING

from mmuci.errors import MmuCiError

if TYPE_CHECKING:
    from mmucore.extract import Piece


class RefusedInput(MmuCiError):
    """Untrusted C that mmu-ci will not compile or run; ``.piece`` is where it was found."""

    def __init__(
        self,
        reason: str,
        piece: Piece | None = None,
        *,
        file: str | None = None,
        line: int | None = None,
        source_line: str = "",
    ) -> None:
        self.reason = reason
        self.piece = piece
        self.file = file if file is not None else (piece.file if piece else None)
        self.line = line if line is not None else (piece.line if piece else None)
        self.source_line = source_line
        where = f"{self.file}:{self.line}: " if self.file else ""
        msg = f"refused untrusted input: {where}{reason}"
        if source_line:
            msg += f"\n    {source_line.strip()}"
        msg += (
            "\nmmu-ci only compiles plain C from the tree; the series adds code it will not"
            " run. Review the patch by hand, or drop that line and re-run."
        )
        super().__init__(msg)


def piece_line(piece: Piece, rel: int) -> tuple[int, str]:
    """Tree line and text for the ``rel``-th (1-based) line of a piece."""
    lines = piece.text.split("\n")  # as the lexer counts: \f, \v and \x1c end no line
    text = lines[rel - 1] if 0 < rel <= len(lines) else ""
    return piece.line + rel - 1, text


def refuse(piece: Piece, rel: int, reason: str) -> RefusedInput:
    line, text = piece_line(piece, rel)
    return RefusedInput(reason, piece, file=piece.file, line=line, source_line=text)

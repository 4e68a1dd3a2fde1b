"""The one progress display: rich bars on stderr when it is a terminal.

    with progress_bars() as progress:
        progress("apply", 1, 3)

Not on a terminal the bars are silent, or with ``lines`` a line per quarter of each
stage (``extracting 6.1: 50%``), so a log shows that a long step is moving.
"""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from rich.progress import TaskID

Update = Callable[[str, int, int], None]  # (stage, done, total)


@contextlib.contextmanager
def progress_bars(enabled: bool | None = None, *, lines: bool = False) -> Iterator[Update]:
    """A ``progress(stage, done, total)`` callback; bars only when stderr is a terminal."""
    if enabled is None:
        enabled = sys.stderr.isatty()
    if not enabled:
        yield _quarters() if lines else (lambda stage, done, total: None)
        return
    from rich.console import Console  # only for bars: off a terminal rich is not needed
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

    bars = Progress(
        TextColumn("{task.description:>6}"),
        BarColumn(),
        TextColumn("{task.completed}/{task.total}"),
        TimeElapsedColumn(),
        console=Console(stderr=True),
        transient=True,
    )
    tasks: dict[str, TaskID] = {}

    def update(stage: str, done: int, total: int) -> None:
        if stage not in tasks:
            tasks[stage] = bars.add_task(stage, total=total)
        bars.update(tasks[stage], completed=done, total=total)

    with bars:
        yield update


def _quarters() -> Update:
    last: dict[str, int] = {}

    def update(stage: str, done: int, total: int) -> None:
        pct = done * 100 // max(total, 1)
        before = last.get(stage, -1)
        if pct // 25 != before // 25 or (pct == 100 and before != 100):
            print(f"{stage}: {pct}%", file=sys.stderr, flush=True)
            last[stage] = pct

    return update

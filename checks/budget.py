"""What a check's run may spend: a deadline (its own and the series') and a number of
sandbox children, shared by every child and bisection step of the run."""

from __future__ import annotations

import threading
import time
from dataclasses import replace
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from mmucore.sandbox import Limits

CHECK_SECONDS = 900.0  # wall-clock deadline of one check's run (every child it starts)
MAX_CHILDREN = 200  # sandbox children one check's run may start (bisection included)
SERIES_SECONDS = 3600.0  # wall-clock deadline of every check one series runs
_series_deadline: list[float] = []  # [deadline, seconds] once a series started


def start_series(seconds: float = SERIES_SECONDS) -> None:
    """Start the deadline shared by every check run from now on (one series). Without a
    call, the first check a process runs starts it: one `mmubot check` is one series."""
    _series_deadline[:] = [time.monotonic() + seconds, seconds]


class Budget:
    """What one check's run may still spend: a deadline and a number of children. A
    death is bisected left half first, so the first killing state is found within
    ~log2(states) children; what the budget leaves unrun is reported, never guessed."""

    def __init__(self, seconds: float = CHECK_SECONDS, children: int = MAX_CHILDREN) -> None:
        if not _series_deadline:
            start_series()
        self.seconds, self.children = seconds, children
        self.deadline = time.monotonic() + seconds
        self.whose = f"the check's deadline of {seconds:g}s"
        if _series_deadline[0] < self.deadline:
            self.deadline = _series_deadline[0]
            self.whose = f"the series' deadline of {_series_deadline[1]:g}s"
        self._left = children
        self._lock = threading.Lock()
        # the smallest state found to kill a child alone, inside the invariants
        self.first_death: int | None = None

    @property
    def used(self) -> int:
        return self.children - self._left

    def died_at(self, index: int) -> None:
        with self._lock:
            if self.first_death is None or index < self.first_death:
                self.first_death = index

    def not_worth(self, lo: int) -> str:
        """Why a dying range from ``lo`` on is not bisected ('' when it is): the budget is
        spent, or a reachable state before it already kills a child (it cannot come first)."""
        if self.first_death is not None and lo > self.first_death:
            return f"the reachable state #{self.first_death} before it already kills the child"
        return self.exhausted()

    def exhausted(self) -> str:
        """'' while another child may start, else why not."""
        if time.monotonic() >= self.deadline:
            return f"{self.whose} passed"
        if self._left <= 0:
            return f"the check started all the {self.children} sandbox children it may"
        return ""

    def take(self) -> str:
        """'' when one more child may start (and count it), else why not."""
        with self._lock:
            why = self.exhausted()
            if not why:
                self._left -= 1
            return why

    def limits(self, limits: Limits, wall: float | None = None) -> Limits:
        """``limits`` with the wall-clock limit cut to what is left before the deadline."""
        left = max(1.0, self.deadline - time.monotonic())
        wall = min(limits.wall_seconds, wall or limits.wall_seconds, left)
        return replace(limits, wall_seconds=wall, cpu_seconds=min(limits.cpu_seconds, wall))

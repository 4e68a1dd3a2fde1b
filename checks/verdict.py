"""The one verdict vocabulary: each word with its severity, exit status, colour and meaning.

Every verdict mmu-ci gives (a check, a patch, a series; text, HTML, JSON, exit status) is
a `Verdict`. It is a StrEnum: it compares equal to its word and serialises as it.
"""

from __future__ import annotations

import traceback
from collections.abc import Iterable
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path


class Verdict(StrEnum):
    SAME = "same"
    DIFFERS = "differs"
    DIFFERS_OUTSIDE = "differs-outside-invariants"
    CRASH = "crash"
    NOT_COVERED = "not-covered"
    BUILD_ERROR = "build-error"
    APPLY_ERROR = "apply-error"
    INTERNAL_ERROR = "internal-error"
    OUT_OF_SCOPE = "out-of-scope"
    SKIPPED = "skipped"  # a single check only: never a patch's or a series' verdict

    @property
    def severity(self) -> int:
        """Higher is worse; the verdict of several is the one with the highest."""
        return len(SEVERITY_ORDER) - SEVERITY_ORDER.index(self)

    @property
    def exit_status(self) -> int:
        return _INFO[self].exit_status

    @property
    def colour(self) -> str:
        """A rich style (also read by the HTML page: the colour, bold or not)."""
        return _INFO[self].colour

    @property
    def meaning(self) -> str:
        return _INFO[self].meaning


# Worst first. Why this order: what a reviewer must act on (a reachable fault, a reachable
# difference) first; then every way the code was not checked, ours before the patch's
# (internal, build, apply, not-covered); then differences only in unreachable states; then clean.
SEVERITY_ORDER = (
    Verdict.CRASH,
    Verdict.DIFFERS,
    Verdict.INTERNAL_ERROR,
    Verdict.BUILD_ERROR,
    Verdict.APPLY_ERROR,
    Verdict.NOT_COVERED,
    Verdict.DIFFERS_OUTSIDE,
    Verdict.SAME,
    Verdict.OUT_OF_SCOPE,
    Verdict.SKIPPED,
)

# Exit statuses of `mmubot check` and `mmubot diff` (the same for both).
FOUND, CLEAN, COULD_NOT_CHECK, OUR_BUG = 1, 0, 2, 3
# Several verdicts: a finding first (never hidden by a patch that did not apply), then our
# own bug, then could-not-check; else clean.
EXIT_PRECEDENCE = (FOUND, OUR_BUG, COULD_NOT_CHECK)


@dataclass(frozen=True)
class _Info:
    exit_status: int
    colour: str
    meaning: str


_INFO = {
    Verdict.CRASH: _Info(
        FOUND,
        "bold #cc0000",
        "a build faults or hangs in a state real KVM can reach (inside the invariants)",
    ),
    Verdict.DIFFERS: _Info(
        FOUND,
        "bold #cc0000",
        "baseline and patched behave differently in a state real KVM can reach",
    ),
    Verdict.INTERNAL_ERROR: _Info(
        OUR_BUG,
        "bold #dd00dd",
        "mmu-ci itself failed (its bug, not the patch's): please report it",
    ),
    Verdict.BUILD_ERROR: _Info(
        COULD_NOT_CHECK,
        "#990099",
        "a revision's extracted code does not compile, or is refused as unsafe input",
    ),
    Verdict.APPLY_ERROR: _Info(
        COULD_NOT_CHECK, "#990099", "the patch does not apply to its base (git am)"
    ),
    Verdict.NOT_COVERED: _Info(
        COULD_NOT_CHECK,
        "#b35900",
        "the patch changes modelled code that no check that ran executes "
        "(the check that would run it does not apply to this tree)",
    ),
    Verdict.DIFFERS_OUTSIDE: _Info(
        FOUND,
        "#aa6600",
        "differences (or a crash) only in states real KVM cannot reach: each breaks a "
        "named invariant",
    ),
    Verdict.SAME: _Info(
        CLEAN,
        "#008800",
        "no difference in any state, possibly up to a named benign normalisation "
        "(shown with the verdict)",
    ),
    Verdict.OUT_OF_SCOPE: _Info(CLEAN, "#888888", "the patch changes no modelled code"),
    Verdict.SKIPPED: _Info(
        CLEAN, "#888888", "a check that did not run: its code is unchanged or not in the tree"
    ),
}

# How an internal error tells the user what to do: it is never the patch's fault.
REPORT_BUG = (
    "this is a bug in mmu-ci, not in the patch: please report it to the mmu-ci issue "
    "tracker with this message and the command that gave it (a report's reproduce line)"
)


def worst(verdicts: Iterable[str], empty: Verdict = Verdict.SAME) -> Verdict:
    """The verdict of several (a check's `skipped` does not count; ``empty`` when none)."""
    real = [Verdict(v) for v in verdicts if v != Verdict.SKIPPED]
    return max(real, key=lambda v: v.severity) if real else empty


def exit_status(verdicts: Iterable[str]) -> int:
    """The exit status for ALL these verdicts, by precedence (EXIT_PRECEDENCE), not worst."""
    codes = {Verdict(v).exit_status for v in verdicts}
    return next((c for c in EXIT_PRECEDENCE if c in codes), CLEAN)


_PACKAGES = {"bot", "checks", "mmuci", "mmucore"}


def internal_error_reason(e: BaseException, stage: str) -> str:
    """The one-line reason of an `internal-error`: that it is mmu-ci's bug, where it
    happened (the stage, and the innermost file:line of ours), and how to report it."""
    name = type(e).__name__
    first = (str(e).strip().splitlines() or [name])[0]
    frames = traceback.extract_tb(e.__traceback__)
    ours = [f for f in frames if _PACKAGES & set(Path(f.filename).parts)]
    where = ""
    if ours or frames:
        f = (ours or frames)[-1]
        parts = Path(f.filename).parts
        rel = "/".join(parts[-2:]) if ours else Path(f.filename).name
        where = f" at {rel}:{f.lineno}"
    return f"mmu-ci internal error while {stage}: {name}{where}: {first}; {REPORT_BUG}"

"""Resource limits that never raise a hard limit (issue 10.11): an unprivileged process
may not, so an operator's lowered limits stay in force. Light: imported by the child."""

from __future__ import annotations

import resource


def clamp_hard(kind: int, want: int) -> tuple[int, int]:
    """(soft, hard) for ``want``, at most the current hard limit of ``kind``."""
    _, hard = resource.getrlimit(kind)
    if hard != resource.RLIM_INFINITY:
        want = min(want, hard)
    return want, want

"""Intake: a series reference (message-id, lore URL, mbox or .patch file) -> `Series`.

The reference is read (a file, or the thread fetched: bot/mbox.py) and the mail grouped
into one revision of a series by b4 (bot/series.py) in a worker killed at intake.timeout
(bot/worker.py): untrusted mail meets b4's and Python's parsers only there. Every way a
thread can be unusable ends in `IntakeError` (bot/mbox.py) with a one-line reason.
"""

from __future__ import annotations

import hashlib
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from bot.mbox import MAX_REF, IntakeError, Limits, fetch_thread, split_mbox
from bot.series import Series, build_series, from_json, to_json
from bot.worker import WorkerError, with_deadline

if TYPE_CHECKING:
    from bot.memo import Memo


def load(
    ref: str,
    lore_url: str,
    revision: int | None = None,
    limits: Limits | None = None,
    memo: Memo | None = None,
) -> Series:
    """A Series from a message-id, a lore URL, or a path to an mbox/.patch file; with
    ``memo``, a thread read before (the same bytes) is not parsed again."""
    limits = limits or Limits()
    if len(ref) > MAX_REF:
        raise IntakeError(f"{ref[:60]!r}... is {len(ref)} characters long: not a series reference")
    p = Path(ref).expanduser()
    try:
        exists, is_file = p.exists(), p.is_file()
    except (OSError, ValueError) as e:
        raise IntakeError(f"{ref[:200]!r}: not a usable path ({e})") from e
    if "@" not in ref or exists:
        if is_file:
            size = p.stat().st_size
            if size > limits.max_fetch_bytes:
                raise IntakeError(
                    f"{p}: {size:,} bytes, more than lore.max_bytes ({limits.max_fetch_bytes:,})"
                )
            return parse(p.read_bytes(), str(p), revision=revision, limits=limits, memo=memo)
        if exists:
            raise IntakeError(f"{p} is not a file: give an mbox or .patch file")
        if not ref.startswith(("http://", "https://")) and "@" not in ref:
            raise IntakeError(f"{ref!r}: no such file, and not a message-id or lore URL")
    msgid, url, raw = fetch_thread(ref, lore_url, limits)
    return parse(
        raw, ref, origin=f"thread of <{msgid}>", msgid=msgid, lore_url=url, revision=revision,
        limits=limits, memo=memo,
    )  # fmt: skip


def parse(
    data: bytes, source: str, *, origin: str | None = None, msgid: str | None = None,
    lore_url: str | None = None, revision: int | None = None, limits: Limits | None = None,
    memo: Memo | None = None,
) -> Series:  # fmt: skip
    """Mbox bytes -> Series, in a worker process killed at intake.timeout: untrusted mail
    meets b4's and Python's parsers there. Any failure is one IntakeError line. With
    ``memo`` the Series read from the same bytes, arguments and intake code is reused (a
    failure is not remembered)."""
    limits = limits or Limits()
    if memo is not None:
        from mmuci.owncode import code_version

        digest = hashlib.sha256(data).hexdigest()
        args = [source, origin, msgid, lore_url, revision, limits]
        key = ("thread", digest, repr(args), code_version("bot"))
        known = memo.get(key)
        if isinstance(known, dict):
            return from_json(known)
        series = parse(
            data, source, origin=origin, msgid=msgid, lore_url=lore_url, revision=revision,
            limits=limits,
        )  # fmt: skip
        memo.put(key, to_json(series))
        return series

    what = origin or source

    def work() -> dict[str, Any]:
        skipped: list[str] = []
        msgs = split_mbox(data, what, limits, skipped)
        s = build_series(
            msgs, source, msgid=msgid, lore_url=lore_url, revision=revision, limits=limits
        )
        return to_json(replace(s, skipped=tuple(skipped)))

    try:
        return from_json(with_deadline(work, limits.timeout, f"{what}: reading the mail"))
    except WorkerError as e:
        raise IntakeError(str(e)) from e

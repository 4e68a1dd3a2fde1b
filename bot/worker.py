"""Run a parse of untrusted input in a forked worker, killed at a deadline.

Python's and b4's mail parsers hold regular expressions and loops that some inputs make
super-linear; no check of ours can prove every path linear, so the whole parse runs in a
fork of this process and is killed when its time is up. The worker is our own code on
untrusted data (no built module is loaded): its answer comes back as JSON over a pipe.
"""

from __future__ import annotations

import json
import os
import select
import signal
import time
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any

from mmuci.errors import InternalError, MmuCiError

MAX_ANSWER = 1 << 30
_PARSERS = {"email", "b4", "liblore"}  # package directories of the mail parsers


class WorkerError(MmuCiError):
    """The input could not be parsed in time, or not at all (one line, exit status 2)."""


def _parser_failed(tb: list[traceback.FrameSummary]) -> bool:
    """True when the exception came from a mail parser (email, b4, liblore) on the input,
    not from mmu-ci's own code."""
    parts = {part for f in tb for part in Path(f.filename).parts}
    return bool(parts & _PARSERS)


def _answer(func: Callable[[], Any]) -> bytes:
    try:
        return json.dumps({"ok": func()}).encode()
    except MmuCiError as e:
        first = str(e).splitlines()[0] if str(e) else type(e).__name__
        return json.dumps({"error": first}).encode()
    except BaseException as e:  # noqa: BLE001 - reported to the parent either way
        tb = traceback.extract_tb(e.__traceback__)
        where = f" at {Path(tb[-1].filename).name}:{tb[-1].lineno}" if tb else ""
        first = (str(e).splitlines() or [""])[0][:200]
        text = f"{type(e).__name__}{where}: {first}"
        if _parser_failed(tb):
            return json.dumps({"error": f"malformed mail ({text})"}).encode()
        return json.dumps({"internal": text}).encode()


def with_deadline(func: Callable[[], Any], timeout: float, what: str) -> Any:
    """``func()`` (its value JSON-serialisable) run in a forked worker; WorkerError when it
    raises, or when it has not answered within ``timeout`` seconds (it is killed)."""
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:  # the worker: never returns into the caller's code
        try:
            os.close(r)
            data = _answer(func)
            with os.fdopen(w, "wb") as f:
                f.write(data)
        finally:
            os._exit(0)
    os.close(w)
    deadline = time.monotonic() + timeout
    chunks: list[bytes] = []
    size = 0
    try:
        while True:
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([r], [], [], left)[0]:
                raise WorkerError(
                    f"{what} took longer than intake.timeout ({timeout:g} s); "
                    "the mail is too large or malformed (raise intake.timeout if it is genuine)"
                )
            chunk = os.read(r, 1 << 20)
            if not chunk:
                break
            size += len(chunk)
            if size > MAX_ANSWER:
                raise WorkerError(f"{what}: the parsed series is larger than {MAX_ANSWER:,} bytes")
            chunks.append(chunk)
    finally:
        os.close(r)
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        os.waitpid(pid, 0)
    try:
        answer = json.loads(b"".join(chunks))
    except ValueError:
        raise WorkerError(f"{what}: the worker died without an answer") from None
    if "internal" in answer:
        raise InternalError(
            f"internal error of mmu-ci while {what}: {answer['internal']}; "
            "please report it with the reproduce command"
        )
    if "error" in answer:
        raise WorkerError(answer["error"])
    return answer["ok"]

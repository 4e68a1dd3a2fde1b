"""The upstream version of the installed Debian kernel sources, read from dpkg.

Debian moves linux-source-6.1/6.12 to a new point release now and then, so tests name
the version the machine has instead of pinning one (``6.12.118-1~deb12u1`` -> ``6.12.118``).
The reading is dpkg's, independent of the bot's own Makefile parser.
"""

from __future__ import annotations

import functools
import subprocess


@functools.cache
def version(series: str) -> str:
    """``'6.12'`` -> the installed linux-source-6.12's upstream version, e.g. ``'6.12.118'``."""
    out = subprocess.run(
        ["dpkg-query", "-W", "-f=${Version}", f"linux-source-{series}"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    return out.split("-", 1)[0]


V61 = version("6.1")
V612 = version("6.12")

"""`mmubot demo`: the main job on the embedded default.

Until the pipeline exists (issue 5) it prepares both Debian trees and says so.
"""

from __future__ import annotations

import argparse

from bot import kernels
from bot.commands.kernel import _progress_printer
from bot.config import Config


def run(args: argparse.Namespace, cfg: Config) -> int:
    for ver in ("6.1", "6.12"):
        tree, worked = kernels.prepare(cfg.data_dir, ver, _progress_printer(f"extracting {ver}"))
        state = "prepared" if worked else "already prepared"
        print(
            f"{tree.name}: Linux {tree.version} {state} at {tree.path} (commit {tree.commit[:12]})"
        )
    print("The check pipeline (fetch, apply, extract, build, check, report) is not wired yet.")
    return 0

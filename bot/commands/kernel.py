"""`mmubot kernel prepare VERSION|PATH` and `mmubot kernel list`."""

from __future__ import annotations

import argparse
import sys

from bot import kernels
from bot.config import Config
from mmucore.errors import MmuCiError


def _progress_printer(label: str):
    """Progress on stderr: a rich bar on a terminal, a few plain lines otherwise."""
    if sys.stderr.isatty():
        from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn

        bar = Progress(TextColumn(label), BarColumn(), DownloadColumn(), transient=True)
        task = bar.add_task(label, total=None)
        bar.start()

        def cb(done: int, total: int) -> None:
            bar.update(task, completed=done, total=total)
            if done >= total:
                bar.stop()

        return cb
    last = [-1]

    def plain(done: int, total: int) -> None:
        pct = done * 100 // max(total, 1)
        if pct // 25 != last[0] // 25 or (pct == 100 and last[0] != 100):
            print(f"{label}: {pct}%", file=sys.stderr, flush=True)
            last[0] = pct

    return plain


def prepare(args: argparse.Namespace, cfg: Config) -> int:
    version = getattr(args, "version", None)
    if version is not None and len(args.spec) > 1:
        raise MmuCiError("--version names the version of one tree: prepare that tree alone")
    for spec in args.spec:
        progress = _progress_printer(f"extracting {spec}")
        tree, worked = kernels.prepare(cfg.data_dir, spec, progress, version=version)
        what = "prepared" if worked else "already prepared" if tree.prepared else "registered"
        print(
            f"{tree.name}: Linux {tree.version} {what} at {tree.path} ({tree.commit[:12]}); "
            f"version {tree.version} (from {tree.version_from})"
        )
    return 0


def list_trees(args: argparse.Namespace, cfg: Config) -> int:
    reg = kernels.load_registry(cfg.data_dir)
    if not reg:
        print("no kernel trees yet; run `mmubot kernel prepare 6.1`")
    for t in reg.values():
        print(f"{t.name}\tversion {t.version} (from {t.version_from})\t{t.commit[:12]}\t{t.path}")
    return 0

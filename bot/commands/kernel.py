"""`mmubot kernel prepare VERSION|PATH` and `mmubot kernel list`."""

from __future__ import annotations

import argparse
import functools

from bot import kernels
from bot.config import Config
from bot.progress import progress_bars
from mmuci.errors import MmuCiError


def prepare(args: argparse.Namespace, cfg: Config) -> int:
    version = getattr(args, "version", None)
    if version is not None and len(args.spec) > 1:
        raise MmuCiError("--version names the version of one tree: prepare that tree alone")
    for spec in args.spec:
        with progress_bars(lines=True) as progress:
            on_bytes = functools.partial(progress, f"extracting {spec}")
            tree, worked = kernels.prepare(cfg.data_dir, spec, on_bytes, version=version)
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

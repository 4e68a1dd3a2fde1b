"""`mmubot extract --tree PATH [--rev REV] [--out DIR]`: extract, build, and say what."""

from __future__ import annotations

import argparse
import shutil
import time
from pathlib import Path

from bot import kernels
from bot.config import Config
from mmucore import build, extract


def run(args: argparse.Namespace, cfg: Config) -> int:
    tree, version = kernels.resolve_tree(cfg.data_dir, args.tree)
    t0 = time.monotonic()
    ex = extract.extract(tree, args.rev, version=version)
    t_extract = time.monotonic() - t0
    b = build.build(ex, cache_dir=cfg.data_dir / "build-cache")
    print(f"Linux {ex.version} at {ex.rev[:12]} ({tree})")
    print(f"features: {', '.join(sorted(ex.features)) or '-'}")
    print("extracted:")
    for f in sorted(ex.functions.values(), key=lambda f: (f.file, f.line)):
        mark = " (entry point)" if f.name in ex.entry_points else ""
        print(f"  {f.name:40} {f.file}:{f.line}{mark}")
    for name, why in ex.missing.items():
        print(f"  {name:40} missing: {why}")
    types = sorted({p.name for p in ex.pieces if p.kind == "type"})
    macros = sorted({p.name for p in ex.pieces if p.kind == "macro"})
    print(f"types: {', '.join(types)}")
    print(f"macros: {', '.join(macros)}")
    print(f"shimmed: {', '.join(ex.shimmed)}")
    how = "cache hit" if b.cached else "compiled"
    print(f"extract {t_extract:.2f}s, build {b.seconds:.2f}s ({how}): {b.module_name}")
    if args.out:
        out = Path(args.out)
        out.mkdir(parents=True, exist_ok=True)
        (out / "tu.c").write_text(ex.tu)
        (out / "build.log").write_text(b.log)
        shutil.copy2(b.path, out / b.path.name)
        shutil.copy2(b.tu_path, out / b.tu_path.name)
        print(f"wrote {out}/tu.c, build.log, {b.path.name}, {b.tu_path.name}")
    return 0

"""`mmubot import REPORT.json...`: store saved `check --json` reports in the project
database (bot.service.results.store_report), so the dashboard shows them without a
watcher."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from bot.config import Config
from mmuci.errors import MmuCiError
from mmucore.textsafe import printable


def run(args: argparse.Namespace, cfg: Config) -> int:
    from bot.service.results import store_report
    from bot.store.db import open_engine, session
    from bot.store.models import Revision

    reports = []
    for name in args.reports:
        path = Path(name)
        try:
            reports.append((path, json.loads(path.read_text())))
        except OSError as e:
            raise MmuCiError(f"cannot read {path}: {e.strerror}; give a saved report") from e
        except (ValueError, UnicodeDecodeError) as e:
            raise MmuCiError(
                f"{path} is not JSON ({e}); write one with the --json option of mmubot check"
            ) from e
    engine = open_engine(cfg)
    try:
        with session(engine) as s:  # all or none
            for path, report in reports:
                row = store_report(s, report, list_name=args.list_name)
                rev = s.get(Revision, row.revision_id)
                where = f"series {rev.series_id} v{rev.revision}" if rev else "?"
                subject = printable(str(report["series"].get("subject", "")))
                print(f"{path}: run {row.id}, {where}: {row.verdict} — {subject}")
    finally:
        engine.dispose()
    return 0

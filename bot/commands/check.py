"""`mmubot check SERIES`: fetch, apply, scope, build, check, report."""

from __future__ import annotations

import argparse
import sys

from bot import pipeline
from bot.config import Config
from bot.progress import progress_bars
from bot.render_html import write_html
from bot.render_text import print_report


def run(args: argparse.Namespace, cfg: Config) -> int:
    """Check one series; the exit status is Report.exit_code (the same as `mmubot diff`)."""
    with progress_bars() as progress:
        report = pipeline.check(
            args.series,
            cfg,
            tree_name=getattr(args, "tree", None),
            revision=getattr(args, "revision", None),
            progress=progress,
        )
    print_report(report)
    if getattr(args, "json_out", None):
        report.write_json(args.json_out)
        print(f"JSON report: {args.json_out}", file=sys.stderr)
    if getattr(args, "html_out", None):
        write_html(report, args.html_out)
        print(f"HTML report: {args.html_out}", file=sys.stderr)
    if getattr(args, "post", False):
        from bot.commands.post import publish_and_print

        publish_and_print(report.to_json(), cfg)
    return report.exit_code

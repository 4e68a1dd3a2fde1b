"""`mmubot post REPORT.json`: publish a saved report per policy (README "Publishing")."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from bot.config import Config
from mmuci.errors import MmuCiError


def publish_and_print(report: dict[str, Any], cfg: Config) -> None:
    from bot.publish.run import publish

    for line in publish(report, cfg):
        print(f"publish: {line}")


def run(args: argparse.Namespace, cfg: Config) -> int:
    try:
        report = json.loads(Path(args.report).read_text())
    except (OSError, ValueError) as e:
        raise MmuCiError(
            f"{args.report}: cannot read the report ({e}); "
            "write one with the --json option of mmubot check"
        ) from e
    publish_and_print(report, cfg)
    return 0

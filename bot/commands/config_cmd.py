"""`mmubot config show`: the effective configuration and where each value came from."""

from __future__ import annotations

import argparse

from bot.config import Config, default_config_path


def show(args: argparse.Namespace, cfg: Config) -> int:
    print(f"# config file: {cfg.path or f'{default_config_path()} (absent)'}")
    for key, value, source in cfg.rows():
        print(f"{key} = {value!r}\t# {source}")
    return 0

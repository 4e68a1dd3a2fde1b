"""`mmubot serve [--host H] [--port P]`: the dashboard (README "Dashboard"), served by
uvicorn over the project database (`database.url`), migrated first."""

from __future__ import annotations

import argparse
import sys

from bot.config import Config
from mmucore.errors import MmuCiError


def run(args: argparse.Namespace, cfg: Config) -> int:
    import uvicorn

    from bot.store.db import open_engine
    from bot.web.app import create_app

    host = args.host or cfg.get("web", "host")
    port = int(args.port if args.port is not None else cfg.get("web", "port"))
    if not 0 <= port <= 65535:
        raise MmuCiError(f"--port {port}: a TCP port is 0..65535")
    engine = open_engine(cfg)
    app = create_app(cfg, engine)
    server = uvicorn.Server(
        uvicorn.Config(app, host=host, port=port, log_level="warning", access_log=False)
    )
    print(f"mmubot serve: the dashboard on http://{host}:{port}/ (Ctrl-C stops it)", flush=True)
    try:
        server.run()
    finally:
        engine.dispose()
    if not server.started:
        print(
            f"mmubot serve: could not listen on {host}:{port}; try another --port", file=sys.stderr
        )
        return 2
    return 0

"""`mmubot serve [--host H] [--port P]`: the dashboard (README "Dashboard"), served by
uvicorn over the project database (`database.url`), migrated first. Port 0 takes any free
port; the first line printed is the URL it listens on."""

from __future__ import annotations

import argparse
import socket

from bot.config import Config
from mmuci.errors import MmuCiError


def _listen(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as e:
        sock.close()
        raise MmuCiError(
            f"cannot listen on {host}:{port}: {e.strerror}; choose another --port or --host"
        ) from e
    sock.listen(128)
    return sock


def run(args: argparse.Namespace, cfg: Config) -> int:
    import uvicorn

    from bot.store.db import open_engine
    from bot.web.app import create_app

    host = args.host or str(cfg.get("web", "host"))
    port = int(args.port if args.port is not None else cfg.get("web", "port"))
    if not 0 <= port <= 65535:
        raise MmuCiError(f"--port {port}: a TCP port is 0..65535")
    engine = open_engine(cfg)
    sock = _listen(host, port)
    app = create_app(cfg, engine)
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", access_log=False))
    shown = f"[{host}]" if ":" in host else host
    print(f"mmubot serve: http://{shown}:{sock.getsockname()[1]}/ (Ctrl-C stops it)", flush=True)
    try:
        server.run(sockets=[sock])
    finally:
        sock.close()
        engine.dispose()
    return 0

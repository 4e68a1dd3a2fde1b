"""The dashboard application: every page family's routes, the static files it serves
itself (no asset from elsewhere), errors as pages or JSON, the per-client request limit and
headers that forbid scripts and foreign resources.

    app = create_app(cfg, engine)   # served by `mmubot serve` (uvicorn)
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Engine
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from bot.config import Config
from bot.store import db
from bot.web import diffs, history, listing, runs, series, status
from bot.web.common import (
    HERE,
    Links,
    PageError,
    RateLimit,
    environment,
    page,
    verdict_css,
    wants_json,
)

# No scripts at all; styles, images and forms only from the dashboard itself.
HEADERS = [
    (
        b"content-security-policy",
        b"default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; "
        b"frame-ancestors 'none'; base-uri 'none'",
    ),
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"same-origin"),
]
API = {
    "/api/series": "the series list: ?verdict=&author=&tree=&list=&q=&page=",
    "/api/series/<id>": "one series (?rev=N): its newest run's report, as `check --json`",
    "/api/series/<msgid>/v<n>": "the same, by the message-id the mail links",
    "/api/checks/<id>": "one check result explained: groups, examples, side-by-side traces",
    "/api/history": "verdicts per week, hours to verdict, states per second (?weeks=)",
    "/api/status": "queue, workers, last polls, failures",
    "POST /api/runs": 'queue a manual run: {"ref": MSGID or lore URL, "tree": NAME}, token',
}


class Guard:
    """ASGI middleware: the per-client request limit, and the security headers."""

    def __init__(self, app: ASGIApp, limit: RateLimit) -> None:
        self.app, self.limit = app, limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        client = (scope.get("client") or ("?", 0))[0]
        wait = self.limit.hit(client)
        if wait:
            body = f"too many requests; try again in {int(wait) + 1} s\n".encode()
            await send(
                {
                    "type": "http.response.start",
                    "status": 429,
                    "headers": [
                        (b"content-type", b"text/plain; charset=utf-8"),
                        (b"retry-after", str(int(wait) + 1).encode()),
                        *HEADERS,
                    ],
                }
            )
            await send({"type": "http.response.body", "body": body})
            return

        async def with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                message = {**message, "headers": [*message.get("headers", []), *HEADERS]}
            await send(message)

        await self.app(scope, receive, with_headers)


def _error(request: Request, status: int, message: str, retry: int | None = None) -> Response:
    headers = {"Retry-After": str(retry)} if retry else None
    if wants_json(request):
        return JSONResponse({"error": message, "status": status}, status, headers=headers)
    resp = page(request, "error.html", {"d": None, "status": status, "message": message}, status)
    if headers:
        resp.headers.update(headers)
    return resp


def _page_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, PageError)
    return _error(request, exc.status, exc.message, exc.retry_after)


def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    why = "no such page; start at /series" if exc.status_code == 404 else str(exc.detail)
    return _error(request, exc.status_code, why)


def _home(request: Request) -> Response:
    return RedirectResponse("/series", status_code=302)


def _verdicts_css(request: Request) -> Response:
    return Response(verdict_css(), media_type="text/css")


def _api(request: Request) -> Response:
    return JSONResponse({"endpoints": API})


def create_app(cfg: Config, engine: Engine) -> Starlette:
    routes: list[Any] = [
        Route("/", _home),
        Route("/api", _api),
        Route("/verdicts.css", _verdicts_css),
        Mount("/static", StaticFiles(directory=HERE / "static"), name="static"),
    ]
    for family in (listing, series, diffs, history, status, runs):
        routes += family.routes()
    app = Starlette(
        routes=routes,
        exception_handlers={PageError: _page_error, HTTPException: _http_error},
    )
    app.state.session = lambda: db.session(engine)
    app.state.templates = environment()
    app.state.links = Links(
        cfg.get("lore", "url"), cfg.get("patchwork", "url"), cfg.get("patchwork", "project")
    )
    app.state.plots = {}
    app.state.token = str(cfg.get("web", "token") or "")
    app.state.page_size = int(cfg.get("web", "page_size"))
    app.state.runs_limit = RateLimit(int(cfg.get("web", "runs_per_hour")), 3600.0)
    app.add_middleware(Guard, limit=RateLimit(int(cfg.get("web", "requests_per_minute")), 60.0))
    return app

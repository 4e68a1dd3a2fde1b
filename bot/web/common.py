"""What every page family shares: the Jinja2 templates (autoescaped: subjects, authors
and traces are untrusted mail and patch text), verdict colours, lore and patchwork links,
the per-client rate limits, the HTML/JSON responses and the errors they answer with."""

from __future__ import annotations

import threading
import time
import urllib.parse
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import jinja2
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response

from checks.verdict import SEVERITY_ORDER, Verdict
from mmucore.textsafe import printable

HERE = Path(__file__).parent
VERDICTS = [str(v) for v in SEVERITY_ORDER if v != Verdict.SKIPPED]


class PageError(Exception):
    """A request the dashboard answers with an error page (or JSON): status and why."""

    def __init__(self, status: int, message: str, retry_after: int | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.retry_after = retry_after  # 429: seconds until a request is allowed


def verdict_css() -> str:
    """One CSS class per verdict, its colour from the one vocabulary (checks/verdict.py)."""
    out = []
    for v in Verdict:
        bold = " font-weight: bold;" if "bold" in v.colour.split() else ""
        out.append(f".v-{v} {{ color: {v.colour.split()[-1]};{bold} }}")
    return "\n".join(out)


def _num(n: Any) -> str:
    return f"{n:,}" if isinstance(n, int) else str(n)


def _when(t: datetime | None) -> str:
    return t.strftime("%Y-%m-%d %H:%M") if t else "—"


def _text(value: Any) -> str:
    """Untrusted text with control and invisible characters shown (autoescape does HTML)."""
    return printable("" if value is None else str(value))


def environment() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(HERE / "templates"),
        autoescape=True,  # every {{ }} is HTML-escaped; nothing is marked safe
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters.update(num=_num, when=_when, text=_text, q=urllib.parse.quote_plus)
    env.globals.update(VERDICTS=VERDICTS, verdict_css=verdict_css())
    return env


@dataclass(frozen=True)
class Links:
    """Where a series lives outside the dashboard: the list archive and patchwork."""

    lore_url: str
    patchwork_url: str
    patchwork_project: str

    def lore(self, msgid: str, base: str | None = None) -> str:
        root = (base or self.lore_url).rstrip("/")
        return f"{root}/{urllib.parse.quote(msgid, safe='@')}/" if msgid else ""

    def patchwork(self, msgid: str) -> str:
        """The patch on patchwork (its checks are there), by message-id."""
        if not (self.patchwork_url and self.patchwork_project and msgid):
            return ""
        root = self.patchwork_url.rstrip("/")
        return f"{root}/project/{self.patchwork_project}/patch/{urllib.parse.quote(msgid)}/"


class RateLimit:
    """At most ``limit`` requests per ``window`` seconds for each client (sliding window)."""

    def __init__(self, limit: int, window: float) -> None:
        self.limit, self.window = limit, window
        self._seen: dict[str, deque[float]] = {}
        self._lock = threading.Lock()

    def hit(self, client: str, now: float | None = None) -> float:
        """Count one request; 0 when allowed, else the seconds until one is."""
        now = time.monotonic() if now is None else now
        with self._lock:
            q = self._seen.setdefault(client, deque())
            while q and q[0] <= now - self.window:
                q.popleft()
            if len(q) >= self.limit:
                return q[0] + self.window - now
            q.append(now)
            if len(self._seen) > 10_000:  # forget clients idle for a whole window
                live = {k: v for k, v in self._seen.items() if v and v[-1] > now - self.window}
                self._seen = live
            return 0.0


def client_of(request: Request) -> str:
    return request.client.host if request.client else "?"


def wants_json(request: Request) -> bool:
    return request.url.path.startswith("/api/")


def page(request: Request, name: str, ctx: Mapping[str, Any], status: int = 200) -> Response:
    env: jinja2.Environment = request.app.state.templates
    html = env.get_template(name).render(request=request, **ctx)
    return HTMLResponse(html, status_code=status)


def answer(request: Request, name: str, data: Any, json_body: Mapping[str, Any]) -> Response:
    """The page ``name`` with ``data``, or its JSON twin under /api/."""
    if wants_json(request):
        return JSONResponse(dict(json_body))
    return page(request, name, {"d": data})


def int_param(request: Request, name: str, default: int, lo: int = 1, hi: int = 10**9) -> int:
    raw = request.query_params.get(name)
    if raw in (None, ""):
        return default
    try:
        value = int(raw)
    except ValueError as e:
        raise PageError(400, f"{name}={raw[:20]!r} is not a number") from e
    if not lo <= value <= hi:
        raise PageError(400, f"{name}={value} is out of range ({lo}..{hi})")
    return value


def iso(t: datetime | None) -> str | None:
    return t.isoformat() + "Z" if t else None

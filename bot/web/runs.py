"""Manual runs: the form (/runs/new) and POST /api/runs, the only requests that write.

A run is asked for by a message-id or a lore URL and queued with bot.service.queue.enqueue
(trigger "manual", key ``manual:<msgid>:<utc timestamp>``). Both need the token of
`web.token` (the API as ``Authorization: Bearer TOKEN``, the form as a field): without it,
401. Every attempt counts against `web.runs_per_hour` per client address, so guessing the
token is slow too; past it, 429 with Retry-After.
"""

from __future__ import annotations

import hmac
import json
import re
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs

from sqlalchemy import select
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from bot.mbox import IntakeError, parse_ref
from bot.service.queue import enqueue
from bot.store.models import Job, Patch, Revision, utcnow
from bot.web.common import Links, PageError, client_of, iso, page

MAX_BODY = 16384
_TREE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._/-]{0,255}$")


@dataclass(frozen=True)
class RunRequest:
    msgid: str
    ref: str  # a URL, never a path: the job fetches it, it never reads a local file
    tree: str | None


def parse_request(ref: str, tree: str | None, links: Links) -> RunRequest:
    """A manual run's fields checked: a message-id or lore URL, a tree name or nothing."""
    ref = (ref or "").strip()
    if not ref:
        raise PageError(400, "give a message-id or a lore URL (ref)")
    try:
        msgid, base = parse_ref(ref, links.lore_url)
    except IntakeError as e:
        raise PageError(400, str(e)) from e
    tree = (tree or "").strip() or None
    if tree is not None and not _TREE.match(tree):
        raise PageError(400, f"tree {tree[:60]!r} is not a tree name (see `mmubot kernel list`)")
    return RunRequest(msgid, links.lore(msgid, base), tree)


def queue_run(s: Session, req: RunRequest) -> tuple[Job, bool]:
    """The job for a manual run, tied to the revision when the message is known."""
    rev = s.scalar(select(Revision).where(Revision.msgid == req.msgid))
    if rev is None:
        rev = s.scalar(select(Revision).join(Patch.revision).where(Patch.msgid == req.msgid))
    stamp = utcnow().isoformat(timespec="microseconds") + "Z"
    return enqueue(
        s,
        key=f"manual:{req.msgid}:{stamp}",
        ref=req.ref,
        trigger="manual",
        revision_id=rev.id if rev else None,
        tree=req.tree,
    )


def _queue(request: Request, req: RunRequest) -> dict[str, Any]:
    with request.app.state.session() as s:
        job, new = queue_run(s, req)
        return job_json(job, new)


def job_json(job: Job, new: bool) -> dict[str, Any]:
    return {
        "job": {
            "id": job.id,
            "key": job.key,
            "ref": job.ref,
            "tree": job.tree,
            "trigger": job.trigger,
            "state": str(job.state),
            "revision_id": job.revision_id,
            "created_at": iso(job.created_at),
        },
        "new": new,
        "status": "/api/status",
    }


def _limit(request: Request) -> None:
    wait = request.app.state.runs_limit.hit(client_of(request))
    if wait:
        secs = int(wait) + 1
        raise PageError(429, f"too many manual-run requests; try again in {secs} s", secs)


def _authorise(request: Request, given: str | None) -> None:
    token = request.app.state.token
    if not token:
        raise PageError(401, "manual runs are off: the operator sets web.token to allow them")
    if not given or not hmac.compare_digest(given.encode(), token.encode()):
        raise PageError(401, "a valid token is needed: Authorization: Bearer TOKEN (web.token)")


async def _body(request: Request) -> bytes:
    body = b""
    async for chunk in request.stream():
        body += chunk
        if len(body) > MAX_BODY:
            raise PageError(413, f"the request is larger than {MAX_BODY} bytes")
    return body


async def api_runs(request: Request) -> Response:
    _limit(request)
    auth = request.headers.get("authorization", "")
    _authorise(request, auth[7:].strip() if auth.lower().startswith("bearer ") else None)
    body = await _body(request)
    try:
        data = json.loads(body or b"{}")
    except (ValueError, UnicodeDecodeError) as e:
        raise PageError(400, f'the body is not JSON ({e}); send {{"ref": "MSGID"}}') from e
    if not isinstance(data, dict) or not isinstance(data.get("ref", ""), str):
        raise PageError(400, 'send a JSON object: {"ref": "MSGID or lore URL", "tree": "NAME"}')
    tree = data.get("tree") if isinstance(data.get("tree"), str) else None
    req = parse_request(data.get("ref", ""), tree, request.app.state.links)
    out = await run_in_threadpool(_queue, request, req)
    return JSONResponse(out, status_code=201 if out["new"] else 200)


def form(request: Request) -> Response:
    return page(request, "run_form.html", {"d": None, "error": "", "ref": "", "tree": ""})


async def form_post(request: Request) -> Response:
    _limit(request)
    body = await _body(request)
    fields = {k: v[0] for k, v in parse_qs(body.decode("utf-8", "replace")).items()}
    ref, tree = fields.get("ref", ""), fields.get("tree", "")
    ctx = {"ref": ref, "tree": tree}
    try:
        _authorise(request, fields.get("token"))
        req = parse_request(ref, tree, request.app.state.links)
    except PageError as e:
        return page(request, "run_form.html", {"d": None, "error": e.message, **ctx}, e.status)
    out = await run_in_threadpool(_queue, request, req)
    return page(request, "run_queued.html", {"d": out["job"]}, 201)


def routes() -> list[Route]:
    return [
        Route("/runs/new", form),
        Route("/runs", form_post, methods=["POST"]),
        Route("/api/runs", api_runs, methods=["POST"]),
    ]

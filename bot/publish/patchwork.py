"""Patchwork REST 1.2: find a patch by message-id, read its checks, post ours if missing
or different. Each check is an outbox row keyed by (patch message-id, context)."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from typing import Any

import requests
from sqlalchemy import Engine

from bot.config import Config
from bot.publish.view import PatchView, ReportView
from bot.store.db import session
from bot.store.models import Kind, OutboxItem, State, utcnow
from checks.verdict import Verdict
from mmuci.errors import MmuCiError

STATES = {
    Verdict.SAME: "success",
    Verdict.OUT_OF_SCOPE: "success",
    Verdict.DIFFERS_OUTSIDE: "warning",
    Verdict.NOT_COVERED: "warning",
    Verdict.INTERNAL_ERROR: "warning",
    Verdict.SKIPPED: "success",
}


class PatchworkError(MmuCiError):
    """Patchwork refused or could not be reached."""


@dataclass(frozen=True)
class Patchwork:
    url: str
    project: str
    token: str
    timeout: float
    retries: int

    @classmethod
    def from_config(cls, cfg: Config) -> Patchwork | None:
        url = cfg.get("patchwork", "url")
        if not url:
            return None
        if not cfg.get("patchwork", "project") or not cfg.get("patchwork", "token"):
            raise PatchworkError("patchwork.url is set: set patchwork.project and .token too")
        return cls(
            url.rstrip("/"),
            cfg.get("patchwork", "project"),
            cfg.get("patchwork", "token"),
            float(cfg.get("patchwork", "timeout")),
            int(cfg.get("patchwork", "retries")),
        )

    def __repr__(self) -> str:
        return f"Patchwork({self.url}, project={self.project!r})"

    def _req(
        self, method: str, path: str, *, params: dict[str, str] | None = None, body: Any = None
    ) -> object:
        headers = {"Authorization": f"Token {self.token}", "Accept": "application/json"}
        last = ""
        for attempt in range(self.retries):
            if attempt:
                time.sleep(0.5 * 2 ** (attempt - 1))
            try:
                r = requests.request(
                    method,
                    self.url + path,
                    headers=headers,
                    timeout=self.timeout,
                    params=params,
                    json=body,
                )
            except requests.RequestException as e:
                last = f"{type(e).__name__}: {e}"
                continue
            if r.status_code == 403:
                raise PatchworkError(
                    f"{self.url}{path}: 403; the token may not post checks "
                    "(it needs maintainer rights on the project)"
                )
            if r.status_code == 404:
                raise PatchworkError(f"{self.url}{path}: 404; check patchwork.url and .project")
            if r.status_code >= 500:
                last = f"HTTP {r.status_code}"
                continue
            if r.status_code >= 400:
                raise PatchworkError(f"{self.url}{path}: HTTP {r.status_code}: {r.text[:200]}")
            return r.json()
        raise PatchworkError(f"{self.url}{path}: {last} after {self.retries} attempts")

    def find_patch(self, msgid: str) -> int | None:
        found = self._req(
            "GET", "/api/1.2/patches/", params={"project": self.project, "msgid": msgid.strip("<>")}
        )
        return int(found[0]["id"]) if isinstance(found, list) and found else None

    def checks(self, patch_id: int) -> list[dict[str, Any]]:
        got = self._req("GET", f"/api/1.2/patches/{patch_id}/checks/")
        return list(got) if isinstance(got, list) else []

    def post(self, patch_id: int, check: dict[str, Any]) -> None:
        self._req("POST", f"/api/1.2/patches/{patch_id}/checks/", body=check)

    def deliver(self, engine: Engine, it: OutboxItem) -> str:
        """Post one stored check unless patchwork has it already (same context and values)."""
        check = json.loads(it.payload)
        try:
            pid = self.find_patch(it.target)
            if pid is None:
                raise PatchworkError(f"no patch with message-id {it.target} in {self.project}")
            same = [c for c in self.checks(pid) if c.get("context") == check["context"]]
            newest = same[-1] if same else None
            keys = ("state", "description", "target_url")
            if newest is None or any(newest.get(k) != check[k] for k in keys):
                self.post(pid, check)
                how = "posted"
            else:
                how = "already there"
        except PatchworkError as e:
            with session(engine) as s:
                row = s.get(OutboxItem, it.id)
                row.state, row.attempts, row.last_error = State.FAILED, row.attempts + 1, str(e)  # type: ignore[union-attr]
            return f"{it.key}: {e}"
        with session(engine) as s:
            row = s.get(OutboxItem, it.id)
            assert row is not None
            row.state, row.sent_at, row.sent_how = State.SENT, utcnow(), f"patchwork {how}"
        return f"{it.key}: {how}"


def _one(p: PatchView, context: str, verdict: Verdict, target_url: str) -> dict[str, Any]:
    state = STATES.get(verdict, "fail")
    desc = f"{verdict}: {p.reason}".splitlines()[0] if p.reason else str(verdict)
    return {"state": state, "context": context, "description": desc[:200], "target_url": target_url}


def items(view: ReportView, state: State, target_url: str) -> list[OutboxItem]:
    """One row per (patch, context): a context per check, and `mmu-ci` for the series."""
    out = []
    for p in view.patches:
        pairs = [("mmu-ci", p.verdict)] + [(f"mmu-ci-{c.name}", c.verdict) for c in p.checks]
        for context, verdict in pairs:
            check = _one(p, context, verdict, target_url)
            out.append(
                OutboxItem(
                    kind=Kind.CHECK,
                    key=f"{p.msgid} {context}",
                    state=state,
                    series_msgid=view.series_msgid,
                    revision=view.revision,
                    digest=view.digest,
                    target=p.msgid,
                    summary=f"check {context} {check['state']} on patch {p.index}",
                    payload=json.dumps(check, sort_keys=True).encode(),
                    attempts=0,
                )
            )
    return out

"""Whether and how to publish: modes, when, opt-out. Quiet by default (dry-run, on-finding)."""

from __future__ import annotations

import fnmatch
from dataclasses import dataclass
from email.utils import getaddresses

from bot.config import Config
from bot.publish.original import Original
from bot.publish.view import ReportView
from bot.store.models import State
from mmuci.errors import MmuCiError

MODES = {"dry-run": State.DRY_RUN, "moderate": State.HELD, "send": State.PENDING}
WHENS = ("on-finding", "always", "never")


@dataclass(frozen=True)
class Policy:
    mode: str
    when: str
    reply_to: str
    opt_out: tuple[str, ...]
    max_per_hour: int

    @classmethod
    def from_config(cls, cfg: Config) -> Policy:
        p = cls(
            cfg.get("publish", "mode"),
            cfg.get("publish", "when"),
            cfg.get("publish", "reply_to"),
            tuple(x.strip().lower() for x in cfg.get("publish", "opt_out") if x.strip()),
            int(cfg.get("publish", "max_per_hour")),
        )
        if p.mode not in MODES:
            raise MmuCiError(f"publish.mode {p.mode!r}: use dry-run, moderate or send")
        if p.when not in WHENS:
            raise MmuCiError(f"publish.when {p.when!r}: use on-finding, always or never")
        if p.reply_to not in ("summary", "patch"):
            raise MmuCiError(f"publish.reply_to {p.reply_to!r}: use summary or patch")
        return p

    @property
    def initial_state(self) -> State:
        return MODES[self.mode]

    def skip_mail(self, view: ReportView) -> str | None:
        """Why no mail is written for this report, or None."""
        if self.when == "never":
            return "publish.when = never"
        if self.when == "on-finding" and not view.is_finding():
            return f"nothing to report (verdict {view.verdict}; publish.when = on-finding)"
        return None

    def opted_out(self, view: ReportView, original: Original) -> str | None:
        """The opt-out entry that matches the author, a list address or a changed path."""
        addrs = {a.lower() for _, a in getaddresses([view.author, original.author])}
        lists = {a.lower() for _, a in getaddresses([*original.to, *original.cc])}
        files = {f for p in view.patches for f in p.files}
        for entry in self.opt_out:
            if entry in addrs or entry in lists:
                return f"{entry} is on publish.opt_out"
            if any(fnmatch.fnmatch(f, entry) for f in files):
                return f"a changed file matches {entry} on publish.opt_out"
        return None

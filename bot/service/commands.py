"""`#mmu-ci` commands in replies: ``#mmu-ci test [TREE [BASE]]`` re-runs a series.

A command is a line that starts with ``#mmu-ci`` (not quoted with ``>``, above the
``-- `` signature), at most ``MAX_PER_MAIL`` per mail, in a reply whose References (or
In-Reply-To) name a revision or patch in the database: the checked thread. Allowed are
the series' author and ``commands.maintainers``. Each line is one `Command` row; each
mail gets one answer through the outbox, with a Message-ID derived from the command
mail's, so a mail is handled and answered once however often the watcher sees it. A
stranger gets one refusal, to themself only. Our own mail and robots' (our Message-ID
domain, ``X-Mailer: mmu-ci``, ``Auto-Submitted`` other than ``no``, our From) are ignored.
"""

from __future__ import annotations

import email
import email.policy
import hashlib
import re
import textwrap
from dataclasses import dataclass
from email.message import EmailMessage
from email.utils import formatdate, getaddresses
from pathlib import Path
from string import Template
from typing import Any

from sqlalchemy import Engine, or_, select
from sqlalchemy.orm import Session

from bot import kernels, mailcheck
from bot.config import Config
from bot.publish import original, reply
from bot.publish.policy import Policy
from bot.service import queue
from bot.store.db import session
from bot.store.models import Command, Kind, OutboxItem, Patch, Revision, Series
from bot.worker import with_deadline
from mmuci.errors import MmuCiError
from mmucore.textsafe import printable

PREFIX = "#mmu-ci"
MAX_PER_MAIL = 3
VALID = ("test",)
TEMPLATES = Path(__file__).resolve().parents[1] / "publish" / "templates"
_HEX = re.compile(r"[0-9a-f]{7,40}")
_TAG = re.compile(r"v\d+\.\d+(\.\d+)?(-rc\d+)?")
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._+-]{0,63}")
_MSGID = re.compile(r"<([^<>\s]+)>")


class CommandError(MmuCiError):
    """A command mail that cannot be read (too large, headers refused, too slow to parse):
    the watcher skips it."""


@dataclass(frozen=True)
class Mail:
    """What a command mail says, read in a worker (untrusted)."""

    msgid: str
    sender: str  # the From: field
    subject: str
    refs: tuple[str, ...]  # References then In-Reply-To, without brackets
    to: tuple[str, ...]
    cc: tuple[str, ...]
    lines: tuple[str, ...]  # the command lines, in order, all of them
    robot: str | None  # why it is ours or a robot's, else None


@dataclass(frozen=True)
class Handled:
    """What one command mail did."""

    msgid: str
    outcomes: tuple[str, ...] = ()  # one per Command row written
    job_ids: tuple[int, ...] = ()
    answer_key: str | None = None  # the answer's Message-ID in the outbox
    ignored: str | None = None  # why nothing was done


def command_lines(body: str) -> list[str]:
    """The lines starting with ``#mmu-ci`` above the signature (quoted lines start
    with ``>`` and so are never commands)."""
    out = []
    for line in body.splitlines():
        if line.rstrip() == "--":
            break  # "-- " (and a stripped "--"): the signature follows
        if line.startswith(PREFIX) and (len(line) == len(PREFIX) or line[len(PREFIX)].isspace()):
            out.append(line.strip())
    return out


def _addr(full: str) -> str:
    return (getaddresses([full])[0][1] or full).strip().lower()


def _robot(m: EmailMessage, cfg: Config) -> str | None:
    domain = str(cfg.get("publish", "msgid_domain")).lower()
    if str(m.get("Message-ID", "")).strip().strip("<>").lower().endswith("@" + domain):
        return f"our own mail (Message-ID @{domain})"
    if "mmu-ci" in str(m.get("X-Mailer", "")).lower():
        return "our own mail (X-Mailer mmu-ci)"
    auto = str(m.get("Auto-Submitted", "")).strip().lower()
    if auto and auto.split(";")[0].strip() != "no":
        return f"a robot's mail (Auto-Submitted: {auto[:40]})"
    if _addr(str(m.get("From", ""))) == _addr(cfg.get("publish", "from")):
        return "our own mail (From)"
    return None


def _read(raw: bytes, cfg: Config) -> dict[str, Any]:
    limit = int(cfg.get("intake", "max_message_bytes"))
    if len(raw) > limit:
        raise CommandError(f"{len(raw):,} bytes, more than intake.max_message_bytes")
    raw = mailcheck.check_headers(raw, int(cfg.get("intake", "max_header_bytes")), "command")
    m = email.message_from_bytes(raw, policy=email.policy.default)
    assert isinstance(m, EmailMessage)
    part = m.get_body(preferencelist=("plain",))
    try:
        body = part.get_content() if part is not None else ""
    except (LookupError, ValueError):
        body = ""  # an unknown charset: no command can be read from it
    found = _MSGID.findall(str(m.get("References", ""))) + _MSGID.findall(
        str(m.get("In-Reply-To", ""))
    )
    refs = list(dict.fromkeys(found))  # each once, oldest first
    return {
        "msgid": str(m.get("Message-ID", "")).strip().strip("<>"),
        "sender": str(m.get("From", "")),
        "subject": str(m.get("Subject", "")),
        "refs": refs,
        "to": [str(x) for x in m.get_all("To", [])],
        "cc": [str(x) for x in m.get_all("Cc", [])],
        "lines": command_lines(str(body)),
        "robot": _robot(m, cfg),
    }


def read_mail(raw: bytes, cfg: Config) -> Mail:
    """The command mail, parsed in a worker killed at ``intake.timeout``."""
    try:
        d = with_deadline(
            lambda: _read(raw, cfg), float(cfg.get("intake", "timeout")), "a command mail"
        )
    except MmuCiError as e:  # WorkerError, or a mailcheck refusal from the worker
        raise CommandError(str(e)) from e
    return Mail(
        **{k: tuple(v) if isinstance(v, list) else v for k, v in d.items()}  # type: ignore[arg-type]
    )


def _thread_revision(s: Session, refs: tuple[str, ...]) -> Revision | None:
    """The newest revision the mail's References name (a revision's first message or
    one of its patches): the checked thread it answers."""
    if not refs:
        return None
    ids = list(refs)
    q = (
        select(Revision)
        .outerjoin(Patch, Patch.revision_id == Revision.id)
        .where(or_(Revision.msgid.in_(ids), Patch.msgid.in_(ids)))
        .order_by(Revision.id.desc())
        .limit(1)
    )
    return s.scalar(q)


def allowed(cfg: Config, series: Series, sender: str) -> bool:
    who = _addr(sender)
    maintainers = {_addr(m) for m in cfg.get("commands", "maintainers")}
    return who == _addr(series.author) or who in maintainers


def _args(cfg: Config, words: list[str]) -> tuple[str | None, str | None, str | None]:
    """(tree, base, refusal) of ``test``'s arguments."""
    if len(words) > 2:
        return None, None, "refused: `test` takes at most a tree and a base"
    tree = words[0] if words else None
    base = words[1] if len(words) > 1 else None
    if tree is not None:
        if "/" in tree or tree.startswith((".", "~")) or not _NAME.fullmatch(tree):
            return None, None, "refused: a tree is a registered tree's name, not a path"
        names = sorted(kernels.load_registry(cfg.data_dir))
        if tree not in names:
            known = ", ".join(names) or "none"
            return None, None, f"refused: no registered tree {tree!r} (registered: {known})"
    if base is not None and not (_HEX.fullmatch(base) or _TAG.fullmatch(base)):
        return None, None, "refused: a base is a commit id (hex) or a version tag (v6.12)"
    return tree, base, None


def _line(
    s: Session, cfg: Config, mail: Mail, n: int, line: str, rev: Revision, list_url: str
) -> tuple[str, int | None]:
    words = line.split()[1:]
    verb = words[0] if words else ""
    if verb not in VALID:
        return "unknown command", None
    tree, base, refusal = _args(cfg, words[1:])
    if refusal:
        return refusal, None
    job, new = queue.enqueue(
        s,
        key=f"cmd:{mail.msgid}:{n}",
        ref=queue.message_ref(list_url, rev.msgid),
        trigger="command",
        revision_id=rev.id,
        tree=tree,
        base=base,
    )
    where = f" on {tree}" if tree else ""
    where += f" at {base}" if base else ""
    return f"queued job {job.id}{where}", job.id


def _fill(text: str) -> str:
    out = []
    for ln in text.splitlines():
        if len(ln) <= reply.WIDTH or ln.startswith(" "):
            out.append(ln)
        else:
            out += textwrap.wrap(ln, reply.WIDTH, break_long_words=False, break_on_hyphens=False)
    return "\n".join(reply.defang(ln) if ln != "-- " else ln for ln in out) + "\n"


def _answer(
    cfg: Config, mail: Mail, rev: Revision, outcomes: list[tuple[str, str]], refused: bool,
    extra: int,
) -> OutboxItem:  # fmt: skip
    sender = cfg.get("publish", "from")
    listed = "".join(
        f"  {i}. {printable(ln)[:60]}\n     {what}\n" for i, (ln, what) in enumerate(outcomes, 1)
    )
    if extra:
        listed += f"  ({extra} more command line(s) ignored: at most {MAX_PER_MAIL} per mail)\n"
    values = {
        "count": str(len(outcomes)),
        "revision": str(rev.revision),
        "subject": printable(rev.series.subject)[:200],
        "max": str(MAX_PER_MAIL),
        "trees": ", ".join(sorted(kernels.load_registry(cfg.data_dir))) or "none",
        "sender": sender,
        "msgid": f"<{mail.msgid}>",
        "outcomes": listed,
    }
    name = "command_refused.txt" if refused else "command_answer.txt"
    text = _fill(Template((TEMPLATES / name).read_text()).substitute(values))
    msg = EmailMessage()
    subj = printable(mail.subject)[:200]
    msg["Subject"] = subj if subj.lower().startswith("re:") else f"Re: {subj}"
    msg["From"] = sender
    msg["To"] = mail.sender
    own = {_addr(sender), _addr(mail.sender)}
    if not refused:  # an answer to an allowed sender goes where the command went
        cc = [a for a in (*mail.to, *mail.cc) if _addr(a) not in own]
        if cc:
            msg["Cc"] = ", ".join(cc[: int(cfg.get("publish", "max_cc"))])
    msg["Date"] = formatdate(usegmt=True)
    msgid = reply.message_id(mail.msgid, 0, "command", cfg.get("publish", "msgid_domain"))
    msg["Message-ID"] = msgid
    msg["In-Reply-To"] = f"<{mail.msgid}>"
    msg["References"] = " ".join([*(f"<{r}>" for r in mail.refs[-10:]), f"<{mail.msgid}>"])
    msg["X-Patchwork-Hint"] = "ignore"
    msg["Auto-Submitted"] = "auto-replied"
    msg["X-Mailer"] = "mmu-ci"
    msg.set_content(text, charset="utf-8", cte="8bit")
    rcpts = " ".join(a for _, a in getaddresses(msg.get_all("To", []) + msg.get_all("Cc", [])))
    return OutboxItem(
        kind=Kind.MAIL,
        key=msgid.strip("<>"),
        state=Policy.from_config(cfg).initial_state,
        series_msgid=rev.msgid,
        revision=rev.revision,
        digest=hashlib.sha256(mail.msgid.encode()).hexdigest(),
        target=rcpts,
        summary=f"answer to commands: {msg['Subject']}"[:200],
        payload=msg.as_bytes(),
        attempts=0,
    )


def handle(s: Session, cfg: Config, mail: Mail, list_url: str) -> Handled:
    """Act on one command mail inside the caller's transaction: Command rows, jobs and
    the answer (staged in the outbox) are written together, or not at all."""
    from bot.publish.run import stage

    if mail.robot:
        return Handled(mail.msgid, ignored=mail.robot)
    if not mail.lines:
        return Handled(mail.msgid, ignored="no command at the start of a line")
    if not mail.msgid:
        return Handled(mail.msgid, ignored="no Message-ID")
    rev = _thread_revision(s, mail.refs)
    if rev is None:
        return Handled(mail.msgid, ignored="not a reply in a thread mmu-ci checked")
    if s.scalar(select(Command.id).where(Command.msgid == mail.msgid).limit(1)) is not None:
        return Handled(mail.msgid, ignored="handled already")
    lines = mail.lines[:MAX_PER_MAIL]
    ok = allowed(cfg, rev.series, mail.sender)
    outcomes: list[tuple[str, str]] = []
    jobs = []
    for n, line in enumerate(lines, 1):
        if ok:
            what, job_id = _line(s, cfg, mail, n, line, rev, list_url)
        else:
            what, job_id = "refused: not the series' author or a maintainer", None
        s.add(
            Command(
                msgid=mail.msgid,
                line_no=n,
                series_id=rev.series_id,
                sender=mail.sender[:512],
                line=line[:1000],
                outcome=what,
                job_id=job_id,
            )
        )
        outcomes.append((line, what))
        jobs += [job_id] if job_id is not None else []
    item = _answer(cfg, mail, rev, outcomes, not ok, len(mail.lines) - len(lines))
    stage(s, cfg, item)
    return Handled(mail.msgid, tuple(w for _, w in outcomes), tuple(jobs), item.key)


def handle_msgid(cfg: Config, engine: Engine, list_url: str, msgid: str) -> Handled:
    """Fetch one command mail from the list (``<msgid>/raw``) and handle it in one
    transaction."""
    raw = original.lookup(list_url, msgid, float(cfg.get("lore", "timeout")))
    if raw is None:  # the search found it: the archive will have it on the next poll
        raise MmuCiError(f"<{msgid}> is not on {list_url} yet")
    mail = read_mail(raw, cfg)
    with session(engine) as s:
        return handle(s, cfg, mail, list_url)

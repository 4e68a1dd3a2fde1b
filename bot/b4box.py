"""b4 as mmu-ci uses it: one inbox URL, no user or system git config, no network of its
own (bot/fetch.py does every fetch, with its deadline and size cap), and what it writes
for `git am`, in linear time."""

from __future__ import annotations

import contextlib
import copy
import logging
import os
from collections.abc import Iterator
from email.message import EmailMessage
from typing import Any

import b4
import liblore
import requests

from mmuci.errors import MmuCiError


class B4Error(MmuCiError):
    """b4 tried something mmu-ci does not let it do (one line, exit status 2)."""


class _NoNetwork(requests.Session):
    """The session b4 and liblore get: any request is refused (bot/fetch.py fetches)."""

    def request(self, method: str | bytes, url: str | bytes, *args: Any, **kwargs: Any) -> Any:
        raise B4Error(f"b4 tried to fetch {str(url)[:120]}: mmu-ci fetches threads itself")


@contextlib.contextmanager
def isolated(lore_url: str) -> Iterator[Any]:
    """b4 configured for one inbox URL only, with no user or system git config read."""
    saved_env = {k: os.environ.get(k) for k in ("GIT_CONFIG_GLOBAL", "GIT_CONFIG_NOSYSTEM")}
    saved = (b4.MAIN_CONFIG, b4.USER_CONFIG, b4.LORENODE)
    os.environ["GIT_CONFIG_GLOBAL"] = os.devnull
    os.environ["GIT_CONFIG_NOSYSTEM"] = "1"
    cfg = copy.deepcopy(b4.DEFAULT_CONFIG)
    cfg.update(
        {
            "midmask": f"{lore_url}/%s",
            "searchmask": f"{lore_url}/?x=m&q=%s",
            "linkmask": f"{lore_url}/%s",
            "listid-preference": ["*"],
            "attestation-policy": "off",
            "attestation-check-dkim": "no",
        }
    )
    b4.MAIN_CONFIG = cfg
    b4.USER_CONFIG = {"name": "mmu-ci", "email": "mmu-ci@localhost"}
    # follow_upstream=False: never fall through to the real lore from a partial mirror.
    b4.LORENODE = liblore.LoreNode(lore_url, follow_upstream=False, request_timeout=(5.0, 30.0))
    # every fetch is ours (bot/fetch.py: deadline, size cap); b4 and liblore get none
    b4.LORENODE.set_requests_session(_NoNetwork())
    saved_session, b4.REQSESSION = b4.REQSESSION, _NoNetwork()
    b4_log = logging.getLogger("b4")
    saved_level = b4_log.level
    b4_log.setLevel(logging.CRITICAL + 1)  # its failures are our one line
    try:
        yield b4
    finally:
        b4.LORENODE.close()
        b4.MAIN_CONFIG, b4.USER_CONFIG, b4.LORENODE = saved
        b4.REQSESSION = saved_session
        b4_log.setLevel(saved_level)
        for k, v in saved_env.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def am_mbox(msg: EmailMessage) -> bytes:
    """What b4.save_git_am_mbox writes for one message, in linear time (b4 concatenates
    bytes line by line: quadratic in the size of the patch)."""
    out = [b"From git@z Thu Jan  1 00:00:00 1970\n"]
    for name, value in msg.items():
        out.append(b4.LoreMessage.wrap_header((name, str(value)), transform="decode") + b"\n")
    out.append(b"\n")
    payload = msg.get_payload(decode=True)
    if not isinstance(payload, bytes):
        text, _ = b4.LoreMessage.get_payload(msg, use_patch=True)
        payload = text.encode("utf-8", errors="replace")
    out += [line.rstrip(b"\r\n") + b"\n" for line in payload.split(b"\n")]
    return b"".join(out)

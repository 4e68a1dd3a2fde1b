"""Policy: quiet by default, `when`, opt-out by address and by path."""

from __future__ import annotations

import pytest

from bot import config
from bot.publish.original import Original
from bot.publish.policy import Policy
from bot.publish.view import from_json
from mmuci.errors import MmuCiError

from .conftest import report_json

IDS = ["c0@example.org", "p1@example.org", "p2@example.org"]
ORIG = Original(
    "c0@example.org",
    "[PATCH 0/2] toy",
    "A. U. Thor <author@example.org>",
    ("kvm@vger.kernel.org",),
    (),
    (),
)


def _pol(**env: str) -> Policy:
    return Policy.from_config(
        config.load(environ={f"MMUCI_{k.upper()}": v for k, v in env.items()})
    )


def test_default_is_dry_run_on_finding():
    p = _pol()
    assert (p.mode, p.when) == ("dry-run", "on-finding")
    clean = from_json(report_json(IDS, "http://127.0.0.1:1/kvm/", finding=False))
    found = from_json(report_json(IDS, "http://127.0.0.1:1/kvm/"))
    assert p.skip_mail(clean) and p.skip_mail(found) is None
    assert _pol(publish_when="always").skip_mail(clean) is None
    assert _pol(publish_when="never").skip_mail(found)


def test_opt_out_by_author_list_or_path():
    view = from_json(report_json(IDS, "http://127.0.0.1:1/kvm/"))
    assert _pol().opted_out(view, ORIG) is None
    assert _pol(publish_opt_out="author@example.org").opted_out(view, ORIG)
    assert _pol(publish_opt_out="KVM@vger.kernel.org").opted_out(view, ORIG)
    assert _pol(publish_opt_out="other@x.org,drivers/*").opted_out(view, ORIG) is None
    assert _pol(publish_opt_out="arch/x86/kvm/mmu/*").opted_out(view, ORIG)
    with pytest.raises(MmuCiError, match="publish.mode"):
        _pol(publish_mode="loud")

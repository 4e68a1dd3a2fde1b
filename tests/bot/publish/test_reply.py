"""The reply's shape: headers, ≤72 columns, nothing b4 or patchwork takes for a trailer."""

from __future__ import annotations

import re

import b4

from bot.publish import reply
from bot.publish.original import Original
from bot.publish.view import from_json

from .conftest import report_json

ORIG = Original(
    "c0@example.org",
    "[PATCH 0/2] KVM: x86/mmu: toy series",
    "A. U. Thor <author@example.org>",
    ("kvm@vger.kernel.org",),
    ("Reviewer <rev@example.org>",),
    ("<older@example.org>",),
)
SETTINGS = reply.ReplySettings(
    "mmu-ci <bot@example.org>", "ci.example.org", 3, 10, "https://example.org/mmu-ci.git"
)
# patchwork's parser (patchwork/parser.py) takes these as tags
PATCHWORK_TAGS = re.compile(r"^(\S+-by|Fixes|Link|Closes):\s*\S", re.M | re.I)


def _msg():
    view = from_json(
        report_json(
            ["c0@example.org", "p1@example.org", "p2@example.org"], "http://127.0.0.1:1/kvm/"
        )
    )
    return view, reply.build(view, ORIG, SETTINGS)


def test_headers_thread_under_the_cover_letter():
    view, m = _msg()
    assert m["Subject"] == "Re: [PATCH 0/2] KVM: x86/mmu: toy series"
    assert m["In-Reply-To"] == "<c0@example.org>"
    assert m["References"] == "<older@example.org> <c0@example.org>"
    assert m["To"].addresses[0].addr_spec == "author@example.org"
    assert "kvm@vger.kernel.org" in m["Cc"] and "rev@example.org" in m["Cc"]
    assert m["X-Patchwork-Hint"] == "ignore" and m["Auto-Submitted"] == "auto-generated"
    assert m["Message-ID"].endswith("@ci.example.org>")
    assert m["Message-ID"] == reply.build(view, ORIG, SETTINGS)["Message-ID"]


def test_body_order_width_and_no_trailers():
    _, m = _msg()
    body = m.get_content()
    for needle in (
        "mmu-ci found a behaviour change",
        "  tree ",
        "verdict",
        "baseline",
        "git clone https://example.org/mmu-ci.git",
        "\n-- \n",
    ):
        assert needle in body
    order = [
        body.index(x)
        for x in ("found a behaviour", "  tree", "  #", "baseline", "To reproduce", "\n-- \n")
    ]
    assert order == sorted(order)
    prose = [ln for ln in body.splitlines() if not ln.startswith("    ")]
    assert max(len(ln) for ln in prose) <= 72
    trailers, _ = b4.LoreMessage.find_trailers(body, followup=False)
    assert trailers == []
    assert not PATCHWORK_TAGS.search(body)
    # the footer names the command, never as a command line of its own
    assert '"#mmu-ci test [tree [base]]"' in " ".join(body.split("\n-- \n")[1].split())
    assert not any(ln.startswith("#mmu-ci") for ln in body.splitlines())


def test_defang_breaks_trailer_lines():
    assert not reply.TRAILER_RE.match(reply.defang("Reviewed-by: x <x@y.z>"))

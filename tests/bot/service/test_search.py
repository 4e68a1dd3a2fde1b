"""The search API of a real public-inbox-httpd: Atom hits, paging, no results, no index;
the feed parser refuses unsafe XML."""

from __future__ import annotations

import time

import pytest

from bot.service import search
from mmukit import listmail
from mmukit.inbox import LocalInbox

ARGS = {"timeout": 30.0, "max_bytes": 1 << 24}


def test_hits_and_paging(own_inbox) -> None:
    since = int(time.time()) - 60
    mails = listmail.toy_series("pg", patches=5)
    mails += listmail.toy_series("x86", files=("arch/x86/kvm/x86.c",), patches=1)
    own_inbox.deliver_many(mails)
    q = f"dfn:arch/x86/kvm/mmu/mmu.c AND rt:{since}.."
    hits = search.search(own_inbox.url, q, **ARGS)
    want = {listmail.msgid("pg", 1, i) for i in range(1, 6)}
    assert {h.msgid for h in hits} == want  # patches only: not the cover, not x86.c
    paged = search.search(own_inbox.url, q, page=2, **ARGS)  # three pages, the last short
    assert sorted(h.msgid for h in paged) == sorted(want) and len(paged) == 5
    assert all(h.author == "A. U. Thor <author@example.org>" for h in hits)
    later = search.search(
        own_inbox.url, f"dfn:arch/x86/kvm/mmu/mmu.c AND rt:{since + 3600}..", **ARGS
    )
    assert later == []  # the received-time window


def test_no_results_is_empty(own_inbox) -> None:
    own_inbox.deliver(listmail.plain("q1@example.org"))
    assert search.search(own_inbox.url, "dfn:no/such/file.c", **ARGS) == []


def test_inbox_without_search_index(tmp_path) -> None:
    with LocalInbox(tmp_path / "basic", indexlevel="basic") as inbox:
        inbox.deliver(listmail.plain("b1@example.org"))
        with pytest.raises(search.SearchError, match="indexlevel full"):
            search.search(inbox.url, "s:roots", **ARGS)


def test_unreachable_list() -> None:
    with pytest.raises(search.SearchError, match="could not search"):
        search.search("http://127.0.0.1:9/kvm/", "s:x", timeout=5.0, max_bytes=1 << 20)


BOMB = b"""<?xml version="1.0"?>
<!DOCTYPE feed [<!ENTITY a "aaaaaaaaaa"><!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;">]>
<feed xmlns="http://www.w3.org/2005/Atom"><entry><title>&b;</title></entry></feed>"""


def test_feed_parser_refuses_entities_and_tolerates_an_empty_end() -> None:
    with pytest.raises(search.SearchError, match="DTD or entities"):
        search.parse_feed(BOMB, "http://x/kvm/", "test")
    assert search.parse_feed(b"</feed>\n", "http://x/kvm/", "test") == []
    assert search.parse_feed(b"", "http://x/kvm/", "test") == []
    with pytest.raises(search.SearchError, match="not an Atom feed"):
        search.parse_feed(b"<feed><entry>", "http://x/kvm/", "test")
    feed = (
        b'<feed xmlns="http://www.w3.org/2005/Atom"><entry><author><name>N</name>'
        b"<email>n@example.org</email></author><title>[PATCH] t</title>"
        b'<link href="http://x/kvm/a%2Fb@example.org/"/></entry>'
        b'<entry><link href="http://x/kvm/not-a-message/"/></entry></feed>'
    )
    (hit,) = search.parse_feed(feed, "http://x/kvm/", "test")
    assert hit.msgid == "a/b@example.org" and hit.author == "N <n@example.org>"

"""The public-inbox search API (lore's, a local public-inbox-httpd's): a query -> hits.

``GET <list>/?q=QUERY&x=A&o=OFFSET`` answers an Atom feed of at most 200 hits, newest
received first; we page with ``o=`` until a page is short. The answer is untrusted XML:
a DOCTYPE or an entity declaration is refused before parsing (no entity expansion, no
external fetch). 404 means no hits; 501 means the inbox has no search index.
"""

from __future__ import annotations

import re
import urllib.parse
import xml.etree.ElementTree as ET
from dataclasses import dataclass

from bot import fetch
from mmuci.errors import MmuCiError

PAGE = 200  # public-inbox's largest (and default) page
MAX_PAGES = 50  # 10,000 hits: a poll window wider than that is a configuration error
_ATOM = "{http://www.w3.org/2005/Atom}"
_DANGER = re.compile(rb"<!DOCTYPE|<!ENTITY", re.I)


class SearchError(MmuCiError):
    """The list's search API could not be asked or answered something unusable."""


@dataclass(frozen=True)
class Hit:
    """One message the search found."""

    msgid: str  # without angle brackets
    subject: str
    author: str  # "Name <email>"
    updated: str  # the feed's <updated>, as given


def query_url(list_url: str, query: str, offset: int = 0, page: int = PAGE) -> str:
    params = {"q": query, "x": "A"}
    if page != PAGE:
        params["l"] = str(page)
    if offset:
        params["o"] = str(offset)
    return f"{list_url.rstrip('/')}/?{urllib.parse.urlencode(params)}"


def _msgid_of(href: str, list_url: str) -> str | None:
    """The message-id in an entry link ``<list>/<msgid>/``."""
    path = urllib.parse.urlsplit(href).path.rstrip("/")
    last = urllib.parse.unquote(path.rsplit("/", 1)[-1])
    return last if "@" in last else None


def parse_feed(body: bytes, list_url: str, what: str) -> list[Hit]:
    """The hits of one Atom page. A DTD or entity is refused; an empty body or a bare
    ``</feed>`` (what an interrupted empty answer looks like) is no hits."""
    if _DANGER.search(body):
        raise SearchError(f"{what}: the answer declares a DTD or entities; refused as unsafe XML")
    text = body.strip()
    if not text or text == b"</feed>" or b"<feed" not in text:
        return []
    try:
        root = ET.fromstring(text)
    except ET.ParseError as e:
        raise SearchError(f"{what}: not an Atom feed ({e})") from e
    hits = []
    for entry in root.iter(f"{_ATOM}entry"):
        link = entry.find(f"{_ATOM}link")
        msgid = _msgid_of(link.get("href", ""), list_url) if link is not None else None
        if msgid is None:
            continue
        name = entry.findtext(f"{_ATOM}author/{_ATOM}name") or ""
        email = entry.findtext(f"{_ATOM}author/{_ATOM}email") or ""
        hits.append(
            Hit(
                msgid=msgid,
                subject=(entry.findtext(f"{_ATOM}title") or "").strip(),
                author=f"{name} <{email}>",
                updated=entry.findtext(f"{_ATOM}updated") or "",
            )
        )
    return hits


def search(
    list_url: str, query: str, *, timeout: float, max_bytes: int, page: int = PAGE
) -> list[Hit]:
    """Every hit of ``query`` on the list, newest first, each message once."""
    out: list[Hit] = []
    seen: set[str] = set()
    for n in range(MAX_PAGES):
        url = query_url(list_url, query, n * page, page)
        try:
            ans = fetch.get(url, timeout=timeout, max_bytes=max_bytes)
        except fetch.FetchError as e:
            raise SearchError(f"could not search {list_url}: {e}") from e
        if ans.status == 404:
            break  # public-inbox: "No results found" (also past the last page)
        if ans.status == 501:
            raise SearchError(
                f"{list_url} has no search index (HTTP 501): the watcher needs a public-inbox "
                "with Xapian search; initialise it with indexlevel full or medium "
                "(public-inbox-init -L full) and run public-inbox-index"
            )
        if ans.status != 200:
            raise SearchError(f"searching {list_url} for {query!r}: HTTP status {ans.status}")
        hits = parse_feed(ans.body, list_url, f"search {url}")
        for h in hits:
            if h.msgid not in seen:
                seen.add(h.msgid)
                out.append(h)
        if len(hits) < page:
            break
    else:
        raise SearchError(
            f"{list_url}: more than {MAX_PAGES * page} hits for {query!r}; "
            "shorten watch.lookback or watch.overlap"
        )
    return out

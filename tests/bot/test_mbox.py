"""The mail as it arrives (bot/mbox.py): references, and an mbox cut into checked messages."""

from __future__ import annotations

import pytest

from bot import mbox
from bot.mbox import IntakeError, Limits


def test_parse_ref_forms() -> None:
    lore = "https://lore.kernel.org/kvm/"
    assert mbox.parse_ref("<a.b@x.org>", lore) == ("a.b@x.org", "https://lore.kernel.org/kvm")
    assert mbox.parse_ref("id:a@x", lore) == ("a@x", "https://lore.kernel.org/kvm")
    for url in (f"{lore}a@x/", f"{lore}a@x/T/#t", f"{lore}a%40x/raw"):
        assert mbox.parse_ref(url, "http://127.0.0.1:9/other") == (
            "a@x",
            "https://lore.kernel.org/kvm",
        )
    with pytest.raises(IntakeError, match="not a lore-style URL"):
        mbox.parse_ref("https://lore.kernel.org/kvm/", lore)
    with pytest.raises(IntakeError, match="characters long"):
        mbox.parse_ref("a@" + "x" * mbox.MAX_REF, lore)


def _mail(subject: str, msgid: str | None = None, extra: str = "") -> bytes:
    head = f"From: A <a@example.org>\nSubject: {subject}\n" + extra
    if msgid:
        head += f"Message-ID: <{msgid}>\n"
    return (head + "\nbody\n").encode()


def test_a_patch_file_without_message_id_gets_one_from_its_bytes() -> None:
    one = mbox.split_mbox(_mail("[PATCH] x"), "p.patch", Limits())
    two = mbox.split_mbox(_mail("[PATCH] x"), "p.patch", Limits())
    assert len(one) == 1 and one[0]["Message-ID"].endswith("@mmu-ci.local>")
    assert one[0]["Message-ID"] == two[0]["Message-ID"]
    other = mbox.split_mbox(_mail("[PATCH] y"), "p.patch", Limits())
    assert other[0]["Message-ID"] != one[0]["Message-ID"]


def test_bounds_and_what_is_not_an_mbox() -> None:
    many = b"".join(
        b"From x@y Thu Jan  1 00:00:00 1970\n" + _mail(f"Re: {i}", f"{i}@x") for i in range(4)
    )
    assert len(mbox.split_mbox(many, "t", Limits())) == 4
    with pytest.raises(IntakeError, match=r"4 messages, more than intake.max_messages \(3\)"):
        mbox.split_mbox(many, "t", Limits(max_messages=3))
    with pytest.raises(IntakeError, match="binary data"):
        mbox.split_mbox(b"\0\1\2", "t", Limits())
    with pytest.raises(IntakeError, match="no 'From ' line, no mail headers"):
        mbox.split_mbox(b"just some text\n", "t", Limits())


def test_an_unreadable_reply_is_skipped_and_an_unreadable_patch_is_not() -> None:
    big = "X-Big: " + "y" * 300 + "\n"
    reply = _mail("Re: the plan", "r@x", big)  # no [PATCH] in it: a reply
    patch = _mail("[PATCH] x", "p@x")
    thread = b"".join(b"From x@y Thu Jan  1 00:00:00 1970\n" + m for m in (patch, reply))
    skipped: list[str] = []
    got = mbox.split_mbox(thread, "t", Limits(max_header_bytes=200), skipped)
    assert [m["Message-ID"] for m in got] == ["<p@x>"]
    assert len(skipped) == 1 and "message 2" in skipped[0]
    bad_patch = _mail("[PATCH] y", "q@x", big)
    with pytest.raises(IntakeError, match="message 1"):
        mbox.split_mbox(bad_patch, "t", Limits(max_header_bytes=200))

"""Threads into series revisions (b4's grouping, in a worker): every revision of a
thread, incomplete ones waiting, replies never a series, scope by the files touched."""

from __future__ import annotations

from pathlib import Path

import pytest

from bot.mbox import IntakeError, Limits
from bot.service import threads
from mmukit import listmail
from mmukit.seriesgen import mbox_bytes

URL = "http://127.0.0.1:1/kvm"
SEEDS = Path("/work/shared/seeds")


def _group(mails: list[bytes]) -> threads.Thread:
    return threads.group(mbox_bytes(mails), "test thread", URL)


def test_two_revisions_in_one_thread() -> None:
    v1 = listmail.toy_series("two")
    v2 = listmail.toy_series("two", version=2, in_reply_to=listmail.msgid("two", 1, 0))
    t = _group(v1 + v2)
    assert [s.revision for s in t.series] == [1, 2]
    assert t.series[1].msgids == tuple(listmail.msgid("two", 2, i) for i in range(3))
    assert len(t.messages) == 6 and not t.waiting
    block = threads.series_block(t.series[0])
    assert block["msgids"][0] == listmail.msgid("two", 1, 0) and len(block["patches"]) == 2


def test_incomplete_revision_waits() -> None:
    mails = listmail.toy_series("inc", patches=3)
    t = _group([mails[0], mails[1], mails[3]])  # patch 2/3 not there yet
    assert t.series == () and t.waiting == (threads.Waiting(1, 3, (2,)),)


def test_a_reply_with_an_unquoted_diff_is_not_a_series() -> None:
    top = listmail.toy_series("rep")[1]
    body = "I would write it so:\n\n" + top.decode().split("\n\n", 1)[1]
    reply = listmail.reply("rep-r@example.org", [listmail.msgid("rep", 1, 1)], body,
                           subject="Re: [PATCH 1/2] KVM: x86/mmu: toy rep: part 1")  # fmt: skip
    t = _group([reply])
    assert t.series == () and t.waiting == ()


@pytest.mark.skipif(not SEEDS.is_dir(), reason="the shared seed mails are not on this machine")
def test_the_seed_review_reply_is_not_a_series() -> None:
    """The review mail of the model case (a reply quoting the patch's diff unmarked)."""
    for seed in sorted(SEEDS.glob("*.txt")):
        subject, _, body = seed.read_text().partition("\n")
        mail = listmail.reply(f"{seed.stem}@example.org", ["elsewhere@example.org"], body,
                              subject=subject.strip())  # fmt: skip
        t = _group([mail])
        assert subject.startswith("Re:") and t.series == ()


def test_scope_is_the_files_touched() -> None:
    ins = _group(listmail.toy_series("in", files=("arch/x86/kvm/mmu/mmu.c", "arch/x86/kvm/x86.c")))
    out = _group(listmail.toy_series("out", files=("arch/x86/kvm/x86.c",)))
    tdp = _group(listmail.toy_series("tdp", files=("arch/x86/kvm/mmu/tdp_mmu.c",)))
    assert threads.in_scope(ins.series[0])
    assert out.series[0].files == ("arch/x86/kvm/x86.c",)
    assert not threads.in_scope(out.series[0]) and not threads.in_scope(tdp.series[0])


def test_unreadable_thread_is_one_intake_error() -> None:
    with pytest.raises(IntakeError, match="not an mbox"):
        threads.group(b"\x00\x01binary", "test thread", URL)
    many = listmail.toy_series("many", patches=5)
    with pytest.raises(IntakeError, match="intake.max_messages"):
        threads.group(mbox_bytes(many), "test thread", URL, Limits(max_messages=3))

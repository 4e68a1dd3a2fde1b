"""A series as b4 groups it (bot/series.py): the words of a claim, and a Series that
survives the worker's JSON unchanged. Grouping real threads: tests/bot/test_intake.py."""

from __future__ import annotations

from bot import series
from bot.series import Patch, Series


def test_nfc_claim_words() -> None:
    assert series.nfc_claim("x\n\nNo functional change intended.")
    assert series.nfc_claim("x\n\nno functional change")
    assert series.nfc_claim("KVM: x86/mmu: tidy (NFC)")
    assert not series.nfc_claim("KVM: x86/mmu: fix a functional bug")


def test_a_series_survives_its_json() -> None:
    patch = Patch(
        index=1,
        subject="KVM: x86/mmu: tidy",
        msgid="p@x",
        author="A <a@example.org>",
        mbox=b"From x\n\0\xff bytes that are not text\n",
        commit_message="KVM: x86/mmu: tidy\n\nNFC.",
        diff="diff --git a/f b/f\n",
        trailers=("Reviewed-by: B <b@example.org>",),
        nfc_claim=True,
    )
    s = Series(
        source="t.mbox", msgid=None, subject="tidy", cover_subject=None, cover_body="",
        revision=2, revisions=(1, 2), author="A <a@example.org>", patches=(patch,),
        msgids=("p@x",), base_commit="abc1234", skipped=("message 3: too big",),
    )  # fmt: skip
    assert series.from_json(series.to_json(s)) == s

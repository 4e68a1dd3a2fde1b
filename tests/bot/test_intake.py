"""Intake through a real public-inbox: message-id, URL, mbox file, revisions, bad threads
(bot/intake.py with bot/mbox.py and bot/series.py; their own units: test_mbox, test_series)."""

from __future__ import annotations

import re
from email.message import EmailMessage

import pytest

from bot import intake
from bot.mbox import IntakeError
from mmukit.seriesgen import deliver, make_series, mbox_bytes
from mmukit.transforms import Transformation, regex_once, within_function

pytestmark = pytest.mark.slow

MMU_C = "arch/x86/kvm/mmu/mmu.c"


def note(name: str, func: str, comment: str, subject: str, body: str = "") -> Transformation:
    """A comment added at the top of ``func``'s body: a harmless, always-applying change."""
    edit = within_function(func, regex_once(r"\)\s*\n\{\n", rf")\n{{\n\t/* {comment} */\n"))
    return Transformation(name, MMU_C, edit, subject, body)


ONE = note("one", "kvm_mmu_load", "one", "KVM: x86/mmu: note one", "No functional change intended.")
TWO = note("two", "kvm_mmu_unload", "two", "KVM: x86/mmu: note two", "A real change.")
THREE = note("three", "kvm_mmu_reset_context", "3", "KVM: x86/mmu: note three")


def msgid_of(mail: bytes) -> str:
    m = re.search(rb"^Message-I[dD]: <([^>]+)>", mail, re.M)
    assert m
    return m.group(1).decode()


@pytest.fixture(scope="module")
def posted(local_inbox, tree_61, tmp_path_factory):
    """A 2-patch series v1, then v2 (3 patches) in reply to v1's cover letter."""
    work = tmp_path_factory.mktemp("series")
    v1 = make_series(tree_61.path, "HEAD", [ONE, TWO], workdir=work, series_id="intake")
    deliver(local_inbox, v1)
    v2 = make_series(
        tree_61.path,
        "HEAD",
        [note("one", "kvm_mmu_load", "one", "KVM: x86/mmu: note one", "NFC."), TWO, THREE],
        workdir=work,
        series_id="intake",
        version=2,
        in_reply_to=v1.cover_message_id,
    )
    deliver(local_inbox, v2)
    return v1.mails, v2.mails, work


def test_newest_revision_by_any_message_id(local_inbox, posted, tree_61):
    v1, v2, _ = posted
    for ref in (msgid_of(v1[0]), f"<{msgid_of(v1[2])}>", msgid_of(v2[3])):
        s = intake.load(ref, local_inbox.url)
        assert s.revision == 2 and s.revisions == (1, 2)
        assert [p.index for p in s.patches] == [1, 2, 3]
        assert [p.subject for p in s.patches][:2] == [
            "KVM: x86/mmu: note one",
            "KVM: x86/mmu: note two",
        ]
        assert [p.nfc_claim for p in s.patches] == [True, False, False]
        assert s.base_commit == tree_61.commit
        assert s.author == "A. U. Thor <author@example.org>"
        assert s.msgids[0] == msgid_of(v2[0]) and len(s.msgids) == 4
        assert s.patches[0].mbox.startswith(b"From ") and b"diff --git" in s.patches[0].mbox


def test_older_revision_on_request_and_lore_url(local_inbox, posted):
    v1, _, _ = posted
    url = f"{local_inbox.url}{msgid_of(v1[1])}/"
    s = intake.load(url, "http://127.0.0.1:9/unused", revision=1)
    assert s.revision == 1 and len(s.patches) == 2
    assert s.patches[0].nfc_claim and "No functional change intended" in s.patches[0].commit_message
    with pytest.raises(IntakeError, match="v7 is not in the thread"):
        intake.load(url, local_inbox.url, revision=7)


def test_mbox_and_patch_files(posted, tree_61, tmp_path):
    v1, _, _ = posted
    mbox = tmp_path / "s.mbox"
    mbox.write_bytes(mbox_bytes(v1))
    s = intake.load(str(mbox), "http://127.0.0.1:9/unused")
    assert s.revision == 1 and len(s.patches) == 2 and s.msgid is None
    single = tmp_path / "0001.patch"
    single.write_bytes(v1[1])
    with pytest.raises(IntakeError, match="incomplete: patch 2/2 missing"):
        intake.load(str(single), "http://127.0.0.1:9/x")
    one = make_series(tree_61.path, "HEAD", [THREE], workdir=tmp_path, series_id="one").mails[1]
    single.write_bytes(one)  # a lone [PATCH] file: no mbox "From " line, no cover letter
    s = intake.load(str(single), "http://127.0.0.1:9/x")
    assert [p.subject for p in s.patches] == ["KVM: x86/mmu: note three"]
    assert s.base_commit is None  # format-patch put it in the cover letter, not given here


def test_thread_without_patches(local_inbox):
    msg = EmailMessage()
    msg["From"] = "Reviewer <r@example.org>"
    msg["To"] = "kvm@vger.kernel.org"
    msg["Subject"] = "Re: [PATCH] KVM: x86/mmu: something"
    msg["Message-ID"] = "<review-only@example.org>"
    msg["Date"] = "Wed, 25 Nov 2026 10:00:00 +0000"
    msg.set_content("Isn't this a separate bug fix?\n")
    local_inbox.deliver(bytes(msg))
    with pytest.raises(IntakeError, match="holds no patches") as e:
        intake.load("review-only@example.org", local_inbox.url)
    assert "\n" not in str(e.value)


def test_missing_patch_and_binary_attachment(local_inbox, tree_61, tmp_path):
    a = note("a", "kvm_mmu_load", "a", "KVM: x86/mmu: a")
    b = note("b", "kvm_mmu_unload", "b", "KVM: x86/mmu: b")
    mails = make_series(tree_61.path, "HEAD", [a, b], workdir=tmp_path, series_id="gap").mails
    for m in (mails[0], mails[2]):
        local_inbox.deliver(m)
    with pytest.raises(IntakeError, match=r"incomplete: patch 1/2 missing"):
        intake.load(msgid_of(mails[0]), local_inbox.url)

    att = EmailMessage()
    att["From"] = "Test Author <author@example.org>"
    att["To"] = "kvm@vger.kernel.org"
    att["Subject"] = "[PATCH] KVM: x86/mmu: with a blob"
    att["Message-ID"] = "<blob@example.org>"
    att["Date"] = "Wed, 25 Nov 2026 10:00:00 +0000"
    body = mails[1].decode().split("\n\n", 1)[1]
    att.set_content(body)
    att.add_attachment(b"\x00\x01\x02", maintype="application", subtype="octet-stream")
    local_inbox.deliver(bytes(att))
    with pytest.raises(IntakeError, match="binary attachment"):
        intake.load("blob@example.org", local_inbox.url)


def test_bad_inputs(local_inbox, tmp_path):
    corrupt = tmp_path / "corrupt.mbox"
    corrupt.write_bytes(b"\x1f\x8b\x08\x00garbage")
    with pytest.raises(IntakeError, match="corrupt gzip"):
        intake.load(str(corrupt), local_inbox.url)
    text = tmp_path / "notes.txt"
    text.write_text("just some notes\nnot a mail\n")
    with pytest.raises(IntakeError, match="not an mbox"):
        intake.load(str(text), local_inbox.url)
    with pytest.raises(IntakeError, match="not found"):
        intake.load("nobody-sent-this@example.org", local_inbox.url)
    with pytest.raises(IntakeError, match="no such file, and not a message-id"):
        intake.load("not a message id", local_inbox.url)


def test_a_thread_read_before_is_not_parsed_again(posted, tmp_path):
    from bot.memo import Memo

    v1, _, _ = posted
    data = mbox_bytes(v1)
    memo = Memo(tmp_path / "memo")
    first = intake.parse(data, "t.mbox", memo=memo)
    assert (memo.hits, memo.misses) == (0, 1)
    again = intake.parse(data, "t.mbox", memo=memo)
    assert again == first and (memo.hits, memo.misses) == (1, 1)
    # other bytes, or another revision asked for, are read again
    intake.parse(data + b"\n", "t.mbox", memo=memo)
    intake.parse(data, "t.mbox", revision=1, memo=memo)
    assert memo.misses == 3
    with pytest.raises(IntakeError):  # a failure is not remembered
        intake.parse(data, "t.mbox", revision=7, memo=memo)
    with pytest.raises(IntakeError):
        intake.parse(data, "t.mbox", revision=7, memo=memo)

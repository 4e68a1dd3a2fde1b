"""List traffic for the watcher's tests and benchmark: toy series (our own one-line C,
never kernel code) on any path, replies, command mails, as a list would carry them.

    mails = toy_series("s1", files=("arch/x86/kvm/mmu/mmu.c",), patches=2)
    inbox.deliver_many(mails)
"""

from __future__ import annotations

from collections.abc import Sequence
from email.utils import formatdate

LIST = "kvm@vger.kernel.org"
AUTHOR = "A. U. Thor <author@example.org>"
DATE = 1767225600.0  # 2026-01-01: the Date: a sender's clock gave; rt: is the delivery


def msgid(sid: str, version: int, index: int) -> str:
    return f"{sid}-v{version}-{index}@example.org"


def _mail(
    mid: str, subject: str, body: str, *, sender: str = AUTHOR, refs: Sequence[str] = (),
    headers: Sequence[str] = (),
) -> bytes:  # fmt: skip
    head = [
        f"From: {sender}",
        f"To: {LIST}",
        f"Subject: {subject}",
        f"Date: {formatdate(DATE)}",
        f"Message-ID: <{mid}>",
        *headers,
    ]
    if refs:
        head += [f"In-Reply-To: <{refs[-1]}>", "References: " + " ".join(f"<{r}>" for r in refs)]
    head += ["MIME-Version: 1.0", "Content-Type: text/plain; charset=utf-8"]
    return ("\n".join(head) + "\n\n" + body.rstrip("\n") + "\n").encode()


def _diff(path: str, sid: str, version: int, i: int) -> str:
    name = "".join(c if c.isalnum() else "_" for c in f"{sid}_{i}")
    return (
        f"diff --git a/{path} b/{path}\n"
        "index 1111111..2222222 100644\n"
        f"--- a/{path}\n+++ b/{path}\n"
        "@@ -1 +1 @@\n"
        f"-int toy_{name} = {version};\n"
        f"+int toy_{name} = {version + 1};\n"
    )


def toy_series(
    sid: str,
    *,
    files: Sequence[str] = ("arch/x86/kvm/mmu/mmu.c",),
    patches: int = 2,
    version: int = 1,
    cover: bool = True,
    change_id: str | None = None,
    sender: str = AUTHOR,
    subject: str | None = None,
    in_reply_to: str | None = None,
) -> list[bytes]:
    """A cover letter (``cover``) and ``patches`` patches, each changing one line of our
    own in ``files[i % len(files)]``; patch i answers the cover letter (or patch 1), the
    top answers ``in_reply_to`` (a v2 in v1's thread). The subject names ``sid``."""
    v = f" v{version}" if version > 1 else ""
    subject = subject or f"KVM: x86/mmu: toy {sid}"  # public-inbox threads equal subjects
    out = []
    top = msgid(sid, version, 0) if cover else msgid(sid, version, 1)
    base = [in_reply_to] if in_reply_to else []
    if cover:
        body = f"Toy series {sid}, revision {version}.\n\n"
        if change_id:
            body += f"---\nchange-id: {change_id}\n"
        body += f"\n{sender}:\n  {patches} patch(es)\n"
        out.append(_mail(top, f"[PATCH{v} 0/{patches}] {subject}", body, sender=sender, refs=base))
    for i in range(1, patches + 1):
        path = files[(i - 1) % len(files)]
        body = (
            f"Toy change {i} of {sid}.\n\nSigned-off-by: {sender}\n---\n"
            f" {path} | 2 +-\n 1 file changed, 1 insertion(+), 1 deletion(-)\n\n"
            + _diff(path, sid, version, i)
            + ("\n" if cover or not change_id else f"\nchange-id: {change_id}\n")
        )
        mid = msgid(sid, version, i)
        refs = base + ([top] if mid != top else [])
        n = f" {i}/{patches}" if patches > 1 or cover else ""
        out.append(_mail(mid, f"[PATCH{v}{n}] {subject}: part {i}", body, sender=sender, refs=refs))
    return out


def reply(
    mid: str, to: Sequence[str], body: str, *, sender: str = "Re Viewer <rev@example.org>",
    subject: str = "Re: [PATCH 0/2] KVM: x86/mmu: a toy series", headers: Sequence[str] = (),
) -> bytes:  # fmt: skip
    """A reply in the thread ``to`` (the References, oldest first)."""
    return _mail(mid, subject, body, sender=sender, refs=to, headers=headers)


def plain(mid: str, subject: str = "KVM: a question about roots") -> bytes:
    """A thread starter without a patch."""
    return _mail(mid, subject, "Is there a way to see which roots are cached?\n")

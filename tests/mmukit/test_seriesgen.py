"""The series factory on the real 6.1 tree: commits, mails, threading, mbox, git am."""

from __future__ import annotations

import mailbox
import re
from email import message_from_bytes
from pathlib import Path

import pytest

from mmuci import proc
from mmukit import seriesgen
from mmukit.transforms import (
    Transformation,
    TransformError,
    at_body_start,
    chain,
    delete_once,
    function_span,
    insert_after,
    insert_before,
    regex_once,
    rename,
    rename_identifier,
    replace_once,
    within_function,
)

MMU_C = "arch/x86/kvm/mmu/mmu.c"

# Our own C, to test the edit helpers without kernel text.
TOY_C = """\
static int helper(int a)
{
\treturn a + 1;
}

int caller(int x)
{
\tif (helper(x)) {
\t\tx = helper(x);
\t}
\treturn x;
}
"""


def comment_series() -> list[Transformation]:
    return [
        Transformation(
            "note-fast-pgd-switch",
            MMU_C,
            at_body_start("fast_pgd_switch", "\t/* series factory test 1 */\n"),
            "KVM: x86/mmu: Note one",
            "First test patch.\n\nNo functional change intended.",
        ),
        Transformation(
            "note-free-roots",
            MMU_C,
            at_body_start("kvm_mmu_free_roots", "\t/* series factory test 2 */\n"),
            "KVM: x86/mmu: Note two",
            "Second test patch.",
        ),
        rename_identifier("is_root_usable", "root_is_usable", [MMU_C]),
    ]


def test_helpers_on_own_text() -> None:
    start, end = function_span(TOY_C, "helper")
    assert TOY_C[start:end].startswith("static int helper(int a)") and TOY_C[end - 1] == "}"
    # A call inside `if (...) {` is not mistaken for the definition.
    start, end = function_span(TOY_C, "caller")
    assert TOY_C[start:].startswith("int caller") and TOY_C[start:end].count("{") == 2
    scoped = within_function("caller", replace_once("helper(x)) {", "!helper(x)) {"))
    assert "if (!helper(x))" in scoped(TOY_C)
    assert "\treturn a + 2;" in chain(replace_once("a + 1", "a + 2"))(TOY_C)
    assert insert_after("int a)", " /* a */")(TOY_C).count("/* a */") == 1
    assert insert_before("int caller", "/* c */\n")(TOY_C).count("/* c */\nint caller") == 1
    assert "x = helper(x);" not in delete_once("\t\tx = helper(x);\n")(TOY_C)
    assert regex_once(r"return (\w) \+ 1", r"return \1 - 1")(TOY_C).count("a - 1") == 1
    renamed = rename("helper", "helper2")(TOY_C)
    assert renamed.count("helper2") == 3 and "helper(" not in renamed
    body = at_body_start("caller", "\tx++;\n")(TOY_C)
    assert "int caller(int x)\n{\n\tx++;\n" in body


@pytest.mark.parametrize(
    "edit, message",
    [
        (replace_once("no such anchor", "x"), "not found"),
        (replace_once("helper(x)", "y"), "found 2 times"),
        (within_function("nosuch", replace_once("a", "b")), "function 'nosuch' not defined"),
        (within_function("helper", replace_once("x", "y")), "in helper(): anchor 'x' not found"),
        (regex_once(r"helper", "h"), "3 matches"),
        (rename("nosuch", "other"), "identifier 'nosuch' not found"),
    ],
)
def test_helpers_fail_loudly(edit, message: str) -> None:
    with pytest.raises(TransformError, match=re.escape(message)):
        edit(TOY_C)


def test_transformation_errors_name_the_transformation(tree_61, tmp_path: Path) -> None:
    same = Transformation("does-nothing", MMU_C, lambda t: t, "KVM: nothing")
    with pytest.raises(TransformError, match="'does-nothing' changes nothing"):
        seriesgen.make_series(tree_61.path, tree_61.commit, [same], workdir=tmp_path)
    missing = Transformation("bad-anchor", MMU_C, replace_once("#no such#", ""), "KVM: bad")
    with pytest.raises(TransformError, match=r"'bad-anchor' on arch/x86/kvm/mmu/mmu.c: anchor"):
        seriesgen.make_series(tree_61.path, tree_61.commit, [missing], workdir=tmp_path)
    nofile = Transformation("no-file", "arch/x86/kvm/nope.c", lambda t: t + "x", "KVM: x")
    with pytest.raises(TransformError, match="nope.c is not in the tree"):
        seriesgen.make_series(tree_61.path, tree_61.commit, [nofile], workdir=tmp_path)


def _tree_state(path: Path) -> tuple[str, str, str]:
    return (
        proc.git(path, "rev-parse", "HEAD"),
        proc.git(path, "status", "--porcelain"),
        proc.git(path, "for-each-ref"),
    )


def test_series_commits_mails_and_threading(tree_61, tmp_path: Path) -> None:
    before = _tree_state(tree_61.path)
    s = seriesgen.make_series(
        tree_61.path,
        tree_61.tag,
        comment_series(),
        workdir=tmp_path,
        cover_subject="KVM: x86/mmu: three notes",
        cover_body="Cover letter text.",
        series_id="factory",
    )
    assert _tree_state(tree_61.path) == before, "the prepared tree must never change"
    assert s.base == tree_61.commit and s.head == s.commits[-1] and len(s.commits) == 3
    parents = [proc.git(s.clone, "rev-parse", f"{c}^") for c in s.commits]
    assert parents == [s.base, *s.commits[:2]]
    for c in s.commits:
        assert proc.git(s.clone, "diff", "--name-only", f"{c}^", c) == MMU_C

    msgs = [message_from_bytes(m) for m in s.mails]
    assert [m["Message-ID"] for m in msgs] == list(s.message_ids)
    assert (
        len(set(s.message_ids)) == 4 and s.cover_message_id == "<factory-v1-0-3@mmu-ci.example.org>"
    )
    assert msgs[0]["Subject"] == "[PATCH 0/3] KVM: x86/mmu: three notes"
    assert msgs[0]["In-Reply-To"] is None
    cover_text = msgs[0].get_payload()
    assert "Cover letter text." in cover_text and f"base-commit: {s.base}" in cover_text
    for i, m in enumerate(msgs[1:], 1):
        assert m["Subject"].startswith(f"[PATCH {i}/3] KVM: x86/mmu:")
        assert m["In-Reply-To"] == s.cover_message_id
        assert m["References"] == s.cover_message_id
        assert m["To"] == "kvm@vger.kernel.org"
        assert m.get_all("Message-ID") == [s.message_ids[i]]  # git's own id is gone
    assert "+\t/* series factory test 1 */" in msgs[1].get_payload()

    again = seriesgen.make_series(
        tree_61.path,
        tree_61.tag,
        comment_series(),
        workdir=tmp_path / "again",
        cover_subject="KVM: x86/mmu: three notes",
        cover_body="Cover letter text.",
        series_id="factory",
    )
    assert again.mails == s.mails and again.commits == s.commits, "deterministic"


def v1_and_v2(tree, tmp_path: Path, series_id: str, **v2_options):
    """The comment series, then a v2 of its first two patches answering v1's cover letter."""
    v1 = seriesgen.make_series(
        tree.path, tree.commit, comment_series(), workdir=tmp_path, series_id=series_id
    )
    v2 = seriesgen.make_series(
        tree.path,
        tree.commit,
        comment_series()[:2],
        workdir=tmp_path,
        version=2,
        in_reply_to=v1.cover_message_id,
        series_id=series_id,
        **v2_options,
    )
    return v1, v2


def test_v2_threads_under_v1(tree_61, tmp_path: Path) -> None:
    v1, v2 = v1_and_v2(tree_61, tmp_path, "re", full_checkout=True)
    assert not (v1.clone / "arch/x86/kvm/x86.c").exists(), "only edited files are checked out"
    assert (v2.clone / "arch/x86/kvm/x86.c").is_file()
    cover = message_from_bytes(v2.cover)
    assert cover["Subject"].startswith("[PATCH v2 0/2]")
    assert cover["In-Reply-To"] == v1.cover_message_id
    patch = message_from_bytes(v2.patches[1].mail)
    assert patch["Subject"].startswith("[PATCH v2 2/2]")
    assert patch["References"].split() == [v1.cover_message_id, v2.cover_message_id]
    assert set(v1.message_ids).isdisjoint(v2.message_ids)
    assert v2.commits != v1.commits[:2], "v2 is committed a day later"


def test_mbox_applies_with_git_am(tree_61, tmp_path: Path) -> None:
    s = seriesgen.make_series(
        tree_61.path, tree_61.commit, comment_series(), workdir=tmp_path, series_id="am"
    )
    path = s.write_mbox(tmp_path / "series.mbox")
    box = mailbox.mbox(path)
    assert [m["Message-ID"] for m in box] == list(s.message_ids)
    target = tmp_path / "am"
    proc.git(tmp_path, "clone", "-q", "--shared", str(tree_61.path), "am")
    proc.git(target, "checkout", "-q", "-b", "am", s.base)
    patches = tmp_path / "patches.mbox"
    seriesgen.write_mbox([p.mail for p in s.patches], patches)
    proc.git(target, "-c", "user.name=t", "-c", "user.email=t@t", "am", "-q", str(patches))
    assert proc.git(target, "rev-parse", "HEAD^{tree}") == proc.git(
        s.clone, "rev-parse", f"{s.head}^{{tree}}"
    )


def test_mbox_quotes_from_lines() -> None:
    mail = b"From: a@b\nSubject: x\nMessage-ID: <q@b>\n\nFrom here on\n>From there\n"
    data = seriesgen.mbox_bytes([mail, mail])
    assert data.count(b"\nFrom mboxrd@z") == 1 and data.startswith(b"From mboxrd@z")
    assert b"\n>From here on\n>>From there\n" in data

"""`#mmu-ci test` replies on a real public-inbox, through the watcher: who may, what a
command line is, the tree and base it takes, one Command row per line, one answer per
mail in the outbox, and nothing at all for our own mail or a thread we never checked."""

from __future__ import annotations

import email
import email.policy

import pytest
from sqlalchemy import select

from bot import kernels
from bot.service import commands, watcher
from bot.store.db import session
from bot.store.models import Command, Job, OutboxItem
from mmukit import listmail
from tests.mmucore import fakelinux

COVER = listmail.msgid("cmd", 1, 0)
PATCH2 = listmail.msgid("cmd", 1, 2)
MAINT = "Mai Ntainer <maint@example.org>"
STRANGER = "Some One <someone@example.org>"


@pytest.fixture
def checked(own_inbox, watch_cfg, engine):
    """A series the watcher has seen (job 1), and a way to post a reply and poll."""
    own_inbox.deliver_many(listmail.toy_series("cmd"))
    assert watcher.poll_once(watch_cfg, engine).enqueued == 1

    def post(mid: str, body: str, sender: str = listmail.AUTHOR, refs=(COVER,), headers=()):
        own_inbox.deliver(listmail.reply(mid, list(refs), body, sender=sender, headers=headers))
        return watcher.poll_once(watch_cfg, engine)

    return post


def _rows(engine):
    with session(engine) as s:
        cmds = s.scalars(select(Command).order_by(Command.id)).all()
        jobs = s.scalars(select(Job).where(Job.trigger == "command").order_by(Job.id)).all()
        mails = s.scalars(select(OutboxItem).order_by(OutboxItem.id)).all()
        return cmds, jobs, mails


def _body(item: OutboxItem) -> tuple[email.message.EmailMessage, str]:
    m = email.message_from_bytes(item.payload, policy=email.policy.default)
    return m, m.get_body().get_content()


def test_author_reruns_once_and_is_answered_once(checked, engine, watch_cfg) -> None:
    r = checked("c1@example.org", "Please run it again.\n\n#mmu-ci test\n\n-- \nA. U. Thor\n")
    assert r.lists[0].commands == 1 and not r.failed
    cmds, jobs, mails = _rows(engine)
    assert [c.outcome for c in cmds] == [f"queued job {jobs[0].id}"]
    assert jobs[0].key == "cmd:c1@example.org:1" and jobs[0].ref.endswith(f"/{COVER}/")
    assert jobs[0].tree is None and jobs[0].base is None
    (answer,) = mails
    m, text = _body(answer)
    assert m["In-Reply-To"] == "<c1@example.org>" and m["Auto-Submitted"] == "auto-replied"
    assert "kvm@vger.kernel.org" in m["Cc"] and "author@example.org" in m["To"]
    assert f"queued job {jobs[0].id}" in text and max(map(len, text.splitlines())) <= 72
    assert not any(ln.startswith(commands.PREFIX) for ln in text.splitlines())
    assert (watch_cfg.data_dir / "outbox" / f"{answer.key}.eml").is_file()  # dry-run
    watcher.poll_once(watch_cfg, engine)  # the same mail seen again
    watcher.poll_once(watch_cfg, engine)
    assert tuple(map(len, _rows(engine))) == (1, 1, 1)


def test_maintainer_in_a_patch_thread(checked, engine) -> None:
    checked("c2@example.org", "#mmu-ci test\n", sender=MAINT, refs=(COVER, PATCH2))
    cmds, jobs, _ = _rows(engine)
    assert len(jobs) == 1 and cmds[0].sender == MAINT


def test_quoted_and_signature_commands_do_nothing(checked, engine) -> None:
    checked("q1@example.org", "> #mmu-ci test\n\nNo, not yet.\n")
    checked("q2@example.org", "Thanks.\n\n-- \n#mmu-ci test\n")
    checked("q3@example.org", "We could say #mmu-ci test here, mid-line.\n")
    assert tuple(map(len, _rows(engine))) == (0, 0, 0)


def test_stranger_is_refused_once_to_themself(checked, engine, watch_cfg) -> None:
    checked("s1@example.org", "#mmu-ci test\n#mmu-ci test\n", sender=STRANGER)
    watcher.poll_once(watch_cfg, engine)
    cmds, jobs, mails = _rows(engine)
    assert jobs == [] and len(cmds) == 2 and all(c.outcome.startswith("refused") for c in cmds)
    (refusal,) = mails
    m, text = _body(refusal)
    assert m["To"] == STRANGER and m["Cc"] is None and refusal.target == "someone@example.org"
    assert "Nothing was queued" in text


def test_unknown_command_lists_the_valid_ones(checked, engine) -> None:
    checked("u1@example.org", "#mmu-ci frobnicate\n")
    cmds, jobs, (answer,) = _rows(engine)
    assert jobs == [] and [c.outcome for c in cmds] == ["unknown command"]
    _, text = _body(answer)
    assert "unknown command" in text and "#mmu-ci test TREE BASE" in text


def test_at_most_three_commands_per_mail(checked, engine) -> None:
    checked("m1@example.org", "#mmu-ci test\n" * 4)
    cmds, jobs, (answer,) = _rows(engine)
    assert [c.line_no for c in cmds] == [1, 2, 3] and len(jobs) == 3
    assert "1 more command line(s) ignored" in _body(answer)[1]


@pytest.mark.parametrize(
    "headers",
    [
        ("X-Mailer: mmu-ci",),
        ("Auto-Submitted: auto-replied",),
    ],
)
def test_robot_mail_does_nothing(checked, engine, headers) -> None:
    checked("r1@example.org", "#mmu-ci test\n", headers=headers)
    assert tuple(map(len, _rows(engine))) == (0, 0, 0)


def test_our_own_mail_does_nothing(checked, engine) -> None:
    checked("mmu-ci.1234@mmu-ci.localhost", "#mmu-ci test\n")  # our Message-ID domain
    checked("o2@example.org", "#mmu-ci test\n", sender="mmu-ci <mmu-ci@localhost>")
    checked("o3@example.org", "#mmu-ci test\n", headers=("Auto-Submitted: no",))  # a person
    cmds, jobs, _ = _rows(engine)
    assert [c.msgid for c in cmds] == ["o3@example.org"] and len(jobs) == 1


def test_tree_and_base_are_passed_a_path_refused(checked, engine, watch_cfg, tmp_path) -> None:
    kernels.prepare(watch_cfg.data_dir, str(fakelinux.make(tmp_path / "fake-kvm")))
    checked(
        "t1@example.org",
        "#mmu-ci test fake-kvm v5.17\n#mmu-ci test fake-kvm 1a2b3c4d\n#mmu-ci test /etc/passwd\n",
    )
    checked("t2@example.org", "#mmu-ci test nosuchtree\n#mmu-ci test fake-kvm ../x\n")
    cmds, jobs, mails = _rows(engine)
    assert [(j.tree, j.base) for j in jobs] == [("fake-kvm", "v5.17"), ("fake-kvm", "1a2b3c4d")]
    refused = [c.outcome for c in cmds if c.job_id is None]
    assert refused[0].startswith("refused: a tree is a registered tree's name, not a path")
    assert "no registered tree 'nosuchtree' (registered: fake-kvm)" in refused[1]
    assert refused[2].startswith("refused: a base is a commit id")
    assert len(mails) == 2 and "fake-kvm" in _body(mails[0])[1]


def test_outside_a_checked_thread_does_nothing(checked, engine) -> None:
    checked("n1@example.org", "#mmu-ci test\n", refs=("unknown@example.org",))
    checked("n2@example.org", "#mmu-ci test\n", refs=())
    assert tuple(map(len, _rows(engine))) == (0, 0, 0)


def test_command_lines() -> None:
    body = "#mmu-ci test\n #mmu-ci test\n>#mmu-ci test\n#mmu-cix\n#mmu-ci  test  a\n-- \n#mmu-ci"
    assert commands.command_lines(body) == ["#mmu-ci test", "#mmu-ci  test  a"]

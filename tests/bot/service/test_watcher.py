"""The watcher on a real public-inbox: new revisions queued once (also across restarts
and overlapping windows), v2 a new revision of the same series, out-of-scope and replies
never recorded, incomplete series waiting, a crash before the commit leaving nothing."""

from __future__ import annotations

import sys

import pytest
from sqlalchemy import func, select

from bot.service import watcher
from bot.store import db
from bot.store.db import session
from bot.store.models import Job, PollCursor, Revision, Series
from mmuci import proc
from mmukit import listmail

REPO = __import__("pathlib").Path(__file__).resolve().parents[3]


def _count(engine, model) -> int:
    with session(engine) as s:
        return int(s.scalar(select(func.count()).select_from(model)) or 0)


def test_v1_then_v2_is_one_series_two_jobs_never_twice(own_inbox, watch_cfg, engine) -> None:
    own_inbox.deliver_many(listmail.toy_series("w"))
    own_inbox.deliver(listmail.reply("w-r@example.org", [listmail.msgid("w", 1, 0)], "Nice.\n"))
    first = watcher.poll_once(watch_cfg, engine)
    (lp,) = first.lists
    assert (lp.in_scope, lp.enqueued, lp.errors) == (1, 1, ()) and lp.seen == 2
    v2 = listmail.toy_series("w", version=2, in_reply_to=listmail.msgid("w", 1, 0))
    own_inbox.deliver_many(v2)
    assert watcher.poll_once(watch_cfg, engine).enqueued == 1
    assert watcher.poll_once(watch_cfg, engine).enqueued == 0  # the same window again
    with session(engine) as s:
        (series,) = s.scalars(select(Series)).all()
        assert [r.revision for r in series.revisions] == [1, 2]
        jobs = s.scalars(select(Job).order_by(Job.id)).all()
        assert [j.key for j in jobs] == [f"rev:{listmail.msgid('w', v, 0)}" for v in (1, 2)]
        assert jobs[1].ref == f"{own_inbox.url}{listmail.msgid('w', 2, 0)}/"
        assert all(j.trigger == "watch" and j.revision_id for j in jobs)
    # a restart: a new engine on the same database, the cursor forgotten (a wider window)
    again = db.make_engine(str(engine.url))
    with session(again) as s:
        s.get(PollCursor, own_inbox.url).last_received_at = None
    assert watcher.poll_once(watch_cfg, again).enqueued == 0
    assert _count(again, Job) == 2
    own_inbox.deliver_many(listmail.toy_series("later", patches=1))
    assert watcher.poll_once(watch_cfg, again).enqueued == 1


def test_v2_in_a_new_thread_by_change_id(own_inbox, watch_cfg, engine) -> None:
    own_inbox.deliver_many(listmail.toy_series("c1", change_id="20260101-roots-1a2b"))
    watcher.poll_once(watch_cfg, engine)
    v2 = listmail.toy_series("c2", version=2, change_id="20260101-roots-1a2b", subject="KVM: other")
    own_inbox.deliver_many(v2)
    assert watcher.poll_once(watch_cfg, engine).enqueued == 1
    with session(engine) as s:
        (series,) = s.scalars(select(Series)).all()
        assert series.change_id == "20260101-roots-1a2b" and len(series.revisions) == 2


def test_out_of_scope_and_replies_are_never_recorded(own_inbox, watch_cfg, engine) -> None:
    own_inbox.deliver_many(listmail.toy_series("x86", files=("arch/x86/kvm/x86.c",)))
    own_inbox.deliver_many(listmail.toy_series("tdp", files=("arch/x86/kvm/mmu/tdp_mmu.c",)))
    own_inbox.deliver(listmail.plain("plain@example.org"))
    patch = listmail.toy_series("gone")[1].decode().split("\n\n", 1)[1]  # its series: not here
    own_inbox.deliver(listmail.reply("rv@example.org", ["gone-v1-1@example.org"], patch))
    r = watcher.poll_once(watch_cfg, engine)
    assert r.lists[0].enqueued == 0 and r.lists[0].in_scope == 0 and not r.failed
    assert _count(engine, Series) == 0 and _count(engine, Job) == 0


def test_incomplete_series_waits_for_its_last_patch(own_inbox, watch_cfg, engine) -> None:
    mails = listmail.toy_series("inc", patches=3)
    own_inbox.deliver_many(mails[:3])
    assert watcher.poll_once(watch_cfg, engine).enqueued == 0
    assert _count(engine, Revision) == 0
    own_inbox.deliver(mails[3])
    assert watcher.poll_once(watch_cfg, engine).enqueued == 1
    with session(engine) as s:
        assert s.scalars(select(Revision)).one().n_patches == 3


def test_a_crash_before_the_commit_leaves_nothing(own_inbox, watch_cfg, engine, monkeypatch):
    own_inbox.deliver_many(listmail.toy_series("crash"))
    real = watcher._cursor

    def dies(s, list_url):
        raise RuntimeError("the watcher died here")

    monkeypatch.setattr(watcher, "_cursor", dies)  # after record_revision and enqueue
    with pytest.raises(RuntimeError):
        watcher.poll_once(watch_cfg, engine)
    assert (_count(engine, Series), _count(engine, Job), _count(engine, PollCursor)) == (0, 0, 0)
    monkeypatch.setattr(watcher, "_cursor", real)
    assert watcher.poll_once(watch_cfg, engine).enqueued == 1


def _mmubot(args: list[str], env: dict[str, str]) -> proc.Completed:
    return proc.run([sys.executable, "-m", "bot.cli", *args], cwd=REPO, extra_env=env, check=False)


def test_watch_once_command(own_inbox, tmp_path) -> None:
    own_inbox.deliver_many(listmail.toy_series("cli"))
    env = {
        "MMUCI_DATA_DIR": str(tmp_path / "data"),
        "MMUCI_WATCH_LISTS": own_inbox.url,
        "XDG_CONFIG_HOME": str(tmp_path / "xdg"),
    }
    r = _mmubot(["watch", "--once"], env)
    assert r.returncode == 0, r.stderr
    assert "1 job(s) queued" in r.stdout
    r = _mmubot(["watch", "--once"], env)
    assert r.returncode == 0 and "0 job(s) queued" in r.stdout
    down = _mmubot(["watch", "--once"], {**env, "MMUCI_WATCH_LISTS": "http://127.0.0.1:9/kvm/"})
    assert down.returncode == 2 and "error: could not search http://127.0.0.1:9/kvm/" in down.stdout


def test_end_to_end_watch_once_then_the_job(own_inbox, tmp_path, data_dir, tree_61) -> None:
    """A generated series on the 6.1 tree posted to the list: `mmubot watch --once` queues
    it, the job runs, its Run is stored and its reply is in the outbox."""
    from bot import config
    from bot.service import jobs
    from bot.store.models import OutboxItem, Run
    from mmukit.seriesgen import deliver, make_series
    from tests.bot.test_tree import note

    data = tmp_path / "data"
    data.mkdir()
    (data / "trees").symlink_to(data_dir / "trees")
    gen = make_series(
        tree_61.path, tree_61.commit, [note("kvm_mmu_unload", "c0")],
        workdir=tmp_path / "gen", series_id="e2e",
    )  # fmt: skip
    deliver(own_inbox, gen)
    env = {
        "MMUCI_DATA_DIR": str(data),
        "MMUCI_LORE_URL": own_inbox.url,
        "MMUCI_WATCH_LISTS": own_inbox.url,
        "MMUCI_PUBLISH_WHEN": "always",
        "XDG_CONFIG_HOME": str(tmp_path / "xdg"),
    }
    r = _mmubot(["watch", "--once"], env)
    assert r.returncode == 0 and "1 job(s) queued" in r.stdout, r.stdout + r.stderr
    cfg = config.load(environ=env)
    engine = db.open_engine(cfg)
    with session(engine) as s:
        (job,) = s.scalars(select(Job)).all()
    out = jobs.run_job(cfg, engine, job.id, "test")
    assert out.state == "done", out.reason
    with session(engine) as s:
        (run,) = s.scalars(select(Run)).all()
        assert run.job_id == job.id and run.revision_id == job.revision_id
        (reply,) = s.scalars(select(OutboxItem)).all()
        assert f"In-Reply-To: {gen.cover_message_id}".encode() in reply.payload
    assert _mmubot(["watch", "--once"], env).returncode == 0
    assert _count(engine, Job) == 1


def test_loop_polls_until_stopped(own_inbox, watch_cfg, engine) -> None:
    import threading

    own_inbox.deliver_many(listmail.toy_series("loop"))
    watch_cfg.values["watch"]["interval"] = 0.05
    stop, seen, lines = threading.Event(), [], []

    def tick(r: watcher.PollResult) -> None:
        seen.append(r.enqueued)
        if len(seen) == 3:
            stop.set()

    watcher.loop(watch_cfg, engine, tick=tick, stop=stop, log=lines.append)
    assert seen == [1, 0, 0] and "1 job(s) queued" in lines[0]


def test_watch_runs_the_jobs_it_queues(own_inbox, tmp_path, data_dir) -> None:
    """`mmubot watch` (no --once) with the embedded pool: the toy series (our own C, it
    does not apply to 6.1) is queued, checked (apply-error), answered; SIGTERM ends it."""
    from bot import config
    from bot.store.models import JobState, OutboxItem, Run

    from .servers import MMUBOT, stop, wait_for

    data = tmp_path / "data"
    data.mkdir()
    (data / "trees").symlink_to(data_dir / "trees")
    own_inbox.deliver_many(listmail.toy_series("run"))
    env = {
        "MMUCI_DATA_DIR": str(data),
        "MMUCI_LORE_URL": own_inbox.url,
        "MMUCI_WATCH_LISTS": own_inbox.url,
        "MMUCI_WATCH_INTERVAL": "0.5",
        "MMUCI_JOBS_POLL_SECONDS": "0.5",
        "MMUCI_PUBLISH_WHEN": "always",
        "XDG_CONFIG_HOME": str(tmp_path / "xdg"),
    }
    engine = db.open_engine(config.load(environ=env))
    p = proc.spawn([*MMUBOT, "watch"], extra_env=env, log=tmp_path / "watch.log")
    try:

        def done():
            with session(engine) as s:
                j = s.scalars(select(Job)).first()
                return j is not None and j.state == JobState.DONE and j

        job = wait_for("the watcher's pool to finish the job", done, timeout=180)
    finally:
        stop(p)
    assert p.returncode == 0, (tmp_path / "watch.log").read_text()[-2000:]
    with session(engine) as s:
        (run,) = s.scalars(select(Run)).all()
        assert run.job_id == job.id and run.verdict == "apply-error"
        assert len(s.scalars(select(OutboxItem)).all()) == 1
    assert _count(engine, Job) == 1


def test_an_unreadable_thread_is_skipped_not_retried(own_inbox, watch_cfg, engine) -> None:
    """A thread intake cannot read (a patch header over intake.max_header_bytes) is the
    mail's fault: skipped with its reason, the cursor moves, the rest is queued."""
    bad = listmail.toy_series("bad", patches=1, cover=False)[0]
    bad = bad.replace(b"\nMIME-Version:", b"\nX-Long: " + b"x" * 20000 + b"\nMIME-Version:", 1)
    own_inbox.deliver(bad)
    own_inbox.deliver_many(listmail.toy_series("good"))
    (lp,) = watcher.poll_once(watch_cfg, engine).lists
    assert lp.enqueued == 1 and lp.errors == () and len(lp.skipped) == 1
    assert "intake.max_header_bytes" in lp.skipped[0] or "header" in lp.skipped[0]
    with session(engine) as s:
        assert s.get(PollCursor, own_inbox.url).last_received_at is not None

"""`mmubot worker`: run queued jobs until stopped, on the configured backend.

embedded: a job pool (threads) on the database itself; any number of these may share
one database. celery: a Celery worker on ``jobs.broker_url`` (thread pool, concurrency
``jobs.workers``) plus a reaper thread that hands claimable jobs without a message in
flight (new ones, and those whose worker died) to the broker every ``jobs.poll_seconds``.
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import socket
import sys
import threading

from sqlalchemy import Engine

from bot.config import Config
from bot.service.lease import JobSettings
from bot.store.db import open_engine

log = logging.getLogger("mmu-ci.worker")


def _overrides(args: argparse.Namespace, cfg: Config) -> None:
    for key in ("backend", "workers"):
        value = getattr(args, key, None)
        if value is not None:
            cfg.values["jobs"][key] = value
            cfg.sources[("jobs", key)] = f"--{key}"


def _reaper(cfg: Config, engine: Engine, stop: threading.Event, every: float) -> None:
    from bot.service.jobs import dispatch

    while not stop.wait(every):
        try:
            sent = dispatch(cfg, engine)
            if sent:
                log.info("handed jobs %s to the broker", sent)
        except Exception as e:  # noqa: BLE001 - Redis or the database away: next round
            log.warning("dispatch: %s", e)


def _embedded(cfg: Config, engine: Engine, st: JobSettings) -> int:
    from bot.service.pool import Pool

    stop = threading.Event()

    def on_signal(signum: int, frame: object) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    pool = Pool(cfg, engine, st.workers).start()
    print(f"mmubot worker: embedded pool, {st.workers} worker(s), polling every "
          f"{st.poll_seconds:g} s; SIGTERM stops after the running jobs", flush=True)  # fmt: skip
    while not stop.wait(3600):
        pass
    print("mmubot worker: stopping after the running jobs", flush=True)
    pool.stop()
    return 0


def _celery(cfg: Config, engine: Engine, st: JobSettings) -> int:
    from bot.service.celery_app import QUEUE, make_app

    app = make_app(cfg, engine)
    stop = threading.Event()
    reaper = threading.Thread(
        target=_reaper, args=(cfg, engine, stop, st.poll_seconds), name="reaper", daemon=True
    )
    reaper.start()
    print(f"mmubot worker: celery on {st.broker_url}, queue {QUEUE}, {st.workers} thread(s)",
          flush=True)  # fmt: skip
    try:
        app.worker_main(
            [
                "worker",
                "--pool=threads",
                f"--concurrency={st.workers}",
                f"--hostname=mmu-ci-{os.getpid()}@{socket.gethostname()}",
                f"--queues={QUEUE}",
                "--loglevel=INFO",
                "--without-gossip",
                "--without-mingle",
                "--without-heartbeat",
            ]
        )
    finally:
        stop.set()
    return 0


def run(args: argparse.Namespace, cfg: Config) -> int:
    """Run jobs until SIGTERM (embedded: after the running jobs; celery: warm shutdown)."""
    _overrides(args, cfg)
    st = JobSettings.from_config(cfg)
    logging.basicConfig(
        level=logging.INFO, stream=sys.stderr, format="%(asctime)s %(name)s: %(message)s"
    )
    engine = open_engine(cfg)
    if st.backend == "celery":
        return _celery(cfg, engine, st)
    return _embedded(cfg, engine, st)

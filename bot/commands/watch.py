"""`mmubot watch [--once]`: poll the lists, queue a job per new series revision, answer
`#mmu-ci` commands; without ``--once`` also run the queued jobs (embedded pool, or hand
them to Celery) until SIGTERM."""

from __future__ import annotations

import argparse
import logging
import signal
import sys
import threading

from bot.config import Config
from bot.service.lease import JobSettings
from bot.store.db import open_engine


def run(args: argparse.Namespace, cfg: Config) -> int:
    from bot.service import jobs, watcher

    engine = open_engine(cfg)
    if args.once:
        result = watcher.poll_once(cfg, engine)
        for p in result.lists:
            print(p.line())
        return 2 if result.failed else 0
    logging.basicConfig(
        level=logging.INFO, stream=sys.stderr, format="%(asctime)s %(name)s: %(message)s"
    )
    stop = threading.Event()

    def on_signal(signum: int, frame: object) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    st = JobSettings.from_config(cfg)
    pool = None
    if st.backend == "embedded":
        from bot.service.pool import Pool

        pool = Pool(cfg, engine).start()
    st_watch = watcher.WatchSettings.from_config(cfg)
    print(f"mmubot watch: {', '.join(st_watch.lists)} every {st_watch.interval:g} s, "
          f"jobs on {st.backend}; SIGTERM stops", flush=True)  # fmt: skip

    def tick(result: watcher.PollResult) -> None:
        try:
            jobs.dispatch(cfg, engine)
        except Exception as e:  # noqa: BLE001 - the broker away: the next tick tries again
            logging.getLogger("mmu-ci.watch").warning("dispatch: %s", e)

    watcher.loop(cfg, engine, tick=tick, stop=stop, log=lambda line: print(line, flush=True))
    if pool is not None:
        print("mmubot watch: stopping after the running jobs", flush=True)
        pool.stop()
    return 0

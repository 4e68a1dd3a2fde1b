"""The watcher classifying 1,000 list messages in one poll (target: < 30 s, no build).

Run: .venv/bin/python bench/bench_watch.py. A public-inbox of its own on 127.0.0.1
(mmukit.inbox, indexlevel full) gets, in one bulk import (deliver_many): 100 in-scope
series (cover letter + 2 patches on arch/x86/kvm/mmu/mmu.c), 100 out-of-scope series
(arch/x86/kvm/x86.c, arch/x86/kvm/mmu/tdp_mmu.c), 300 replies (2 to each in-scope
series, 1 to each out-of-scope one) and 100 threads without a patch: 1,000 messages.
One `watcher.poll_once` on a fresh SQLite database is timed; it prints the seconds, the
ratio to the budget, the jobs queued (must be 100) and the builds (must be 0: the data
directory's build cache stays empty and the build module is never imported).
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bot import config  # noqa: E402
from bot.service import watcher  # noqa: E402
from bot.store import db  # noqa: E402
from mmukit import listmail  # noqa: E402
from mmukit.inbox import LocalInbox  # noqa: E402

BUDGET = 30.0
OUT_FILES = ("arch/x86/kvm/x86.c", "arch/x86/kvm/mmu/tdp_mmu.c")


def traffic() -> list[bytes]:
    mails: list[bytes] = []
    for i in range(100):
        sid = f"in{i:03d}"
        mails += listmail.toy_series(sid)
        for r in range(2):
            refs = [listmail.msgid(sid, 1, 0), listmail.msgid(sid, 1, 1 + r)]
            mails.append(listmail.reply(f"{sid}-r{r}@example.org", refs, "> ok\n\nLooks fine.\n"))
    for i in range(100):
        sid = f"out{i:03d}"
        mails += listmail.toy_series(sid, files=(OUT_FILES[i % 2],))
        mails.append(listmail.reply(f"{sid}-r@example.org", [listmail.msgid(sid, 1, 0)], "Hm.\n"))
    mails += [listmail.plain(f"plain{i:03d}@example.org", f"KVM: question {i}") for i in range(100)]
    return mails


def main() -> int:
    with tempfile.TemporaryDirectory(prefix="bench-watch-") as tmp:
        root = Path(tmp)
        with LocalInbox(root / "pi") as inbox:
            mails = traffic()
            t0 = time.monotonic()
            added = inbox.deliver_many(mails)
            print(f"imported {added} messages in {time.monotonic() - t0:.1f} s")
            env = {
                "MMUCI_DATA_DIR": str(root / "data"),
                "MMUCI_WATCH_LISTS": inbox.url,
                "XDG_CONFIG_HOME": str(root / "xdg"),
            }
            cfg = config.load(environ=env)
            engine = db.open_engine(cfg)
            t0 = time.monotonic()
            result = watcher.poll_once(cfg, engine)
            secs = time.monotonic() - t0
        (lp,) = result.lists
        cache = cfg.data_dir / "build-cache"
        builds = sum(1 for _ in cache.rglob("*.so")) if cache.is_dir() else 0
        imported = "mmucore.build" in sys.modules
        print(f"poll_once over {len(mails)} messages: {secs:.1f} s, {secs / BUDGET:.2f} of the "
              f"{BUDGET:.0f} s budget")  # fmt: skip
        print(f"seen {lp.seen}, in scope {lp.in_scope}, jobs queued {lp.enqueued} (want 100), "
              f"builds {builds} (want 0), build module imported: {imported}, "
              f"errors {len(lp.errors)}")  # fmt: skip
        ok = lp.enqueued == 100 and builds == 0 and not imported and not lp.errors
        return 0 if ok and secs < BUDGET else 1


if __name__ == "__main__":
    sys.exit(main())

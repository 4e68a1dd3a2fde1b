"""`mmubot demo`: the whole pipeline on the embedded default, through the real path.

Prepares the Debian 6.1 and 6.12 trees, starts a local public-inbox, posts a three-patch series
made by the series factory, runs `mmubot check` on its cover letter's message-id,
prints the report, writes it as JSON and HTML, renders the reply it would post (dry-run, into
an outbox of its own: `<data dir>/demo/reply.eml`, nothing sent), and stops the server.

The series (the seed thread's situation, in three patches):
  1. a true refactor claiming no functional change   -> same (root cache lookup)
  2. a comment in a function the model does not use   -> out-of-scope
  3. a behaviour change that also claims no change    -> differs, flagged against its claim
     (root freeing)
"""

from __future__ import annotations

import argparse
import dataclasses
import functools
import tempfile
import time
from pathlib import Path
from typing import Any

from bot import kernels, pipeline
from bot.config import Config
from bot.progress import progress_bars
from bot.render_html import write_html
from bot.render_text import print_report
from mmukit.transforms import Transformation, regex_once, replace_once, within_function

MMU_C = "arch/x86/kvm/mmu/mmu.c"


def refactor_nfc() -> Transformation:
    """The early-out test `i == N` becomes `i >= N`: the loop never passes N, so equal."""
    return Transformation(
        "free-roots-bound-ge",
        MMU_C,
        within_function("kvm_mmu_free_roots", replace_once("i == KVM_MMU_NUM", "i >= KVM_MMU_NUM")),
        "KVM: x86/mmu: Use >= for the early-out bound in kvm_mmu_free_roots()",
        "Compare against KVM_MMU_NUM_PREV_ROOTS with >= so that the bound reads the\n"
        "same as the loop above it.\n\nNo functional change intended.",
    )


def cache_refactor_nfc() -> Transformation:
    """is_root_usable() compares the pgds the other way round: the same test."""
    return Transformation(
        "root-usable-pgd-order",
        MMU_C,
        within_function("is_root_usable", replace_once("pgd == root->pgd", "root->pgd == pgd")),
        "KVM: x86/mmu: Compare the cached root's pgd first in is_root_usable()",
        "Read the cached root's fields in the order the struct has them.\n\n"
        "No functional change intended.",
    )


def out_of_scope_comment() -> Transformation:
    """A comment in kvm_mmu_load(), which none of the checks reaches."""
    edit = within_function(
        "kvm_mmu_load",
        regex_once(
            r"\)\s*\n\{\n", ")\n{\n\t/* Roots are allocated here, freed by kvm_mmu_unload(). */\n"
        ),
    )
    return Transformation(
        "load-comment",
        MMU_C,
        edit,
        "KVM: x86/mmu: Say where roots are allocated and freed",
        "A comment for readers of kvm_mmu_load().",
    )


def zap_on_last_ref_nfc() -> Transformation:
    """Zap a root when its root_count drops to 0 even if it is still valid: a behaviour
    change (valid roots used to stay cached) described as a cleanup."""
    return Transformation(
        "free-root-zap-valid",
        MMU_C,
        within_function("mmu_free_root_page", replace_once(" && sp->role.invalid)", ")")),
        "KVM: x86/mmu: Simplify the last-reference test in mmu_free_root_page()",
        "A root whose last reference goes away is always invalid by then, so the\n"
        "role.invalid test is redundant; drop it.\n\nNo functional change intended.",
    )


def demo_transformations() -> list[Transformation]:
    """The demo series, in order."""
    return [cache_refactor_nfc(), out_of_scope_comment(), zap_on_last_ref_nfc()]


EXPECTED = ["same", "out-of-scope", "differs"]


def _post_dry_run(report: dict[str, Any], cfg: Config, out: Path) -> Path:
    """Publish the report in dry-run into an outbox of the demo's own (never the operator's,
    never sent) and keep the rendered mail as ``out/reply.eml``."""
    from sqlalchemy import select

    from bot.publish.run import publish
    from bot.store.db import open_engine, session
    from bot.store.models import Kind, OutboxItem

    db = out / "outbox.sqlite3"
    for f in out.glob("outbox.sqlite3*"):
        f.unlink()
    values = {s: dict(kv) for s, kv in cfg.values.items()}
    values["publish"]["mode"], values["publish"]["when"] = "dry-run", "always"
    values["database"]["url"] = f"sqlite:///{db}"
    post_cfg = dataclasses.replace(cfg, values=values)
    engine = open_engine(post_cfg)
    publish(report, post_cfg, engine)
    with session(engine) as s:
        mail = s.scalar(select(OutboxItem).where(OutboxItem.kind == Kind.MAIL))
    engine.dispose()
    path = out / "reply.eml"
    path.write_bytes(mail.payload if mail else b"")
    return path


def run(args: argparse.Namespace, cfg: Config) -> int:
    """Prepare both embedded trees, serve the demo series (on 6.1) on a local inbox, check it,
    write the reports."""
    from mmukit.inbox import LocalInbox
    from mmukit.seriesgen import deliver, make_series

    t0 = time.perf_counter()
    trees = {}
    for ver in ("6.1", "6.12"):
        with progress_bars(lines=True) as progress:
            on_bytes = functools.partial(progress, f"extracting {ver}")
            t, worked = kernels.prepare(cfg.data_dir, ver, on_bytes)
        print(f"{t.name}: Linux {t.version} {'prepared' if worked else 'ready'} at {t.path}")
        trees[ver] = t
    tree = trees["6.1"]
    out = cfg.data_dir / "demo"
    out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="mmuci-demo-") as tmp:
        gen = make_series(
            tree.path,
            tree.commit,
            demo_transformations(),
            workdir=Path(tmp),
            cover_subject="KVM: x86/mmu: Tidy up root freeing",
            cover_body="Three small cleanups of the root-freeing code.",
            series_id="mmuci-demo",
        )
        with LocalInbox(Path(tmp) / "public-inbox") as inbox:
            deliver(inbox, gen)
            print(f"posted {len(gen.patches)} patches to {inbox.url} ({gen.cover_message_id})")
            values = {s: dict(kv) for s, kv in cfg.values.items()}
            values["lore"]["url"] = inbox.url
            values["trees"]["default"] = tree.name
            demo_cfg = dataclasses.replace(cfg, values=values)
            msgid = gen.cover_message_id.strip("<>")
            t1 = time.perf_counter()
            with progress_bars() as progress:
                report = pipeline.check(msgid, demo_cfg, progress=progress)
            reply = _post_dry_run(report.to_json(), demo_cfg, out)
    print_report(report)
    report.write_json(out / "report.json")
    write_html(report, out / "report.html")
    got = [p.verdict for p in report.patches]
    print(f"\nJSON: {out / 'report.json'}\nHTML: {out / 'report.html'}")
    print(f"the reply mmu-ci would post (dry-run, nothing sent): {reply}")
    print(f"check took {time.perf_counter() - t1:.1f}s; demo {time.perf_counter() - t0:.1f}s")
    if got != EXPECTED:
        print(f"unexpected verdicts {got}, the demo series is designed for {EXPECTED}")
        return 1
    return 0

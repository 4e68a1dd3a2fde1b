"""`mmubot check` end to end: series posted to a real public-inbox, fetched by message-id,
applied, scoped, built and checked; verdicts read back from the JSON report."""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

import pytest

from bot.commands.demo import (
    EXPECTED,
    demo_transformations,
    out_of_scope_comment,
    refactor_nfc,
    zap_on_last_ref_nfc,
)
from mmuci import proc
from mmukit.seriesgen import deliver, make_series, mbox_bytes
from mmukit.transforms import Transformation, regex_once, within_function

pytestmark = pytest.mark.slow

MMUBOT = [sys.executable, "-m", "bot.cli"]
MMU_C = "arch/x86/kvm/mmu/mmu.c"


def drop_valid_check_nfc() -> Transformation:
    """The seed thread's question in reverse: free the current root without asking whether
    it is valid, described as a cleanup."""
    edit = within_function(
        "kvm_mmu_free_roots", regex_once(r"\)\n\t+&& VALID_PAGE\(mmu->root\.hpa\);", ");")
    )
    return Transformation(
        "free-roots-no-valid-check",
        MMU_C,
        edit,
        "KVM: x86/mmu: Let mmu_free_root_page() filter invalid current roots",
        "mmu_free_root_page() ignores invalid roots already.\n\nNo functional change intended.",
    )


def x86_comment() -> Transformation:
    edit = within_function(
        "kvm_arch_vcpu_ioctl_run", regex_once(r"\)\s*\n\{\n", ")\n{\n\t/* entry */\n")
    )
    return Transformation(
        "x86-comment", "arch/x86/kvm/x86.c", edit, "KVM: x86: Comment the run ioctl"
    )


def check(ref: str, env: dict, tmp_path: Path, *extra: str) -> tuple[int, dict | None, str]:
    out = tmp_path / f"report-{abs(hash(ref))}.json"
    r = proc.run([*MMUBOT, "check", ref, "--json", str(out), *extra], extra_env=env, check=False)
    report = json.loads(out.read_text()) if out.exists() else None
    return r.returncode, report, r.stderr


@pytest.fixture(scope="module")
def env(local_inbox, data_dir, tree_61, tree_612):
    return {
        "MMUCI_DATA_DIR": str(data_dir),
        "MMUCI_LORE_URL": local_inbox.url,
        "MMUCI_TREES_DEFAULT": "debian-6.1",
        "MMUCI_TREES_EXTRA": "debian-6.12",
        "XDG_CONFIG_HOME": str(data_dir / "no-config"),
    }


def post(inbox, tree, ts, tmp_path, sid, **kw):
    gen = make_series(tree.path, tree.commit, ts, workdir=tmp_path, series_id=sid, **kw)
    deliver(inbox, gen)
    return gen


def test_demo_series(local_inbox, env, tree_61, tmp_path):
    gen = post(local_inbox, tree_61, demo_transformations(), tmp_path, "t-demo")
    code, rep, err = check(gen.cover_message_id, env, tmp_path, "--html", str(tmp_path / "r.html"))
    assert rep is not None, err
    assert {"series", "base", "patches", "verdict", "timings"} <= set(rep)
    assert [p["verdict"] for p in rep["patches"]] == EXPECTED, err
    assert [p["nfc_claim"] for p in rep["patches"]] == [True, False, True]
    assert rep["nfc_contradicted"] == [3] and rep["patches"][2]["nfc_contradicted"]
    for p in rep["patches"]:
        assert {"index", "subject", "verdict", "checks", "nfc_claim"} <= set(p)
    assert rep["base"]["tree"] == "debian-6.1" and rep["base"]["commit"] == tree_61.commit
    assert rep["verdict"] == "differs" and code == 1
    assert rep["whole_series"]["verdict"] == "differs"
    assert "mmubot check" in rep["reproduce"]
    html = (tmp_path / "r.html").read_text()
    assert "differs" in html and "claimed, but differs" in html


def test_series_on_612_found_by_base_commit(local_inbox, env, tree_612, tmp_path):
    ts = [refactor_nfc(), drop_valid_check_nfc()]
    gen = post(local_inbox, tree_612, ts, tmp_path, "t-612")
    code, rep, err = check(gen.patches[1].message_id, env, tmp_path)
    assert rep is not None, err
    assert rep["base"]["tree"] == "debian-6.12" and "found in debian-6.12" in rep["base"]["reason"]
    assert [p["verdict"] for p in rep["patches"]] == ["same", "differs"], err
    assert rep["nfc_contradicted"] == [2] and code == 1


def test_v2_in_the_same_thread_is_checked(local_inbox, env, tree_61, tmp_path):
    v1 = post(local_inbox, tree_61, [zap_on_last_ref_nfc()], tmp_path, "t-rev")
    post(
        local_inbox,
        tree_61,
        [refactor_nfc(), out_of_scope_comment()],
        tmp_path,
        "t-rev",
        version=2,
        in_reply_to=v1.cover_message_id,
    )
    code, rep, err = check(v1.patches[0].message_id, env, tmp_path)
    assert rep is not None, err
    assert rep["series"]["revision"] == 2 and rep["series"]["revisions"] == [1, 2]
    assert [p["verdict"] for p in rep["patches"]] == ["same", "out-of-scope"], err
    assert rep["verdict"] == "same" and code == 0
    code, rep, err = check(v1.cover_message_id, env, tmp_path, "--revision", "1")
    assert rep is not None and [p["verdict"] for p in rep["patches"]] == ["differs"], err


def test_series_that_does_not_apply(local_inbox, env, tree_61, tmp_path):
    gen = make_series(
        tree_61.path, tree_61.commit, demo_transformations(), workdir=tmp_path, series_id="t-stale"
    )
    mails = list(gen.mails)
    # Patch 2's context is stale: the tree no longer has the line it expects.
    mails[2] = re.sub(rb"(?m)^ (int kvm_mmu_load\()", rb" static \1", mails[2])
    deliver(local_inbox, mails)
    code, rep, err = check(gen.cover_message_id, env, tmp_path)
    assert code == 2 and rep is not None, err
    verdicts = [p["verdict"] for p in rep["patches"]]
    assert verdicts == ["same", "apply-error", "apply-error"]
    failed = rep["patches"][1]
    assert failed["reason"].startswith("patch 2 'KVM: x86/mmu: Say where roots")
    assert failed["apply_error"]["file"] == MMU_C
    assert " static int kvm_mmu_load(" in failed["apply_error"]["hunk"]
    assert rep["patches"][2]["reason"] == "not applied: patch 2 did not apply"
    assert rep["verdict"] == "apply-error"


def test_thread_without_patches_and_corrupt_mbox(local_inbox, env, tmp_path):
    reply = (
        b"From: Reviewer <r@example.org>\nTo: kvm@vger.kernel.org\n"
        b"Subject: Re: [PATCH] KVM: x86/mmu: a cleanup\nMessage-ID: <t-review@example.org>\n"
        b"Date: Thu, 1 Jan 2026 10:00:00 +0000\n\nIsn't this a separate bug fix?\n"
    )
    deliver(local_inbox, [reply])
    corrupt = tmp_path / "c.mbox"
    corrupt.write_bytes(mbox_bytes([reply])[:40] + b"\x00\xff" * 64)
    for ref, why in (("t-review@example.org", "holds no patches"), (str(corrupt), "not an mbox")):
        code, rep, err = check(ref, env, tmp_path)
        assert code == 2 and rep is None
        lines = err.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("mmubot: ") and why in lines[0], err


def test_out_of_scope_series_builds_nothing(local_inbox, env, tree_61, tmp_path):
    gen = post(local_inbox, tree_61, [x86_comment(), out_of_scope_comment()], tmp_path, "t-oos")
    # A data directory of its own (the prepared trees linked in): other test sessions
    # sharing MMUCI_TEST_DATA_DIR may build into the shared cache meanwhile.
    data = tmp_path / "data"
    data.mkdir()
    (data / "trees").symlink_to(Path(env["MMUCI_DATA_DIR"]) / "trees")
    env = {**env, "MMUCI_DATA_DIR": str(data)}
    cache = data / "build-cache"
    before = sorted(cache.rglob("*")) if cache.exists() else []
    code, rep, err = check(gen.cover_message_id, env, tmp_path)
    assert rep is not None, err
    assert [p["verdict"] for p in rep["patches"]] == ["out-of-scope", "out-of-scope"]
    assert rep["verdict"] == "out-of-scope" and code == 0
    assert all(p["checks"] == [] for p in rep["patches"])
    assert (sorted(cache.rglob("*")) if cache.exists() else []) == before


def test_series_that_does_not_build(local_inbox, env, tree_61, tmp_path):
    typo = Transformation(
        "typo",
        MMU_C,
        within_function("kvm_mmu_free_roots", regex_once(r"i == (KVM_MMU_NUM)", r"i === \1")),
        "KVM: x86/mmu: A typo",
    )
    gen = post(local_inbox, tree_61, [typo], tmp_path, "t-typo")
    code, rep, err = check(gen.cover_message_id, env, tmp_path)
    assert code == 2 and rep is not None, err
    p = rep["patches"][0]
    assert p["verdict"] == "build-error" and rep["verdict"] == "build-error"
    assert any("mmu.c:" in (c["error"] or "") for c in p["checks"])


def test_prefetch_extracts_in_parallel_and_leaves_failures_to_get(tree_61, tmp_path) -> None:
    from bot.memo import Memo
    from bot.pipeline import Prefetch, _Extractions
    from mmuci.errors import MmuCiError
    from mmucore import scope

    ex = _Extractions(tree_61.path, Memo(tmp_path / "memo"))
    index = scope.ModelFilesCache(tmp_path)
    missing = "0" * 40
    mmu_c = "arch/x86/kvm/mmu/mmu.c"
    ex.prefetch(
        [Prefetch(tree_61.commit), Prefetch(missing), Prefetch(tree_61.commit, (mmu_c,))], index
    )
    assert tree_61.commit in ex.done and missing not in ex.done
    assert ex.done[tree_61.commit].functions  # type: ignore[attr-defined]
    # the worker parsed mmu.c into the scope cache: the scope stage reads it, parses nothing
    (text,) = scope.file_texts(tree_61.path, tree_61.commit, [mmu_c]).values()
    (cached,) = (index.dir / "extents").iterdir()
    assert index.extents(mmu_c, text) == scope.definition_extents(mmu_c, text)
    assert list((index.dir / "extents").iterdir()) == [cached]
    with pytest.raises(MmuCiError):
        ex.get(missing)  # extracted again, in this process: the failure is reported here
    again = _Extractions(tree_61.path, Memo(tmp_path / "memo"))
    again.prefetch([Prefetch(tree_61.commit)], index)  # from the memo, no process
    assert again.done[tree_61.commit].key == ex.done[tree_61.commit].key  # type: ignore[attr-defined]

"""The dashboard as a reviewer uses it: `mmubot serve` as a real process on 127.0.0.1, a
database holding the demo series (`mmubot demo` in a data directory of the test's own)
and two other series checked by `mmubot check` from a local public-inbox and imported;
headless Debian chromium (Playwright, executable_path, no browser download) opens the
list, filters it, opens a series and a difference page. Screenshots go to tmp_path (and to
$MMUCI_SHOTS_DIR when set)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from bot.commands.demo import cache_refactor_nfc, out_of_scope_comment
from mmuci import proc
from mmukit.seriesgen import deliver, make_series

REPO = Path(__file__).resolve().parents[3]
CHROMIUM = "/usr/bin/chromium"


def _mmubot(env: dict[str, str], *args: str, timeout: float = 900) -> str:
    r = proc.run([sys.executable, "-m", "bot.cli", *args], cwd=REPO, extra_env=env,
                 timeout=timeout, check=False)  # fmt: skip
    assert r.returncode in (0, 1), f"mmubot {' '.join(args)}: {r.returncode}\n{r.stderr}"
    return r.stdout


@pytest.fixture
def dashboard(tmp_path: Path, data_dir: Path, tree_61, local_inbox):
    """A served dashboard over the demo series and two others; yields its URL."""
    data = tmp_path / "data"
    data.mkdir()
    (data / "trees").symlink_to(data_dir / "trees")  # prepared once, shared read-only
    env = {"MMUCI_DATA_DIR": str(data), "MMUCI_WEB_TOKEN": "t0ken"}
    _mmubot(env, "demo")
    reports = [str(data / "demo" / "report.json")]
    others = [
        ([cache_refactor_nfc()], "KVM: x86/mmu: Read the root cache in struct order",
         ("Rev Iewer", "reviewer@example.org")),
        ([out_of_scope_comment()], "KVM: x86/mmu: Document kvm_mmu_load()",
         ("Pat Cher", "patcher@example.net")),
    ]  # fmt: skip
    for i, (ts, subject, author) in enumerate(others):
        gen = make_series(tree_61.path, tree_61.commit, ts, workdir=tmp_path / f"s{i}",
                          cover_subject=subject, series_id=f"t-web-{i}", author=author)  # fmt: skip
        deliver(local_inbox, gen)
        out = tmp_path / f"other{i}.json"
        _mmubot({**env, "MMUCI_LORE_URL": local_inbox.url}, "check",
                gen.cover_message_id.strip("<>"), "--json", str(out))  # fmt: skip
        reports.append(str(out))
    _mmubot(env, "import", *reports, "--list", "kvm")
    server = subprocess.Popen(
        [sys.executable, "-m", "bot.cli", "serve", "--host", "127.0.0.1", "--port", "0"],
        cwd=REPO, env={**os.environ, **env}, stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        line = server.stdout.readline() if server.stdout else ""
        assert line.startswith("mmubot serve: http://127.0.0.1:"), line
        yield line.split()[2].rstrip("/")
    finally:
        server.terminate()
        # stopped cleanly by SIGTERM: uvicorn shuts down, then exits 143 as every command
        assert server.wait(timeout=30) in (0, 143)


def test_a_reviewer_opens_list_filter_series_and_difference(dashboard: str, tmp_path) -> None:
    from playwright.sync_api import sync_playwright

    shots = tmp_path / "shots"
    shots.mkdir()
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, headless=True,
                                     args=["--no-sandbox"])  # fmt: skip
        page = browser.new_page(viewport={"width": 1280, "height": 900})
        foreign = []  # every request must go to the dashboard itself
        page.on("request", lambda r: r.url.startswith(dashboard) or foreign.append(r.url))

        page.goto(f"{dashboard}/series")
        rows = page.locator("#series tr:has(td a)")
        assert rows.count() == 3
        assert page.locator("#total").inner_text() == "3 series"
        page.screenshot(path=shots / "list.png", full_page=True)

        page.select_option("select[name=verdict]", "differs")
        page.click("button[type=submit]")
        page.wait_for_url("**/series?verdict=differs*")
        assert rows.count() == 1
        assert "Tidy up root freeing" in rows.first.inner_text()
        page.screenshot(path=shots / "list-filtered.png", full_page=True)

        page.click("#series a:has-text('Tidy up root freeing')")
        page.wait_for_url("**/series/*")
        assert page.locator("#verdict").inner_text() == "Verdict: differs"
        patch3 = page.locator("#patches tr", has_text="Simplify the last-reference test")
        assert "claimed, but it differs" in patch3.inner_text()
        assert "mmubot check mmuci-demo-v1-0-3@mmu-ci.example.org" in page.inner_text("#reproduce")
        page.screenshot(path=shots / "series.png", full_page=True)

        patch3.locator("a", has_text="free_roots").click()
        page.wait_for_url("**/checks/*")
        assert page.locator("h1").inner_text() == "free_roots: differs"
        group = page.locator("#group-1")
        assert "inside the invariants" in group.locator("h3").inner_text()
        assert group.locator("table.state td", has_text="roots_to_free").count() == 1
        marked = group.locator("table.traces tr.d")
        assert marked.count() >= 1
        assert "kvm_mmu_prepare_zap_page" in group.locator("table.traces").inner_text()
        page.screenshot(path=shots / "difference.png", full_page=True)

        for name in ("history", "status"):
            page.goto(f"{dashboard}/{name}")
            page.screenshot(path=shots / f"{name}.png", full_page=True)
        svg = page.request.get(f"{dashboard}/history/verdicts.svg")
        assert svg.ok and svg.headers["content-type"] == "image/svg+xml"
        browser.close()
    assert foreign == []
    for f in ("list", "list-filtered", "series", "difference", "history", "status"):
        assert (shots / f"{f}.png").stat().st_size > 10_000
    if os.environ.get("MMUCI_SHOTS_DIR"):
        for f in shots.iterdir():
            shutil.copy(f, Path(os.environ["MMUCI_SHOTS_DIR"]) / f"dashboard-{f.name}")

"""Shared fixtures: a test data directory and the prepared Debian kernel trees.

The trees are prepared once into ``.cache/test-data`` (or ``$MMUCI_TEST_DATA_DIR``) and
reused by later runs; preparing is idempotent and locked, so parallel runs are safe.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from bot import kernels, tarball

REPO = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="session")
def data_dir() -> Path:
    d = Path(os.environ.get("MMUCI_TEST_DATA_DIR") or REPO / ".cache" / "test-data")
    d.mkdir(parents=True, exist_ok=True)
    return d


def _tree(data_dir: Path, ver: str) -> kernels.KernelTree:
    debian = Path(tarball.DEBIAN_TARBALL.format(ver=ver))
    if not debian.is_file():
        pytest.fail(f"{debian} missing: `make test` installs linux-source-{ver}")
    tree, _ = kernels.prepare(data_dir, ver)
    return tree


@pytest.fixture(scope="session")
def tree_61(data_dir: Path) -> kernels.KernelTree:
    """The prepared Debian 6.1 tree (read-only: make worktrees or clones to change it)."""
    return _tree(data_dir, "6.1")


@pytest.fixture(scope="session")
def tree_612(data_dir: Path) -> kernels.KernelTree:
    """The prepared Debian 6.12 tree (read-only: make worktrees or clones to change it)."""
    return _tree(data_dir, "6.12")


@pytest.fixture(scope="session")
def local_inbox(tmp_path_factory: pytest.TempPathFactory):
    """A real public-inbox ``kvm`` served on 127.0.0.1 for the whole test session.

    Deliver with ``mmukit.seriesgen.deliver(local_inbox, series)``; fetch threads from
    ``local_inbox.url`` (``<url><msgid>/t.mbox.gz``). Give each test's series its own
    ``series_id`` so threads stay apart.
    """
    from mmukit.inbox import LocalInbox

    with LocalInbox(tmp_path_factory.mktemp("public-inbox")) as inbox:
        yield inbox


# A test that takes one of these needs a prepared kernel tree or a real server: slow.
_SLOW_FIXTURES = frozenset(
    {
        "data_dir",
        "tree_61",
        "tree_612",
        "local_inbox",
        "own_inbox",
        "postgres_server",
        "redis_server",
    }
)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark slow every test that uses a prepared tree or a real server (`make check`
    runs the rest: ``pytest -m "not slow"``)."""
    for item in items:
        if _SLOW_FIXTURES & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.slow)

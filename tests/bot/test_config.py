"""Configuration: defaults <- TOML file <- MMUCI_<SECTION>_<KEY>, each value with its source."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from bot import config
from mmuci import proc
from mmuci.errors import MmuCiError

REPO = Path(__file__).resolve().parents[2]


def test_defaults_without_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path))
    cfg = config.load(environ={})
    assert cfg.path is None
    assert cfg.get("lore", "url") == "https://lore.kernel.org/kvm"
    assert cfg.get("trees", "default") == "debian-6.1"
    assert cfg.sources[("lore", "url")] == "default"


def test_file_then_environment(tmp_path: Path) -> None:
    f = tmp_path / "mmu-ci.toml"
    f.write_text(
        '[lore]\nurl = "http://127.0.0.1:9/kvm"\n'
        '[trees]\ndefault = "debian-6.12"\nextra = ["/src/a"]\n'
        '[data]\ndir = "/srv/mmu-ci"\n'
    )
    env = {
        "MMUCI_TREES_EXTRA": "/src/kvm,/src/linux",
        "MMUCI_DATA_DIR": str(tmp_path / "data"),
        "MMUCI_NOSUCH_KEY": "ignored",
        "UNRELATED": "x",
    }
    cfg = config.load(f, environ=env)
    assert cfg.path == f
    assert cfg.get("lore", "url") == "http://127.0.0.1:9/kvm"
    assert cfg.sources[("lore", "url")] == str(f)
    assert cfg.get("trees", "default") == "debian-6.12"
    assert cfg.get("trees", "extra") == ["/src/kvm", "/src/linux"]  # the environment wins
    assert cfg.sources[("trees", "extra")] == "$MMUCI_TREES_EXTRA"
    assert cfg.sources[("trees", "default")] == str(f)
    assert cfg.data_dir == tmp_path / "data"
    assert cfg.sources[("data", "dir")] == "$MMUCI_DATA_DIR"
    rows = {key: (value, source) for key, value, source in cfg.rows()}
    assert rows["trees.default"] == ("debian-6.12", str(f))
    assert "nosuch.key" not in rows


def test_default_file_from_xdg(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "mmu-ci").mkdir()
    (tmp_path / "mmu-ci" / "config.toml").write_text('[trees]\ndefault = "debian-6.12"\n')
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path))
    cfg = config.load(environ={})
    assert cfg.path == tmp_path / "mmu-ci" / "config.toml"
    assert cfg.get("trees", "default") == "debian-6.12"


def test_bad_files_are_clear_errors(tmp_path: Path) -> None:
    with pytest.raises(MmuCiError, match="does not exist"):
        config.load(tmp_path / "absent.toml", environ={})
    bad = tmp_path / "bad.toml"
    bad.write_text("[lore\nurl = 1\n")
    with pytest.raises(MmuCiError, match="not valid TOML"):
        config.load(bad, environ={})
    flat = tmp_path / "flat.toml"
    flat.write_text('url = "x"\n')
    with pytest.raises(MmuCiError, match="must be a \\[section\\]"):
        config.load(flat, environ={})
    typo = tmp_path / "typo.toml"
    typo.write_text('[lore]\nulr = "http://127.0.0.1:9/kvm"\n')
    with pytest.raises(MmuCiError, match="unknown setting lore.ulr .known: lore.url"):
        config.load(typo, environ={})


def test_config_show_cli(tmp_path: Path) -> None:
    f = tmp_path / "c.toml"
    f.write_text('[trees]\ndefault = "debian-6.12"\n')
    r = proc.run(
        [sys.executable, "-m", "bot.cli", "--config", str(f), "config", "show"],
        cwd=REPO,
        extra_env={"MMUCI_LORE_URL": "http://127.0.0.1:1/kvm"},
    )
    assert f"# config file: {f}" in r.stdout
    assert "lore.url = 'http://127.0.0.1:1/kvm'\t# $MMUCI_LORE_URL" in r.stdout
    assert f"trees.default = 'debian-6.12'\t# {f}" in r.stdout


def test_intake_limits_from_file_and_environment(tmp_path: Path) -> None:
    from bot.mbox import Limits

    f = tmp_path / "mmu-ci.toml"
    f.write_text("[lore]\ntimeout = 5\nmax_bytes = 1048576\n[intake]\nmax_patches = 7\n")
    env = {"MMUCI_INTAKE_TIMEOUT": "2.5", "MMUCI_INTAKE_MAX_MESSAGE_BYTES": "4096"}
    lim = Limits.from_config(config.load(f, environ=env))
    assert (lim.fetch_timeout, lim.max_fetch_bytes, lim.max_patches) == (5.0, 1 << 20, 7)
    assert (lim.timeout, lim.max_message_bytes) == (2.5, 4096)
    assert Limits.from_config(config.load(environ={})) == Limits()
    for bad in ('[lore]\ntimeout = "soon"\n', "[intake]\nmax_messages = 0\n"):
        f.write_text(bad)
        with pytest.raises(MmuCiError, match="must be a positive number"):
            config.load(f, environ={})
    with pytest.raises(MmuCiError, match="MMUCI_LORE_TIMEOUT='soon': not a number"):
        config.load(environ={"MMUCI_LORE_TIMEOUT": "soon"})


def test_watch_and_commands_keys(tmp_path: Path) -> None:
    f = tmp_path / "mmu-ci.toml"
    f.write_text(
        '[watch]\nlists = ["http://127.0.0.1:9/kvm/"]\ninterval = 60\n'
        '[commands]\nmaintainers = ["Mai Ntainer <maint@example.org>"]\n'
    )
    cfg = config.load(f, environ={"MMUCI_WATCH_OVERLAP": "120"})
    assert cfg.get("watch", "lists") == ["http://127.0.0.1:9/kvm/"]
    assert cfg.get("watch", "interval") == 60 and cfg.get("watch", "overlap") == 120.0
    assert cfg.get("commands", "maintainers") == ["Mai Ntainer <maint@example.org>"]
    assert cfg.sources[("watch", "overlap")] == "$MMUCI_WATCH_OVERLAP"
    f.write_text('[watch]\nlists = "http://127.0.0.1:9/kvm/"\n')
    with pytest.raises(MmuCiError, match=r"watch.lists must be a list of strings"):
        config.load(f, environ={})


def test_checks_prune_is_a_switch(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path))
    assert config.load(environ={}).get("checks", "prune") is True  # on by default
    f = tmp_path / "c.toml"
    f.write_text("[checks]\nprune = false\n")
    assert config.load(f, environ={}).get("checks", "prune") is False
    assert config.load(f, environ={"MMUCI_CHECKS_PRUNE": "true"}).get("checks", "prune") is True
    f.write_text('[checks]\nprune = "no"\n')
    with pytest.raises(MmuCiError, match="checks.prune must be true or false"):
        config.load(f, environ={})

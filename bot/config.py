"""Configuration: defaults <- one TOML file <- MMUCI_<SECTION>_<KEY> environment variables.

``MMUCI_DATA_DIR`` (section ``data``, key ``dir``) moves the data directory: trees,
build cache, memoised results. Only settings something reads are here; an unknown one in the
file is an error (a typo should not be silently ignored). ``mmubot config show`` prints
every value and where it came from.
"""

from __future__ import annotations

import os
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mmuci.errors import MmuCiError


def _xdg(var: str, fallback: str) -> Path:
    return Path(os.environ.get(var) or Path.home() / fallback)


def default_config_path() -> Path:
    return _xdg("XDG_CONFIG_HOME", ".config") / "mmu-ci" / "config.toml"


DEFAULTS: dict[str, dict[str, Any]] = {
    "lore": {
        "url": "https://lore.kernel.org/kvm",
        "timeout": 60.0,  # seconds for a whole fetch, redirects included
        "max_bytes": 64 << 20,  # largest answer, once decompressed
    },
    "intake": {
        "timeout": 30.0,  # seconds to turn a fetched thread into a series
        "max_messages": 500,  # per thread
        "max_patches": 100,  # per series
        "max_message_bytes": 8 << 20,
        "max_header_bytes": 16384,  # one header field, folded lines together
    },
    "data": {"dir": str(_xdg("XDG_DATA_HOME", ".local/share") / "mmu-ci")},
    "trees": {
        # Trees by name; the Debian ones are prepared by `mmubot kernel prepare 6.1|6.12`.
        "default": "debian-6.1",
        "extra": [],
    },
    "publish": {  # README "Publishing"; quiet by default
        "mode": "dry-run",  # dry-run | moderate | send
        "when": "on-finding",  # on-finding | always | never
        "reply_to": "summary",  # summary (cover letter, else patch 1) | patch
        "max_groups": 3,  # difference groups shown per mail, then "full report: <link>"
        "max_per_hour": 10,  # mails sent in any hour, at most
        "max_cc": 10,  # original Cc addresses kept, at most
        "from": "mmu-ci <mmu-ci@localhost>",
        "msgid_domain": "mmu-ci.localhost",
        "opt_out": [],  # author or list addresses, path globs (arch/x86/kvm/*)
        "project_url": "https://example.org/mmu-ci.git",  # in the reproduce command
        "dashboard_url": "",  # links "<url>/series/<msgid>/v<revision>" when set
        "archive_grace": 900.0,  # seconds before an uncertain mail is looked up and resent
    },
    "smtp": {
        "host": "localhost",
        "port": 25,
        "security": "plain",  # plain | starttls | ssl
        "user": "",
        "password": "",  # never logged; also from the environment (MMUCI_SMTP_PASSWORD)
        "timeout": 30.0,
        "retries": 3,  # attempts per run, exponential backoff between them
        "backoff": 2.0,  # seconds before the second attempt, doubled each time
    },
    "patchwork": {
        "url": "",  # https://patchwork.kernel.org (empty: no patchwork checks)
        "project": "",
        "token": "",  # never logged; also MMUCI_PATCHWORK_TOKEN
        "timeout": 30.0,
        "retries": 3,
    },
    "checks": {  # README "Configuration"
        # run a later revision only on the states that can differ in it (checks/prune.py);
        # false runs every state in every revision (the same verdicts, more time)
        "prune": True,
    },
    "database": {"url": ""},  # any SQLAlchemy URL; empty: SQLite in the data dir
    "jobs": {  # README "Workers": who runs the queued jobs
        "backend": "embedded",  # embedded (a pool in watch/serve/worker) | celery
        "broker_url": "redis://127.0.0.1:6379/0",  # celery: the Redis the workers share
        "workers": 1,  # jobs run at once per process (pool threads, celery concurrency)
        "lease_seconds": 120.0,  # a claim lasts this long, renewed every third of it
        "max_attempts": 3,  # failed attempts (ours, or a worker lost) before `failed`
        "poll_seconds": 10.0,  # how often idle workers look for claimable rows
        "visibility_timeout": 21600,  # celery: above the longest job (Redis redelivers)
    },
    "watch": {  # `mmubot watch` (README "Watching the list")
        "lists": [],  # public-inbox URLs to poll; empty: lore.url
        "interval": 300.0,  # seconds between polls
        "overlap": 900.0,  # seconds each window reaches back before the last poll's start
        "lookback": 86400.0,  # the first poll of a list reaches back this far
    },
    "commands": {  # `#mmu-ci test` replies (README "Commands by reply")
        "maintainers": [],  # addresses allowed besides each series' author
    },
    "web": {  # `mmubot serve`: the dashboard (README "Dashboard")
        "host": "127.0.0.1",
        "port": 8470,
        "token": "",  # manual runs (POST /api/runs) need it; empty: they are refused
        "runs_per_hour": 20,  # manual-run requests per client address, token or not
        "requests_per_minute": 600,  # any request per client address
        "page_size": 50,  # series per page of the list
    },
}
SECRETS = {("smtp", "password"), ("patchwork", "token"), ("web", "token")}


def _coerce(raw: str, like: Any) -> Any:
    if isinstance(like, bool):
        return raw.strip().lower() in ("1", "true", "yes", "on")
    if isinstance(like, int):
        return int(raw)
    if isinstance(like, float):
        return float(raw)
    if isinstance(like, list):
        return [p for p in raw.split(",") if p]
    return raw


@dataclass
class Config:
    values: dict[str, dict[str, Any]]
    sources: dict[tuple[str, str], str] = field(default_factory=dict)
    path: Path | None = None

    def get(self, section: str, key: str) -> Any:
        return self.values[section][key]

    @property
    def data_dir(self) -> Path:
        return Path(self.get("data", "dir")).expanduser()

    def rows(self) -> list[tuple[str, Any, str]]:
        """(section.key, value, source) for every setting, for `config show`."""
        out = []
        for section, keys in self.values.items():
            for key, value in keys.items():
                if (section, key) in SECRETS and value:
                    value = "(set)"
                out.append((f"{section}.{key}", value, self.sources[(section, key)]))
        return out


def load(
    path: str | os.PathLike[str] | None = None, environ: dict[str, str] | None = None
) -> Config:
    """Load the effective configuration. An explicit ``path`` must exist."""
    env = os.environ if environ is None else environ
    values = {s: dict(kv) for s, kv in DEFAULTS.items()}
    sources = {(s, k): "default" for s, kv in DEFAULTS.items() for k in kv}
    cfg_path = Path(path) if path else default_config_path()
    used_path = None
    if path and not cfg_path.is_file():
        raise MmuCiError(f"config file {cfg_path} does not exist; create it or drop --config")
    if cfg_path.is_file():
        try:
            data = tomllib.loads(cfg_path.read_text())
        except tomllib.TOMLDecodeError as e:
            raise MmuCiError(f"config file {cfg_path} is not valid TOML: {e}") from e
        used_path = cfg_path
        for section, keys in data.items():
            if not isinstance(keys, dict):
                raise MmuCiError(f"{cfg_path}: top-level key {section!r} must be a [section]")
            for key, value in keys.items():
                if key not in values.get(section, {}):
                    known = ", ".join(f"{s}.{k}" for s, kv in DEFAULTS.items() for k in kv)
                    raise MmuCiError(
                        f"{cfg_path}: unknown setting {section}.{key} (known: {known})"
                    )
                like = values[section][key]
                if isinstance(like, bool) and not isinstance(value, bool):
                    raise MmuCiError(f"{cfg_path}: {section}.{key} must be true or false")
                if (
                    isinstance(like, (int, float))
                    and not isinstance(like, bool)
                    and (
                        isinstance(value, bool) or not isinstance(value, (int, float)) or value <= 0
                    )
                ):
                    raise MmuCiError(f"{cfg_path}: {section}.{key} must be a positive number")
                if isinstance(like, list) and (
                    not isinstance(value, list) or not all(isinstance(v, str) for v in value)
                ):
                    raise MmuCiError(
                        f"{cfg_path}: {section}.{key} must be a list of strings, "
                        f'e.g. {key} = ["a", "b"]'
                    )
                values[section][key] = value
                sources[(section, key)] = str(cfg_path)
    for name, raw in env.items():
        if not name.startswith("MMUCI_"):
            continue
        parts = name[len("MMUCI_") :].lower().split("_", 1)
        if len(parts) != 2:
            continue
        section, key = parts
        if section in values and key in values[section]:
            try:
                values[section][key] = _coerce(raw, values[section][key])
            except ValueError as e:
                raise MmuCiError(f"${name}={raw[:40]!r}: not a number ({e})") from e
            sources[(section, key)] = f"${name}"
    return Config(values, sources, used_path)

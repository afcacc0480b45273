"""Configuration: one TOML file plus ``SCIPORTAL_*`` environment overrides.

Zero configuration works (a ``./var`` data home, DuckDB for queries, SQLite
for service state, 127.0.0.1:8080). Every key is declared once below with
its type, default and meaning; an unknown key or a bad value stops start-up
with a message naming the key, so the server never guesses.
"""

from __future__ import annotations

import os
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sciportal.errors import ConfigError


@dataclass(frozen=True, slots=True)
class Setting:
    """One configuration key: its section, type, default and documentation."""

    section: str
    name: str
    kind: type
    default: Any
    doc: str
    minimum: float | None = None
    choices: tuple[str, ...] | None = None
    maximum: float | None = None

    @property
    def key(self) -> str:
        """The dotted key as written in TOML (``server.port``)."""
        return f"{self.section}.{self.name}"

    @property
    def env(self) -> str:
        """The environment variable overriding it (``SCIPORTAL_SERVER_PORT``)."""
        return f"SCIPORTAL_{self.section}_{self.name}".upper()


SETTINGS: tuple[Setting, ...] = (
    Setting("server", "host", str, "127.0.0.1", "Interface the web server listens on."),
    Setting("server", "port", int, 8080, "TCP port of the web server (0: any free port).", 0),
    Setting(
        "server",
        "base_url",
        str,
        "",
        "Public URL of the service root, used in capabilities and job URLs "
        "(empty: derived from each request's Host header).",
    ),
    Setting("server", "title", str, "sciportal", "Short name of this service shown to users."),
    Setting(
        "server",
        "shutdown_grace",
        float,
        30.0,
        "Seconds that in-flight responses get to finish on SIGTERM/SIGINT.",
        0,
    ),
    Setting(
        "server",
        "authority",
        str,
        "ivo://sciportal.example",
        "IVOA authority of this service, for IVOIDs in VOResource records.",
    ),
    Setting(
        "query", "engine", str, "duckdb", "Engine that runs ADQL queries.", choices=("duckdb",)
    ),
    Setting(
        "query",
        "default_maxrec",
        int,
        100_000,
        "Rows returned when the client gives no MAXREC.",
        0,
    ),
    Setting("query", "hard_maxrec", int, 20_000_000, "Largest MAXREC a client may ask for.", 0),
    Setting(
        "query",
        "sync_timeout",
        float,
        300.0,
        "Seconds a synchronous query may go without producing rows (or its client without "
        "reading them) before it is stopped; long downloads that keep flowing are not cut.",
        1,
    ),
    Setting("query", "threads", int, 2, "Threads each DuckDB query may use.", 1),
    Setting("query", "memory_limit", str, "4GB", "DuckDB memory limit per server process."),
    Setting(
        "query",
        "sync_slots",
        int,
        4,
        "Concurrent synchronous queries; async jobs never take these slots.",
        1,
    ),
    Setting(
        "uws",
        "max_jobs",
        int,
        4,
        "Async jobs executing at once, over all users.",
        1,
    ),
    Setting(
        "uws",
        "max_jobs_per_owner",
        int,
        2,
        "Async jobs one authenticated user may execute at once (anonymous ones: uws.max_jobs).",
        1,
    ),
    Setting(
        "uws",
        "default_duration",
        int,
        3600,
        "Default EXECUTIONDURATION of a job, seconds.",
        1,
    ),
    Setting("uws", "max_duration", int, 4 * 3600, "Largest EXECUTIONDURATION a user may set.", 1),
    Setting(
        "uws",
        "default_lifetime",
        int,
        7 * 86400,
        "Seconds from creation to DESTRUCTION by default.",
        60,
    ),
    Setting("uws", "max_lifetime", int, 30 * 86400, "Largest job lifetime a user may set.", 60),
    Setting(
        "upload",
        "max_bytes",
        int,
        100 * 2**20,
        "Largest TAP_UPLOAD (bytes, all tables of a request together).",
        0,
    ),
    Setting("upload", "max_rows", int, 1_000_000, "Largest number of rows in one upload.", 0),
    Setting(
        "upload",
        "internal_urls",
        str,
        "auto",
        "May UPLOAD URLs point to loopback/private-network hosts: allow, deny, or auto "
        "(allowed only while the server listens on loopback with no server.base_url).",
        choices=("auto", "allow", "deny"),
    ),
    Setting(
        "store",
        "partition_rows",
        int,
        1_000_000,
        "Default largest number of rows in one HEALPix partition of a catalog.",
        1,
    ),
    Setting(
        "demo", "rows", int, 1_000_000, "Rows of the demo survey's object table.", 1000, maximum=1e8
    ),
)

_BY_KEY = {s.key: s for s in SETTINGS}


@dataclass(frozen=True)
class Config:
    """The validated configuration of one server or CLI run."""

    home: Path
    values: dict[str, Any] = field(default_factory=dict)

    def __getitem__(self, key: str) -> Any:
        return self.values[key]

    @property
    def state_dir(self) -> Path:
        """Where service state (SQLite databases) lives."""
        return self.home / "state"

    @property
    def catalogs_dir(self) -> Path:
        """Where published catalogs live."""
        return self.home / "catalogs"

    @property
    def jobs_dir(self) -> Path:
        """Where async job results live."""
        return self.home / "jobs"

    @property
    def metadata_db(self) -> Path:
        """The metadata store's SQLite file."""
        return self.state_dir / "metadata.sqlite"

    @property
    def jobs_db(self) -> Path:
        """The UWS job store's SQLite file."""
        return self.state_dir / "jobs.sqlite"


def _coerce(setting: Setting, raw: Any, origin: str) -> Any:
    try:
        if setting.kind is bool:
            if isinstance(raw, bool):
                value: Any = raw
            elif str(raw).lower() in ("1", "true", "yes", "on"):
                value = True
            elif str(raw).lower() in ("0", "false", "no", "off"):
                value = False
            else:
                raise ValueError(raw)
        elif setting.kind is int:
            if isinstance(raw, bool) or (isinstance(raw, float) and not raw.is_integer()):
                raise ValueError(raw)
            value = int(str(raw).replace("_", "")) if isinstance(raw, str) else int(raw)
        elif setting.kind is float:
            if isinstance(raw, bool):
                raise ValueError(raw)
            value = float(raw)
        else:
            if not isinstance(raw, str):
                raise ValueError(raw)
            value = raw
    except (TypeError, ValueError):
        raise ConfigError(
            f"{origin}: {setting.key} must be {setting.kind.__name__}, got {raw!r}"
        ) from None
    if setting.minimum is not None and value < setting.minimum:
        raise ConfigError(f"{origin}: {setting.key} must be >= {setting.minimum}, got {value!r}")
    if setting.maximum is not None and value > setting.maximum:
        raise ConfigError(f"{origin}: {setting.key} must be <= {setting.maximum:g}, got {value!r}")
    if setting.choices is not None and value not in setting.choices:
        raise ConfigError(
            f"{origin}: {setting.key} must be one of {', '.join(setting.choices)}, got {value!r}"
        )
    return value


def _flatten(data: dict[str, Any], origin: str) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for section, body in data.items():
        if not isinstance(body, dict):
            raise ConfigError(f"{origin}: unknown key {section!r} (settings live in sections)")
        for name, raw in body.items():
            key = f"{section}.{name}"
            if key not in _BY_KEY:
                raise ConfigError(f"{origin}: unknown key {key!r}")
            out[key] = _coerce(_BY_KEY[key], raw, origin)
    return out


def load_config(
    config_file: Path | None = None,
    home: Path | None = None,
    environ: dict[str, str] | None = None,
    overrides: dict[str, Any] | None = None,
) -> Config:
    """Merge defaults, the TOML file, ``SCIPORTAL_*`` variables and CLI overrides.

    Later sources win. ``SCIPORTAL_HOME`` and ``SCIPORTAL_CONFIG`` pick the
    data home and the file when the caller gives none.
    """
    env = dict(os.environ if environ is None else environ)
    values = {s.key: s.default for s in SETTINGS}
    if config_file is None and env.get("SCIPORTAL_CONFIG"):
        config_file = Path(env["SCIPORTAL_CONFIG"])
    if home is None:
        home = Path(env.get("SCIPORTAL_HOME") or "./var")
    if config_file is None and (home / "sciportal.toml").is_file():
        config_file = home / "sciportal.toml"
    if config_file is not None:
        try:
            data = tomllib.loads(config_file.read_text(encoding="utf-8"))
        except OSError as exc:
            raise ConfigError(f"cannot read configuration {config_file}: {exc.strerror}") from None
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"{config_file}: invalid TOML: {exc}") from None
        values.update(_flatten(data, str(config_file)))
    known_env = {s.env: s for s in SETTINGS}
    # SCIPORTAL_<SECTION>_<NAME> is a setting, and a misspelt name in a known
    # section stops start-up; other SCIPORTAL_* variables (SCIPORTAL_SKIP_APT
    # of the set-up script, the test suite's) belong to the tools around us
    sections = tuple(f"SCIPORTAL_{s.section.upper()}_" for s in SETTINGS)
    for name, raw in env.items():
        if not name.startswith(sections):
            continue
        if name not in known_env:
            raise ConfigError(f"environment: unknown setting {name}")
        values[known_env[name].key] = _coerce(known_env[name], raw, "environment")
    for key, raw in (overrides or {}).items():
        if key not in _BY_KEY:
            raise ConfigError(f"unknown key {key!r}")
        values[key] = _coerce(_BY_KEY[key], raw, "command line")
    return Config(home=home.resolve(), values=values)


def describe_settings() -> str:
    """A Markdown table of every setting, for the README and ``sciportal config``."""
    lines = ["| key | environment | default | meaning |", "|---|---|---|---|"]
    for s in SETTINGS:
        lines.append(f"| `{s.key}` | `{s.env}` | `{s.default!r}` | {s.doc} |")
    return "\n".join(lines)


__all__ = ["Config", "Setting", "SETTINGS", "load_config", "describe_settings"]

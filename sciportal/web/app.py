"""The server's parts, built once from configuration (no hidden globals).

:func:`build_app` is the one factory: it opens the metadata store, the query
engine, the TAP service and the job manager for a data home. Tests and the
CLI call it with a configuration; nothing else creates these objects.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass, field

import pyarrow as pa

from sciportal.config import Config
from sciportal.engines import duckdb_udfs
from sciportal.engines.duckdb_engine import DuckDBEngine
from sciportal.jobs.scheduler import JobManager
from sciportal.metadata.model import Table
from sciportal.metadata.store import MetadataStore, visible
from sciportal.metadata.tap_schema import tap_schema_metadata, tap_schema_tables
from sciportal.services.tap import TapService
from sciportal.services.tap_jobs import tap_runner

log = logging.getLogger(__name__)


@dataclass
class App:
    """Everything a request handler may need, built from one configuration."""

    config: Config
    metadata: MetadataStore
    engine: DuckDBEngine
    tap: TapService
    jobs: JobManager
    _generation: int = -1
    _visible: dict[str | None, list[Table]] = field(default_factory=dict)

    def tables_for(self, user: str | None) -> list[Table]:
        """Tables this user may see: published ones (public or granted) and TAP_SCHEMA.

        Cached per metadata generation: a query does not re-read the store.
        """
        self.refresh_if_changed()
        cached = self._visible.get(user)
        if cached is None:
            cached = [t for t in self.metadata.list_tables() if visible(t, user, ())]
            cached.extend(tap_schema_metadata())
            self._visible[user] = cached
        return cached

    def refresh_if_changed(self) -> None:
        """Pick up tables published or removed by another process (the CLI)."""
        marker = self.metadata.generation()
        if marker != self._generation:
            with _refresh_lock:
                if marker != self._generation:
                    self.engine.refresh()
                    self._visible = {}
                    self._generation = marker

    def cleanup_retired(self) -> list[str]:
        """Delete files of re-published tables' old versions that no query here still reads.

        A few minutes' grace also covers a query planned just before a refresh.
        """
        from sciportal.store.publish import cleanup_versions

        self.refresh_if_changed()
        removed = cleanup_versions(
            self.metadata, older_than_s=RETIRED_GRACE_S, in_use=self.engine.storages_in_use
        )
        for path in removed:
            log.info("removed retired version %s", path)
        return [str(p) for p in removed]


#: seconds a retired version's files stay after re-publication, beyond any query using them
RETIRED_GRACE_S = 300.0
_refresh_lock = threading.Lock()


def _engine_tables(metadata: MetadataStore) -> list[tuple[Table, pa.Table | None]]:
    tables: list[tuple[Table, pa.Table | None]] = [(t, None) for t in metadata.list_tables()]
    tables.extend(tap_schema_tables(metadata, None, ()))
    return tables


def build_app(config: Config) -> App:
    """Open every service for the data home named in ``config``."""
    config.state_dir.mkdir(parents=True, exist_ok=True)
    config.jobs_dir.mkdir(parents=True, exist_ok=True)
    metadata = MetadataStore(config.metadata_db)
    engine = DuckDBEngine(
        lambda: _engine_tables(metadata),
        threads=config["query.threads"],
        memory_limit=config["query.memory_limit"],
        register_udfs=duckdb_udfs.register,
    )
    app_ref: list[App] = []
    tap = TapService(config, engine, lambda user: app_ref[0].tables_for(user))
    jobs = JobManager.from_config(config)
    jobs.register_runner("tap", tap_runner(tap))
    app = App(config=config, metadata=metadata, engine=engine, tap=tap, jobs=jobs)
    app._generation = metadata.generation()
    app_ref.append(app)
    return app

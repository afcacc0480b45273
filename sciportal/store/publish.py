"""Publish and unpublish resources: ingest files, then register, atomically.

Every table of a descriptor is written under a temporary directory next to
its final place (``home/catalogs/<schema>/<table>/v<N>/``); only when all of
them succeeded are they renamed into place and registered in one metadata
transaction. A failure removes what this run wrote and registers nothing.

A new version lives in a new ``v<N>`` directory: queries already running on
the old version keep reading its files, which stay until ``unpublish`` or
``cleanup_versions`` removes retired versions.
"""

from __future__ import annotations

import os
import time
import uuid
from collections.abc import Callable, Collection
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from sciportal.descriptors import Descriptor, TableSpec, dump, load
from sciportal.metadata.store import MetadataStore
from sciportal.store.convert import TableConverter
from sciportal.store.hats import (
    DEFAULT_MEMORY_BUDGET,
    DEFAULT_ROW_GROUP_ROWS,
    CatalogInfo,
    remove_tree,
    write_hats_catalog,
    write_parquet_dataset,
)
from sciportal.store.infer import infer_descriptor

CATALOGS_DIR = "catalogs"


@dataclass
class TableReport:
    """The outcome of ingesting one table."""

    name: str
    nrows: int
    skipped: int
    storage: Path
    version: int
    partitions: int
    seconds: float
    bad_row_examples: list[str] = field(default_factory=list)
    bad_row_reasons: dict[str, int] = field(default_factory=dict)  # reason -> rows skipped

    @property
    def rows_per_second(self) -> float:
        return self.nrows / self.seconds if self.seconds > 0 else float("inf")


@dataclass
class PublishReport:
    """The outcome of publishing one descriptor."""

    schema: str
    tables: list[TableReport]
    seconds: float

    def summary(self) -> str:
        """Human-readable lines for the CLI."""
        lines = [f"published schema {self.schema} in {self.seconds:.1f} s"]
        for t in self.tables:
            skipped = f", {t.skipped} bad rows skipped" if t.skipped else ""
            lines.append(
                f"  {t.name} v{t.version}: {t.nrows} rows in {t.partitions or 1} file(s), "
                f"{t.rows_per_second:,.0f} rows/s{skipped} -> {t.storage}"
            )
            lines.extend(f"    {n} x {why}" for why, n in t.bad_row_reasons.items())
            lines.extend(f"    e.g. {ex}" for ex in t.bad_row_examples)
        return "\n".join(lines)


def table_dir(home: Path, table_name: str) -> Path:
    """Directory holding all versions of a table."""
    schema, _, short = table_name.partition(".")
    return Path(home) / CATALOGS_DIR / schema / short


def ingest_table(
    spec: TableSpec,
    out_dir: Path,
    *,
    progress: bool = False,
    row_group_rows: int = DEFAULT_ROW_GROUP_ROWS,
    memory_budget: int = DEFAULT_MEMORY_BUDGET,
) -> tuple[CatalogInfo, TableConverter]:
    """Write one descriptor table to ``out_dir`` (HATS if positional, else plain Parquet)."""
    conv = TableConverter(spec)
    total: int | None = 0
    for path in conv.files:
        n = conv.reader(path).num_rows()
        total = None if n is None or total is None else total + n
    if spec.position:
        info = write_hats_catalog(
            out_dir,
            conv.schema,
            conv.positions,
            conv.batches,
            name=spec.table.name,
            ra_column=spec.position[0],
            dec_column=spec.position[1],
            partition_rows=spec.partition_rows,
            row_group_rows=row_group_rows,
            memory_budget=memory_budget,
            total_rows=total,
            progress=progress,
        )
    else:
        info = write_parquet_dataset(
            out_dir,
            conv.schema,
            conv.batches(),
            name=spec.table.name,
            total_rows=total,
            progress=progress,
        )
    return info, conv


def _make_dirs(path: Path) -> list[Path]:
    """``mkdir -p path``; returns the directories it created, outermost first."""
    created = []
    for d in [*reversed(path.parents), path]:
        if not d.exists():
            created.append(d)
    path.mkdir(parents=True, exist_ok=True)
    return created


def _remove_if_empty(dirs: list[Path]) -> None:
    """Remove directories this run created, innermost first, unless something is inside."""
    for d in reversed(dirs):
        try:
            d.rmdir()
        except OSError:  # not empty (another publish wrote there) or already gone
            pass


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _remove_stale_staging(base: Path) -> None:
    """Remove ``.tmp-v<N>-<pid>-*`` directories of publish runs that died (killed)."""
    for tmp in base.glob(".tmp-v*-*-*"):
        try:
            pid = int(tmp.name.split("-")[2])
        except (IndexError, ValueError):
            continue
        if pid != os.getpid() and not _pid_alive(pid):
            remove_tree(tmp)


def publish_descriptor(
    desc: Descriptor,
    home: Path,
    metadata_store: MetadataStore,
    progress: bool = False,
    **options: int,
) -> PublishReport:
    """Ingest and register an already loaded descriptor (see ``publish``)."""
    t0 = time.perf_counter()
    staged: list[tuple[Path, Path]] = []
    moved: list[Path] = []
    created: list[Path] = []
    reports: list[TableReport] = []
    tables = []
    try:
        for spec in desc.tables:
            t1 = time.perf_counter()
            version = metadata_store.next_version(spec.table.name)
            base = table_dir(home, spec.table.name)
            created += _make_dirs(base)
            _remove_stale_staging(base)
            final = base / f"v{version}"
            if final.exists():  # left over by a run that never registered it
                remove_tree(final)
            tmp = base / f".tmp-v{version}-{os.getpid()}-{uuid.uuid4().hex[:8]}"
            staged.append((tmp, final))
            info, conv = ingest_table(spec, tmp, progress=progress, **options)
            reports.append(
                TableReport(
                    name=spec.table.name,
                    nrows=info.nrows,
                    skipped=conv.bad.count,
                    storage=final,
                    version=version,
                    partitions=len(info.pixels),
                    seconds=time.perf_counter() - t1,
                    bad_row_examples=list(conv.bad.examples or []),
                    bad_row_reasons=dict(conv.bad.by_reason),
                )
            )
            tables.append(
                replace(spec.table, storage=str(final), nrows=info.nrows, version=version)
            )
        for tmp, final in staged:
            os.replace(tmp, final)
            moved.append(final)
        metadata_store.publish(desc.schema_object(), tables, desc.resource_info())
    except BaseException:
        for tmp, _ in staged:
            remove_tree(tmp)
        for final in moved:
            remove_tree(final)
        _remove_if_empty(created)
        raise
    return PublishReport(desc.schema, reports, time.perf_counter() - t0)


def publish(
    descriptor_path: Path,
    home: Path,
    metadata_store: MetadataStore,
    progress: bool = False,
    **options: int,
) -> PublishReport:
    """Load a descriptor, ingest all its tables, and register them atomically.

    ``options``: ``row_group_rows``, ``memory_budget`` (bytes buffered before spilling).
    Raises ``DescriptorError`` or ``IngestError``; then nothing new is registered
    and no new file is left behind.
    """
    desc = load(Path(descriptor_path), Path(home))
    return publish_descriptor(desc, Path(home), metadata_store, progress, **options)


def unpublish(schema: str, home: Path, metadata_store: MetadataStore) -> list[str]:
    """Remove a schema's metadata, then its files (all versions); returns the table names."""
    removed = metadata_store.unpublish(schema)
    for t in removed:
        versions = [v.version for v in metadata_store.versions(t.name)]
        remove_tree(table_dir(home, t.name))
        metadata_store.forget_versions(t.name, versions)
    schema_dir = Path(home) / CATALOGS_DIR / schema.lower()
    if schema_dir.exists() and not any(schema_dir.iterdir()):
        schema_dir.rmdir()
    return [t.name for t in removed]


def cleanup_versions(
    metadata_store: MetadataStore,
    older_than_s: float = 0.0,
    *,
    in_use: Callable[[], Collection[str]] | None = None,
) -> list[Path]:
    """Delete the files of versions retired at least ``older_than_s`` seconds ago.

    A re-published table keeps its old version's files so that queries planned
    on it can finish; this removes them once that is no longer possible.

    Parameters
    ----------
    metadata_store:
        The store whose retired versions are considered.
    older_than_s:
        Grace period: only versions retired at least this long ago are deleted.
        It protects queries of *other* processes (and a query translated just
        before its engine saw the new version); choose it longer than the
        longest query (e.g. the maximum execution duration).
    in_use:
        Returns the storage directories that must stay (called once, just
        before deleting): in a server, ``engine.storages_in_use`` of its
        DuckDB engine, so no query of that process loses its files whatever
        the grace period.

    Returns
    -------
    list of Path
        The deleted storage directories.
    """
    from datetime import UTC, datetime

    now = datetime.now(UTC)
    keep = {os.path.normpath(s) for s in in_use()} if in_use is not None else set()
    removed = []
    for v in metadata_store.versions():
        if v.retired_at is None or v.storage is None or os.path.normpath(v.storage) in keep:
            continue
        age = (now - datetime.fromisoformat(v.retired_at)).total_seconds()
        if age >= older_than_s:
            remove_tree(Path(v.storage))
            metadata_store.forget_versions(v.table, [v.version])
            removed.append(Path(v.storage))
    return removed


def ingest_file(
    path: Path,
    home: Path,
    metadata_store: MetadataStore,
    schema: str = "user",
    *,
    table: str | None = None,
    fmt: str | None = None,
    options: dict[str, Any] | None = None,
    descriptor_path: Path | None = None,
    progress: bool = False,
    publish: bool = True,
    **ingest_options: int,
) -> Path:
    """Infer a descriptor for one file, write it, and (unless ``publish=False``) publish it.

    The descriptor goes to ``descriptor_path`` or ``home/rd/<schema>.<table>.yaml``;
    edit it and run ``publish`` again to fix units, UCDs or descriptions.
    Returns the descriptor's path.
    """
    desc = infer_descriptor(Path(path), schema=schema, table=table, fmt=fmt, options=options)
    spec = desc.tables[0]
    out = Path(descriptor_path or Path(home) / "rd" / f"{desc.schema}.{spec.table.short_name}.yaml")
    created = _make_dirs(out.parent)
    # written beside its final name and renamed only once published: a failed
    # ingest leaves no descriptor behind (nor a half-written one)
    tmp = out.with_name(f".{out.name}.{os.getpid()}.tmp")
    try:
        tmp.write_text(dump(desc, relative_to=out.parent.resolve()), encoding="utf-8")
        if publish:
            loaded = load(tmp, Path(home))
            publish_descriptor(loaded, Path(home), metadata_store, progress, **ingest_options)
        os.replace(tmp, out)
    except BaseException:
        tmp.unlink(missing_ok=True)
        _remove_if_empty(created)
        raise
    return out

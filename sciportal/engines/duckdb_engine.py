"""Run translated ADQL on DuckDB over the catalog store's Parquet files.

The files stay the truth (DESIGN.md principle 2): each published table is a
DuckDB view over its Parquet dataset, rebuilt whenever the metadata store
changes. A query with a spatial constraint reads only the HEALPix partitions
that the constraint can touch (the ``table_sql`` hook of the translator), and
within them DuckDB skips row groups by ``_healpix_29`` statistics.

A top-N query (``SELECT TOP n ... ORDER BY c``, see :mod:`sciportal.adql.topn`)
reads the table through ``c <= b`` (``>=`` when descending), where ``b`` is
the n-th smallest of the row groups' ``min(c)`` from the Parquet footers
(cached per table version and column): files and row groups that cannot
hold one of the first n rows are not read.

A re-published table gets a new storage directory; a query keeps reading the
version it was planned on. Each running query pins the storages it may read
(:meth:`DuckDBEngine.storages_in_use`), so retired versions are deleted only
once no query of this process can still read them.
"""

from __future__ import annotations

import csv
import heapq
import logging
import os
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq

from sciportal import healpix
from sciportal.errors import ExecutionTimeout, QueryError, SciportalError
from sciportal.metadata.model import Table

log = logging.getLogger(__name__)

BATCH_ROWS = 65_536


def quote_ident(name: str) -> str:
    """A DuckDB/PostgreSQL delimited identifier."""
    return '"' + name.replace('"', '""') + '"'


def quote_literal(text: str) -> str:
    """A SQL string literal."""
    return "'" + text.replace("'", "''") + "'"


def qualified(name: str) -> str:
    """Quote a ``schema.table`` name as two identifiers."""
    if "." in name:
        schema, table = name.split(".", 1)
        return f"{quote_ident(schema)}.{quote_ident(table)}"
    return quote_ident(name)


@dataclass(frozen=True)
class _Partitions:
    pixels: list[healpix.HealpixPixel]
    root: Path


def _read_partitions(root: Path) -> _Partitions:
    """The HEALPix partitions of a HATS catalog (from partition_info.csv or the files)."""
    info = root / healpix.PARTITION_INFO_FILE
    pixels: list[healpix.HealpixPixel] = []
    if info.is_file():
        with info.open(newline="") as fh:
            for row in csv.DictReader(fh):
                pixels.append(healpix.HealpixPixel(int(row["Norder"]), int(row["Npix"])))
    else:
        for path in (root / healpix.DATASET_DIR).glob("Norder=*/Dir=*/Npix=*.parquet"):
            order = int(path.parent.parent.name.split("=")[1])
            pixel = int(path.stem.split("=")[1])
            pixels.append(healpix.HealpixPixel(order, pixel))
    return _Partitions(sorted(pixels), root)


def _dataset_files(table: Table, parts: _Partitions | None) -> list[str]:
    """A table's Parquet files (listed once, not globbed per query)."""
    root = Path(table.storage or "")
    if parts is not None:
        files = [str(p.path(root)) for p in parts.pixels]
    elif root.is_file():
        files = [str(root)]
    else:
        base = root / healpix.DATASET_DIR if (root / healpix.DATASET_DIR).is_dir() else root
        files = sorted(str(p) for p in base.rglob("*.parquet"))
    if not files:
        raise SciportalError(f"table {table.name} has no data files under {root}")
    return files


def _sql_list(files: list[str]) -> str:
    return "[" + ", ".join(quote_literal(f) for f in files) + "]"


class TopNRequest(Protocol):
    """What the translator's top-N request tells the hook (``sciportal.adql.topn.TopN``)."""

    @property
    def column(self) -> str: ...
    @property
    def n(self) -> int: ...
    @property
    def descending(self) -> bool: ...
    @property
    def nulls_first(self) -> bool: ...


#: Marks the FROM text of a top-N bounded table (see DuckDBEngine.topn_source). Were a
#: user's string literal to contain it, that query would only lose late materialization.
_TOPN_MARK = "/* sciportal:topn-bound */"

#: Parquet physical types whose footer statistics the top-N bound uses, and
#: the DuckDB type of a bound literal (None: integers, written as they are).
_STAT_TYPES = {"INT32": None, "INT64": None, "FLOAT": "REAL", "DOUBLE": "DOUBLE"}


@dataclass(frozen=True)
class _ColumnStats:
    """Footer statistics of one numeric column, one entry per row group of the table.

    ``mins``/``maxs`` are None where a row group has no usable statistics
    (absent, or NaN written by a writer that does not skip it).
    """

    name: str  # the column's name in the files
    cast: str | None  # DuckDB type for a bound literal; None for integers
    files: list[str]
    file_of: list[int]  # row group -> index in ``files``
    mins: list[int | float | None]
    maxs: list[int | float | None]
    no_nulls: bool  # every row group says null_count == 0

    def bound(self, req: TopNRequest) -> int | float | None:
        """The value every one of the first ``req.n`` rows is within (None: not enough stats)."""
        ends = [v for v in (self.maxs if req.descending else self.mins) if v is not None]
        if req.n > len(ends):
            return None
        pick = heapq.nlargest if req.descending else heapq.nsmallest
        return pick(req.n, ends)[-1]

    def files_within(self, bound: int | float, descending: bool) -> list[str]:
        """The files with a row group that may hold a value on the right side of ``bound``."""
        ends = self.maxs if descending else self.mins
        keep: set[int] = set()
        for f, v in zip(self.file_of, ends, strict=True):
            if v is None or (v >= bound if descending else v <= bound):
                keep.add(f)
        return [self.files[i] for i in sorted(keep)]


def _column_stats(files: list[str], column: str) -> _ColumnStats | None:
    """Row-group statistics of ``column`` from the footers (None: not a plain numeric column)."""
    name: str | None = None
    cast: str | None = None
    file_of: list[int] = []
    mins: list[int | float | None] = []
    maxs: list[int | float | None] = []
    no_nulls = True
    for k, path in enumerate(files):
        md = pq.read_metadata(path)
        paths = [md.schema.column(i).path for i in range(md.num_columns)]
        idx = [i for i, p in enumerate(paths) if p == column]
        idx = idx or [i for i, p in enumerate(paths) if p.lower() == column.lower()]
        if len(idx) != 1:
            return None
        desc = md.schema.column(idx[0])
        if desc.physical_type not in _STAT_TYPES or desc.logical_type.type not in ("NONE", "INT"):
            return None
        if name is None:
            name, cast = desc.path, _STAT_TYPES[desc.physical_type]
        elif cast != _STAT_TYPES[desc.physical_type]:
            return None  # files disagree on the type
        for g in range(md.num_row_groups):
            st = md.row_group(g).column(idx[0]).statistics
            lo = hi = None
            if st is not None and st.has_min_max:
                lo, hi = st.min, st.max
                if isinstance(lo, float) and (lo != lo or hi != hi):  # NaN: no bound from it
                    lo = hi = None
            file_of.append(k)
            mins.append(lo)
            maxs.append(hi)
            no_nulls = no_nulls and st is not None and st.has_null_count and st.null_count == 0
    if name is None:
        return None
    return _ColumnStats(name, cast, files, file_of, mins, maxs, no_nulls)


class _Watchdog:
    """One thread that interrupts queries past their deadline (no thread per query)."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._heap: list[tuple[float, int, Callable[[], None]]] = []
        self._seq = 0
        self._thread: threading.Thread | None = None

    def schedule(self, delay: float, callback: Callable[[], None]) -> int:
        """Call ``callback`` after ``delay`` seconds unless cancelled; returns a handle."""
        with self._cond:
            self._seq += 1
            heapq.heappush(self._heap, (time.monotonic() + delay, self._seq, callback))
            if self._thread is None:
                self._thread = threading.Thread(
                    target=self._run, name="query-watchdog", daemon=True
                )
                self._thread.start()
            self._cond.notify()
            return self._seq

    def cancel(self, handle: int) -> None:
        """Forget a scheduled callback."""
        with self._cond:
            self._heap = [item for item in self._heap if item[1] != handle]
            heapq.heapify(self._heap)

    def _run(self) -> None:
        while True:
            with self._cond:
                while not self._heap:
                    self._cond.wait()
                when, _, callback = self._heap[0]
                now = time.monotonic()
                if when > now:
                    self._cond.wait(when - now)
                    continue
                heapq.heappop(self._heap)
            try:
                callback()
            except Exception:
                log.exception("query watchdog callback failed")


_watchdog = _Watchdog()


class _TableHook(Protocol):
    """The engine's ``table_sql`` hook (``sciportal.adql.generator.TableSQL``)."""

    def __call__(
        self,
        table: Table,
        ranges: list[tuple[int, int]] | None,
        /,
        topn: TopNRequest | None = None,
    ) -> str: ...


class DuckDBEngine:
    """One DuckDB database whose views mirror the published tables.

    ``tables`` is a callable giving the published tables and extra in-memory
    tables (TAP_SCHEMA) as (Table, pyarrow.Table or None) pairs; it is called
    again by :meth:`refresh`.
    """

    def __init__(
        self,
        tables: Callable[[], list[tuple[Table, pa.Table | None]]],
        threads: int = 2,
        memory_limit: str = "4GB",
        register_udfs: Callable[[duckdb.DuckDBPyConnection], None] | None = None,
    ) -> None:
        self._tables_source = tables
        self._lock = threading.Lock()
        self._con = duckdb.connect(
            ":memory:",
            config={
                "threads": threads,
                "memory_limit": memory_limit,
                # keep Parquet footers in memory: repeated small queries skip re-reading them
                "enable_object_cache": True,
            },
        )
        self._register_udfs = register_udfs
        if register_udfs is not None:
            register_udfs(self._con)
        self._partitions: dict[str, _Partitions] = {}
        self._files: dict[str, tuple[str, list[str]]] = {}  # table -> (storage, its files)
        self._stats: dict[tuple[str, str], _ColumnStats | None] = {}  # (storage, column)
        self._stats_lock = threading.Lock()
        self._storages: frozenset[str] = frozenset()  # storage roots the views read
        self._seen: set[str] = set()  # every storage root a view ever read
        self._pins: dict[str, int] = {}  # storage root -> running queries that may read it
        self._pin_lock = threading.Lock()
        self._unpins: deque[frozenset[str]] = deque()  # roots of finished queries
        self.refresh()

    def refresh(self) -> None:
        """Rebuild views and in-memory tables from the current metadata."""
        with self._lock:
            con = self._con
            partitions: dict[str, _Partitions] = {}
            files: dict[str, tuple[str, list[str]]] = {}
            storages: set[str] = set()
            for table, data in self._tables_source():
                schema = table.schema
                if schema:
                    con.execute(f"CREATE SCHEMA IF NOT EXISTS {quote_ident(schema)}")
                target = qualified(table.name)
                if data is not None:
                    con.register("__incoming", data)
                    # identifiers come from quote_ident: no user text reaches this SQL
                    con.execute(f"CREATE OR REPLACE TABLE {target} AS SELECT * FROM __incoming")  # noqa: S608
                    con.unregister("__incoming")
                    continue
                if not table.storage:
                    continue
                parts = _read_partitions(Path(table.storage)) if table.positional else None
                listed = _dataset_files(table, parts)
                src = _sql_list(listed)
                view = f"CREATE OR REPLACE VIEW {target} AS SELECT * FROM read_parquet({src})"  # noqa: S608
                con.execute(view)
                storages.add(table.storage)
                files[table.name.lower()] = (table.storage, listed)
                if parts is not None:
                    partitions[table.name.lower()] = parts
            self._partitions = partitions
            self._files = files
            with self._stats_lock:
                self._stats = {k: v for k, v in self._stats.items() if k[0] in storages}
            with self._pin_lock:
                self._storages = frozenset(storages)
                self._seen |= storages

    def storages_in_use(self) -> set[str]:
        """Storage directories a query of this engine reads or may still read.

        The storages of the current views (a new query may start on them) and
        those pinned by running queries (planned on an older version). Files
        outside this set may be deleted; see ``store.publish.cleanup_versions``.
        """
        with self._pin_lock:
            self._drain_unpins()
            return set(self._storages) | set(self._pins)

    def _drain_unpins(self) -> None:
        """Apply finished queries' unpins (called with ``_pin_lock`` held)."""
        while self._unpins:
            for r in self._unpins.popleft():
                self._pins[r] -= 1
                if self._pins[r] <= 0:
                    del self._pins[r]

    def _pin(self, sql: str) -> Callable[[], None]:
        """Pin the storages ``sql`` may read; returns the function that unpins them.

        The views' current storages, plus older ones the SQL names directly
        (a translation made before a refresh lists partition files of its time).
        Unpinning takes no lock (it may run from ``__del__`` during garbage
        collection): it queues the roots, applied at the next look.
        """
        with self._pin_lock:
            self._drain_unpins()
            roots = frozenset(self._storages | {r for r in self._seen if r + os.sep in sql})
            for r in roots:
                self._pins[r] = self._pins.get(r, 0) + 1
        return lambda: self._unpins.append(roots)

    def drop(self, name: str) -> None:
        """Forget a table (after unpublish)."""
        with self._lock:
            self._con.execute(f"DROP VIEW IF EXISTS {qualified(name)}")

    def table_sql(self, uploads: Mapping[str, str] | None = None) -> _TableHook:
        """The translator hook: FROM text for a table, pruned to the partitions a region needs.

        With a top-N request, the table bounded by its footer statistics
        (:meth:`topn_source`).
        """
        uploads = uploads or {}

        def hook(
            table: Table,
            ranges: list[tuple[int, int]] | None,
            /,
            topn: TopNRequest | None = None,
        ) -> str:
            key = table.name.lower()
            if key in uploads:
                return quote_ident(uploads[key])
            if topn is not None and ranges is None:
                bounded = self.topn_source(table, topn)
                if bounded is not None:
                    return bounded
            parts = self._partitions.get(key)
            if ranges is None or parts is None:
                return qualified(table.name)
            hit = healpix.pixels_overlapping(parts.pixels, ranges)
            if len(hit) == len(parts.pixels):
                return qualified(table.name)
            if not hit:
                return f"(SELECT * FROM {qualified(table.name)} WHERE false)"  # noqa: S608
            files = ", ".join(quote_literal(str(p.path(parts.root))) for p in hit)
            return f"read_parquet([{files}])"

        return hook

    def topn_source(self, table: Table, req: TopNRequest) -> str | None:
        """FROM text reading only rows that may be among the first ``req.n`` by ``req.column``.

        ``(SELECT * FROM read_parquet([files]) WHERE c <= bound)`` (``>=``
        descending), the files being those with a row group that may pass;
        DuckDB skips the other row groups by their statistics, and its own
        top-N filter can still tighten the bound as it reads. The text carries
        a marker by which :meth:`run` turns DuckDB's late materialization off
        for the query: its second scan (the other columns, by row number)
        would read every row group of these files, not the few the bound leaves.

        None when the statistics cannot bound the scan exactly: a column that
        is not a plain integer or floating-point one, fewer row groups with
        statistics than ``req.n``, NULLs that may sort first, or a descending
        floating-point order (NaN sorts first there and statistics omit it).
        See :mod:`sciportal.adql.topn` for why the bound is exact.
        """
        listed = self._files.get(table.name.lower())
        if listed is None or req.n <= 0:
            return None
        stats = self._column_stats(listed[0], listed[1], req.column)
        if stats is None or (req.descending and stats.cast is not None):
            return None
        if req.nulls_first and not stats.no_nulls:
            return None
        bound = stats.bound(req)
        if bound is None:
            return None
        files = stats.files_within(bound, req.descending)
        if isinstance(bound, float):
            literal = f"CAST({quote_literal(repr(bound))} AS {stats.cast})"
        else:
            literal = str(int(bound))
        op = ">=" if req.descending else "<="
        cond = f"{quote_ident(stats.name)} {op} {literal}"
        # file names are quoted literals, the column a quoted identifier, the bound a number
        src = f"read_parquet({_sql_list(files)})"
        return f"(SELECT {_TOPN_MARK} * FROM {src} WHERE {cond})"  # noqa: S608

    def _column_stats(self, storage: str, files: list[str], column: str) -> _ColumnStats | None:
        """Cached footer statistics of a column (a storage directory never changes)."""
        key = (storage, column)
        with self._stats_lock:
            if key in self._stats:
                return self._stats[key]
        try:
            stats = _column_stats(files, column)
        except (OSError, pa.ArrowException, ValueError) as exc:
            log.warning("no top-N bound for %s in %s: %s", column, storage, exc)
            return None
        with self._stats_lock:
            self._stats[key] = stats
        return stats

    def run(
        self,
        sql: str,
        uploads: Mapping[str, pa.Table] | None = None,
        timeout: float | None = None,
        on_cancel: Callable[[Callable[[], None]], None] | None = None,
    ) -> QueryResult:
        """Start a query; the result streams Arrow batches and can be interrupted.

        ``uploads`` maps the names the hook used (see :meth:`table_sql`) to
        Arrow tables visible only to this query. ``on_cancel`` receives a
        callback that interrupts the query (for UWS abort).
        """
        cur = self._con.cursor()
        if _TOPN_MARK in sql:
            # a cursor is a connection of its own: the setting holds for this query only
            cur.execute("SET late_materialization_max_rows = 0")
        for name, data in (uploads or {}).items():
            cur.register(name, data)
        result = QueryResult(cur, timeout, self._pin(sql))
        if on_cancel is not None:
            on_cancel(result.cancel)
        result.start(sql)
        return result

    def close(self) -> None:
        """Release the database."""
        self._con.close()


class QueryResult:
    """A running query: iterate for Arrow record batches; ``cancel`` from any thread."""

    def __init__(
        self,
        cursor: duckdb.DuckDBPyConnection,
        timeout: float | None,
        release: Callable[[], None] | None = None,
    ) -> None:
        self._cur = cursor
        self._release = release
        self._timer: int | None = None
        self._timeout = timeout
        self.timed_out = False
        self.cancelled = False
        self.schema: pa.Schema | None = None
        self._reader: pa.RecordBatchReader | None = None

    def start(self, sql: str) -> None:
        """Plan and start the query; SQL errors surface here."""
        if self._timeout is not None:
            self._timer = _watchdog.schedule(self._timeout, self._expire)
        try:
            self._reader = self._cur.sql(sql).to_arrow_reader(BATCH_ROWS)
        except duckdb.Error as exc:
            self._finish()
            raise self._translate_error(exc) from None
        self.schema = self._reader.schema

    def _expire(self) -> None:
        self.timed_out = True
        self._cur.interrupt()

    def cancel(self) -> None:
        """Interrupt the query (abort, client gone, shutdown)."""
        self.cancelled = True
        try:
            self._cur.interrupt()
        except duckdb.Error:  # already finished
            pass

    def _translate_error(self, exc: Exception) -> SciportalError:
        if self.timed_out:
            return ExecutionTimeout(f"query exceeded the time limit of {self._timeout:g} s")
        if self.cancelled:
            return SciportalError("query aborted")
        text = str(exc).split("\n")[0]
        log.info("query failed in DuckDB: %s", exc)
        return QueryError(f"query failed: {text}")

    def __iter__(self) -> Iterator[pa.RecordBatch]:
        assert self._reader is not None
        try:
            while True:
                try:
                    batch = self._reader.read_next_batch()
                except StopIteration:
                    return
                except (duckdb.Error, pa.ArrowException, OSError) as exc:
                    # OSError: a data file vanished or cannot be read mid-query
                    raise self._translate_error(exc) from None
                yield batch
        finally:
            self._finish()

    def __del__(self) -> None:
        # a result dropped without being read to the end still unpins its storages
        self._unpin()

    def _unpin(self) -> None:
        release, self._release = getattr(self, "_release", None), None
        if release is not None:
            release()

    def _finish(self) -> None:
        self._unpin()
        if self._timer is not None:
            _watchdog.cancel(self._timer)
            self._timer = None
        try:
            self._cur.close()
        except duckdb.Error:
            pass

"""The TAP service: from protocol parameters to a streamed result.

No HTTP here and no SQL of its own: it validates parameters, translates ADQL
through :mod:`sciportal.adql`, runs it on an engine and hands the Arrow
batches to a format writer. Sync requests and async jobs share this path.
"""

from __future__ import annotations

import itertools
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, BinaryIO

import pyarrow as pa

from sciportal import adql
from sciportal.config import Config
from sciportal.engines.duckdb_engine import DuckDBEngine, QueryResult
from sciportal.engines.duckdb_engine import _watchdog as watchdog  # the shared timer thread
from sciportal.errors import ExecutionTimeout, LimitExceeded, UsageError
from sciportal.formats import ResultInfo, Writer, get_writer
from sciportal.metadata.model import Table
from sciportal.services.params import TAP_PARAMS, parse_params
from sciportal.services.uploads import Upload, load_uploads, local_server

SUPPORTED_LANGS = ("ADQL", "ADQL-2.0", "ADQL-2.1")
_upload_seq = itertools.count()


@dataclass
class TapRequest:
    """A validated TAP query request."""

    query: str
    writer: Writer
    maxrec: int
    uploads: dict[str, Upload] = field(default_factory=dict)
    runid: str | None = None


@dataclass
class PreparedQuery:
    """A translated query ready to run."""

    request: TapRequest
    translation: adql.Translation
    upload_names: dict[str, str]


class Catalog:
    """The tables one user may query: published ones plus TAP_SCHEMA and uploads."""

    def __init__(self, tables: Iterable[Table], uploads: Mapping[str, Upload]) -> None:
        self._tables = {t.name.lower(): t for t in tables}
        for name, up in uploads.items():
            self._tables[f"tap_upload.{name}"] = up.table

    def get_table(self, name: str) -> Table | None:
        """Find a table by qualified name, case-insensitively."""
        return self._tables.get(name.lower())

    def list_tables(self) -> Iterable[Table]:
        """Every table visible to this request."""
        return self._tables.values()


class TapService:
    """TAP query logic shared by the sync endpoint and async jobs."""

    def __init__(
        self,
        config: Config,
        engine: DuckDBEngine,
        tables: Callable[[str | None], list[Table]],
    ) -> None:
        self.config = config
        self.engine = engine
        self._tables = tables
        self.sync_slots = threading.BoundedSemaphore(config["query.sync_slots"])

    def _internal_urls_ok(self) -> bool:
        """Whether UPLOAD URLs may reach loopback/private hosts (SSRF guard, upload.internal_urls)."""
        policy = self.config["upload.internal_urls"]
        if policy == "auto":
            return local_server(self.config["server.host"], self.config["server.base_url"])
        return bool(policy == "allow")

    def parse_request(self, args: Mapping[str, list[Any]]) -> TapRequest:
        """Validate DALI/TAP parameters (names already upper-cased)."""
        p = parse_params(TAP_PARAMS, args)
        request = p["REQUEST"]
        if request is not None and request.lower() != "doquery":
            raise UsageError(f"REQUEST={request} is not supported; use doQuery")
        lang = (p["LANG"] or "ADQL").strip()
        if lang.upper() not in SUPPORTED_LANGS:
            raise UsageError(f"LANG={lang} is not supported; use ADQL")
        writer = get_writer(p["RESPONSEFORMAT"] or p["FORMAT"])
        hard = self.config["query.hard_maxrec"]
        maxrec = p["MAXREC"]
        if maxrec is None:
            maxrec = self.config["query.default_maxrec"]
        maxrec = min(maxrec, hard)
        uploads = load_uploads(
            p["UPLOAD"],
            args,
            self.config["upload.max_bytes"],
            self.config["upload.max_rows"],
            internal_ok=self._internal_urls_ok(),
        )
        query = p["QUERY"]
        if not query.strip():
            raise UsageError("QUERY is empty")
        return TapRequest(
            query=query, writer=writer, maxrec=maxrec, uploads=uploads, runid=p["RUNID"]
        )

    def prepare(self, req: TapRequest, user: str | None) -> PreparedQuery:
        """Translate the ADQL for this user's view of the catalog."""
        catalog = Catalog(self._tables(user), req.uploads)
        upload_names = {
            f"tap_upload.{name}": f"__upload_{next(_upload_seq)}_{name}" for name in req.uploads
        }
        tr = adql.translate(
            req.query,
            catalog,
            "duckdb",
            uploads={name: up.table for name, up in req.uploads.items()},
            maxrec=req.maxrec,
            table_sql=self.engine.table_sql(upload_names),
            upload_data={name: up.data for name, up in req.uploads.items()},
        )
        return PreparedQuery(request=req, translation=tr, upload_names=upload_names)

    def start(
        self,
        prepared: PreparedQuery,
        timeout: float | None,
        on_cancel: Callable[[Callable[[], None]], None] | None = None,
        idle_timeout: float | None = None,
    ) -> RunningQuery:
        """Start running a prepared query on the engine.

        ``timeout`` bounds the whole run (UWS EXECUTIONDURATION for async
        jobs). ``idle_timeout`` bounds how long the engine may go without
        producing the next batch while the writer waits for it (sync
        queries): a long download that keeps flowing is never cut, a query
        that yields nothing for that long is stopped. Time the writer spends
        waiting for a slow client does not count.
        """
        data = {
            prepared.upload_names[f"tap_upload.{name}"]: up.data
            for name, up in prepared.request.uploads.items()
        }
        guard = _IdleGuard(idle_timeout) if idle_timeout is not None else None

        def hook(cancel: Callable[[], None]) -> None:
            if guard is not None:
                guard.arm(cancel)
            if on_cancel is not None:
                on_cancel(cancel)

        try:
            result = self.engine.run(prepared.translation.sql, data, timeout, hook)
        except Exception as exc:
            if guard is not None:
                guard.stop()
                if guard.fired:
                    raise guard.error() from None
            raise exc
        return RunningQuery(result, guard)

    def write(self, prepared: PreparedQuery, result: RunningQuery, out: BinaryIO) -> Any:
        """Serialise a running query's batches in the requested format."""
        req = prepared.request
        info = ResultInfo(
            query=req.query,
            service="sciportal",
            maxrec=req.maxrec,
            infos=[("request_date", _now())] + ([("RUNID", req.runid)] if req.runid else []),
        )
        batches: Iterator[pa.RecordBatch] = iter(result)
        return req.writer.write(batches, prepared.translation.columns, out, info)

    def check_upload_limits(self, size: int) -> None:
        """Refuse a request body larger than the upload limit before reading it."""
        if size > self.config["upload.max_bytes"] + 1_000_000:
            raise LimitExceeded("request body exceeds the upload size limit")


class _IdleGuard:
    """Cancels a query when its engine is asked for a batch and gives none for ``limit`` s.

    Checked by the engine's single watchdog thread, re-armed at most once
    per ``limit`` seconds, so a long query costs no thread and little work.
    """

    def __init__(self, limit: float) -> None:
        self.limit = limit
        self.fired = False
        self._lock = threading.Lock()
        self._cancel: Callable[[], None] | None = None
        self._waiting_since: float | None = time.monotonic()  # planning counts too
        self._handle: int | None = None
        self._stopped = False

    def arm(self, cancel: Callable[[], None]) -> None:
        """Start watching; ``cancel`` interrupts the engine."""
        with self._lock:
            self._cancel = cancel
            self._handle = watchdog.schedule(self.limit, self._check)

    def waiting(self) -> None:
        """The writer asks the engine for the next batch."""
        self._waiting_since = time.monotonic()

    def delivered(self) -> None:
        """The engine gave a batch; the writer is busy with it (or with the client)."""
        self._waiting_since = None

    def stop(self) -> None:
        """The query is over; forget the timer."""
        with self._lock:
            self._stopped = True
            if self._handle is not None:
                watchdog.cancel(self._handle)
                self._handle = None

    def error(self) -> ExecutionTimeout:
        """What the client is told when the guard fired."""
        return ExecutionTimeout(
            f"query stopped: no rows produced for {self.limit:g} s (query.sync_timeout)"
        )

    def _check(self) -> None:
        with self._lock:
            if self._stopped:
                return
            since = self._waiting_since
            idle = 0.0 if since is None else time.monotonic() - since
            if idle < self.limit:
                self._handle = watchdog.schedule(self.limit - idle, self._check)
                return
            self.fired = True
            self._handle = None
            cancel = self._cancel
        if cancel is not None:
            cancel()


class RunningQuery:
    """A started query: iterate for Arrow batches (once); ``cancel`` from any thread."""

    def __init__(self, result: QueryResult, guard: _IdleGuard | None = None) -> None:
        self.result = result
        self._guard = guard

    def cancel(self) -> None:
        """Interrupt the engine (client gone, abort)."""
        self.result.cancel()

    def __iter__(self) -> Iterator[pa.RecordBatch]:
        guard = self._guard
        if guard is None:
            yield from self.result
            return
        batches = iter(self.result)
        try:
            while True:
                guard.waiting()
                try:
                    batch = next(batches)
                except StopIteration:
                    return
                except Exception:
                    if guard.fired:
                        raise guard.error() from None
                    raise
                guard.delivered()
                yield batch
        finally:
            guard.stop()


def _now() -> str:
    from datetime import UTC, datetime

    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")

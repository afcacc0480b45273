"""The job manager: runs UWS jobs on a thread pool within configured limits.

Protocol code (TAP, SODA, VAC...) registers one *runner* per job type; the
manager owns everything else a UWS job needs: ownership checks, phase
changes through the transition table, a FIFO queue with global and per-owner
concurrency limits, EXECUTIONDURATION (a watchdog cancels overdue jobs),
DESTRUCTION (a periodic sweep), abort, blocking waits and shutdown.

A runner is ``runner(job, ctx) -> list[Result]``: it writes its files into
``ctx.result_dir`` and returns their descriptions.  It should watch
``ctx.cancelled`` or register ``ctx.on_cancel(callback)`` (e.g. a callback
that interrupts a DuckDB connection) so abort and the time limit can stop it.
A :class:`~sciportal.errors.SciportalError` raised by a runner becomes the
job's error summary as is; any other exception becomes a fatal
"internal error: ..." and is logged with its traceback.

A cancelled runner keeps its worker slot until it actually returns, so the
concurrency limits count real threads, but the job's phase changes at once.
"""

from __future__ import annotations

import builtins
import logging
import re
import threading
import time
from collections import deque
from collections.abc import Callable, Collection, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING

from sciportal.errors import (
    ExecutionTimeout,
    LimitExceeded,
    NotFoundError,
    SciportalError,
    ServiceUnavailable,
    UsageError,
)
from sciportal.jobs.model import (
    ACTIVE_PHASES,
    FINAL_PHASES,
    ErrorSummary,
    Job,
    JobStateError,
    Phase,
    Result,
    new_job_id,
    utcnow,
)
from sciportal.jobs.store import JobStore

if TYPE_CHECKING:
    from sciportal.config import Config

log = logging.getLogger(__name__)

SHUTDOWN_MESSAGE = "the server shut down while this job was running; please submit it again"
TIMEOUT_MESSAGE = "execution time limit exceeded"

_UPLOAD_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$")


@dataclass(frozen=True, slots=True)
class JobLimits:
    """Configured limits of the job system (times in seconds unless noted).

    ``max_execution_duration`` 0 means no upper bound (then a requested 0,
    "unlimited" in UWS, is honoured).  ``max_running_per_owner`` applies to
    authenticated owners; anonymous jobs are bounded by ``max_running`` only.
    """

    max_running: int = 4
    max_running_per_owner: int = 2
    default_execution_duration: int = 3600
    max_execution_duration: int = 4 * 3600
    default_destruction: timedelta = timedelta(days=7)
    max_destruction: timedelta = timedelta(days=30)
    max_wait: float = 60.0
    max_upload_bytes: int = 100 * 1024 * 1024
    watchdog_interval: float = 0.1
    sweep_interval: float = 60.0


class RunContext:
    """What a runner gets besides the job: where to write, and how to stop."""

    def __init__(
        self, job_id: str, result_dir: Path, upload_dir: Path, deadline: float | None
    ) -> None:
        self.job_id = job_id
        self.result_dir = result_dir
        self.upload_dir = upload_dir
        #: ``time.monotonic()`` value after which the job is killed; None: no limit.
        self.deadline = deadline
        self.cancelled = threading.Event()
        self._callbacks: list[Callable[[], None]] = []
        self._lock = threading.Lock()

    @property
    def uploads(self) -> dict[str, Path]:
        """Inline (multipart) uploads of the job by part name, for ``param:NAME`` URIs."""
        if not self.upload_dir.is_dir():
            return {}
        return {p.name: p for p in sorted(self.upload_dir.iterdir()) if p.is_file()}

    def remaining(self) -> float | None:
        """Seconds left before the deadline (None: unlimited)."""
        return None if self.deadline is None else self.deadline - time.monotonic()

    def on_cancel(self, callback: Callable[[], None]) -> None:
        """Call ``callback`` (from another thread) when the job is cancelled.

        If the job is already cancelled, the callback runs at once.
        """
        with self._lock:
            if not self.cancelled.is_set():
                self._callbacks.append(callback)
                return
        self._run_callback(callback)

    def cancel(self) -> None:
        """Set :attr:`cancelled` and run the callbacks once; their errors are logged."""
        with self._lock:
            if self.cancelled.is_set():
                return
            self.cancelled.set()
            callbacks, self._callbacks = self._callbacks, []
        for callback in callbacks:
            self._run_callback(callback)

    def _run_callback(self, callback: Callable[[], None]) -> None:
        try:
            callback()
        except Exception:
            log.exception("cancel callback of job %s failed", self.job_id)


Runner = Callable[[Job, RunContext], list[Result]]
#: Called with the new state of a job after each change, or None once it is deleted.
Listener = Callable[[Job | None], None]


@dataclass(slots=True)
class _Running:
    ctx: RunContext
    owner: str | None


class JobManager:
    """Owns the job store and the worker threads; the one API the web layer calls.

    Every method taking ``owner`` raises :class:`NotFoundError` for jobs of
    other owners (anonymous jobs, owner None, are visible to anonymous
    callers only), so the existence of other people's jobs does not leak.
    """

    def __init__(
        self,
        store: JobStore,
        limits: JobLimits | None = None,
        clock: Callable[[], datetime] = utcnow,
        start: bool = True,
    ) -> None:
        self.store = store
        self.limits = limits or JobLimits()
        self.clock = clock
        self._runners: dict[str, Runner] = {}
        self._lock = threading.RLock()
        self._changed = threading.Condition(self._lock)
        self._queue: deque[tuple[str, str | None]] = deque()
        self._running: dict[str, _Running] = {}
        self._listeners: dict[str, list[Listener]] = {}
        self._executor = ThreadPoolExecutor(
            max_workers=max(1, self.limits.max_running), thread_name_prefix="uws-job"
        )
        self._accepting = True
        self._stop = threading.Event()
        self._watchdog: threading.Thread | None = None
        self._last_sweep = float("-inf")
        if start:
            self.start()

    @classmethod
    def from_config(cls, config: Config, start: bool = True) -> JobManager:
        """A manager on the data home's job store with the ``uws.*`` limits.

        ``start=False`` is for administration beside a running server: the
        store is opened without the restart policy (which would otherwise
        mark that server's running jobs as ERROR) and no watchdog starts.
        """
        limits = JobLimits(
            max_running=config["uws.max_jobs"],
            max_running_per_owner=config["uws.max_jobs_per_owner"],
            default_execution_duration=config["uws.default_duration"],
            max_execution_duration=config["uws.max_duration"],
            default_destruction=timedelta(seconds=config["uws.default_lifetime"]),
            max_destruction=timedelta(seconds=config["uws.max_lifetime"]),
            max_upload_bytes=config["upload.max_bytes"],
        )
        config.state_dir.mkdir(parents=True, exist_ok=True)
        store = JobStore(config.jobs_db, config.jobs_dir, recover=start)
        return cls(store, limits, start=start)

    # -- life cycle ---------------------------------------------------------

    def register_runner(self, job_type: str, runner: Runner) -> None:
        """Declare how jobs of ``job_type`` run."""
        self._runners[job_type] = runner

    def start(self) -> None:
        """Start the watchdog (time limits and destruction sweep)."""
        if self._watchdog is None:
            self._watchdog = threading.Thread(target=self._watch, name="uws-watchdog", daemon=True)
            self._watchdog.start()

    def shutdown(self, timeout: float = 10.0) -> None:
        """Stop accepting jobs, cancel running and queued ones, wait up to ``timeout``.

        Jobs stopped this way end in ERROR with :data:`SHUTDOWN_MESSAGE`
        (transient), mirroring the restart policy of the store.
        """
        self._accepting = False
        self._stop.set()
        error = ErrorSummary("transient", SHUTDOWN_MESSAGE)
        now = self.clock()
        with self._lock:
            queued = [job_id for job_id, _ in self._queue]
            self._queue.clear()
            running = list(self._running.items())
            for job_id in queued:
                self._set_phase(job_id, Phase.ERROR, {Phase.QUEUED}, end_time=now, error=error)
            for job_id, _ in running:
                self._set_phase(job_id, Phase.ERROR, {Phase.EXECUTING}, end_time=now, error=error)
        for _, entry in running:
            entry.ctx.cancel()
        self._executor.shutdown(wait=False, cancel_futures=True)
        deadline = time.monotonic() + timeout
        while self._running and time.monotonic() < deadline:
            time.sleep(0.02)
        if self._watchdog is not None:
            self._watchdog.join(max(0.0, deadline - time.monotonic()))

    # -- queries ------------------------------------------------------------

    def get(self, job_id: str, owner: str | None, job_type: str | None = None) -> Job:
        """The job if ``owner`` may see it (and it has ``job_type``), else NotFoundError."""
        job = self.store.get(job_id)
        if job is None or job.owner != owner or (job_type is not None and job.job_type != job_type):
            raise NotFoundError(f"no such job: {job_id}")
        return job

    def list(
        self,
        owner: str | None,
        phases: Collection[Phase] | None = None,
        after: datetime | None = None,
        last: int | None = None,
        job_type: str | None = None,
    ) -> builtins.list[Job]:
        """The owner's jobs, newest first (see :meth:`JobStore.list`)."""
        if last is not None and last <= 0:
            raise UsageError("LAST must be a positive integer")
        return self.store.list(owner, phases=phases, after=after, last=last, job_type=job_type)

    def result_file(self, job_id: str, owner: str | None, result_id: str) -> tuple[Result, Path]:
        """A result of the job and the path of its file."""
        job = self.get(job_id, owner)
        res = job.result(result_id)
        if res is None:
            raise NotFoundError(f"job {job_id} has no result {result_id!r}")
        path = self.store.result_dir(job_id) / res.name
        if not path.is_file():
            raise NotFoundError(f"the file of result {result_id!r} is gone")
        return res, path

    def upload_file(self, job_id: str, owner: str | None, name: str) -> Path:
        """The stored inline upload ``name`` of the job."""
        self.get(job_id, owner)
        if not _UPLOAD_NAME_RE.match(name):
            raise NotFoundError(f"no upload {name!r}")
        path = self.store.upload_dir(job_id) / name
        if not path.is_file():
            raise NotFoundError(f"no upload {name!r}")
        return path

    def upload_names(self, job_id: str) -> builtins.list[str]:
        """Names of a job's inline uploads (no ownership check: callers have the job)."""
        folder = self.store.upload_dir(job_id)
        return sorted(p.name for p in folder.iterdir() if p.is_file()) if folder.is_dir() else []

    # -- changes ------------------------------------------------------------

    def create(
        self,
        job_type: str,
        owner: str | None,
        params: Mapping[str, str],
        run_id: str | None = None,
        uploads: Mapping[str, bytes] | None = None,
    ) -> Job:
        """A new PENDING job; ``uploads`` are stored for the runner (``ctx.uploads``)."""
        if not self._accepting:
            raise ServiceUnavailable("the server is shutting down; no new jobs are accepted")
        if job_type not in self._runners:
            raise UsageError(f"unknown job type {job_type!r}")
        uploads = self._check_uploads(uploads)
        now = self.clock()
        # whole milliseconds, as written in UWS documents, so AFTER=<a creationTime
        # a client saw> means strictly later jobs
        now = now.replace(microsecond=now.microsecond // 1000 * 1000)
        job = Job(
            job_id=new_job_id(),
            job_type=job_type,
            owner=owner,
            phase=Phase.PENDING,
            creation_time=now,
            destruction=now + self.limits.default_destruction,
            execution_duration=self._clamp_duration(self.limits.default_execution_duration),
            run_id=run_id,
            parameters={str(k).lower(): str(v) for k, v in params.items()},
        )
        self.store.create(job)
        self._write_uploads(job.job_id, uploads)
        return job

    def run(self, job_id: str, owner: str | None) -> Job:
        """PHASE=RUN: queue a PENDING (or HELD) job; it executes when a slot is free.

        Running a job that is already QUEUED or EXECUTING changes nothing;
        a finished job cannot be run again (JobStateError, HTTP 403).
        """
        if not self._accepting:
            raise ServiceUnavailable("the server is shutting down; no jobs are started")
        job = self.get(job_id, owner)
        with self._lock:
            job = self.store.require(job_id)
            if job.phase in (Phase.QUEUED, Phase.EXECUTING):
                return job
            if job.phase not in (Phase.PENDING, Phase.HELD):
                raise JobStateError(f"job {job_id} is {job.phase.value} and cannot be run")
            self._set_phase(job_id, Phase.QUEUED, {job.phase})
            self._queue.append((job_id, job.owner))
            self._dispatch()
        return self.store.require(job_id)

    def abort(self, job_id: str, owner: str | None) -> Job:
        """PHASE=ABORT: stop the job (cancel callbacks run); no-op on finished jobs."""
        self.get(job_id, owner)
        ctx = None
        with self._lock:
            job = self.store.require(job_id)
            if job.phase in FINAL_PHASES:
                return job
            self._remove_queued(job_id)
            self._set_phase(job_id, Phase.ABORTED, {job.phase}, end_time=self.clock())
            entry = self._running.get(job_id)
            ctx = entry.ctx if entry else None
        if ctx is not None:
            ctx.cancel()
        return self.store.require(job_id)

    def delete(self, job_id: str, owner: str | None) -> None:
        """Destroy the job: abort it if active, then remove its record and files."""
        self.get(job_id, owner)
        self._destroy(job_id)

    def set_parameters(
        self,
        job_id: str,
        owner: str | None,
        params: Mapping[str, str],
        uploads: Mapping[str, bytes] | None = None,
    ) -> Job:
        """Replace the parameters of a PENDING job and add uploads (JobStateError otherwise).

        A ``runid`` parameter also becomes the job's runId.
        """
        self.get(job_id, owner)
        clean = {str(k).lower(): str(v) for k, v in params.items()}
        new_uploads = self._check_uploads(
            uploads, existing=self.upload_names(job_id), job_id=job_id
        )
        job = self.store.set_params(job_id, clean, run_id=clean.get("runid"))
        self._write_uploads(job_id, new_uploads)
        self._notify(job_id, job)
        return job

    def set_execution_duration(self, job_id: str, owner: str | None, seconds: int) -> Job:
        """Set EXECUTIONDURATION, clamped to the configured maximum (0 = unlimited)."""
        job = self.get(job_id, owner)
        if seconds < 0:
            raise UsageError("EXECUTIONDURATION must be a non-negative number of seconds")
        if job.phase in FINAL_PHASES:
            raise JobStateError(f"job {job_id} is {job.phase.value}; its duration is fixed")
        value = self._clamp_duration(seconds)
        with self._lock:
            job = self.store.set_execution_duration(job_id, value)
            entry = self._running.get(job_id)
            if entry is not None and job.start_time is not None:
                elapsed = (self.clock() - job.start_time).total_seconds()
                entry.ctx.deadline = (
                    None if value == 0 else time.monotonic() + max(0.0, value - elapsed)
                )
        self._notify(job_id, job)
        return job

    def set_destruction(self, job_id: str, owner: str | None, when: datetime) -> Job:
        """Set DESTRUCTION, clamped to now + the configured maximum."""
        self.get(job_id, owner)
        if when.tzinfo is None:
            raise UsageError("DESTRUCTION needs a time zone (use UTC, e.g. 2030-01-01T00:00:00Z)")
        latest = self.clock() + self.limits.max_destruction
        job = self.store.set_destruction(job_id, min(when, latest))
        self._notify(job_id, job)
        return job

    # -- waiting ------------------------------------------------------------

    def subscribe(self, job_id: str, listener: Listener) -> Callable[[], None]:
        """Call ``listener`` (from any thread) on each change of the job; returns unsubscribe."""
        with self._lock:
            self._listeners.setdefault(job_id, []).append(listener)

        def unsubscribe() -> None:
            with self._lock:
                listeners = self._listeners.get(job_id, [])
                if listener in listeners:
                    listeners.remove(listener)
                if not listeners:
                    self._listeners.pop(job_id, None)

        return unsubscribe

    def wait_timeout(self, timeout: float | None) -> float:
        """The time a WAIT really blocks: ``None``/negative means the server maximum."""
        if timeout is None or timeout < 0:
            return self.limits.max_wait
        return min(float(timeout), self.limits.max_wait)

    def should_block(self, job: Job, phase: Phase | None) -> bool:
        """UWS 1.1 WAIT rule: block only in an active phase, and only if it matches ``phase``."""
        return job.phase in ACTIVE_PHASES and (phase is None or job.phase == phase)

    def wait(
        self, job_id: str, owner: str | None, timeout: float | None, phase: Phase | None = None
    ) -> Job:
        """Block (this thread) until the job's phase changes or ``timeout`` passes.

        Returns at once when the job is not PENDING/QUEUED/EXECUTING or not in
        ``phase``.  Web code should use :meth:`subscribe` instead of blocking.
        """
        job = self.get(job_id, owner)
        if not self.should_block(job, phase):
            return job
        start_phase = job.phase
        deadline = time.monotonic() + self.wait_timeout(timeout)
        with self._changed:
            while True:
                current = self.store.get(job_id)
                if current is None:
                    raise NotFoundError(f"no such job: {job_id}")
                remaining = deadline - time.monotonic()
                if current.phase != start_phase or remaining <= 0:
                    return current
                self._changed.wait(remaining)

    # -- maintenance --------------------------------------------------------

    def sweep(self) -> builtins.list[str]:
        """Destroy every job past its destruction time; return their ids."""
        expired = self.store.expired(self.clock())
        for job_id in expired:
            self._destroy(job_id)
        if expired:
            log.info("destroyed %d expired jobs", len(expired))
        return expired

    def running_count(self, owner: str | None = None) -> int:
        """Jobs holding a worker slot (all, or one owner's)."""
        with self._lock:
            if owner is None:
                return len(self._running)
            return sum(1 for e in self._running.values() if e.owner == owner)

    # -- internals ----------------------------------------------------------

    def _check_uploads(
        self,
        uploads: Mapping[str, bytes] | None,
        existing: Collection[str] = (),
        job_id: str | None = None,
    ) -> dict[str, bytes]:
        uploads = dict(uploads or {})
        for name in uploads:
            if not _UPLOAD_NAME_RE.match(name):
                raise UsageError(
                    f"bad upload name {name!r}: use letters, digits, '_', '.', '-' only"
                )
        total = sum(len(v) for v in uploads.values())
        if job_id is not None:
            folder = self.store.upload_dir(job_id)
            total += sum((folder / n).stat().st_size for n in existing if n not in uploads)
        if total > self.limits.max_upload_bytes:
            raise LimitExceeded(
                f"uploads of {total} bytes exceed the limit of {self.limits.max_upload_bytes} bytes"
            )
        return uploads

    def _write_uploads(self, job_id: str, uploads: Mapping[str, bytes]) -> None:
        folder = self.store.upload_dir(job_id)
        folder.mkdir(parents=True, exist_ok=True)
        for name, data in uploads.items():
            (folder / name).write_bytes(data)

    def _clamp_duration(self, seconds: int) -> int:
        top = self.limits.max_execution_duration
        if top > 0 and (seconds == 0 or seconds > top):
            return top
        return int(seconds)

    def _set_phase(
        self, job_id: str, phase: Phase, expected: Collection[Phase], **fields: object
    ) -> Job | None:
        try:
            job = self.store.update_phase(job_id, phase, expected=expected, **fields)  # type: ignore[arg-type]
        except NotFoundError:
            return None
        if job is not None:
            self._notify(job_id, job)
        return job

    def _notify(self, job_id: str, job: Job | None) -> None:
        with self._changed:
            self._changed.notify_all()
            listeners = list(self._listeners.get(job_id, ()))
        for listener in listeners:
            try:
                listener(job)
            except Exception:
                log.exception("job listener failed for %s", job_id)

    def _remove_queued(self, job_id: str) -> None:
        for item in list(self._queue):
            if item[0] == job_id:
                self._queue.remove(item)

    def _destroy(self, job_id: str) -> None:
        with self._lock:
            self._remove_queued(job_id)
            entry = self._running.get(job_id)
            self.store.delete(job_id)
        if entry is not None:
            entry.ctx.cancel()
        self._notify(job_id, None)

    def _dispatch(self) -> None:
        """Start queued jobs, oldest first, while the limits allow."""
        with self._lock:
            if not self._accepting:
                return
            for item in list(self._queue):
                if len(self._running) >= self.limits.max_running:
                    break
                job_id, owner = item
                if owner is not None and (
                    sum(1 for e in self._running.values() if e.owner == owner)
                    >= self.limits.max_running_per_owner
                ):
                    continue
                self._queue.remove(item)
                job = self._set_phase(
                    job_id, Phase.EXECUTING, {Phase.QUEUED}, start_time=self.clock()
                )
                if job is None:
                    continue
                deadline = (
                    None
                    if job.execution_duration == 0
                    else time.monotonic() + job.execution_duration
                )
                ctx = RunContext(
                    job_id, self.store.result_dir(job_id), self.store.upload_dir(job_id), deadline
                )
                self._running[job_id] = _Running(ctx=ctx, owner=owner)
                self._executor.submit(self._execute, job, ctx)

    def _execute(self, job: Job, ctx: RunContext) -> None:
        """Worker thread body: run, classify the outcome, free the slot."""
        try:
            outcome = self._call_runner(job, ctx)
        finally:
            with self._lock:
                self._running.pop(job.job_id, None)
        if not ctx.cancelled.is_set():
            now = self.clock()
            if isinstance(outcome, ErrorSummary):
                self._set_phase(
                    job.job_id, Phase.ERROR, {Phase.EXECUTING}, end_time=now, error=outcome
                )
            else:
                self._set_phase(
                    job.job_id, Phase.COMPLETED, {Phase.EXECUTING}, end_time=now, results=outcome
                )
        self._dispatch()

    def _call_runner(self, job: Job, ctx: RunContext) -> builtins.list[Result] | ErrorSummary:
        runner = self._runners[job.job_type]
        try:
            results = runner(job, ctx)
        except SciportalError as exc:
            return ErrorSummary(
                "transient" if exc.uws_type == "transient" else "fatal", exc.message
            )
        except Exception as exc:
            log.exception("job %s (%s) failed", job.job_id, job.job_type)
            return ErrorSummary("fatal", f"internal error: {exc}")
        checked = []
        for res in results:
            if "/" in res.name or "\\" in res.name or res.name in ("", ".", ".."):
                log.error("runner of %s returned a bad result name %r", job.job_id, res.name)
                return ErrorSummary("fatal", "internal error: bad result file name")
            path = ctx.result_dir / res.name
            if res.size is None and path.is_file():
                res = Result(res.id, res.name, res.mime, path.stat().st_size, res.rows)
            checked.append(res)
        return checked

    def _watch(self) -> None:
        """Watchdog thread: time limits every tick, destruction every sweep interval."""
        while not self._stop.wait(self.limits.watchdog_interval):
            try:
                self._enforce_deadlines()
                if time.monotonic() - self._last_sweep >= self.limits.sweep_interval:
                    self._last_sweep = time.monotonic()
                    self.sweep()
            except Exception:
                log.exception("job watchdog failed")

    def _enforce_deadlines(self) -> None:
        now = time.monotonic()
        overdue: builtins.list[RunContext] = []
        with self._lock:
            for job_id, entry in self._running.items():
                ctx = entry.ctx
                if ctx.deadline is not None and now >= ctx.deadline and not ctx.cancelled.is_set():
                    job = self.store.get(job_id)
                    limit = job.execution_duration if job else 0
                    error = ErrorSummary(
                        ExecutionTimeout.uws_type,  # type: ignore[arg-type]
                        f"{TIMEOUT_MESSAGE} (EXECUTIONDURATION={limit} s)",
                    )
                    self._set_phase(
                        job_id, Phase.ERROR, {Phase.EXECUTING}, end_time=self.clock(), error=error
                    )
                    overdue.append(ctx)
        for ctx in overdue:
            ctx.cancel()

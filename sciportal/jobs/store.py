"""Durable UWS job store: one SQLite row per job plus a folder for its files.

SQLite (WAL mode) is the zero-configuration default for service state; one
connection guarded by a lock keeps it thread-safe, which is plenty for job
bookkeeping (a handful of small writes per job).

Restart policy
--------------
A job that was QUEUED or EXECUTING when the process died cannot be resumed
(its thread, DuckDB query or Spark work is gone), and re-running it silently
could repeat expensive or side-effecting work the user did not ask for twice.
So on open, such jobs are set to ERROR with the transient error
:data:`RESTART_MESSAGE`; the user can submit the job again.
"""

from __future__ import annotations

import builtins
import json
import re
import shutil
import sqlite3
import threading
from collections.abc import Collection, Iterable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sciportal.errors import NotFoundError
from sciportal.jobs.model import (
    ErrorSummary,
    Job,
    JobStateError,
    Phase,
    Result,
    check_transition,
    utcnow,
)

RESTART_MESSAGE = "the server restarted while this job was running"

_ID_RE = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
_TIME_FORMAT = "%Y-%m-%dT%H:%M:%S.%fZ"

_SCHEMA = """
CREATE TABLE IF NOT EXISTS jobs (
    job_id TEXT PRIMARY KEY,
    job_type TEXT NOT NULL,
    owner TEXT,
    phase TEXT NOT NULL,
    run_id TEXT,
    creation_time TEXT NOT NULL,
    start_time TEXT,
    end_time TEXT,
    execution_duration INTEGER NOT NULL,
    destruction TEXT NOT NULL,
    quote TEXT,
    parameters TEXT NOT NULL,
    results TEXT NOT NULL,
    error TEXT
);
CREATE INDEX IF NOT EXISTS jobs_owner_created ON jobs (owner, creation_time);
CREATE INDEX IF NOT EXISTS jobs_destruction ON jobs (destruction);
CREATE INDEX IF NOT EXISTS jobs_phase ON jobs (phase);
"""

_COLUMNS = (
    "job_id, job_type, owner, phase, run_id, creation_time, start_time, end_time, "
    "execution_duration, destruction, quote, parameters, results, error"
)


def format_time(value: datetime) -> str:
    """Fixed-width UTC text, so SQL string order is time order."""
    return value.astimezone(UTC).strftime(_TIME_FORMAT)


def parse_time(text: str) -> datetime:
    """Inverse of :func:`format_time`."""
    return datetime.strptime(text, _TIME_FORMAT).replace(tzinfo=UTC)


def _opt_time(text: str | None) -> datetime | None:
    return None if text is None else parse_time(text)


def _opt_format(value: datetime | None) -> str | None:
    return None if value is None else format_time(value)


def _error_json(error: ErrorSummary | None) -> str | None:
    if error is None:
        return None
    return json.dumps({"type": error.type, "message": error.message, "detail": error.has_detail})


def _results_json(results: Iterable[Result]) -> str:
    return json.dumps(
        [
            {"id": r.id, "name": r.name, "mime": r.mime, "size": r.size, "rows": r.rows}
            for r in results
        ]
    )


def _row_to_job(row: tuple[Any, ...]) -> Job:
    error = None
    if row[13] is not None:
        err = json.loads(row[13])
        error = ErrorSummary(type=err["type"], message=err["message"], has_detail=err["detail"])
    results = tuple(
        Result(id=r["id"], name=r["name"], mime=r["mime"], size=r["size"], rows=r["rows"])
        for r in json.loads(row[12])
    )
    return Job(
        job_id=row[0],
        job_type=row[1],
        owner=row[2],
        phase=Phase(row[3]),
        run_id=row[4],
        creation_time=parse_time(row[5]),
        start_time=_opt_time(row[6]),
        end_time=_opt_time(row[7]),
        execution_duration=int(row[8]),
        destruction=parse_time(row[9]),
        quote=_opt_time(row[10]),
        parameters=json.loads(row[11]),
        results=results,
        error=error,
    )


class JobStore:
    """Jobs in SQLite, their files under ``files_root/<job_id>/``.

    Parameters
    ----------
    db_path
        SQLite file (created if missing).
    files_root
        Directory holding one folder per job (``results/`` and ``uploads/``).
    recover
        Apply the restart policy (see module docstring) on open.
    """

    def __init__(self, db_path: Path | str, files_root: Path | str, recover: bool = True) -> None:
        self.db_path = Path(db_path)
        self.files_root = Path(files_root)
        self.db_path.parent.mkdir(parents=True, exist_ok=True)
        self.files_root.mkdir(parents=True, exist_ok=True)
        self._lock = threading.RLock()
        self._conn = sqlite3.connect(
            self.db_path, check_same_thread=False, isolation_level=None, timeout=30.0
        )
        self._conn.execute("PRAGMA journal_mode=WAL")
        self._conn.execute("PRAGMA synchronous=NORMAL")
        self._conn.executescript(_SCHEMA)
        self.recovered: list[str] = self.recover() if recover else []

    # -- housekeeping -------------------------------------------------------

    def close(self) -> None:
        """Close the database connection."""
        with self._lock:
            self._conn.close()

    def recover(self) -> builtins.list[str]:
        """Mark jobs left QUEUED/EXECUTING by a dead process as ERROR; return their ids."""
        error = _error_json(ErrorSummary("transient", RESTART_MESSAGE))
        now = format_time(utcnow())
        with self._lock:
            ids = [
                r[0]
                for r in self._conn.execute(
                    "SELECT job_id FROM jobs WHERE phase IN (?, ?, ?)",
                    (Phase.QUEUED.value, Phase.EXECUTING.value, Phase.SUSPENDED.value),
                )
            ]
            if ids:
                self._conn.executemany(
                    "UPDATE jobs SET phase = ?, error = ?, end_time = ? WHERE job_id = ?",
                    [(Phase.ERROR.value, error, now, i) for i in ids],
                )
        return ids

    def job_dir(self, job_id: str) -> Path:
        """The folder of a job's files (not necessarily existing)."""
        if not _ID_RE.match(job_id):
            raise NotFoundError(f"no job {job_id!r}")
        return self.files_root / job_id

    def result_dir(self, job_id: str) -> Path:
        """Where runners write result files."""
        return self.job_dir(job_id) / "results"

    def upload_dir(self, job_id: str) -> Path:
        """Where inline (multipart) uploads of a job are kept."""
        return self.job_dir(job_id) / "uploads"

    # -- reading ------------------------------------------------------------

    def get(self, job_id: str) -> Job | None:
        """The job, or None when it does not exist."""
        with self._lock:
            row = self._conn.execute(
                f"SELECT {_COLUMNS} FROM jobs WHERE job_id = ?",  # noqa: S608 - constant columns
                (job_id,),
            ).fetchone()
        return None if row is None else _row_to_job(row)

    def require(self, job_id: str) -> Job:
        """Like :meth:`get` but raising :class:`NotFoundError`."""
        job = self.get(job_id)
        if job is None:
            raise NotFoundError(f"no job {job_id!r}")
        return job

    def list(
        self,
        owner: str | None,
        phases: Collection[Phase] | None = None,
        after: datetime | None = None,
        last: int | None = None,
        job_type: str | None = None,
    ) -> builtins.list[Job]:
        """The owner's jobs, newest first, filtered as UWS 1.1 job lists are.

        ``phases`` None means every phase except ARCHIVED (UWS 1.1 2.2.2.1);
        ``after`` keeps jobs created strictly later; ``last`` keeps the N newest.
        """
        where = ["owner IS ?"]
        args: list[Any] = [owner]
        if phases is None:
            where.append("phase != ?")
            args.append(Phase.ARCHIVED.value)
        else:
            plist = sorted({Phase(p).value for p in phases})
            if not plist:
                return []
            where.append(f"phase IN ({', '.join('?' * len(plist))})")
            args.extend(plist)
        if after is not None:
            where.append("creation_time > ?")
            args.append(format_time(after))
        if job_type is not None:
            where.append("job_type = ?")
            args.append(job_type)
        sql = f"SELECT {_COLUMNS} FROM jobs WHERE {' AND '.join(where)} ORDER BY creation_time DESC, job_id"  # noqa: S608
        if last is not None:
            sql += " LIMIT ?"
            args.append(int(last))
        with self._lock:
            rows = self._conn.execute(sql, args).fetchall()
        return [_row_to_job(r) for r in rows]

    def expired(self, now: datetime) -> builtins.list[str]:
        """Ids of jobs whose destruction time has passed."""
        with self._lock:
            rows = self._conn.execute(
                "SELECT job_id FROM jobs WHERE destruction <= ?", (format_time(now),)
            ).fetchall()
        return [r[0] for r in rows]

    def in_phases(self, phases: Collection[Phase]) -> builtins.list[Job]:
        """Every job (any owner) in one of these phases."""
        plist = [Phase(p).value for p in phases]
        with self._lock:
            rows = self._conn.execute(
                f"SELECT {_COLUMNS} FROM jobs WHERE phase IN ({', '.join('?' * len(plist))})",  # noqa: S608
                plist,
            ).fetchall()
        return [_row_to_job(r) for r in rows]

    # -- writing ------------------------------------------------------------

    def create(self, job: Job) -> Job:
        """Insert a new job and make its folders."""
        self.result_dir(job.job_id).mkdir(parents=True, exist_ok=True)
        self.upload_dir(job.job_id).mkdir(parents=True, exist_ok=True)
        with self._lock:
            self._conn.execute(
                f"INSERT INTO jobs ({_COLUMNS}) VALUES ({', '.join('?' * 14)})",  # noqa: S608
                (
                    job.job_id,
                    job.job_type,
                    job.owner,
                    job.phase.value,
                    job.run_id,
                    format_time(job.creation_time),
                    _opt_format(job.start_time),
                    _opt_format(job.end_time),
                    job.execution_duration,
                    format_time(job.destruction),
                    _opt_format(job.quote),
                    json.dumps(job.parameters),
                    _results_json(job.results),
                    _error_json(job.error),
                ),
            )
        return job

    def _update(self, job_id: str, **values: Any) -> Job:
        """Set columns of one job (caller holds the lock) and return the new state."""
        cols = ", ".join(f"{k} = ?" for k in values)
        cur = self._conn.execute(
            f"UPDATE jobs SET {cols} WHERE job_id = ?",  # noqa: S608 - keys are ours
            [*values.values(), job_id],
        )
        if cur.rowcount == 0:
            raise NotFoundError(f"no job {job_id!r}")
        return self.require(job_id)

    def update_phase(
        self,
        job_id: str,
        phase: Phase,
        *,
        expected: Collection[Phase] | None = None,
        start_time: datetime | None = None,
        end_time: datetime | None = None,
        error: ErrorSummary | None = None,
        results: Iterable[Result] | None = None,
    ) -> Job | None:
        """Atomically move a job to ``phase``.

        With ``expected``, this is a compare-and-set: when the job's current
        phase is not in it, nothing changes and None is returned (someone else,
        e.g. an abort, won the race).  Illegal transitions raise
        :class:`JobStateError`.  The other arguments are set alongside when given.
        """
        with self._lock:
            current = self.require(job_id)
            if expected is not None and current.phase not in expected:
                return None
            check_transition(current.phase, phase)
            values: dict[str, Any] = {"phase": phase.value}
            if start_time is not None:
                values["start_time"] = format_time(start_time)
            if end_time is not None:
                values["end_time"] = format_time(end_time)
            if error is not None:
                values["error"] = _error_json(error)
            if results is not None:
                values["results"] = _results_json(results)
            return self._update(job_id, **values)

    def set_params(self, job_id: str, params: dict[str, str], run_id: str | None = None) -> Job:
        """Replace the parameters of a PENDING job (names lower-cased); set runId if given."""
        clean = {str(k).lower(): str(v) for k, v in params.items()}
        with self._lock:
            current = self.require(job_id)
            if current.phase is not Phase.PENDING:
                raise JobStateError(
                    f"parameters can only be changed while the job is PENDING, not {current.phase.value}"
                )
            if run_id is not None:
                return self._update(job_id, parameters=json.dumps(clean), run_id=run_id)
            return self._update(job_id, parameters=json.dumps(clean))

    def set_results(self, job_id: str, results: Iterable[Result]) -> Job:
        """Replace the result list."""
        with self._lock:
            return self._update(job_id, results=_results_json(results))

    def set_error(self, job_id: str, error: ErrorSummary | None) -> Job:
        """Set (or clear) the error summary."""
        with self._lock:
            return self._update(job_id, error=_error_json(error))

    def set_execution_duration(self, job_id: str, seconds: int) -> Job:
        """Store a (validated) execution duration in seconds."""
        with self._lock:
            return self._update(job_id, execution_duration=int(seconds))

    def set_destruction(self, job_id: str, when: datetime) -> Job:
        """Store a (validated) destruction time."""
        with self._lock:
            return self._update(job_id, destruction=format_time(when))

    def set_quote(self, job_id: str, when: datetime | None) -> Job:
        """Store the predicted completion time (None: unknown)."""
        with self._lock:
            return self._update(job_id, quote=_opt_format(when))

    def delete(self, job_id: str) -> bool:
        """Remove a job and its folder; False if it did not exist."""
        with self._lock:
            cur = self._conn.execute("DELETE FROM jobs WHERE job_id = ?", (job_id,))
        if _ID_RE.match(job_id):
            shutil.rmtree(self.job_dir(job_id), ignore_errors=True)
        return cur.rowcount > 0

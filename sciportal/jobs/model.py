"""UWS 1.1 job model: phases, the legal transitions between them, and the job record.

The phase machine is a table rather than scattered ``if`` tests so that every
phase change in the store and the scheduler goes through one check, and a
test can walk the whole table.
"""

from __future__ import annotations

import base64
import secrets
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from enum import StrEnum
from typing import Literal

from sciportal.errors import SciportalError


class Phase(StrEnum):
    """UWS 1.1 execution phases (UWS.xsd ``ExecutionPhase``)."""

    PENDING = "PENDING"
    QUEUED = "QUEUED"
    EXECUTING = "EXECUTING"
    COMPLETED = "COMPLETED"
    ERROR = "ERROR"
    ABORTED = "ABORTED"
    UNKNOWN = "UNKNOWN"
    HELD = "HELD"
    SUSPENDED = "SUSPENDED"
    ARCHIVED = "ARCHIVED"


#: Phases in which a UWS 1.1 blocking WAIT may block.
ACTIVE_PHASES = frozenset({Phase.PENDING, Phase.QUEUED, Phase.EXECUTING})
#: Phases a job never leaves on its own (only ARCHIVED or deletion follow).
FINAL_PHASES = frozenset({Phase.COMPLETED, Phase.ERROR, Phase.ABORTED, Phase.ARCHIVED})

#: Legal phase changes.  Every phase is a key (checked below), so adding a
#: phase without deciding its successors fails at import time.
TRANSITIONS: dict[Phase, frozenset[Phase]] = {
    Phase.PENDING: frozenset(
        {Phase.QUEUED, Phase.HELD, Phase.ABORTED, Phase.ERROR, Phase.ARCHIVED}
    ),
    Phase.QUEUED: frozenset({Phase.EXECUTING, Phase.HELD, Phase.ABORTED, Phase.ERROR}),
    Phase.HELD: frozenset({Phase.QUEUED, Phase.ABORTED, Phase.ERROR}),
    Phase.EXECUTING: frozenset({Phase.COMPLETED, Phase.ERROR, Phase.ABORTED, Phase.SUSPENDED}),
    Phase.SUSPENDED: frozenset({Phase.EXECUTING, Phase.ABORTED, Phase.ERROR}),
    Phase.COMPLETED: frozenset({Phase.ARCHIVED}),
    Phase.ERROR: frozenset({Phase.ARCHIVED}),
    Phase.ABORTED: frozenset({Phase.ARCHIVED}),
    Phase.ARCHIVED: frozenset(),
    Phase.UNKNOWN: frozenset({Phase.ERROR, Phase.ABORTED, Phase.ARCHIVED}),
}


def _check_table() -> None:
    missing = set(Phase) - set(TRANSITIONS)
    if missing:
        raise RuntimeError(f"UWS transition table lacks {sorted(p.value for p in missing)}")


_check_table()


class JobStateError(SciportalError):
    """The request is not legal in the job's current phase.

    UWS 1.1 section 2.2 asks for HTTP 403 in that case.
    """

    http_status = 403


def can_transition(old: Phase, new: Phase) -> bool:
    """True when the table allows ``old -> new``."""
    return new in TRANSITIONS[old]


def check_transition(old: Phase, new: Phase) -> None:
    """Raise :class:`JobStateError` unless ``old -> new`` is legal."""
    if not can_transition(old, new):
        raise JobStateError(f"a job cannot go from {old.value} to {new.value}")


ErrorType = Literal["fatal", "transient"]


@dataclass(frozen=True, slots=True)
class ErrorSummary:
    """UWS errorSummary: why a job ended in ERROR."""

    type: ErrorType
    message: str
    has_detail: bool = True


@dataclass(frozen=True, slots=True)
class Result:
    """One result file of a job.

    ``name`` is the file name inside the job's result folder (never a path
    with separators), so the store can move folders without rewriting jobs.
    """

    id: str
    name: str
    mime: str = "application/octet-stream"
    size: int | None = None
    rows: int | None = None


def utcnow() -> datetime:
    """Aware UTC now; all job times are aware UTC datetimes."""
    return datetime.now(UTC)


def new_job_id() -> str:
    """An unguessable job identifier: 120 random bits, lower-case base32.

    Lower case only, so ids stay distinct on case-insensitive file systems
    (job folders are named after them) and never start with '-'.
    """
    return base64.b32encode(secrets.token_bytes(15)).decode("ascii").lower()


@dataclass(frozen=True, slots=True)
class Job:
    """The durable state of one UWS job.

    Parameter names are lower-case (UWS/DALI names are case-insensitive);
    ``execution_duration`` is in seconds, 0 meaning unlimited.
    """

    job_id: str
    job_type: str
    owner: str | None
    phase: Phase
    creation_time: datetime
    destruction: datetime
    execution_duration: int
    run_id: str | None = None
    start_time: datetime | None = None
    end_time: datetime | None = None
    quote: datetime | None = None
    parameters: dict[str, str] = field(default_factory=dict)
    results: tuple[Result, ...] = ()
    error: ErrorSummary | None = None

    def with_changes(self, **changes: object) -> Job:
        """A copy with some fields replaced (jobs are immutable snapshots)."""
        return replace(self, **changes)  # type: ignore[arg-type]

    def result(self, result_id: str) -> Result | None:
        """The result with this id, if any."""
        for res in self.results:
            if res.id == result_id:
                return res
        return None

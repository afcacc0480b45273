"""A result that fails part-way must not look like a complete, successful one.

VOTable ends with a trailing ``QUERY_STATUS=ERROR`` (DALI; pyvo raises);
formats without an error convention must at least not be readable as a
shorter, valid file. The sync time limit stops silence, not long downloads.
"""

from __future__ import annotations

import io
import threading
import time
import warnings
from collections.abc import Iterator

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from astropy.io.votable import parse

from sciportal.errors import ExecutionTimeout, QueryError, SciportalError
from sciportal.formats import ResultInfo, get_writer
from sciportal.metadata.model import Column
from sciportal.services.tap import RunningQuery, _IdleGuard

COLUMNS = [Column("id", "long"), Column("x", "double", unit="deg"), Column("s", "char", "*")]
VOT_FORMATS = ["votable", "votable/td", "votable/b"]


def failing(batches: int, rows: int = 1000) -> Iterator[pa.RecordBatch]:
    """``batches`` good batches, then the engine fails."""
    for i in range(batches):
        ids = np.arange(i * rows, (i + 1) * rows)
        yield pa.record_batch(
            {"id": pa.array(ids), "x": pa.array(ids * 0.5), "s": pa.array([f"r{j}" for j in ids])}
        )
    raise QueryError("query failed: Out of Range Error: cannot take square root of -1")


def write(fmt: str, source: Iterator[pa.RecordBatch], **info) -> tuple[bytes, BaseException]:
    out = io.BytesIO()
    with pytest.raises(SciportalError) as caught:
        get_writer(fmt).write(source, COLUMNS, out, ResultInfo(**info))
    return out.getvalue(), caught.value


@pytest.mark.parametrize("fmt", VOT_FORMATS)
def test_votable_error_after_rows(fmt: str) -> None:
    data, exc = write(fmt, failing(3), maxrec=10_000, query="SELECT ...")
    assert "square root" in str(exc)  # re-raised: an async job ends in ERROR
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        vot = parse(io.BytesIO(data), verify="exception")  # well-formed, schema-valid order
    resource = vot.resources[0]
    statuses = [(i.value, i.content) for i in resource.infos if i.name == "QUERY_STATUS"]
    assert statuses[0] == ("OK", None)
    assert statuses[-1][0] == "ERROR" and "square root" in statuses[-1][1]
    table = resource.tables[0].to_table()
    assert len(table) == 3000 and list(table["id"][:3]) == [0, 1, 2]  # complete rows only


@pytest.mark.parametrize("fmt", VOT_FORMATS)
def test_pyvo_raises_on_late_error(fmt: str) -> None:
    from pyvo.dal import DALQueryError
    from pyvo.dal.tap import TAPResults

    data, _ = write(fmt, failing(2), maxrec=10_000)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        vot = parse(io.BytesIO(data))
    with pytest.raises(DALQueryError, match="square root"):
        TAPResults(vot, url="http://example.org/tap/sync")


@pytest.mark.parametrize("fmt", VOT_FORMATS + ["csv", "tsv", "fits", "parquet"])
def test_error_before_first_row_writes_nothing(fmt: str) -> None:
    """The caller can then still answer with an HTTP error and a DALI document."""
    data, _ = write(fmt, failing(0))
    assert data == b""


def test_parquet_error_leaves_no_readable_file() -> None:
    data, _ = write("parquet", failing(5, rows=100_000), maxrec=10**7)
    assert data  # row groups went out before the failure...
    with pytest.raises(pa.ArrowInvalid):  # ...but no footer: not a valid, shorter file
        pq.read_table(io.BytesIO(data))


@pytest.mark.parametrize("fmt", ["csv", "tsv"])
def test_text_formats_reraise(fmt: str) -> None:
    data, exc = write(fmt, failing(2))
    assert isinstance(exc, QueryError) and data.count(b"\n") > 1000
    assert not get_writer(fmt).reports_errors  # the transport must cut the response


def test_votable_writers_report_errors() -> None:
    for fmt in VOT_FORMATS:
        assert get_writer(fmt).reports_errors


class FakeResult:
    """Stands in for the engine's QueryResult: batches after given delays; interruptible."""

    def __init__(self, delays: list[float]) -> None:
        self.delays = delays
        self.interrupted = threading.Event()

    def cancel(self) -> None:
        self.interrupted.set()

    def __iter__(self) -> Iterator[pa.RecordBatch]:
        for delay in self.delays:
            if self.interrupted.wait(delay):
                raise SciportalError("query aborted")
            yield pa.record_batch({"id": pa.array([1])})


def running(delays: list[float], limit: float) -> tuple[RunningQuery, FakeResult]:
    fake = FakeResult(delays)
    guard = _IdleGuard(limit)
    guard.arm(fake.cancel)
    return RunningQuery(fake, guard), fake  # type: ignore[arg-type]


def test_idle_guard_lets_a_long_steady_stream_finish() -> None:
    query, fake = running([0.2] * 8, limit=0.6)  # 1.6 s in all, never 0.6 s silent
    assert len(list(query)) == 8 and not fake.interrupted.is_set()


def test_idle_guard_ignores_time_spent_on_a_slow_client() -> None:
    query, fake = running([0.05] * 3, limit=0.4)
    count = 0
    for _ in query:
        time.sleep(0.6)  # the writer is blocked on the client, not on the engine
        count += 1
    assert count == 3 and not fake.interrupted.is_set()


def test_idle_guard_stops_a_silent_query() -> None:
    query, fake = running([0.05, 30.0], limit=0.5)
    start = time.monotonic()
    with pytest.raises(ExecutionTimeout, match="no rows produced for 0.5 s"):
        list(query)
    assert fake.interrupted.is_set() and time.monotonic() - start < 5

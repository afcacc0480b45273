"""Writers stream: Arrow memory stays bounded by a batch, whatever the result size."""

from __future__ import annotations

import io
from collections.abc import Iterator

import numpy as np
import pyarrow as pa
import pytest

from sciportal.formats import ResultInfo, get_writer
from sciportal.metadata.model import Column

BATCH = 20_000
BATCHES = 25  # 500k rows, ~40 MB of Arrow data in all


class CountingSink(io.RawIOBase):
    def __init__(self) -> None:
        self.n = 0

    def writable(self) -> bool:
        return True

    def write(self, b) -> int:
        k = memoryview(b).nbytes
        self.n += k
        return k


def generate(peaks: list[int]) -> Iterator[pa.RecordBatch]:
    rng = np.random.default_rng(3)
    for i in range(BATCHES):
        peaks.append(pa.total_allocated_bytes())
        yield pa.record_batch(
            {
                "id": pa.array(np.arange(i * BATCH, (i + 1) * BATCH)),
                "x": pa.array(rng.normal(size=BATCH)),
                "name": pa.array([f"src{j}" for j in range(BATCH)]),
                "pos": pa.FixedSizeListArray.from_arrays(pa.array(rng.normal(size=2 * BATCH)), 2),
            }
        )


COLUMNS = [
    Column("id", "long"),
    Column("x", "double"),
    Column("name", "char", arraysize="*"),
    Column("pos", "double", arraysize="2", xtype="point"),
]


@pytest.mark.parametrize("fmt", ["votable", "votable/td", "csv", "fits", "parquet"])
def test_memory_is_bounded(fmt):
    peaks: list[int] = []
    sink = CountingSink()
    stats = get_writer(fmt).write(generate(peaks), COLUMNS, sink, ResultInfo())  # type: ignore[arg-type]
    assert stats.rows == BATCH * BATCHES and not stats.overflow
    assert sink.n > BATCH * BATCHES * 20
    baseline = peaks[0]
    # the whole result is ~22 MB of Arrow data; a streaming writer holds a few batches
    assert max(peaks) - baseline < 10e6, (max(peaks) - baseline) / 1e6

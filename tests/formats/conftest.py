"""Shared result samples: Arrow batches with the column metadata a query would carry."""

from __future__ import annotations

import datetime

import numpy as np
import pyarrow as pa
import pytest

from sciportal.metadata.model import Column

TRICKY = ["a<&>\"b'", "", "héllo ☃ 𝄞", "tab\there", "line\nbreak", 'q"uote,comma', "plain"]


def mixed(n: int, seed: int = 1, unicode_first: bool = True) -> tuple[pa.RecordBatch, list[Column]]:
    """A batch of ``n`` rows covering every kind of column, with nulls in each."""
    rng = np.random.default_rng(seed)
    null = rng.random(n) < 0.2
    strings = [TRICKY[i % len(TRICKY)] for i in range(n)]
    if not unicode_first:
        strings = [s.encode("ascii", "replace").decode() for s in strings]
    lens = rng.integers(0, 5, n) * 2 + 6
    poly = [list(rng.normal(size=k)) for k in lens]
    start = datetime.datetime(2020, 1, 1)
    batch = pa.record_batch(
        {
            "id": pa.array(np.arange(n, dtype=np.int64)),
            "i32": pa.array(rng.integers(-1000, 1000, n).astype(np.int32), mask=null),
            "i16": pa.array(rng.integers(-100, 100, n).astype(np.int16), mask=np.roll(null, 1)),
            "u8": pa.array(rng.integers(0, 200, n).astype(np.uint8), mask=np.roll(null, 2)),
            "ra": pa.array(rng.uniform(0, 360, n), mask=np.roll(null, 3)),
            "mag": pa.array(rng.normal(20, 2, n).astype(np.float32), mask=np.roll(null, 4)),
            "flag": pa.array(rng.random(n) < 0.5, mask=np.roll(null, 5)),
            "name": pa.array(strings, mask=np.roll(null, 6)),
            "obs": pa.array(
                [start + datetime.timedelta(seconds=int(s)) for s in rng.integers(0, 10**8, n)],
                pa.timestamp("us"),
                mask=np.roll(null, 7),
            ),
            "pos": pa.array([list(rng.uniform(0, 90, 2)) for _ in range(n)], mask=np.roll(null, 8)),
            "region": pa.array(poly, mask=np.roll(null, 9)),
            "nothing": pa.nulls(n),
        }
    )
    columns = [
        Column("id", "long", ucd="meta.id;meta.main", description="Object identifier"),
        Column("i32", "int", unit="ct"),
        Column("i16", "short"),
        Column("u8", "unsignedByte"),
        Column("ra", "double", unit="deg", ucd="pos.eq.ra", description="Right ascension <ICRS>"),
        Column("mag", "float", unit="mag", ucd="phot.mag"),
        Column("flag", "boolean"),
        Column("name", "char", arraysize="*"),
        Column("obs", "char", arraysize="*", xtype="timestamp"),
        Column("pos", "double", arraysize="2", xtype="point", unit="deg"),
        Column("region", "double", arraysize="*", xtype="polygon", unit="deg"),
        Column("nothing", "int"),
    ]
    return batch, columns


@pytest.fixture
def sample() -> tuple[pa.RecordBatch, list[Column]]:
    return mixed(200)

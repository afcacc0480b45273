"""Serialization speed: rows/s per output format on a mixed 20-column result.

Usage: ``python bench/formats_bench.py [--rows 1000000] [--astropy-rows 100000]``

Compares our writers with astropy's VOTable writer (on a slice, it is slow)
and pyarrow's Parquet writer; output goes to a byte-counting sink so only
serialization is measured. Prints one table.
"""

from __future__ import annotations

import argparse
import datetime
import io
import time
import warnings
from collections.abc import Callable
from typing import BinaryIO, cast

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from sciportal.formats import ResultInfo, get_writer
from sciportal.metadata.model import Column


class Sink(io.RawIOBase):
    """Counts bytes and throws them away."""

    def __init__(self) -> None:
        self.n = 0

    def writable(self) -> bool:
        return True

    def write(self, b) -> int:
        k = memoryview(b).nbytes
        self.n += k
        return k


def make_result(n: int, seed: int = 0) -> tuple[pa.Table, list[Column]]:
    """20 columns like a survey query: ids, positions, magnitudes with nulls, flags, names."""
    rng = np.random.default_rng(seed)
    null = rng.random(n) < 0.05
    cols: dict[str, pa.Array] = {"objid": pa.array(np.arange(n, dtype=np.int64) + 10**15)}
    meta = [Column("objid", "long", ucd="meta.id;meta.main")]
    cols["ra"] = pa.array(rng.uniform(0, 360, n))
    cols["dec"] = pa.array(rng.uniform(-90, 90, n))
    meta += [Column("ra", "double", unit="deg"), Column("dec", "double", unit="deg")]
    for band in "grizy":
        cols[f"mag_{band}"] = pa.array(rng.normal(22, 1.5, n).astype(np.float32), mask=null)
        cols[f"magerr_{band}"] = pa.array(rng.exponential(0.05, n).astype(np.float32))
        meta += [Column(f"mag_{band}", "float", unit="mag"), Column(f"magerr_{band}", "float")]
    cols["parallax"] = pa.array(rng.normal(1, 0.5, n), mask=np.roll(null, 2))
    meta.append(Column("parallax", "double", unit="mas"))
    cols["flags"] = pa.array(rng.integers(0, 256, n).astype(np.int32), mask=np.roll(null, 1))
    cols["nepochs"] = pa.array(rng.integers(0, 100, n).astype(np.int16))
    cols["extended"] = pa.array(rng.random(n) < 0.3)
    cols["name"] = pa.array(np.char.add("DES J", rng.integers(0, 10**9, n).astype(str)))
    epoch = np.datetime64("2015-01-01T00:00:00") + rng.integers(0, 10**8, n).astype("m8[s]")
    cols["obs_time"] = pa.array(epoch.astype("M8[us]"))
    offsets = np.arange(0, 2 * n + 1, 2, dtype=np.int32)
    cols["pos"] = pa.ListArray.from_arrays(pa.array(offsets), pa.array(rng.uniform(0, 90, 2 * n)))
    meta += [
        Column("flags", "int"),
        Column("nepochs", "short"),
        Column("extended", "boolean"),
        Column("name", "char", arraysize="*"),
        Column("obs_time", "char", arraysize="*", xtype="timestamp"),
        Column("pos", "double", arraysize="2", xtype="point", unit="deg"),
    ]
    assert len(cols) == 20 == len(meta)
    return pa.table(cols), meta


def time_it(fn: Callable[[], int], repeat: int = 1) -> tuple[float, int]:
    best, size = float("inf"), 0
    for _ in range(repeat):
        t0 = time.perf_counter()
        size = fn()
        best = min(best, time.perf_counter() - t0)
    return best, size


def ours(fmt: str, table: pa.Table, meta: list[Column]) -> Callable[[], int]:
    def run() -> int:
        sink = Sink()
        out = cast(BinaryIO, sink)
        get_writer(fmt).write(table.to_batches(max_chunksize=100_000), meta, out, ResultInfo())
        return sink.n

    return run


def astropy_votable(table: pa.Table, serialization: str) -> Callable[[], int]:
    from astropy.io.votable import from_table
    from astropy.table import Table

    t = Table(
        {
            name: table.column(name).to_numpy(zero_copy_only=False)
            for name in table.column_names
            if name not in ("obs_time", "pos")
        }
    )

    def run() -> int:
        out = io.BytesIO()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            vot = from_table(t)
            vot.to_xml(out, tabledata_format=serialization)
        return len(out.getvalue())

    return run


def pyarrow_parquet(table: pa.Table) -> Callable[[], int]:
    def run() -> int:
        sink = Sink()
        pq.write_table(table, sink)
        return sink.n

    return run


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--astropy-rows", type=int, default=100_000)
    parser.add_argument("--formats", default="votable,votable/td,votable/b,csv,tsv,fits,parquet")
    args = parser.parse_args()
    table, meta = make_result(args.rows)
    small = table.slice(0, args.astropy_rows)
    rows: list[tuple[str, int, float, int]] = []
    for fmt in args.formats.split(","):
        secs, size = time_it(ours(fmt, table, meta))
        rows.append((f"sciportal {fmt}", args.rows, secs, size))
    for ser in ("binary2", "tabledata"):
        try:
            secs, size = time_it(astropy_votable(small, ser))
        except ImportError:
            continue
        rows.append((f"astropy votable {ser} (18 cols)", args.astropy_rows, secs, size))
    secs, size = time_it(pyarrow_parquet(table))
    rows.append(("pyarrow parquet (no metadata)", args.rows, secs, size))
    print(f"{'writer':<38} {'rows':>9} {'seconds':>8} {'rows/s':>11} {'MB':>8}")
    for name, n, secs, size in rows:
        print(f"{name:<38} {n:>9} {secs:>8.2f} {n / secs:>11,.0f} {size / 1e6:>8.1f}")
    print(f"(generated {datetime.datetime.now():%Y-%m-%d %H:%M})")


if __name__ == "__main__":
    main()

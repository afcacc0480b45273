"""CSV and TSV output read back by astropy and by Python's csv module."""

from __future__ import annotations

import csv
import io

import numpy as np
import pyarrow as pa
from astropy.table import Table

from sciportal.formats import ResultInfo, get_writer
from tests.formats.conftest import TRICKY


def write(fmt: str, batches, columns, **info) -> bytes:
    out = io.BytesIO()
    stats = get_writer(fmt).write(batches, columns, out, ResultInfo(**info))
    assert stats.rows == sum(b.num_rows for b in batches) or info.get("maxrec") is not None
    return out.getvalue()


def _expected_text(name: str, value) -> str:
    if value is None:
        return ""
    if name == "obs":
        return value.isoformat(timespec="microseconds")
    if name == "flag":
        return "true" if value else "false"
    return str(value)


def test_csv_round_trip_python_csv(sample):
    batch, columns = sample
    data = write("csv", [batch], columns)
    rows = list(csv.reader(io.StringIO(data.decode("utf-8"), newline="")))
    assert rows[0] == [c.name for c in columns]
    assert len(rows) == batch.num_rows + 1
    for name in ("pos", "region"):
        j = rows[0].index(name)
        for v, row in zip(batch.column(name).to_pylist(), rows[1:], strict=True):
            assert [float(x) for x in row[j].split()] == (v or [])
    for name in ("id", "i32", "name", "obs", "flag", "nothing"):
        j = rows[0].index(name)
        for v, row in zip(batch.column(name).to_pylist(), rows[1:], strict=True):
            assert row[j] == _expected_text(name, v), name
    for name in ("ra", "mag"):
        j = rows[0].index(name)
        got = np.array([float(r[j]) if r[j] else np.nan for r in rows[1:]])
        want = batch.column(name).to_numpy(zero_copy_only=False).astype(float)
        np.testing.assert_array_equal(
            got.astype(np.float32 if name == "mag" else float),
            want.astype(np.float32 if name == "mag" else float),
        )


def test_csv_astropy_reads_it(sample):
    batch, columns = sample
    table = Table.read(io.BytesIO(write("csv", [batch], columns)), format="ascii.csv")
    assert table.colnames == [c.name for c in columns]
    np.testing.assert_array_equal(table["id"], np.arange(batch.num_rows))
    np.testing.assert_array_equal(np.ma.getmaskarray(table["i32"]), batch.column("i32").is_null())


def test_csv_null_and_empty_string_differ():
    batch = pa.record_batch({"s": ["", None, 'a"b']})
    from sciportal.metadata.model import Column

    data = write("csv", [batch], [Column("s", "char", arraysize="*")])
    assert data.decode().split("\r\n") == ['"s"', '""', "", '"a""b"', ""]


def test_tsv_round_trip(sample):
    batch, columns = sample
    data = write("tsv", [batch], columns).decode("utf-8")
    lines = data.split("\n")
    assert lines[-1] == ""
    rows = [line.split("\t") for line in lines[:-1]]
    assert rows[0] == [c.name for c in columns]
    assert all(len(r) == len(columns) for r in rows)

    def unescape(s: str) -> str:
        out, i = [], 0
        while i < len(s):
            if s[i] == "\\":
                out.append({"t": "\t", "n": "\n", "r": "\r", "\\": "\\"}[s[i + 1]])
                i += 2
            else:
                out.append(s[i])
                i += 1
        return "".join(out)

    j = rows[0].index("name")
    got = [unescape(r[j]) for r in rows[1:]]
    want = ["" if v is None else v for v in batch.column("name").to_pylist()]
    assert got == want
    assert set(want) - {""} <= set(TRICKY)


def test_maxrec_cuts_csv(sample):
    batch, columns = sample
    out = io.BytesIO()
    stats = get_writer("csv").write([batch], columns, out, ResultInfo(maxrec=10))
    assert stats.rows == 10 and stats.overflow
    assert len(list(csv.reader(io.StringIO(out.getvalue().decode(), newline="")))) == 11


def test_empty_csv(sample):
    _, columns = sample
    data = write("csv", [], columns)
    assert data.decode().strip() == ",".join(f'"{c.name}"' for c in columns)

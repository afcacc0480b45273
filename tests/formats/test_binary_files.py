"""FITS and VOParquet output read back by astropy and pyarrow."""

from __future__ import annotations

import io
import warnings

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from astropy.io import fits, votable
from astropy.table import Table

from sciportal.formats import ResultInfo, get_writer
from sciportal.formats.parquet import CONTENT_KEY, VERSION_KEY
from tests.formats.conftest import mixed


def write(fmt: str, batches, columns, **info) -> bytes:
    out = io.BytesIO()
    get_writer(fmt).write(batches, columns, out, ResultInfo(**info))
    assert not out.closed
    return out.getvalue()


def _read_fits(data: bytes):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        hdul = fits.open(io.BytesIO(data))
        hdul.verify("exception")
        return hdul, Table.read(hdul[1])


@pytest.mark.parametrize("sizes", [[300], [100, 0, 157, 1], []])
def test_fits_round_trip(sizes):
    full, columns = mixed(max(sum(sizes), 1))
    starts = np.cumsum([0, *sizes])
    batches = [full.slice(int(a), n) for a, n in zip(starts, sizes, strict=False)]
    data = write("fits", batches, columns, table_name="result", query="SELECT * FROM t")
    assert len(data) % 2880 == 0
    hdul, table = _read_fits(data)
    n = sum(sizes)
    assert len(table) == n and table.colnames == [c.name for c in columns]
    assert table["ra"].unit == "deg" and hdul[1].header["TUCD5"] == "pos.eq.ra"
    assert hdul[1].header["TCOMM5"] == "Right ascension <ICRS>"
    if not n:
        return
    whole = pa.Table.from_batches([b for b in batches if b.num_rows]).combine_chunks()
    for name in ("id", "i32", "i16", "u8"):
        arr = whole.column(name)
        np.testing.assert_array_equal(
            np.ma.getmaskarray(table[name]), arr.is_null().to_numpy(zero_copy_only=False)
        )
        ok = ~np.ma.getmaskarray(table[name])
        np.testing.assert_array_equal(np.asarray(table[name])[ok], arr.drop_null().to_numpy())
    for name in ("ra", "mag"):
        want = whole.column(name).to_numpy(zero_copy_only=False).astype(float)
        np.testing.assert_array_equal(np.asarray(table[name], dtype=float), want)
    names = ["" if s is np.ma.masked else s for s in table["name"]]
    want_names = ["" if v is None else v for v in whole.column("name").to_pylist()]
    assert names == want_names
    for got, want in zip(table["region"], whole.column("region").to_pylist(), strict=True):
        np.testing.assert_array_equal(np.asarray(got), want or [])
    pos = np.asarray(table["pos"])
    for got, want in zip(pos, whole.column("pos").to_pylist(), strict=True):
        if want is None:
            assert np.isnan(got).all()
        else:
            np.testing.assert_array_equal(got, want)
    flags = whole.column("flag")
    valid = flags.is_valid().to_numpy(zero_copy_only=False)
    np.testing.assert_array_equal(
        np.asarray(table["flag"])[valid], flags.drop_null().to_numpy(zero_copy_only=False)
    )


def test_fits_overflow_status(sample):
    batch, columns = sample
    hdul, table = _read_fits(write("fits", [batch], columns, maxrec=10))
    assert len(table) == 10 and hdul[1].header["QSTATUS"] == "OVERFLOW"


def test_parquet_round_trip(sample):
    batch, columns = sample
    data = write("parquet", [batch, batch], columns, maxrec=300, query="SELECT a FROM b")
    pf = pq.ParquetFile(io.BytesIO(data))
    meta = pf.metadata.metadata
    assert meta[VERSION_KEY.encode()] == b"1.0"
    vot = votable.parse(io.BytesIO(meta[CONTENT_KEY.encode()]))
    fields = {f.name: f for f in vot.get_first_table().fields}
    assert [f.name for f in vot.get_first_table().fields] == [c.name for c in columns]
    assert str(fields["ra"].unit) == "deg" and fields["ra"].ucd == "pos.eq.ra"
    infos = [(i.name, i.value) for i in vot.resources[0].infos]
    assert ("QUERY_STATUS", "OVERFLOW") in infos and ("QUERY", "SELECT a FROM b") in infos
    table = pf.read()
    assert table.num_rows == 300
    whole = pa.Table.from_batches([batch, batch.slice(0, 100)])
    for name in whole.column_names:
        got, want = table.column(name), whole.column(name)
        if name == "obs":
            want = pa.array(
                [
                    None if v is None else v.isoformat(timespec="microseconds")
                    for v in want.to_pylist()
                ]
            )
        if name == "nothing":
            want = want.cast(pa.int32())
        assert got.to_pylist() == want.to_pylist(), name


def test_parquet_votable_reader_of_astropy():
    """astropy's own VOParquet reader (numbers only: it cannot merge char arraysize=* columns)."""
    batch, columns = mixed(50)
    keep = [0, 4, 5]
    batch = batch.select(keep)
    columns = [columns[i] for i in keep]
    table = Table.read(io.BytesIO(write("parquet", [batch], columns)), format="parquet.votable")
    assert len(table) == 50 and table["ra"].unit == "deg"
    assert table["ra"].description == "Right ascension <ICRS>"
    np.testing.assert_array_equal(table["id"], np.arange(50))


def test_empty_parquet(sample):
    _, columns = sample
    table = pq.read_table(io.BytesIO(write("parquet", [], columns)))
    assert table.num_rows == 0 and table.column_names == [c.name for c in columns]

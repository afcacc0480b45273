"""FITS, CSV/TSV and VOTable sources; inference; clear errors for bad files."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.dataset as pads
import pyarrow.parquet as pq
import pytest
from astropy.io import fits
from astropy.table import Table as ATable

from sciportal.descriptors import load
from sciportal.errors import IngestError
from sciportal.metadata.store import MetadataStore
from sciportal.store.publish import ingest_file, publish
from tests.store.store_synth import COLUMNS_YAML, source_table, write_descriptor


def _read(storage: str | Path) -> pa.Table:
    ds = pads.dataset(str(Path(storage) / "dataset"), format="parquet", exclude_invalid_files=True)
    return ds.to_table()


def _fits_file(path: Path, n: int = 2500) -> None:
    rng = np.random.default_rng(5)
    ra = rng.uniform(0, 360, n)
    dec = np.degrees(np.arcsin(rng.uniform(-1, 1, n)))
    nullable = rng.integers(0, 1000, n).astype(np.int32)
    nullable[::7] = -999
    raw_scaled = rng.integers(-3000, 3000, n).astype(np.int16)
    cols = [
        fits.Column("OBJ_ID", "K", array=np.arange(n, dtype=np.int64)),
        fits.Column("RA", "D", unit="deg", array=ra),
        fits.Column("DEC", "D", unit="deg", array=dec),
        fits.Column("NOBS", "J", null=-999, array=nullable),
        fits.Column("FLUX", "I", unit="mJy", array=raw_scaled),
        fits.Column("IS_STAR", "L", array=rng.integers(0, 2, n).astype(bool)),
        fits.Column("TILE", "10A", array=np.array([f"T{i % 13:03d}" for i in range(n)])),
        fits.Column("MAG_APER", "3E", unit="mag", array=rng.normal(20, 1, (n, 3)).astype("f4")),
    ]
    hdu = fits.BinTableHDU.from_columns(cols)
    hdu.header["TUCD1"] = "meta.id;meta.main"
    hdu.header["TUCD4"] = "meta.number"
    hdu.header["TCOMM5"] = "Aperture flux"
    hdu.writeto(path)
    # a scaled column (TSCAL/TZERO) added to the header only: stored values stay raw
    fits.setval(path, "TSCAL5", value=0.01, ext=1, after="TUNIT5")
    fits.setval(path, "TZERO5", value=100.0, ext=1, after="TSCAL5")


def test_fits_ingest_with_inference(tmp_path: Path) -> None:
    src = tmp_path / "objects.fits"
    _fits_file(src)
    st = MetadataStore(tmp_path / "m.sqlite")
    rd = ingest_file(src, tmp_path, st, schema="mine")
    assert rd == tmp_path / "rd" / "mine.objects.yaml"
    desc = load(rd, tmp_path)  # the written descriptor is valid and editable
    t = st.get_table("mine.objects")
    assert t is not None and t.positional and (t.ra_column, t.dec_column) == ("ra", "dec")
    assert t.column("ra").unit == "deg" and t.column("ra").ucd == "pos.eq.ra;meta.main"
    assert t.column("obj_id").ucd == "meta.id;meta.main"
    assert t.column("flux").unit == "mJy" and t.column("flux").description == "Aperture flux"
    assert t.column("mag_aper").arraysize == "3" and t.column("tile").datatype == "char"
    assert [m.source for m in desc.tables[0].mappings][:2] == ["OBJ_ID", "RA"]
    got = _read(t.storage).sort_by("obj_id")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ref = ATable.read(src, hdu=1, mask_invalid=True)
    assert got.num_rows == len(ref) == t.nrows
    np.testing.assert_array_equal(got["ra"].to_numpy(), np.asarray(ref["RA"]))
    np.testing.assert_allclose(got["flux"].to_numpy(), np.asarray(ref["FLUX"]), rtol=1e-6)
    nobs = got["nobs"]
    assert nobs.null_count == int(np.sum(np.arange(len(ref)) % 7 == 0))
    valid = np.arange(len(ref)) % 7 != 0
    np.testing.assert_array_equal(
        nobs.to_numpy(zero_copy_only=False)[valid], np.ma.getdata(ref["NOBS"])[valid]
    )
    assert got["is_star"].to_pylist() == [bool(x) for x in ref["IS_STAR"]]
    assert got["tile"].to_pylist()[:2] == ["T000", "T001"]
    np.testing.assert_array_equal(
        np.stack(got["mag_aper"].to_numpy(zero_copy_only=False)), np.asarray(ref["MAG_APER"])
    )


def test_truncated_and_corrupt_files(tmp_path: Path) -> None:
    src = tmp_path / "objects.fits"
    _fits_file(src)
    data = src.read_bytes()
    src.write_bytes(data[: len(data) // 2])
    st = MetadataStore(tmp_path / "m.sqlite")
    with pytest.raises(IngestError, match=r"objects\.fits: file is truncated"):
        ingest_file(src, tmp_path, st)
    bad = tmp_path / "junk.parquet"
    bad.write_bytes(b"PAR1" + b"\0" * 100)
    with pytest.raises(IngestError, match=r"junk\.parquet: not a readable Parquet"):
        ingest_file(bad, tmp_path, st)
    assert st.list_tables() == []


def _csv_descriptor(home: Path, pattern: str, fmt: str = "") -> Path:
    fmt_line = f"\n      format: {fmt}" if fmt else ""
    return write_descriptor(
        home,
        "csv",
        f"""\
schema: csvs
title: CSV
tables:
  - name: main
    position: {{ra: ra, dec: dec}}
    source:
      paths: ["{pattern}"]{fmt_line}
    columns:
{COLUMNS_YAML}""",
    )


@pytest.mark.parametrize("sep", [",", "\t"])
def test_csv_and_tsv(tmp_path: Path, sep: str) -> None:
    ext = "csv" if sep == "," else "tsv"
    for i in range(2):
        t = source_table(1500, i, 1500 * i).to_pandas()
        t.to_csv(tmp_path / f"s{i}.{ext}", sep=sep, index=False)
    st = MetadataStore(tmp_path / "m.sqlite")
    rep = publish(_csv_descriptor(tmp_path, f"../s*.{ext}"), tmp_path, st).tables[0]
    got = _read(rep.storage).sort_by("id")
    ref = pa.concat_tables([source_table(1500, i, 1500 * i) for i in range(2)])
    assert got["id"].to_pylist() == ref["id"].to_pylist()
    np.testing.assert_allclose(got["dec"].to_numpy(), ref["dec"].to_numpy())
    assert got["band"].to_pylist() == ref["band"].to_pylist()
    assert got.schema.field("flag").type == pa.int16()


def test_csv_bad_value_names_file_and_row(tmp_path: Path) -> None:
    t = source_table(200, 1).to_pandas()
    t["flag"] = t["flag"].astype(object)
    t.loc[57, "flag"] = "oops"
    t.to_csv(tmp_path / "s.csv", index=False)
    st = MetadataStore(tmp_path / "m.sqlite")
    with pytest.raises(IngestError, match=r"s\.csv.*oops"):
        publish(_csv_descriptor(tmp_path, "../s.csv"), tmp_path, st)


def test_inconsistent_types_across_files(tmp_path: Path) -> None:
    pq.write_table(source_table(100, 1), tmp_path / "a.parquet")
    t = source_table(100, 2, 100)
    t = t.set_column(4, "flag", pa.array(["x"] * 100))
    pq.write_table(t, tmp_path / "b.parquet")
    st = MetadataStore(tmp_path / "m.sqlite")
    with pytest.raises(
        IngestError, match=r"b\.parquet: row 1, column 'flag': cannot convert string"
    ):
        publish(_csv_descriptor(tmp_path, "../*.parquet"), tmp_path, st)
    assert st.list_tables() == []


def test_votable_ingest(tmp_path: Path) -> None:
    t = ATable(source_table(300, 3).to_pydict())
    t["ra"].unit = "deg"
    t["dec"].unit = "deg"
    t["mag_g"].unit = "mag"
    t["mag_g"].description = "g magnitude"
    t["dec"].meta["ucd"] = "pos.eq.dec"
    src = tmp_path / "list.vot"
    t.write(src, format="votable")
    st = MetadataStore(tmp_path / "m.sqlite")
    ingest_file(src, tmp_path, st)
    tab = st.get_table("user.list")
    assert tab is not None and tab.positional and tab.nrows == 300
    assert tab.column("mag_g").unit == "mag" and tab.column("mag_g").description == "g magnitude"
    got = _read(tab.storage).sort_by("id")
    np.testing.assert_allclose(got["ra"].to_numpy(), np.asarray(t["ra"]))
    assert got["band"].to_pylist() == list(t["band"])


def test_fits_reader_remaps_in_chunks(tmp_path: Path) -> None:
    from sciportal.store.readers import FitsReader

    src = tmp_path / "objects.fits"
    _fits_file(src, n=1000)
    whole = pa.Table.from_batches(list(FitsReader(src).batches(None, 1000)))
    reader = FitsReader(src)
    reader.remap_bytes = 1  # reopen the map before every chunk
    chunked = pa.Table.from_batches(list(reader.batches(["OBJ_ID", "NOBS", "FLUX"], 64)))
    assert chunked.equals(whole.select(["OBJ_ID", "NOBS", "FLUX"]))

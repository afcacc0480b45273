"""Publishing Parquet sources into HATS catalogs that hats/lsdb open as they are."""

from __future__ import annotations

from pathlib import Path

import healpy
import numpy as np
import pyarrow.dataset as pads
import pyarrow.parquet as pq
import pytest
from astropy.coordinates import SkyCoord

from sciportal.errors import IngestError
from sciportal.healpix import SPATIAL_INDEX_COLUMN, HealpixPixel
from sciportal.metadata.store import MetadataStore
from sciportal.store.publish import cleanup_versions, publish, unpublish
from tests.store.store_synth import COLUMNS_YAML, write_descriptor


def _read_all(root: Path):
    return pads.dataset(
        str(root / "dataset"), format="parquet", exclude_invalid_files=True
    ).to_table()


def test_publish_positional_catalog(parquet_home: Path) -> None:
    st = MetadataStore(parquet_home / "meta.sqlite")
    report = publish(parquet_home / "rd" / "demo.yaml", parquet_home, st)
    (tr,) = report.tables
    assert tr.nrows == 9000 and tr.skipped == 0 and tr.version == 1
    root = tr.storage
    assert root == parquet_home / "catalogs" / "demo" / "main" / "v1"
    table = st.get_table("demo.main")
    assert table is not None and table.storage == str(root) and table.nrows == 9000
    assert table.column("mag_g").unit == "mag"

    import hats

    cat = hats.read_hats(root)
    pixels = [HealpixPixel(p.order, p.pixel) for p in cat.get_healpix_pixels()]
    assert len(pixels) == tr.partitions > 1
    assert cat.catalog_info.total_rows == 9000
    assert cat.catalog_info.ra_column == "ra"
    total = 0
    for p in pixels:
        f = pq.ParquetFile(p.path(root))
        t = f.read()
        total += t.num_rows
        assert t.num_rows <= 1000
        assert t.schema.names[0] == SPATIAL_INDEX_COLUMN
        hp = t.column(SPATIAL_INDEX_COLUMN).to_numpy()
        assert np.all(np.diff(hp) >= 0)  # sorted inside the partition
        lo, hi = p.index_range()
        assert hp.min() >= lo and hp.max() < hi
        # independent oracle for the index: healpy at order 29
        ref = healpy.ang2pix(
            2**29, t.column("ra").to_numpy(), t.column("dec").to_numpy(), nest=True, lonlat=True
        )
        assert np.array_equal(hp, ref)
    assert total == 9000
    md = pq.read_metadata(root / "dataset" / "_metadata")
    assert md.num_rows == 9000
    field = pq.read_schema(root / "dataset" / "_common_metadata").field("mag_g")
    assert field.metadata[b"ucd"] == b"phot.mag;em.opt.B"


def test_lsdb_cone_search_matches_brute_force(parquet_home: Path) -> None:
    st = MetadataStore(parquet_home / "meta.sqlite")
    root = publish(parquet_home / "rd" / "demo.yaml", parquet_home, st).tables[0].storage
    import lsdb

    cat = lsdb.open_catalog(root)
    t = _read_all(root).to_pandas()
    coords = SkyCoord(t["ra"].to_numpy(), t["dec"].to_numpy(), unit="deg")
    for ra, dec, r in [(50.0, -30.0, 0.7), (200.0, 10.0, 20.0), (0.5, 89.0, 3.0)]:
        got = cat.cone_search(ra, dec, r * 3600).compute()
        sep = coords.separation(SkyCoord(ra, dec, unit="deg")).deg
        expected = set(t["id"][sep <= r])
        assert set(got["id"]) == expected
        assert len(expected) > 0


def test_spilling_gives_the_same_catalog(parquet_home: Path) -> None:
    st = MetadataStore(parquet_home / "meta.sqlite")
    a = publish(parquet_home / "rd" / "demo.yaml", parquet_home, st).tables[0]
    b = publish(parquet_home / "rd" / "demo.yaml", parquet_home, st, memory_budget=20_000).tables[0]
    assert b.version == 2
    ta, tb = _read_all(a.storage), _read_all(b.storage)
    assert ta.sort_by("id").equals(tb.sort_by("id"))
    files_a = sorted(p.relative_to(a.storage) for p in a.storage.rglob("*.parquet"))
    files_b = sorted(p.relative_to(b.storage) for p in b.storage.rglob("*.parquet"))
    assert files_a == files_b


def test_versions_cleanup_and_unpublish(parquet_home: Path) -> None:
    st = MetadataStore(parquet_home / "meta.sqlite")
    rd = parquet_home / "rd" / "demo.yaml"
    v1 = publish(rd, parquet_home, st).tables[0].storage
    v2 = publish(rd, parquet_home, st).tables[0].storage
    assert v1.exists() and v2.exists()  # old version kept for running queries
    t = st.get_table("demo.main")
    assert t is not None and t.version == 2 and t.storage == str(v2)
    assert cleanup_versions(st) == [v1]
    assert not v1.exists() and v2.exists()
    assert unpublish("demo", parquet_home, st) == ["demo.main"]
    assert st.get_table("demo.main") is None and st.list_schemas() == []
    assert not (parquet_home / "catalogs" / "demo").exists()


def test_failure_registers_nothing_and_leaves_no_files(parquet_home: Path) -> None:
    st = MetadataStore(parquet_home / "meta.sqlite")
    rd = write_descriptor(
        parquet_home,
        "two",
        f"""\
schema: two
title: Two tables
tables:
  - name: good
    position: {{ra: ra, dec: dec}}
    source: {{paths: ["../sources/part-*.parquet"]}}
    columns:
{COLUMNS_YAML}
  - name: bad
    source: {{paths: ["../sources/part-*.parquet"]}}
    columns:
      - {{name: id, datatype: long}}
      - {{name: zz, datatype: double, from: no_such_column}}
""",
    )
    with pytest.raises(IngestError) as err:
        publish(rd, parquet_home, st)
    msg = str(err.value)
    assert "part-0.parquet" in msg and "no_such_column" in msg
    assert st.list_tables() == [] and st.list_schemas() == []
    leftovers = [p for p in (parquet_home / "catalogs" / "two").rglob("*") if p.is_file()]
    assert leftovers == []


def test_bad_rows_reject_and_skip(parquet_home: Path) -> None:
    import pyarrow as pa

    src = parquet_home / "sources" / "part-1.parquet"
    t = pq.read_table(src)
    dec = t.column("dec").to_numpy().copy()
    dec[[17, 40]] = [np.nan, 95.0]
    pq.write_table(t.set_column(2, "dec", pa.array(dec)), src)
    st = MetadataStore(parquet_home / "meta.sqlite")
    rd = parquet_home / "rd" / "demo.yaml"
    with pytest.raises(IngestError, match=r"part-1\.parquet: row 18: column 'dec'"):
        publish(rd, parquet_home, st)
    assert st.list_tables() == []
    rd.write_text(
        rd.read_text().replace("partition_rows: 1000", "partition_rows: 1000\n    bad_rows: skip")
    )
    rep = publish(rd, parquet_home, st).tables[0]
    assert rep.nrows == 8998 and rep.skipped == 2
    assert "row 18" in rep.bad_row_examples[0]

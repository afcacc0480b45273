"""Cone searches read only the HEALPix partitions (and row groups) they need.

The real path: a HATS catalog published by the store, the engine the server
builds, ADQL translated with the engine's pruning hook, run by ``engine.run``.
The evidence of what was read is DuckDB's own profile (files opened, row
groups and rows scanned); results are checked against astropy.
"""

from __future__ import annotations

import re
from pathlib import Path

import healpy
import numpy as np
import pyarrow.dataset as pads
import pytest
from astropy.coordinates import SkyCoord

from sciportal.healpix import HealpixPixel, coverage_depth
from sciportal.metadata.store import MetadataStore
from sciportal.store.publish import publish
from tests.engines.engine_util import run_profiled, scans, server_engine, translate

ROW_GROUP_ROWS = 50


@pytest.fixture
def catalog(parquet_home: Path):
    """demo.main as ~40 partitions of <= 300 rows, row groups of 50 rows."""
    rd = parquet_home / "rd" / "demo.yaml"
    rd.write_text(rd.read_text().replace("partition_rows: 1000", "partition_rows: 300"))
    st = MetadataStore(parquet_home / "meta.sqlite")
    report = publish(rd, parquet_home, st, row_group_rows=ROW_GROUP_ROWS).tables[0]
    data = pads.dataset(str(report.storage / "dataset"), format="parquet").to_table()
    return st, report.storage, data


def _hook_files(sql: str) -> set[str]:
    """The files the engine's pruning hook put in the translated SQL."""
    lists = re.findall(r"read_parquet\(\[(.*?)\]\)", sql)
    assert lists, sql
    return {f for text in lists for f in re.findall(r"'([^']*)'", text)}


def _files_read(profile: dict, hook_files: set[str]) -> tuple[int, int]:
    """Check DuckDB read exactly the hook's files; (row groups, rows) it scanned."""
    opened = groups = rows = 0
    for op in scans(profile):
        info = op["extra_info"]
        opened += int(info["Total Files Read"])
        # the profile names the first few files only
        named = {f for f in info.get("Filename(s)", "").replace(",", " ").split() if f != "..."}
        assert named and named <= hook_files, (named, hook_files)
        groups += int(op["row_groups_scanned"])
        rows += int(op["rows_scanned"])
    assert opened == len(hook_files)
    return groups, rows


def _partition(path: str) -> HealpixPixel:
    p = Path(path)
    return HealpixPixel(int(p.parent.parent.name.split("=")[1]), int(p.stem.split("=")[1]))


def _overlapping(pixels: list[HealpixPixel], ra: float, dec: float, r: float) -> set:
    """Partitions whose cell meets a disc (healpy, inclusive: an upper bound)."""
    vec = healpy.ang2vec(ra, dec, lonlat=True)
    out = set()
    for order in {p.order for p in pixels}:
        hit = set(healpy.query_disc(2**order, vec, np.radians(r), inclusive=True, nest=True))
        out |= {p for p in pixels if p.order == order and p.pixel in hit}
    return out


@pytest.mark.parametrize(
    ("ra", "dec", "r"),
    [(50.0, -30.0, 0.2), (50.5, -29.5, 1.0), (200.0, 10.0, 3.0), (359.9, 0.5, 2.0), (10, 89, 4)],
)
def test_cone_reads_only_needed_partitions(
    catalog, tmp_path: Path, ra: float, dec: float, r: float
) -> None:
    st, root, data = catalog
    pixels = [_partition(str(p)) for p in root.glob("dataset/Norder=*/Dir=*/Npix=*.parquet")]
    assert len(pixels) >= 30
    engine = server_engine(st)
    query = f"SELECT id FROM demo.main WHERE 1 = CONTAINS(POINT(ra, dec), CIRCLE({ra}, {dec}, {r}))"
    sql = translate(engine, st, query).sql
    got, profile = run_profiled(engine, sql, tmp_path / "p.json")

    coords = SkyCoord(data["ra"].to_numpy(), data["dec"].to_numpy(), unit="deg")
    inside = coords.separation(SkyCoord(ra, dec, unit="deg")).deg <= r
    want = data["id"].to_numpy()[inside]
    assert sorted(got["id"].to_pylist()) == sorted(want.tolist())
    assert len(want) > 0

    files = _hook_files(sql)
    groups, rows = _files_read(profile, files)
    read = {_partition(f) for f in files}
    hp = data["_healpix_29"].to_numpy()[inside]
    needed = {p for p in pixels if ((hp >= p.index_range()[0]) & (hp < p.index_range()[1])).any()}
    # the engine covers the cone with cells of ~r/2..r (cell size 58.6 deg / 2**depth):
    # it may read partitions up to about one such cell beyond the cone, no further
    margin = 2 * 58.6 / 2 ** coverage_depth(r)
    assert needed <= read <= _overlapping(pixels, ra, dec, r + margin)
    assert len(read) < len(pixels) / 3
    assert all(Path(f).is_relative_to(root) for f in files)  # the live version's files
    # within the partitions, _healpix_29 statistics skip row groups
    hp_all = data["_healpix_29"].to_numpy()
    in_files = sum(
        int(((hp_all >= p.index_range()[0]) & (hp_all < p.index_range()[1])).sum()) for p in read
    )
    assert rows <= in_files and rows < len(data)
    if r <= 0.2:
        assert rows < in_files  # a small cone skips row groups of the partition it hits
    assert groups * ROW_GROUP_ROWS >= rows


def test_unconstrained_query_reads_every_partition(catalog, tmp_path: Path) -> None:
    """The positive control: the profile shows every file when nothing prunes."""
    st, root, data = catalog
    engine = server_engine(st)
    query = "SELECT id FROM demo.main WHERE mag_g > 0"
    sql = translate(engine, st, query).sql
    assert "read_parquet" not in sql  # the view: every file
    got, profile = run_profiled(engine, sql, tmp_path / "p.json")
    assert got.num_rows == len(data)
    every = {str(p) for p in root.glob("dataset/Norder=*/Dir=*/Npix=*.parquet")}
    _, rows = _files_read(profile, every)
    assert rows == len(data)

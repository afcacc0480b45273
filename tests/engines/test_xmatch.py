"""An uploaded position list cross-matched with a published catalog: a hash join, not a loop.

The real path: a HATS catalog published by the store, the engine the server
builds, the upload registered for the query as the TAP service does it, ADQL
translated with the engine's hook. The evidence is DuckDB's own plan and
profile (the join operator, its condition, rows through each operator);
results are checked against astropy's ``search_around_sky``.
"""

from __future__ import annotations

import json
import re
import time
from collections import Counter
from pathlib import Path
from typing import Any

import astropy.units as u
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.dataset as pads
import pyarrow.parquet as pq
import pytest
from astropy.coordinates import SkyCoord, search_around_sky

from sciportal import adql
from sciportal.engines.duckdb_engine import DuckDBEngine
from sciportal.metadata.model import Column, Table
from sciportal.metadata.store import MetadataStore
from sciportal.services.tap import Catalog
from sciportal.services.uploads import Upload
from sciportal.store.publish import publish
from tests.engines.engine_util import server_engine
from tests.store.store_synth import COLUMNS_YAML, source_table, write_descriptor

N_CATALOG = 100_000
N_UPLOAD = 1_000
UPLOAD_SQL_NAME = "__upload_test_mylist"
JOINS = ("HASH_JOIN", "NESTED_LOOP_JOIN", "BLOCKWISE_NL_JOIN", "PIECEWISE_MERGE_JOIN", "IE_JOIN")
LOOPS = ("NESTED_LOOP_JOIN", "BLOCKWISE_NL_JOIN", "CROSS_PRODUCT", "PIECEWISE_MERGE_JOIN")


@pytest.fixture(scope="module")
def catalog(tmp_path_factory: pytest.TempPathFactory) -> tuple[MetadataStore, pa.Table]:
    """demo.coadd: 100,000 rows (40% in a 1-degree blob), published as HATS."""
    home = tmp_path_factory.mktemp("xmatch_home")
    (home / "sources").mkdir()
    pq.write_table(source_table(N_CATALOG, 11), home / "sources" / "coadd.parquet")
    rd = write_descriptor(
        home,
        "demo",
        f"""\
schema: demo
title: Demo survey
description: Synthetic objects
tables:
  - name: coadd
    position: {{ra: ra, dec: dec}}
    partition_rows: 20000
    source:
      paths: ["{{home}}/sources/coadd.parquet"]
    columns:
{COLUMNS_YAML}""",
    )
    st = MetadataStore(home / "meta.sqlite")
    report = publish(rd, home, st).tables[0]
    data = pads.dataset(str(report.storage / "dataset"), format="parquet").to_table()
    return st, data


@pytest.fixture(scope="module")
def upload(catalog: tuple[MetadataStore, pa.Table]) -> Upload:
    """1,000 positions: most within a few arcsec of a catalog object, some repeated."""
    _, data = catalog
    rng = np.random.default_rng(5)
    pick = rng.choice(data.num_rows, 700, replace=False)
    c = SkyCoord(data["ra"].to_numpy()[pick], data["dec"].to_numpy()[pick], unit="deg")
    near = c.directional_offset_by(
        rng.uniform(0, 360, 700) * u.deg, rng.uniform(0, 8, 700) * u.arcsec
    )
    ra = np.concatenate([near.ra.deg, rng.uniform(0, 360, 250), near.ra.deg[:50]])
    dec = np.concatenate(
        [near.dec.deg, np.degrees(np.arcsin(rng.uniform(-1, 1, 250))), near.dec.deg[:50]]
    )
    assert len(ra) == N_UPLOAD
    table = Table(
        "TAP_UPLOAD.mylist",
        (Column("uid", "long"), Column("ra", "double"), Column("dec", "double")),
    )
    rows = pa.table({"uid": np.arange(N_UPLOAD, dtype=np.int64), "ra": ra, "dec": dec})
    return Upload(table=table, data=rows)


def _translate(engine: DuckDBEngine, st: MetadataStore, up: Upload, query: str) -> str:
    """ADQL -> SQL as ``TapService.prepare`` does it, with one upload."""
    catalog = Catalog(st.list_tables(), {"mylist": up})
    return adql.translate(
        query,
        catalog,
        "duckdb",
        uploads={"mylist": up.table},
        table_sql=engine.table_sql({"tap_upload.mylist": UPLOAD_SQL_NAME}),
    ).sql


def _operators(profile: dict[str, Any]) -> list[dict[str, Any]]:
    """Every operator of a DuckDB JSON profile."""
    out = []
    todo = list(profile.get("operator", profile.get("children", [])))
    while todo:
        op = todo.pop()
        out.append(op)
        todo.extend(op.get("children", []))
    return out


def _type(op: dict[str, Any]) -> str:
    return str(op.get("type", op.get("operator_type")))


def _rows(op: dict[str, Any]) -> int:
    """Rows an operator produced."""
    return int(op.get("intermediate_rows", op.get("operator_cardinality", 0)))


def _run_profiled(
    engine: DuckDBEngine, sql: str, up: Upload, path: Path
) -> tuple[pa.Table, list[dict[str, Any]], float]:
    setup = f"SET enable_profiling = 'json'; SET profiling_output = '{path}'; "
    t0 = time.perf_counter()
    result = engine.run(setup + sql, uploads={UPLOAD_SQL_NAME: up.data})
    assert result.schema is not None
    table = pa.Table.from_batches(list(result), schema=result.schema)
    elapsed = time.perf_counter() - t0
    return table, _operators(json.loads(path.read_text())), elapsed


def _oracle(up: Upload, data: pa.Table, r_deg: float) -> Counter:
    uc = SkyCoord(up.data["ra"].to_numpy(), up.data["dec"].to_numpy(), unit="deg")
    cc = SkyCoord(data["ra"].to_numpy(), data["dec"].to_numpy(), unit="deg")
    i, j, _, _ = search_around_sky(uc, cc, r_deg * u.deg)
    uid, cid = up.data["uid"].to_numpy()[i], data["id"].to_numpy()[j]
    return Counter(zip(uid.tolist(), cid.tolist(), strict=True))


@pytest.mark.parametrize(
    "query",
    [
        "SELECT u.uid, c.id FROM TAP_UPLOAD.mylist AS u JOIN demo.coadd AS c "
        "ON 1 = CONTAINS(POINT(c.ra, c.dec), CIRCLE(u.ra, u.dec, 5/3600.))",
        "SELECT u.uid, c.id FROM TAP_UPLOAD.mylist AS u, demo.coadd AS c "
        "WHERE DISTANCE(POINT(c.ra, c.dec), POINT(u.ra, u.dec)) < 5/3600.",
    ],
)
def test_upload_crossmatch_is_a_hash_join(
    catalog: tuple[MetadataStore, pa.Table], upload: Upload, tmp_path: Path, query: str
) -> None:
    st, data = catalog
    engine = server_engine(st)
    sql = _translate(engine, st, upload, query)
    got, ops, elapsed = _run_profiled(engine, sql, upload, tmp_path / "p.json")

    want = _oracle(upload, data, 5 / 3600)
    assert Counter(zip(got["uid"].to_pylist(), got["id"].to_pylist(), strict=True)) == want
    assert sum(want.values()) > 400

    # the plan: one hash join keyed on the HEALPix cell, the exact test as its residual
    types = [_type(op) for op in ops]
    assert not [t for t in types if t in LOOPS], types
    joins = [op for op in ops if _type(op) in JOINS]
    assert [_type(op) for op in joins] == ["HASH_JOIN"], types
    conditions = json.dumps(joins[0]["extra_info"])
    assert "_xmatch_cell" in conditions and "_healpix_29" in conditions, conditions
    # linear work: each upload row becomes at most 9 cells, each catalog row is read
    # once, and what leaves the join is the matches (no operator near 1e8 rows)
    unnest = [op for op in ops if _type(op) == "UNNEST"]
    assert unnest and N_UPLOAD <= _rows(unnest[0]) <= 9 * N_UPLOAD, types
    assert _rows(joins[0]) == got.num_rows
    assert max(_rows(op) for op in ops) <= N_CATALOG
    assert sum(int(op.get("rows_scanned", 0)) for op in ops) <= N_CATALOG + N_UPLOAD
    print(
        f"\n{N_UPLOAD} x {N_CATALOG} cross-match (5 arcsec): {elapsed:.3f} s, {got.num_rows} rows"
    )


def test_explain_shows_hash_join(
    catalog: tuple[MetadataStore, pa.Table], upload: Upload, tmp_path: Path
) -> None:
    """EXPLAIN of a self-join of the catalog (both sides positional): a hash join too."""
    st, _ = catalog
    engine = server_engine(st)
    sql = _translate(
        engine,
        st,
        upload,
        "SELECT a.id, b.id FROM demo.coadd AS a JOIN demo.coadd AS b "
        "ON DISTANCE(a.ra, a.dec, b.ra, b.dec) < 1/3600. AND a.id <> b.id",
    )
    result = engine.run("EXPLAIN " + sql)
    plan = " ".join(str(v) for b in result for r in b.to_pylist() for v in r.values()).upper()
    assert "HASH JOIN" in plan and "_XMATCH_CELL" in plan, plan
    assert not [w for w in ("NESTED LOOP", "NL JOIN", "CROSS PRODUCT") if w in plan], plan


# ----- a catalog pruned to the cells of an upload's circles ----------------------

R_PRUNE = 0.05  # degrees
#: dense blobs (centre, radius in degrees) on a uniform sky: a mid-latitude one,
#: both poles, one across RA 0/360
BLOBS = ((120.0, 40.0, 0.5), (0.0, 90.0, 0.5), (33.0, -90.0, 0.5), (0.0, 10.0, 0.5))


@pytest.fixture(scope="module")
def sky_catalog(tmp_path_factory: pytest.TempPathFactory) -> tuple[MetadataStore, pa.Table, int]:
    """demo.sky: 24,000 uniform rows + 4 blobs of 1,500, in partitions of <= 400 rows."""
    home = tmp_path_factory.mktemp("xmatch_prune_home")
    (home / "sources").mkdir()
    rng = np.random.default_rng(17)
    ras = [rng.uniform(0, 360, 24_000)]
    decs = [np.degrees(np.arcsin(rng.uniform(-1, 1, 24_000)))]
    for ra0, dec0, size in BLOBS:
        c = SkyCoord(ra0, dec0, unit="deg").directional_offset_by(
            rng.uniform(0, 360, 1500) * u.deg, np.sqrt(rng.uniform(0, 1, 1500)) * size * u.deg
        )
        ras.append(c.ra.deg)
        decs.append(c.dec.deg)
    ra, dec = np.concatenate(ras), np.concatenate(decs)
    base = source_table(len(ra), 3)
    src = base.set_column(1, "ra", pa.array(ra)).set_column(2, "dec", pa.array(dec))
    pq.write_table(src, home / "sources" / "sky.parquet")
    rd = write_descriptor(
        home,
        "demo",
        f"""\
schema: demo
title: Demo survey
description: Synthetic objects
tables:
  - name: sky
    position: {{ra: ra, dec: dec}}
    partition_rows: 400
    source:
      paths: ["{{home}}/sources/sky.parquet"]
    columns:
{COLUMNS_YAML}""",
    )
    st = MetadataStore(home / "meta.sqlite")
    report = publish(rd, home, st).tables[0]
    data = pads.dataset(str(report.storage / "dataset"), format="parquet").to_table()
    n_files = len(list((report.storage / "dataset").rglob("*.parquet")))
    assert n_files >= 60, n_files
    return st, data, n_files


def _positions(ra: list[float | None], dec: list[float | None]) -> Upload:
    table = Table(
        "TAP_UPLOAD.mylist",
        (Column("uid", "long"), Column("ra", "double"), Column("dec", "double")),
    )
    rows = pa.table(
        {
            "uid": np.arange(len(ra), dtype=np.int64),
            "ra": pa.array(ra, pa.float64()),
            "dec": pa.array(dec, pa.float64()),
        }
    )
    return Upload(table=table, data=rows)


def _around(rng: np.random.Generator, ra0: float, dec0: float, spread: float, k: int) -> Upload:
    c = SkyCoord(ra0, dec0, unit="deg").directional_offset_by(
        rng.uniform(0, 360, k) * u.deg, rng.uniform(0, spread, k) * u.deg
    )
    return _positions(c.ra.deg.tolist(), c.dec.deg.tolist())


def _translate_up(
    engine: DuckDBEngine, st: MetadataStore, up: Upload, query: str, prune: bool
) -> str:
    """As ``TapService.prepare`` translates (with the upload's rows when ``prune``)."""
    return adql.translate(
        query,
        Catalog(st.list_tables(), {"mylist": up}),
        "duckdb",
        uploads={"mylist": up.table},
        table_sql=engine.table_sql({"tap_upload.mylist": UPLOAD_SQL_NAME}),
        upload_data={"mylist": up.data} if prune else None,
    ).sql


def _files(sql: str) -> set[str] | None:
    """The files the pruning hook listed (None: the whole table)."""
    lists = re.findall(r"read_parquet\(\[(.*?)\]\)", sql)
    if not lists:
        return None
    return {f for text in lists for f in re.findall(r"'([^']*)'", text)}


def _pairs(engine: DuckDBEngine, sql: str, up: Upload) -> Counter:
    result = engine.run(sql, uploads={UPLOAD_SQL_NAME: up.data})
    assert result.schema is not None
    got = pa.Table.from_batches(list(result), schema=result.schema)
    return Counter(zip(got["uid"].to_pylist(), got["id"].to_pylist(), strict=True))


def _oracle_valid(up: Upload, data: pa.Table, r_deg: float) -> Counter:
    ok = up.data.filter(pc.and_(pc.is_valid(up.data["ra"]), pc.is_valid(up.data["dec"])))
    return _oracle(Upload(up.table, ok), data, r_deg)


XMATCH_QUERIES = (
    "SELECT u.uid, c.id FROM TAP_UPLOAD.mylist AS u JOIN demo.sky AS c "
    f"ON 1 = CONTAINS(POINT(c.ra, c.dec), CIRCLE(u.ra, u.dec, {R_PRUNE}))",
    "SELECT u.uid, c.id FROM TAP_UPLOAD.mylist AS u, demo.sky AS c "
    f"WHERE DISTANCE(POINT(c.ra, c.dec), POINT(u.ra, u.dec)) < {R_PRUNE}",
)


@pytest.mark.parametrize("query", XMATCH_QUERIES)
def test_clustered_upload_reads_few_partitions(
    sky_catalog: tuple[MetadataStore, pa.Table, int], query: str, tmp_path: Path
) -> None:
    st, data, n_files = sky_catalog
    engine = server_engine(st)
    up = _around(np.random.default_rng(1), 120.0, 40.0, 0.4, 10)
    sql = _translate_up(engine, st, up, query, prune=True)
    files = _files(sql)
    assert files is not None and 1 <= len(files) <= 6 < n_files, (files, n_files)
    plain = _translate_up(engine, st, up, query, prune=False)
    assert _files(plain) is None
    want = _oracle_valid(up, data, R_PRUNE)
    assert sum(want.values()) > 50
    assert _pairs(engine, sql, up) == want == _pairs(engine, plain, up)
    # DuckDB opened only the listed files
    _, ops, _ = _run_profiled(engine, sql, up, tmp_path / "p.json")
    read = [op for op in ops if op.get("extra_info", {}).get("Function") == "READ_PARQUET"]
    assert read and sum(int(op["extra_info"]["Total Files Read"]) for op in read) == len(files)


@pytest.mark.parametrize(
    "where",
    ["north pole", "south pole", "ra 0/360", "whole sky"],
)
def test_pruned_crossmatch_is_exact(
    sky_catalog: tuple[MetadataStore, pa.Table, int], where: str
) -> None:
    st, data, n_files = sky_catalog
    engine = server_engine(st)
    rng = np.random.default_rng(7)
    ra: list[float | None]
    dec: list[float | None]
    if where == "north pole":
        ra, dec = [0.0, 90.0, 180.0, 270.0, 45.0, 359.9], [89.99, 89.95, 89.9, 89.7, 90.0, 89.6]
    elif where == "south pole":
        ra, dec = [33.0, 213.0, 300.0, 120.0, 0.0], [-90.0, -89.9, -89.8, -89.95, -89.6]
    elif where == "ra 0/360":
        ra = [359.999, 0.0005, 359.95, 0.04, 360.0, 0.0, 359.7]
        dec = [10.0, 10.02, 9.9, 10.1, 10.3, 9.7, 10.05]
    else:
        ra = rng.uniform(0, 360, 400).tolist()
        dec = np.degrees(np.arcsin(rng.uniform(-1, 1, 400))).tolist()
    ra, dec = [*ra, None, 1.0], [*dec, 5.0, None]  # NULL positions match nothing
    up = _positions(ra, dec)
    want = _oracle_valid(up, data, R_PRUNE)
    assert where == "whole sky" or sum(want.values()) > 20
    for query in XMATCH_QUERIES:
        sql = _translate_up(engine, st, up, query, prune=True)
        files = _files(sql)
        if where != "whole sky":
            assert files is not None and len(files) < n_files / 4, (where, files)
        assert _pairs(engine, sql, up) == want, where


def test_catalog_preserved_is_not_pruned(
    sky_catalog: tuple[MetadataStore, pa.Table, int],
) -> None:
    """c LEFT JOIN upload: every catalog row is in the result, so all are read."""
    st, data, _ = sky_catalog
    engine = server_engine(st)
    up = _around(np.random.default_rng(2), 120.0, 40.0, 0.4, 10)
    query = (
        "SELECT u.uid, c.id FROM demo.sky AS c LEFT JOIN TAP_UPLOAD.mylist AS u "
        f"ON 1 = CONTAINS(POINT(c.ra, c.dec), CIRCLE(u.ra, u.dec, {R_PRUNE}))"
    )
    sql = _translate_up(engine, st, up, query, prune=True)
    assert _files(sql) is None and "_healpix_29 >=" not in sql, sql
    got = _pairs(engine, sql, up)
    want = _oracle_valid(up, data, R_PRUNE)
    matched = {cid for _, cid in want}
    assert sum(got.values()) == sum(want.values()) + data.num_rows - len(matched)
    assert Counter({k: v for k, v in got.items() if k[0] is not None}) == want


def test_upload_preserved_stays_exact(
    sky_catalog: tuple[MetadataStore, pa.Table, int],
) -> None:
    """upload LEFT JOIN c: no cell join (upload rows may not repeat), NULL-extended rows kept."""
    st, data, _ = sky_catalog
    engine = server_engine(st)
    up = _positions([120.0, 120.1, 250.0, None], [40.0, 40.2, -60.0, 1.0])
    query = (
        "SELECT u.uid, c.id FROM TAP_UPLOAD.mylist AS u LEFT JOIN demo.sky AS c "
        f"ON 1 = CONTAINS(POINT(c.ra, c.dec), CIRCLE(u.ra, u.dec, {R_PRUNE}))"
    )
    sql = _translate_up(engine, st, up, query, prune=True)
    got = _pairs(engine, sql, up)
    want = _oracle_valid(up, data, R_PRUNE)
    unmatched = set(range(4)) - {uid for uid, _ in want}
    assert got == want + Counter({(uid, None): 1 for uid in unmatched})
    assert _pairs(engine, _translate_up(engine, st, up, query, prune=False), up) == got

"""An uploaded position list cross-matched with a published catalog: a hash join, not a loop.

The real path: a HATS catalog published by the store, the engine the server
builds, the upload registered for the query as the TAP service does it, ADQL
translated with the engine's hook. The evidence is DuckDB's own plan and
profile (the join operator, its condition, rows through each operator);
results are checked against astropy's ``search_around_sky``.
"""

from __future__ import annotations

import json
import time
from collections import Counter
from pathlib import Path
from typing import Any

import astropy.units as u
import numpy as np
import pyarrow as pa
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

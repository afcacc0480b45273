"""Top-N queries read only the row groups that can hold their rows (sciportal.adql.topn).

``SELECT TOP n ... ORDER BY c`` over one table gets ``c <= b`` from the row
groups' footer statistics. Checked on the real path (a HATS catalog published
by the store, the engine the server builds, the engine's hook): the rows are
those of a brute-force sort and of the same query without the bound, the
bound is left out wherever it would not be exact, and DuckDB's profile shows
how many rows were scanned with and without it.
"""

from __future__ import annotations

import math
import time
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.dataset as pads
import pyarrow.parquet as pq
import pytest

from sciportal import adql
from sciportal.adql.dialect_duckdb import DuckDBGenerator
from sciportal.adql.topn import TopN
from sciportal.engines.duckdb_engine import DuckDBEngine
from sciportal.metadata.model import Column, Table
from sciportal.metadata.store import MetadataStore
from sciportal.services.tap import Catalog
from sciportal.store.publish import publish
from tests.engines.engine_util import run_profiled, scans, server_engine

ROW_GROUP_ROWS = 50


@pytest.fixture
def catalog(parquet_home: Path) -> tuple[MetadataStore, pa.Table]:
    """demo.main as ~40 partitions in row groups of 50 rows; mag_g has NULLs and NaNs,
    flag (0..3, many ties) has NULLs."""
    rng = np.random.default_rng(7)
    for path in sorted((parquet_home / "sources").glob("*.parquet")):
        t = pq.read_table(path)
        mag = t["mag_g"].to_numpy(zero_copy_only=False).copy()
        mag[rng.random(len(mag)) < 0.03] = np.nan
        mag_null = rng.random(len(mag)) < 0.05
        flag_null = rng.random(len(mag)) < 0.05
        t = t.set_column(t.schema.get_field_index("mag_g"), "mag_g", pa.array(mag, mask=mag_null))
        flag = t["flag"].to_numpy(zero_copy_only=False)
        t = t.set_column(t.schema.get_field_index("flag"), "flag", pa.array(flag, mask=flag_null))
        pq.write_table(t, path)
    rd = parquet_home / "rd" / "demo.yaml"
    rd.write_text(rd.read_text().replace("partition_rows: 1000", "partition_rows: 300"))
    st = MetadataStore(parquet_home / "meta.sqlite")
    report = publish(rd, parquet_home, st, row_group_rows=ROW_GROUP_ROWS).tables[0]
    data = pads.dataset(str(report.storage / "dataset"), format="parquet").to_table()
    mag = data["mag_g"]
    assert mag.null_count > 0 and np.isnan(mag.to_numpy(zero_copy_only=False)).any()
    assert data["flag"].null_count > 0
    return st, data


def _sql(engine: DuckDBEngine, st: MetadataStore, query: str, bounded: bool = True) -> str:
    """The DuckDB SQL of ``query``; ``bounded=False``: the engine's hook without top-N."""
    hook = engine.table_sql({})
    if not bounded:

        def plain(table: Table, ranges: Any, /, topn: Any = None) -> str:
            return hook(table, ranges)

        return adql.translate(query, Catalog(st.list_tables(), {}), "duckdb", table_sql=plain).sql
    return adql.translate(query, Catalog(st.list_tables(), {}), "duckdb", table_sql=hook).sql


def _rows(engine: DuckDBEngine, sql: str) -> list[tuple[Any, ...]]:
    result = engine.run(sql)
    assert result.schema is not None
    table = pa.Table.from_batches(list(result), schema=result.schema)
    return [tuple(_norm(v) for v in row.values()) for row in table.to_pylist()]


def _norm(v: Any) -> Any:
    return "NaN" if isinstance(v, float) and math.isnan(v) else v


def _bounded(sql: str, column: str) -> bool:
    return f'WHERE "{column}" <=' in sql or f'WHERE "{column}" >=' in sql


def _brute(data: pa.Table, column: str, descending: bool) -> list[Any]:
    """``column``'s values in DuckDB's order: numbers, then NaN (first when descending), NULLs last."""
    vals = data[column].to_pylist()

    def key(v: Any) -> tuple[int, float]:
        if v is None:
            return (2, 0.0)
        if math.isnan(v):
            return (-1, 0.0) if descending else (1, 0.0)
        return (0, -v if descending else v)

    return [_norm(v) for v in sorted(vals, key=key)]


# (query, ordered column, descending, offset, whether the bound applies)
CASES = [
    ("SELECT TOP 37 id, mag_g FROM demo.main ORDER BY mag_g", "mag_g", False, 0, True),
    ("SELECT TOP 5 * FROM demo.main ORDER BY mag_g ASC, id", "mag_g", False, 0, True),
    (
        "SELECT TOP 40 id, mag_g FROM demo.main WHERE mag_g IS NOT NULL ORDER BY mag_g",
        "mag_g",
        False,
        0,
        True,
    ),
    ("SELECT TOP 20 id, mag_g FROM demo.main ORDER BY mag_g OFFSET 15", "mag_g", False, 15, True),
    ("SELECT TOP 12 id, mag_g AS m FROM demo.main ORDER BY m", "mag_g", False, 0, True),
    ("SELECT TOP 12 id, mag_g FROM demo.main ORDER BY 2", "mag_g", False, 0, True),
    ("SELECT TOP 60 id, flag FROM demo.main ORDER BY flag, id", "flag", False, 0, True),
    ("SELECT TOP 60 id, flag FROM demo.main ORDER BY flag DESC, id", "flag", True, 0, True),
    ("SELECT TOP 25 id FROM demo.main ORDER BY id DESC", "id", True, 0, True),
    ("SELECT TOP 25 id FROM demo.main ORDER BY id", "id", False, 0, True),
    # descending floats: NaN sorts first and statistics do not see it
    ("SELECT TOP 30 id, mag_g FROM demo.main ORDER BY mag_g DESC", "mag_g", True, 0, False),
    # more rows than row groups with statistics, more than the table
    ("SELECT TOP 500 id, mag_g FROM demo.main ORDER BY mag_g", "mag_g", False, 0, False),
    ("SELECT TOP 20000 id, mag_g FROM demo.main ORDER BY mag_g", "mag_g", False, 0, False),
    ("SELECT TOP 100 id FROM demo.main ORDER BY id OFFSET 90", "id", False, 90, True),
    ("SELECT TOP 100 id FROM demo.main ORDER BY id OFFSET 200", "id", False, 200, False),
]


@pytest.mark.parametrize(("query", "column", "descending", "offset", "applies"), CASES)
def test_topn_matches_brute_force(
    catalog: tuple[MetadataStore, pa.Table],
    query: str,
    column: str,
    descending: bool,
    offset: int,
    applies: bool,
) -> None:
    st, data = catalog
    engine = server_engine(st)
    sql = _sql(engine, st, query)
    assert _bounded(sql, column) == applies, sql
    got = _rows(engine, sql)
    unbounded = _rows(engine, _sql(engine, st, query, bounded=False))
    names = [c.name for c in adql.translate(query, Catalog(st.list_tables(), {})).columns]
    pos = names.index(column) if column in names else names.index("m")
    total = ", id" in query or column == "id"  # otherwise ties may pick other rows
    if total:
        assert got == unbounded
    assert [row[pos] for row in got] == [row[pos] for row in unbounded]
    top = int(query.split()[2])
    want = _brute(data, column, descending)
    if "IS NOT NULL" in query:
        want = [v for v in want if v is not None]
    want = want[offset : offset + top]
    assert [row[pos] for row in got] == want
    if ", id" in query:  # a total order: the very same rows
        ids = data["id"].to_pylist()
        order = sorted(
            range(len(ids)),
            key=lambda i: (_brute_key(data[column][i].as_py(), descending), ids[i]),
        )
        assert [row[0] for row in got] == [ids[i] for i in order[offset : offset + top]]


def _brute_key(v: Any, descending: bool) -> tuple[int, float]:
    if v is None:
        return (2, 0.0)
    if math.isnan(v):
        return (-1, 0.0) if descending else (1, 0.0)
    return (0, -v if descending else v)


@pytest.mark.parametrize(
    "query",
    [
        "SELECT TOP 10 id, mag_g FROM demo.main WHERE mag_g > 20 ORDER BY mag_g",
        "SELECT TOP 10 id, mag_g FROM demo.main WHERE flag = 1 ORDER BY mag_g",
        "SELECT TOP 10 id, mag_g FROM demo.main WHERE mag_g IS NULL ORDER BY mag_g",
        "SELECT TOP 10 id, mag_g FROM demo.main WHERE mag_g IS NOT NULL OR flag = 2 ORDER BY mag_g",
        "SELECT TOP 10 id, mag_g FROM demo.main "
        "WHERE 1 = CONTAINS(POINT(ra, dec), CIRCLE(50, -30, 1)) ORDER BY mag_g",
        "SELECT TOP 10 a.id, a.mag_g FROM demo.main AS a JOIN demo.main AS b ON a.id = b.id + 1 "
        "ORDER BY a.mag_g",
        "SELECT TOP 10 a.id, a.mag_g FROM demo.main AS a, demo.main AS b "
        "WHERE a.id = b.id ORDER BY a.mag_g",
        "SELECT TOP 10 flag, COUNT(*) AS c FROM demo.main GROUP BY flag ORDER BY flag",
        "SELECT DISTINCT TOP 10 flag FROM demo.main ORDER BY flag",
        "SELECT TOP 3 MIN(mag_g) AS m FROM demo.main ORDER BY 1",
        "SELECT TOP 10 id, mag_g FROM (SELECT id, mag_g FROM demo.main WHERE flag = 1) AS s "
        "ORDER BY mag_g",
        "SELECT TOP 10 id, mag_g FROM demo.main ORDER BY mag_g + 0",
        "SELECT TOP 10 id, -mag_g AS mag_g FROM demo.main ORDER BY mag_g",
        "SELECT TOP 10 id, mag_g FROM demo.main ORDER BY id + 0, mag_g",
    ],
)
def test_topn_not_applied_where_it_would_not_be_exact(
    catalog: tuple[MetadataStore, pa.Table], query: str
) -> None:
    st, _ = catalog
    engine = server_engine(st)
    sql = _sql(engine, st, query)
    assert not _bounded(sql, "mag_g") and not _bounded(sql, "flag"), sql
    assert "<= CAST(" not in sql and ">= CAST(" not in sql
    got, unbounded = _rows(engine, sql), _rows(engine, _sql(engine, st, query, bounded=False))
    assert len(got) == len(unbounded)
    assert [r[-1] for r in got] == [r[-1] for r in unbounded]  # the values ordered by


def test_topn_inner_query(catalog: tuple[MetadataStore, pa.Table]) -> None:
    """A bounded subquery is bounded on its own (its TOP is its own)."""
    st, data = catalog
    engine = server_engine(st)
    query = (
        "SELECT s.id, s.mag_g FROM (SELECT TOP 8 id, mag_g FROM demo.main ORDER BY mag_g) AS s "
        "WHERE s.id > 0 ORDER BY s.id"
    )
    sql = _sql(engine, st, query)
    assert _bounded(sql, "mag_g"), sql
    got = _rows(engine, sql)
    assert got == _rows(engine, _sql(engine, st, query, bounded=False))
    assert sorted(r[1] for r in got) == [v for v in _brute(data, "mag_g", False)[:8]]


def test_maxrec_bounds_too(catalog: tuple[MetadataStore, pa.Table]) -> None:
    """Without TOP, MAXREC + 1 rows are the limit (the overflow row is exact too)."""
    st, data = catalog
    engine = server_engine(st)
    cat = Catalog(st.list_tables(), {})
    query = "SELECT id, mag_g FROM demo.main ORDER BY mag_g"
    tr = adql.translate(query, cat, "duckdb", maxrec=20, table_sql=engine.table_sql({}))
    assert tr.limit == 21 and _bounded(tr.sql, "mag_g")
    assert [r[1] for r in _rows(engine, tr.sql)] == _brute(data, "mag_g", False)[:21]


def test_nulls_first_needs_statistics_without_nulls(
    catalog: tuple[MetadataStore, pa.Table],
) -> None:
    """Where NULLs may sort first the bound would drop them: only columns without NULLs."""
    st, _ = catalog
    engine = server_engine(st)
    table = next(t for t in st.list_tables() if t.name == "demo.main")
    assert engine.topn_source(table, TopN("flag", 10, True, nulls_first=True)) is None
    assert engine.topn_source(table, TopN("flag", 10, True, nulls_first=False)) is not None
    assert engine.topn_source(table, TopN("id", 10, True, nulls_first=True)) is not None
    assert engine.topn_source(table, TopN("band", 10, False, nulls_first=False)) is None
    assert engine.topn_source(table, TopN("no_such", 10, False, nulls_first=False)) is None


def test_duckdb_sorts_nulls_last(catalog: tuple[MetadataStore, pa.Table]) -> None:
    """The generator's claim that DuckDB puts NULLs last both ways, on the engine's connection."""
    st, _ = catalog
    engine = server_engine(st)
    for desc in (False, True):
        assert DuckDBGenerator().nulls_sort_first(desc) is False
        order = "DESC" if desc else "ASC"
        rows = _rows(engine, f"SELECT x FROM (VALUES (1), (NULL), (2)) t(x) ORDER BY x {order}")
        assert rows[-1] == (None,)


def _scanned(profile: dict[str, Any]) -> tuple[int, int]:
    ops = scans(profile)
    assert ops
    return (
        sum(int(op["rows_scanned"]) for op in ops),
        sum(int(op["row_groups_scanned"]) for op in ops),
    )


@pytest.mark.parametrize(
    "query",
    [
        "SELECT TOP 10 id, ra, dec, mag_g FROM demo.main WHERE mag_g IS NOT NULL ORDER BY mag_g",
        "SELECT TOP 10 id FROM demo.main ORDER BY id DESC",
    ],
)
def test_profile_shows_fewer_rows_scanned(
    catalog: tuple[MetadataStore, pa.Table], tmp_path: Path, query: str
) -> None:
    st, data = catalog
    engine = server_engine(st)
    with_bound, prof = run_profiled(engine, _sql(engine, st, query), tmp_path / "a.json")
    rows, groups = _scanned(prof)
    without, prof0 = run_profiled(
        engine, _sql(engine, st, query, bounded=False), tmp_path / "b.json"
    )
    rows0, groups0 = _scanned(prof0)
    assert with_bound.to_pylist() == without.to_pylist()
    print(f"\n{query}\n  rows scanned {rows0} -> {rows}, row groups {groups0} -> {groups}")
    assert rows * 4 < rows0 and groups < groups0
    assert rows < len(data) / 5
    # the bounded scan reads the row groups the bound leaves (>= 10 of them), about no more
    assert 10 <= groups <= 15
    # one scan: no late materialization re-reading whole files for the other columns
    assert len(scans(prof)) == 1
    # ... turned off for that query's cursor only
    setting = "SELECT current_setting('late_materialization_max_rows') AS s"
    assert _rows(engine, setting) == [(50,)]


def test_timing_larger_table(tmp_path: Path) -> None:
    """Before/after timing on 2 million rows in ~500 row groups (printed, not asserted).

    The bound helps in proportion to (row groups) / n: TOP 100 of ~500 groups
    reads about a fifth of them (the demo's 20 million rows have ~650).
    """
    rng = np.random.default_rng(1)
    n_files, per_file, group = 8, 250_000, 4096
    root = tmp_path / "big"
    root.mkdir()
    for k in range(n_files):
        mag = rng.normal(22, 1.5, per_file).astype(np.float64)
        mag[rng.random(per_file) < 0.01] = np.nan
        t = pa.table(
            {
                "id": np.arange(k * per_file, (k + 1) * per_file, dtype=np.int64),
                "ra": rng.uniform(0, 360, per_file),
                "dec": rng.uniform(-90, 90, per_file),
                "mag_i": pa.array(mag, mask=rng.random(per_file) < 0.05),
            }
        )
        pq.write_table(t, root / f"part-{k:03d}.parquet", row_group_size=group)
    table = Table(
        "bench.big",
        tuple(Column(c) for c in ("id", "ra", "dec", "mag_i")),
        storage=str(root),
    )
    engine = DuckDBEngine(lambda: [(table, None)])
    cat = Catalog([table], {})
    query = (
        "SELECT TOP 100 id, ra, dec, mag_i FROM bench.big WHERE mag_i IS NOT NULL ORDER BY mag_i"
    )
    hook = engine.table_sql({})

    def plain(t: Table, ranges: Any, /, topn: Any = None) -> str:
        return hook(t, ranges)

    before = adql.translate(query, cat, "duckdb", table_sql=plain).sql
    t0 = time.perf_counter()
    after = adql.translate(query, cat, "duckdb", table_sql=hook).sql  # reads the footers once
    first_plan = time.perf_counter() - t0
    assert _bounded(after, "mag_i")

    def best(sql: str) -> float:
        times = []
        for _ in range(5):
            t0 = time.perf_counter()
            _rows(engine, sql)
            times.append(time.perf_counter() - t0)
        return min(times)

    assert _rows(engine, before) == _rows(engine, after)
    t0 = time.perf_counter()
    adql.translate(query, cat, "duckdb", table_sql=hook)
    cached_plan = time.perf_counter() - t0
    print(
        f"\n2M rows, {n_files} files, row groups of {group}, TOP 100 ORDER BY mag_i: "
        f"{best(before) * 1000:.1f} ms without the bound, {best(after) * 1000:.1f} ms with it "
        f"(translation: {first_plan * 1000:.1f} ms reading footers, "
        f"{cached_plan * 1000:.1f} ms cached)"
    )
    engine.close()

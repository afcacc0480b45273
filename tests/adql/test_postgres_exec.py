"""The PostgreSQL + pgSphere translation, executed: row sets must equal DuckDB's.

A throwaway PostgreSQL 15 cluster with pg_sphere is started for this module
(skipped where the server or the extension is not installed). The rows are
the ones the DuckDB execution tests use; every query runs through both
translations and the results are compared cell by cell, so our DuckDB
geometry is checked against pgSphere's.
"""

from __future__ import annotations

import csv
import dataclasses
import io
import math
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa
import pytest

from sciportal.adql import translate
from sciportal.metadata.model import Column

from .conftest import OTHER, REGIONS, STARS, Lookup
from .test_duckdb_exec import SHAPE_CASES, SHAPE_ROWS

PG_BIN = Path("/usr/lib/postgresql/15/bin")


def _sharedir() -> Path | None:
    try:
        out = subprocess.run(
            [str(PG_BIN / "pg_config"), "--sharedir"], capture_output=True, text=True, check=True
        )
    except (OSError, subprocess.CalledProcessError):
        return None
    return Path(out.stdout.strip())


def _missing() -> str | None:
    if not (PG_BIN / "initdb").exists():
        return f"PostgreSQL 15 server not installed ({PG_BIN / 'initdb'} missing)"
    share = _sharedir()
    if share is None or not (share / "extension" / "pg_sphere.control").exists():
        return "pgSphere not installed (Debian package postgresql-15-pgsphere)"
    if os.geteuid() == 0:
        try:
            pwd.getpwnam("postgres")
        except KeyError:
            return "running as root and there is no postgres user to run the server as"
        if shutil.which("runuser") is None:
            return "running as root and runuser is missing"
    return None


class Cluster:
    """A private PostgreSQL server on a Unix socket in its own directory."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.data = root / "data"
        with socket.socket() as s:  # a port nobody uses; it only names the socket file
            s.bind(("127.0.0.1", 0))
            self.port = s.getsockname()[1]
        self.as_user: list[str] = []
        if os.geteuid() == 0:  # the server refuses to run as root
            pw = pwd.getpwnam("postgres")
            os.chown(root, pw.pw_uid, pw.pw_gid)
            self.as_user = ["runuser", "-u", "postgres", "--"]

    def _server(self, *args: str) -> None:
        subprocess.run([*self.as_user, *args], check=True, capture_output=True, timeout=120)

    def start(self) -> None:
        self._server(
            str(PG_BIN / "initdb"),
            *("-D", str(self.data), "-A", "trust", "-U", "postgres", "-E", "UTF8"),
            *("--locale=C", "--no-sync"),
        )
        opts = f"-k {self.root} -p {self.port} -c listen_addresses='' -c fsync=off"
        self._server(
            str(PG_BIN / "pg_ctl"),
            *("-D", str(self.data), "-l", str(self.root / "log"), "-o", opts, "-w", "start"),
        )

    def stop(self) -> None:
        if (self.data / "postmaster.pid").exists():
            self._server(str(PG_BIN / "pg_ctl"), "-D", str(self.data), "-m", "immediate", "stop")

    def psql(self, sql: str, stdin: str | None = None) -> list[list[str]]:
        """Rows of a statement's CSV output (header dropped); raises with the server's message."""
        cmd = [str(PG_BIN / "psql"), "-h", str(self.root), "-p", str(self.port), "-U", "postgres"]
        cmd += ["-X", "-q", "-v", "ON_ERROR_STOP=1", "--csv", "-c", sql]
        res = subprocess.run(cmd, input=stdin, capture_output=True, text=True, timeout=300)
        if res.returncode:
            raise AssertionError(f"PostgreSQL failed: {res.stderr.strip()}\nSQL: {sql}")
        rows = list(csv.reader(io.StringIO(res.stdout)))
        return rows[1:]


def _copy_csv(table: pa.Table, columns: list[str]) -> str:
    out = io.StringIO()
    w = csv.writer(out)
    for row in table.select(columns).to_pylist():
        w.writerow([repr(float(v)) if isinstance(v, float) else v for v in row.values()])
    return out.getvalue()


@pytest.fixture(scope="module")
def pg(data: dict[str, pa.Table], tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    reason = _missing()
    if reason:
        pytest.skip(reason)
    # as root the server user must reach the directory: pytest's tmp root is private
    root = (
        Path(tempfile.mkdtemp(prefix="sciportal-pg-"))
        if os.geteuid() == 0
        else tmp_path_factory.mktemp("pg")
    )
    cluster = Cluster(root)
    try:
        cluster.start()
        yield cluster
    finally:
        cluster.stop()
        if os.geteuid() == 0:
            shutil.rmtree(root, ignore_errors=True)


@pytest.fixture(scope="module")
def loaded(pg: Cluster, data: dict[str, pa.Table]) -> Cluster:
    pg.psql("CREATE EXTENSION pg_sphere")
    pg.psql(
        "CREATE SCHEMA s; "
        'CREATE TABLE s.t (id bigint, ra float8, dec float8, mag real, flags integer, name text, "Mixed" float8, _healpix_29 bigint); '
        "CREATE TABLE s.other (id bigint, ra float8, dec float8, kind text, _healpix_29 bigint); "
        "CREATE TABLE s.regions (rid integer, center spoint, fov scircle, shape spoly)"
    )
    for name in ("t", "other"):
        cols = data[name].column_names
        pg.psql(f"COPY s.{name} FROM STDIN (FORMAT csv)", _copy_csv(data[name], cols))
    for r in data["regions"].to_pylist():
        c, f, s = r["center"], r["fov"], r["shape"]
        pts = ",".join(f"({s[i]!r}d,{s[i + 1]!r}d)" for i in range(0, len(s), 2))
        pg.psql(
            f"INSERT INTO s.regions VALUES ({r['rid']}, '({c[0]!r}d,{c[1]!r}d)', "
            f"'<({f[0]!r}d,{f[1]!r}d),{f[2]!r}d>', '{{{pts}}}')"
        )
    pg.psql("ANALYZE")
    return pg


@pytest.fixture(scope="module")
def pg_lookup() -> Lookup:
    """Like the DuckDB tests' tables, but s.t declares _healpix_29 (so the filter is emitted)."""
    indexed = dataclasses.replace(STARS, columns=(*STARS.columns, Column("_healpix_29", "long")))
    return Lookup([indexed, OTHER, REGIONS])


def _same(pg_cell: str, value: Any, tol: float) -> bool:
    if value is None:
        return pg_cell == ""
    if isinstance(value, bool):
        return pg_cell in ("t", "true") if value else pg_cell in ("f", "false")
    if isinstance(value, int):
        return int(pg_cell) == value
    if isinstance(value, (float, Decimal)):
        return math.isclose(float(pg_cell), float(value), rel_tol=tol, abs_tol=tol)
    if isinstance(value, list):
        items = pg_cell.strip("{}").split(",")
        return len(items) == len(value) and all(
            _same(a, b, tol) for a, b in zip(items, value, strict=True)
        )
    return pg_cell == str(value)


def compare(
    con: duckdb.DuckDBPyConnection,
    lookup: Any,
    pg: Cluster,
    pg_lookup: Lookup,
    query: str,
    *,
    ordered: bool = False,
    tol: float = 1e-9,
    min_rows: int = 1,
) -> int:
    """Run ``query`` through both translations; assert equal results; return the row count."""
    duck = [tuple(r) for r in con.sql(translate(query, lookup, "duckdb").sql).fetchall()]
    rows = [tuple(r) for r in pg.psql(translate(query, pg_lookup, "postgres").sql)]
    assert len(rows) == len(duck), (query, len(rows), len(duck))
    duck = [tuple(float(v) if isinstance(v, Decimal) else v for v in r) for r in duck]
    if not ordered:
        duck.sort(key=repr)
        rows.sort(key=lambda r: repr(tuple(_typed(c, v) for c, v in zip(r, duck[0], strict=True))))
    for p, d in zip(rows, duck, strict=True):
        assert all(_same(a, b, tol) for a, b in zip(p, d, strict=True)), (query, p, d)
    assert len(duck) >= min_rows, (query, len(duck))
    return len(duck)


def _typed(cell: str, like: Any) -> Any:
    """A PostgreSQL CSV cell converted like a DuckDB value, for sorting both the same way."""
    if like is None or cell == "":
        return None if cell == "" else cell
    if isinstance(like, bool):
        return cell in ("t", "true")
    if isinstance(like, int):
        return int(cell)
    if isinstance(like, (float, Decimal)):
        return float(cell)
    return cell


POINT_QUERIES = [
    # cones, including RA wrap-around and the pole
    "SELECT id FROM s.t WHERE 1 = CONTAINS(POINT('ICRS', ra, dec), CIRCLE('ICRS', 45, 0, 1))",
    "SELECT id FROM s.t WHERE CONTAINS(POINT(ra, dec), CIRCLE(359.9, 0.5, 2)) = 1",
    "SELECT id FROM s.t WHERE CONTAINS(POINT(ra, dec), CIRCLE(10, 89, 3)) = 1",
    "SELECT id FROM s.t WHERE CONTAINS(POINT(ra, dec), CIRCLE(200, -30, 20)) = 1",
    "SELECT id FROM s.t WHERE CONTAINS(POINT(ra, dec), CIRCLE(45, 0, 3)) = 0 AND dec BETWEEN -4 AND 4",
    "SELECT id FROM s.t WHERE INTERSECTS(CIRCLE(45.5, 0.5, 0.7), POINT(ra, dec)) = 1",
    # polygons (convex, across RA 0, around the pole) and boxes
    "SELECT id FROM s.t WHERE CONTAINS(POINT(ra, dec), POLYGON('ICRS', 40, -3, 48, -4, 49, 4, 42, 5)) = 1",
    "SELECT id FROM s.t WHERE CONTAINS(POINT(ra, dec), POLYGON(350, -10, 10, -10, 0, 10)) = 1",
    "SELECT id FROM s.t WHERE CONTAINS(POINT(ra, dec), POLYGON(0, 80, 90, 80, 180, 80, 270, 80)) = 1",
    "SELECT id FROM s.t WHERE CONTAINS(POINT(ra, dec), POLYGON(40, -5, 50, -5, 45, 0, 50, 5, 40, 5)) = 1",
    "SELECT id FROM s.t WHERE CONTAINS(POINT(ra, dec), BOX(359, 2, 6, 8)) = 1",
    "SELECT id FROM s.t WHERE CONTAINS(POINT(ra, dec), BOX(POINT(45, 1), 3, 2)) = 1",
    "SELECT id FROM s.t WHERE CONTAINS(POINT(ra, dec), BOX('ICRS', 120, 60, 40, 20)) = 1",
    # per-row shapes: polygon, circle and point columns
    "SELECT t.id, r.rid FROM s.t AS t, s.regions AS r WHERE CONTAINS(POINT(t.ra, t.dec), r.shape) = 1",
    "SELECT t.id, r.rid FROM s.t AS t JOIN s.regions AS r ON CONTAINS(POINT(t.ra, t.dec), r.fov) = 1",
    "SELECT t.id FROM s.t AS t, s.regions AS r WHERE r.rid = 1 "
    "AND DISTANCE(POINT(t.ra, t.dec), r.center) < 0.5",
    "SELECT rid FROM s.regions WHERE 1 = CONTAINS(POINT(45.2, 0.1), POLYGON(center, POINT(46, 0), POINT(46, 1)))",
]


@pytest.mark.parametrize("query", POINT_QUERIES)
def test_point_predicates_agree_with_pgsphere(
    con: Any, lookup: Any, loaded: Cluster, pg_lookup: Lookup, query: str
) -> None:
    compare(con, lookup, loaded, pg_lookup, query)


def test_crossmatch_and_distance_agree(
    con: Any, lookup: Any, loaded: Cluster, pg_lookup: Lookup
) -> None:
    n = compare(
        con,
        lookup,
        loaded,
        pg_lookup,
        "SELECT o.id AS oid, t.id AS tid, DISTANCE(POINT(o.ra, o.dec), POINT(t.ra, t.dec)) AS d "
        "FROM s.other AS o JOIN s.t AS t ON 1 = CONTAINS(POINT(t.ra, t.dec), CIRCLE(o.ra, o.dec, 2.0/3600))",
        tol=1e-7,
    )
    assert n >= 800
    compare(
        con,
        lookup,
        loaded,
        pg_lookup,
        "SELECT id, DISTANCE(POINT(ra, dec), POINT(45.5, 0.2)) AS d FROM s.t "
        "WHERE DISTANCE(POINT(ra, dec), POINT(45.5, 0.2)) < 0.7 ORDER BY d, id",
        ordered=True,
        tol=1e-7,
    )


# cross-matches that DuckDB runs as HEALPix cell joins (pgSphere keeps its own plan)
CELL_JOIN_QUERIES = [
    "SELECT o.id AS oid, t.id AS tid FROM s.t AS t, s.other AS o "
    "WHERE DISTANCE(POINT(o.ra, o.dec), POINT(t.ra, t.dec)) < 3/3600. AND o.kind = 'a' "
    "ORDER BY oid, tid",
    "SELECT t.id AS tid, o.id AS oid FROM s.t AS t LEFT JOIN s.other AS o "
    "ON 1 = CONTAINS(POINT(t.ra, t.dec), CIRCLE(o.ra, o.dec, 0.01)) ORDER BY tid, oid",
    "SELECT o.id AS oid, t.id AS tid FROM s.other AS o LEFT JOIN s.t AS t "
    "ON 1 = CONTAINS(POINT(t.ra, t.dec), CIRCLE(o.ra, o.dec, 1/3600.)) ORDER BY oid, tid",
    "SELECT a.id AS a, b.id AS b FROM s.t AS a JOIN s.t AS b "
    "ON DISTANCE(a.ra, a.dec, b.ra, b.dec) <= 0.05 AND a.id < b.id ORDER BY a, b",
    "SELECT r.rid, COUNT(*) AS n FROM s.t AS t, s.regions AS r "
    "WHERE INTERSECTS(CIRCLE(r.center, 1.5), POINT(t.ra, t.dec)) = 1 GROUP BY r.rid ORDER BY r.rid",
]


@pytest.mark.parametrize("query", CELL_JOIN_QUERIES)
def test_cell_joins_agree_with_pgsphere(
    con: Any, lookup: Any, loaded: Cluster, pg_lookup: Lookup, query: str
) -> None:
    assert "adql_xmatch_cells" in translate(query, lookup, "duckdb").sql
    compare(con, lookup, loaded, pg_lookup, query, ordered=True, min_rows=2)


SCALAR_QUERIES = [
    "SELECT flags, COUNT(*) AS n, AVG(mag) AS m, MAX(id) AS biggest, MIN(ra) AS lo FROM s.t "
    "GROUP BY flags HAVING COUNT(*) > 300",
    "SELECT id, flags ^ 5 AS x, flags & 6 AS a, flags | 9 AS o, ~flags AS n, (flags ^ id) & 255 AS xi "
    "FROM s.t WHERE (flags ^ 3) > 4 AND id < 200",
    "SELECT id, ivo_healpix_index(8, ra, dec) AS h8, ivo_healpix_index(0, ra, dec) AS h0 FROM s.t WHERE id < 500",
    "SELECT ivo_healpix_center(5, id) AS c, COORD1(ivo_healpix_center(3, id)) AS c1, "
    "COORD2(ivo_healpix_center(3, id)) AS c2 FROM s.t WHERE id < 300",
    "SELECT TOP 1 AREA(CIRCLE(0, 0, 1)) AS a1, AREA(POLYGON(0, 0, 10, 0, 0, 10)) AS a2, "
    "AREA(BOX(10, 20, 4, 2)) AS a3, AREA(POINT(1, 2)) AS a4 FROM s.t",
    "SELECT rid, AREA(fov) AS a, AREA(shape) AS s, COORD1(center) AS ra, COORD2(CENTROID(fov)) AS dc, "
    "CENTROID(POLYGON(10, 0, 12, 0, 11, 2)) AS pc, CENTROID(BOX(POINT(10, 20), 2, 1)) AS bc FROM s.regions",
    "SELECT UPPER(name) AS u, ivo_hashlist_has('a#Star 1#b', name) AS h, ivo_nocasematch(name, 'STAR 1_') AS m, "
    "ivo_interval_overlaps(id, id + 1, 2, 3) AS o, 7 / 2 AS i, MOD(id, 7) AS md FROM s.t WHERE id < 30",
    "SELECT kind, COUNT(*) AS n FROM s.other AS o JOIN s.t AS t USING (id) GROUP BY kind",
    "SELECT id FROM s.t WHERE id IN (SELECT id FROM s.other WHERE kind = 'b') AND id < 100",
]


@pytest.mark.parametrize("query", SCALAR_QUERIES)
def test_values_agree_with_postgres(
    con: Any, lookup: Any, loaded: Cluster, pg_lookup: Lookup, query: str
) -> None:
    compare(con, lookup, loaded, pg_lookup, query, tol=1e-6)


def test_range_filter_is_emitted_and_harmless(loaded: Cluster, pg_lookup: Lookup) -> None:
    sql = translate(
        "SELECT id FROM s.t WHERE CONTAINS(POINT(ra, dec), CIRCLE(45, 0, 1)) = 1",
        pg_lookup,
        "postgres",
    ).sql
    assert '"_healpix_29" >=' in sql
    assert len(loaded.psql(sql)) > 10


@pytest.mark.parametrize(("op", "a", "b"), SHAPE_CASES)
def test_shape_predicates_agree_with_pgsphere(
    con: Any, lookup: Any, loaded: Cluster, pg_lookup: Lookup, op: str, a: str, b: str
) -> None:
    query = f"SELECT id FROM s.t WHERE {op}({a}, {b}) = 1 AND {SHAPE_ROWS}"
    compare(con, lookup, loaded, pg_lookup, query)
    compare(con, lookup, loaded, pg_lookup, query.replace("= 1 AND", "= 0 AND"))


def test_shape_columns_agree_with_pgsphere(
    con: Any, lookup: Any, loaded: Cluster, pg_lookup: Lookup
) -> None:
    compare(
        con,
        lookup,
        loaded,
        pg_lookup,
        "SELECT a.rid AS a, b.rid AS b, CONTAINS(a.shape, b.fov) AS pc, INTERSECTS(a.shape, b.fov) AS p_i, "
        "CONTAINS(a.fov, b.shape) AS cp, INTERSECTS(a.shape, b.shape) AS pp, INTERSECTS(a.fov, b.fov) AS cc, "
        "CONTAINS(a.shape, BOX(45, 0, 3, 3)) AS pb, INTERSECTS(CIRCLE(200, -30, 1), a.shape) AS cs "
        "FROM s.regions AS a, s.regions AS b",
        min_rows=4,
    )

"""Positional cross-matches as HEALPix cell joins, against an astropy oracle.

The DuckDB translation turns ``CONTAINS(POINT(c.ra, c.dec), CIRCLE(u.ra, u.dec, r)) = 1``
and ``DISTANCE(...) < r`` into an equi-join on HEALPix cells plus the exact
test (sciportal.adql.xmatch). Every (upload, catalog) pair within ``r`` must
come back exactly once: compared as multisets with
``astropy.coordinates.search_around_sky``, near the poles, across RA 0/360,
for radii from 1 arcsec to 1 degree, with repeated positions and rows.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from typing import Any

import astropy.units as u
import cdshealpix.nested as chp
import duckdb
import numpy as np
import pyarrow as pa
import pytest
from astropy.coordinates import Latitude, Longitude, SkyCoord, search_around_sky

from sciportal.adql import translate, xmatch
from sciportal.adql.spatial import intersect
from sciportal.adql.xmatch import MAX_PRUNE_RANGES, cell_ranges, disc_cells, match_depth
from sciportal.engines.duckdb_udfs import register
from sciportal.healpix import healpix_29
from sciportal.metadata.model import Column, Table

from .conftest import Lookup

CAT = Table(
    "x.cat",
    (Column("id", "long"), Column("ra", "double"), Column("dec", "double")),
    ra_column="ra",
    dec_column="dec",
)
UPLOAD = Table(
    "TAP_UPLOAD.pos", (Column("uid", "long"), Column("ra", "double"), Column("dec", "double"))
)
RADII = [1 / 3600, 10 / 3600, 1 / 60, 0.1, 1.0]


def _sky(rng: np.random.Generator, n: int) -> tuple[np.ndarray, np.ndarray]:
    return rng.uniform(0, 360, n), np.degrees(np.arcsin(rng.uniform(-1, 1, n)))


@pytest.fixture(scope="module")
def tables() -> dict[str, pa.Table]:
    rng = np.random.default_rng(7)
    parts = [
        _sky(rng, 6000),
        (rng.uniform(0, 360, 2000), rng.uniform(87.5, 90, 2000)),  # north pole cap
        (rng.uniform(0, 360, 2000), rng.uniform(-90, -87.5, 2000)),  # south pole cap
        (rng.uniform(-1.5, 1.5, 3000) % 360, rng.uniform(-2, 2, 3000)),  # across RA 0/360
        (rng.uniform(45, 45.3, 3000), rng.uniform(-41.9, -41.6, 3000)),  # dense: arcsec pairs
        (np.array([0.0, 180.0, 359.9999999, 0.0, 12.0]), np.array([90.0, 90.0, 0.0, -90.0, 41.8])),
    ]
    ra = np.concatenate([p[0] for p in parts])
    dec = np.concatenate([p[1] for p in parts])
    cat = pa.table(
        {
            "id": np.arange(len(ra), dtype=np.int64),
            "ra": ra,
            "dec": dec,
            "_healpix_29": healpix_29(ra, dec),
        }
    ).sort_by("_healpix_29")
    # the upload: near catalog positions (offsets up to ~1.5 r for every radius),
    # random ones, the poles and RA 0/360 exactly, repeated positions and rows
    pick = rng.choice(len(ra), 900, replace=False)
    scale = rng.choice(np.array(RADII) * 1.5, 900)
    c = SkyCoord(ra[pick] * u.deg, dec[pick] * u.deg).directional_offset_by(
        rng.uniform(0, 360, 900) * u.deg, rng.uniform(0, 1, 900) * scale * u.deg
    )
    rra, rdec = _sky(rng, 80)
    ura = np.concatenate([c.ra.deg, rra, [0.0, 360.0, 123.0, 0.0, 359.99999, 45.1, 45.1, 45.1]])
    udec = np.concatenate([c.dec.deg, rdec, [90.0, 89.9, -90.0, 0.0, 0.5, -41.7, -41.7, -41.7]])
    uid = np.arange(len(ura), dtype=np.int64)
    uid[-1] = uid[-2]  # a repeated row
    upload = pa.table({"uid": uid, "ra": ura, "dec": udec})
    nulls = pa.table({"uid": pa.array([10_000], pa.int64()), "ra": [None], "dec": [1.0]})
    return {"cat": cat, "upload": pa.concat_tables([upload, nulls.cast(upload.schema)])}


@pytest.fixture(scope="module")
def xcon(tables: dict[str, pa.Table]) -> Iterator[duckdb.DuckDBPyConnection]:
    c = duckdb.connect()
    register(c)
    c.execute("CREATE SCHEMA x")
    c.register("cat_in", tables["cat"])
    c.execute("CREATE TABLE x.cat AS SELECT * FROM cat_in")
    c.register("up_pos", tables["upload"])
    yield c
    c.close()


def _table_sql(table: Table, ranges: list[tuple[int, int]] | None) -> str:
    return '"up_pos"' if table.name.lower().startswith("tap_upload.") else '"x"."cat"'


def run(con: duckdb.DuckDBPyConnection, query: str) -> tuple[list[tuple[Any, ...]], str]:
    tr = translate(query, Lookup([CAT]), uploads={"pos": UPLOAD}, table_sql=_table_sql)
    return [tuple(r) for r in con.sql(tr.sql).fetchall()], tr.sql


def _coords(t: pa.Table) -> tuple[SkyCoord, np.ndarray]:
    ra = t["ra"].to_numpy(zero_copy_only=False).astype(float)
    ok = np.isfinite(ra)
    return SkyCoord(ra[ok] * u.deg, t["dec"].to_numpy()[ok] * u.deg), np.flatnonzero(ok)


def oracle(left: pa.Table, lkey: str, right: pa.Table, rkey: str, r: float) -> Counter:
    """Multiset of (left key, right key) pairs within r degrees (astropy)."""
    lc, li = _coords(left)
    rc, ri = _coords(right)
    i, j, _, _ = search_around_sky(lc, rc, r * u.deg)
    lk = left[lkey].to_numpy()[li][i]
    rk = right[rkey].to_numpy()[ri][j]
    return Counter(zip(lk.tolist(), rk.tolist(), strict=True))


FORMS = [
    "SELECT u.uid, c.id FROM TAP_UPLOAD.pos AS u JOIN x.cat AS c "
    "ON 1 = CONTAINS(POINT(c.ra, c.dec), CIRCLE(u.ra, u.dec, {r}))",
    "SELECT u.uid, c.id FROM x.cat AS c, TAP_UPLOAD.pos AS u "
    "WHERE CONTAINS(POINT('ICRS', c.ra, c.dec), CIRCLE('ICRS', u.ra, u.dec, {r})) = 1",
    "SELECT u.uid, c.id FROM TAP_UPLOAD.pos AS u INNER JOIN x.cat AS c "
    "ON DISTANCE(POINT(c.ra, c.dec), POINT(u.ra, u.dec)) <= {r}",
    "SELECT u.uid, c.id FROM TAP_UPLOAD.pos AS u, x.cat AS c "
    "WHERE {r} > DISTANCE(u.ra, u.dec, c.ra, c.dec) AND c.id >= 0",
    "SELECT u.uid, c.id FROM x.cat AS c JOIN TAP_UPLOAD.pos AS u "
    "ON CONTAINS(POINT(u.ra, u.dec), CIRCLE(POINT(c.ra, c.dec), {r})) = 1",
    "SELECT u.uid, c.id FROM TAP_UPLOAD.pos AS u JOIN x.cat AS c "
    "ON INTERSECTS(CIRCLE(u.ra, u.dec, {r}), POINT(c.ra, c.dec)) = 1",
]


@pytest.mark.parametrize("radius", RADII)
@pytest.mark.parametrize("form", FORMS)
def test_upload_crossmatch_matches_astropy(
    xcon: duckdb.DuckDBPyConnection, tables: dict[str, pa.Table], form: str, radius: float
) -> None:
    rows, sql = run(xcon, form.format(r=repr(radius)))
    assert "adql_xmatch_cells" in sql and "_healpix_29" in sql, sql
    want = oracle(tables["upload"], "uid", tables["cat"], "id", radius)
    assert Counter(rows) == want
    assert sum(want.values()) >= 100


@pytest.mark.parametrize(("radius", "step"), [(2 / 3600, 1), (0.05, 1), (1.0, 5)])
def test_self_join_matches_astropy(
    xcon: duckdb.DuckDBPyConnection, tables: dict[str, pa.Table], radius: float, step: int
) -> None:
    """The catalog against itself (every row matches itself); for 1 degree a sample."""
    rows, sql = run(
        xcon,
        "SELECT a.id, b.id FROM x.cat AS a JOIN x.cat AS b "
        f"ON DISTANCE(POINT(a.ra, a.dec), POINT(b.ra, b.dec)) <= {radius!r} "
        f"AND MOD(a.id, {step}) = 0 AND MOD(b.id, {step}) = 0",
    )
    assert "adql_xmatch_cells" in sql
    cat = tables["cat"]
    cat = cat.filter(pa.array(cat["id"].to_numpy() % step == 0))
    want = oracle(cat, "id", cat, "id", radius)
    assert Counter(rows) == want
    assert sum(want.values()) > cat.num_rows + 20  # more than each row with itself


def test_catalog_left_join_upload_keeps_every_catalog_row(
    xcon: duckdb.DuckDBPyConnection, tables: dict[str, pa.Table]
) -> None:
    """The upload on the inner side of a LEFT JOIN may be repeated per cell: optimised."""
    r = 0.1
    rows, sql = run(
        xcon,
        "SELECT c.id, u.uid FROM x.cat AS c LEFT JOIN TAP_UPLOAD.pos AS u "
        f"ON 1 = CONTAINS(POINT(c.ra, c.dec), CIRCLE(u.ra, u.dec, {r}))",
    )
    assert "adql_xmatch_cells" in sql
    pairs = oracle(tables["cat"], "id", tables["upload"], "uid", r)
    matched = {c for c, _ in pairs}
    want = pairs + Counter((i, None) for i in tables["cat"]["id"].to_pylist() if i not in matched)
    assert Counter(rows) == want


def test_upload_left_join_catalog_is_left_alone(
    xcon: duckdb.DuckDBPyConnection, tables: dict[str, pa.Table]
) -> None:
    """The preserved upload cannot be repeated per cell: no cell join, still right."""
    r = 1 / 60
    rows, sql = run(
        xcon,
        "SELECT u.uid, c.id FROM TAP_UPLOAD.pos AS u LEFT OUTER JOIN x.cat AS c "
        f"ON 1 = CONTAINS(POINT(c.ra, c.dec), CIRCLE(u.ra, u.dec, {r}))",
    )
    assert "adql_xmatch_cells" not in sql
    up = tables["upload"]
    pairs = oracle(up, "uid", tables["cat"], "id", r)
    matched = Counter(k for k, _ in pairs)
    unmatched = Counter((k, None) for k in up["uid"].to_pylist() if k not in matched)
    assert Counter(rows) == pairs + unmatched


def test_full_join_is_left_alone(xcon: duckdb.DuckDBPyConnection) -> None:
    _, sql = run(
        xcon,
        "SELECT u.uid, c.id FROM TAP_UPLOAD.pos AS u FULL OUTER JOIN x.cat AS c "
        "ON DISTANCE(POINT(c.ra, c.dec), POINT(u.ra, u.dec)) < 0.01",
    )
    assert "adql_xmatch_cells" not in sql


def test_aggregate_over_crossmatch(
    xcon: duckdb.DuckDBPyConnection, tables: dict[str, pa.Table]
) -> None:
    """Counts per upload row: the repeated upload rows must not inflate them."""
    r = 0.1
    rows, sql = run(
        xcon,
        "SELECT u.uid, COUNT(*) AS n FROM TAP_UPLOAD.pos AS u, x.cat AS c "
        f"WHERE DISTANCE(POINT(u.ra, u.dec), POINT(c.ra, c.dec)) < {r} GROUP BY u.uid",
    )
    assert "adql_xmatch_cells" in sql
    want = Counter()
    for (uid, _), k in oracle(tables["upload"], "uid", tables["cat"], "id", r).items():
        want[uid] += k
    assert dict(rows) == dict(want)


# ----- the cell covering itself -------------------------------------------------


def test_match_depth() -> None:
    assert match_depth(0.0) == 29
    assert match_depth(1 / 3600) == 16
    assert match_depth(1.0) == 5
    assert match_depth(40.0) == 0
    assert match_depth(50.0) is None
    assert match_depth(-1.0) is None
    assert match_depth(float("nan")) is None


@pytest.mark.parametrize("radius", [1e-9, 1 / 3600, 0.3, 1.0, 7.0, 40.0])
def test_disc_cells_cover_the_disc(radius: float) -> None:
    """Every point within r of a centre lies in one of the centre's cells, each cell once.

    Centres at random, at the poles, on RA 0 and near the corners of the base
    cells (where only 7 neighbours exist); points at up to r in every direction,
    many close to r (the farthest neighbours).
    """
    depth = match_depth(radius)
    assert depth is not None
    rng = np.random.default_rng(3)
    n = 20_000
    ra, dec = _sky(rng, n)
    corners = [(0.0, 90.0), (0.0, -90.0), (45.0, 41.8103), (0.0, 41.8103), (90.0, 0.0)]
    ra[: 5 * 200] = np.repeat([c[0] for c in corners], 200) + rng.normal(0, radius, 1000)
    dec[: 5 * 200] = np.clip(np.repeat([c[1] for c in corners], 200), -90, 90)
    dec[: 5 * 200] = np.clip(dec[:1000] + rng.normal(0, radius, 1000), -90, 90)
    cells, rows = disc_cells(depth, ra, dec, radius)
    # distinct per row
    assert len(set(zip(rows.tolist(), cells.tolist(), strict=True))) == len(cells)
    per_row = np.bincount(rows, minlength=n)
    assert per_row.min() >= 1 and per_row.max() <= 9
    centre = SkyCoord(ra * u.deg, dec * u.deg)
    for frac in (rng.uniform(0, 1, n), 1 - rng.uniform(0, 1e-6, n)):
        pts = centre.directional_offset_by(rng.uniform(0, 360, n) * u.deg, frac * radius * u.deg)
        hit = chp.lonlat_to_healpix(Longitude(pts.ra), Latitude(pts.dec), depth).astype(np.int64)
        have = set(zip(rows.tolist(), cells.tolist(), strict=True))
        missing = [i for i in range(n) if (i, int(hit[i])) not in have]
        assert not missing, (radius, missing[:5])


def test_disc_cells_without_positions() -> None:
    cells, rows = disc_cells(10, np.array([np.nan, 10.0]), np.array([0.0, np.inf]), 0.01)
    assert len(cells) == 0 and len(rows) == 0
    # declinations past the pole are read as the haversine formula reads them
    cells, rows = disc_cells(10, np.array([10.0]), np.array([95.0]), 0.01)
    want = chp.lonlat_to_healpix(Longitude(190 * u.deg), Latitude(85 * u.deg), 10)
    assert int(np.asarray(want).ravel()[0]) in cells.tolist()


# ----- the catalog pruned to the cells of the upload's circles ---------------------


def run_pruned(
    con: duckdb.DuckDBPyConnection, query: str, upload: pa.Table
) -> tuple[list[tuple[Any, ...]], str, list[Any]]:
    """As :func:`run`, with the upload's rows given to translation; also the hook's ranges."""
    seen: list[Any] = []

    def table_sql(table: Table, ranges: list[tuple[int, int]] | None) -> str:
        if not table.name.lower().startswith("tap_upload."):
            seen.append(ranges)
        return _table_sql(table, ranges)

    tr = translate(
        query,
        Lookup([CAT]),
        uploads={"pos": UPLOAD},
        table_sql=table_sql,
        upload_data={"POS": upload},
    )
    return [tuple(r) for r in con.sql(tr.sql).fetchall()], tr.sql, seen


@pytest.mark.parametrize("radius", RADII)
@pytest.mark.parametrize("form", FORMS)
def test_pruned_upload_crossmatch_matches_astropy(
    xcon: duckdb.DuckDBPyConnection, tables: dict[str, pa.Table], form: str, radius: float
) -> None:
    """The catalog limited to the upload's cells (range filter in the SQL): still exact."""
    rows, sql, seen = run_pruned(xcon, form.format(r=repr(radius)), tables["upload"])
    assert len(seen) == 1 and seen[0] is not None and 0 < len(seen[0]) <= MAX_PRUNE_RANGES
    assert '"_healpix_29" >=' in sql, sql
    assert Counter(rows) == oracle(tables["upload"], "uid", tables["cat"], "id", radius)


def test_pruning_ranges_are_the_upload_cells() -> None:
    ra, dec = np.array([10.0, 200.0, np.nan]), np.array([20.0, -89.99, 0.0])
    depth = match_depth(0.01)
    assert depth is not None
    cells, _ = disc_cells(depth, ra, dec, 0.01)
    shift = 2 * (29 - depth)
    want = sorted({(int(c) << shift, (int(c) + 1) << shift) for c in cells})
    got = cell_ranges(cells, depth, cap=1000)
    covered = {(lo, lo + (1 << shift)) for a, b in got for lo in range(a, b, 1 << shift)}
    assert covered == set(want)
    assert all(b < c for (_, b), (c, _) in zip(got, got[1:], strict=False))  # adjacent merged
    # the cap fills the smallest gaps: a superset, sorted and disjoint
    capped = cell_ranges(cells, depth, cap=2)
    assert len(capped) == 2 and capped[0][0] == got[0][0] and capped[-1][1] == got[-1][1]
    assert intersect(capped, got) == got
    assert cell_ranges(np.zeros(0, np.int64), depth) == []


def test_upload_pruning_skips(
    xcon: duckdb.DuckDBPyConnection, tables: dict[str, pa.Table], monkeypatch: Any
) -> None:
    """No pruning for a catalog on the preserved side, an expression centre, a huge upload."""
    up = tables["upload"]
    q = "SELECT u.uid, c.id FROM x.cat AS c LEFT JOIN TAP_UPLOAD.pos AS u ON {c}"
    cond = "1 = CONTAINS(POINT(c.ra, c.dec), CIRCLE(u.ra, u.dec, 0.01))"
    assert run_pruned(xcon, q.format(c=cond), up)[2] == [None]
    q = "SELECT u.uid, c.id FROM TAP_UPLOAD.pos AS u JOIN x.cat AS c ON {c}"
    assert run_pruned(xcon, q.format(c=cond), up)[2][0] is not None
    expr = "1 = CONTAINS(POINT(c.ra, c.dec), CIRCLE(u.ra + 0, u.dec, 0.01))"
    assert run_pruned(xcon, q.format(c=expr), up)[2] == [None]
    monkeypatch.setattr(xmatch, "MAX_PRUNE_CIRCLES", up.num_rows - 1)
    assert run_pruned(xcon, q.format(c=cond), up)[2] == [None]


def test_upload_pruning_meets_a_cone(
    xcon: duckdb.DuckDBPyConnection, tables: dict[str, pa.Table]
) -> None:
    """A constant cone on the catalog and the upload's cells: the intersection, still exact."""
    q = (
        "SELECT u.uid, c.id FROM TAP_UPLOAD.pos AS u JOIN x.cat AS c "
        "ON DISTANCE(POINT(c.ra, c.dec), POINT(u.ra, u.dec)) < 0.1 "
        "WHERE 1 = CONTAINS(POINT(c.ra, c.dec), CIRCLE(0, 0, 2))"
    )
    rows, _, seen = run_pruned(xcon, q, tables["upload"])
    cone_only = translate(q, Lookup([CAT]), uploads={"pos": UPLOAD}, table_sql=_table_sql)
    assert seen[0] and Counter(rows) == Counter(
        tuple(r) for r in xcon.sql(cone_only.sql).fetchall()
    )
    assert len(rows) > 0

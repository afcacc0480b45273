"""Translated ADQL run on DuckDB against independent oracles (astropy, numpy)."""

from __future__ import annotations

from typing import Any

import astropy.units as u
import duckdb
import numpy as np
import pyarrow as pa
import pytest
from astropy.coordinates import SkyCoord, search_around_sky

from sciportal.adql import translate
from sciportal.healpix import HealpixPixel, pixels_overlapping


def run(con: duckdb.DuckDBPyConnection, lookup: Any, query: str, **kw: Any) -> pa.Table:
    tr = translate(query, lookup, **kw)
    out = con.sql(tr.sql).arrow()
    if not isinstance(out, pa.Table):
        out = out.read_all()
    assert out.column_names == [c.name for c in tr.columns]
    return out


def coords(tab: pa.Table) -> SkyCoord:
    return SkyCoord(tab["ra"].to_numpy() * u.deg, tab["dec"].to_numpy() * u.deg)


@pytest.mark.parametrize(
    ("ra", "dec", "r"),
    [(45.0, 0.0, 1.0), (359.9, 0.5, 2.0), (10.0, 89.0, 3.0), (200.0, -30.0, 20.0)],
)
def test_cone_matches_astropy(
    con: Any, lookup: Any, data: dict[str, pa.Table], ra: float, dec: float, r: float
) -> None:
    got = run(
        con,
        lookup,
        f"SELECT id FROM s.t WHERE 1 = CONTAINS(POINT('ICRS', ra, dec), CIRCLE('ICRS', {ra}, {dec}, {r}))",
    )
    t = data["t"]
    sep = coords(t).separation(SkyCoord(ra * u.deg, dec * u.deg)).deg
    assert sorted(got["id"].to_pylist()) == sorted(t["id"].to_numpy()[sep <= r].tolist())


def test_distance_matches_astropy(con: Any, lookup: Any, data: dict[str, pa.Table]) -> None:
    got = run(
        con,
        lookup,
        "SELECT id, DISTANCE(POINT(ra, dec), POINT(45.5, 0.2)) AS d FROM s.t "
        "WHERE DISTANCE(POINT(ra, dec), POINT(45.5, 0.2)) < 0.7 ORDER BY d",
    )
    t = data["t"]
    sep = coords(t).separation(SkyCoord(45.5 * u.deg, 0.2 * u.deg)).deg
    want = np.argsort(sep)[: int((sep < 0.7).sum())]
    assert got["id"].to_pylist() == t["id"].to_numpy()[want].tolist()
    np.testing.assert_allclose(got["d"].to_numpy(), sep[want], atol=1e-9)


def _inside_convex(t: pa.Table, poly: list[float]) -> np.ndarray:
    """Oracle: great-circle edges, convex polygon: same side of every edge (astropy vectors)."""
    v = SkyCoord(poly[0::2] * u.deg, poly[1::2] * u.deg).cartesian.xyz.value.T
    p = coords(t).cartesian.xyz.value.T
    normals = [np.cross(v[i], v[(i + 1) % len(v)]) for i in range(len(v))]
    # orientation: the vertices' mean direction is inside (polygons < hemisphere)
    orient = np.sign(np.dot(v.mean(axis=0), normals[0]))
    s = np.array([orient * (p @ nrm) for nrm in normals])
    return np.all(s > 0, axis=0)


@pytest.mark.parametrize(
    "poly",
    [[40, -3, 48, -4, 49, 4, 42, 5], [350, -10, 10, -10, 0, 10], [0, 80, 90, 80, 180, 80, 270, 80]],
)
def test_polygon_matches_oracle(
    con: Any, lookup: Any, data: dict[str, pa.Table], poly: list[float]
) -> None:
    args = ", ".join(str(x) for x in poly)
    got = run(
        con,
        lookup,
        f"SELECT id FROM s.t WHERE CONTAINS(POINT(ra, dec), POLYGON('ICRS', {args})) = 1",
    )
    t = data["t"]
    want = t["id"].to_numpy()[_inside_convex(t, poly)]
    assert sorted(got["id"].to_pylist()) == sorted(want.tolist())
    assert len(want) > 0


def test_polygon_column_udf(con: Any, lookup: Any, data: dict[str, pa.Table]) -> None:
    got = run(
        con,
        lookup,
        "SELECT r.rid, COUNT(*) AS n FROM s.t AS t, s.regions AS r "
        "WHERE CONTAINS(POINT(t.ra, t.dec), r.shape) = 1 GROUP BY r.rid ORDER BY r.rid",
    )
    t = data["t"]
    want = [int(_inside_convex(t, p).sum()) for p in data["regions"]["shape"].to_pylist()]
    assert got["n"].to_pylist() == [w for w in want if w] and got["rid"].to_pylist() == [
        i + 1 for i, w in enumerate(want) if w
    ]


def test_box_is_radec_range(con: Any, lookup: Any, data: dict[str, pa.Table]) -> None:
    got = run(
        con, lookup, "SELECT id FROM s.t WHERE 1 = CONTAINS(POINT(ra, dec), BOX(359, 2, 6, 8))"
    )
    t = data["t"]
    ra, dec = t["ra"].to_numpy(), t["dec"].to_numpy()
    dra = (ra - 356) % 360
    want = t["id"].to_numpy()[(dra <= 6) & (dec >= -2) & (dec <= 6)]
    assert sorted(got["id"].to_pylist()) == sorted(want.tolist())


def test_crossmatch_matches_astropy(con: Any, lookup: Any, data: dict[str, pa.Table]) -> None:
    got = run(
        con,
        lookup,
        "SELECT o.id AS oid, t.id AS tid FROM s.other AS o JOIN s.t AS t "
        "ON 1 = CONTAINS(POINT(t.ra, t.dec), CIRCLE(o.ra, o.dec, 2.0/3600))",
    )
    o, t = data["other"], data["t"]
    i, j, _, _ = search_around_sky(coords(o), coords(t), 2.0 * u.arcsec)
    want = sorted(zip(o["id"].to_numpy()[i].tolist(), t["id"].to_numpy()[j].tolist(), strict=True))
    assert sorted(zip(got["oid"].to_pylist(), got["tid"].to_pylist(), strict=True)) == want
    assert len(want) >= 800


def test_cone_pruning_reads_only_needed_partitions(
    con: Any, lookup: Any, data: dict[str, pa.Table], tmp_path: Any
) -> None:
    """Write the table as order-3 HEALPix partitions; the hook selects files from the ranges."""
    import pyarrow.parquet as pq

    t = data["t"]
    pix = (t["_healpix_29"].to_numpy() >> (2 * (29 - 3))).astype(int)
    files = {}
    for p in np.unique(pix):
        path = tmp_path / f"Npix={p}.parquet"
        pq.write_table(t.filter(pa.array(pix == p)), path)
        files[HealpixPixel(3, int(p))] = path
    used: list[int] = []

    def table_sql(table: Any, ranges: list[tuple[int, int]] | None) -> str:
        chosen = list(files) if ranges is None else pixels_overlapping(list(files), ranges)
        used.append(len(chosen))
        paths = ", ".join("'" + str(files[c]) + "'" for c in chosen)
        return f"read_parquet([{paths}])"

    q = "SELECT id FROM s.t WHERE 1 = CONTAINS(POINT(ra, dec), CIRCLE(45, 0, 0.5))"
    got = run(con, lookup, q, table_sql=table_sql)
    sep = coords(t).separation(SkyCoord(45 * u.deg, 0 * u.deg)).deg
    assert sorted(got["id"].to_pylist()) == sorted(t["id"].to_numpy()[sep <= 0.5].tolist())
    assert used[-1] <= 4 < len(files)


def test_aggregates_group_by_having(con: Any, lookup: Any, data: dict[str, pa.Table]) -> None:
    got = run(
        con,
        lookup,
        "SELECT flags, COUNT(*) AS n, AVG(mag) AS m, MAX(id) AS biggest FROM s.t "
        "GROUP BY flags HAVING COUNT(*) > 300 ORDER BY flags",
    )
    t = data["t"]
    f, mag, ids = t["flags"].to_numpy(), t["mag"].to_numpy().astype(float), t["id"].to_numpy()
    want = [
        (k, int((f == k).sum()), float(mag[f == k].mean()), int(ids[f == k].max()))
        for k in np.unique(f)
        if (f == k).sum() > 300
    ]
    rows = list(zip(*(got[c].to_pylist() for c in ("flags", "n", "m", "biggest")), strict=True))
    assert [r[0] for r in rows] == [w[0] for w in want]
    assert [r[1] for r in rows] == [w[1] for w in want]
    np.testing.assert_allclose([r[2] for r in rows], [w[2] for w in want], rtol=1e-6)


def test_offset_top_order(con: Any, lookup: Any, data: dict[str, pa.Table]) -> None:
    got = run(con, lookup, "SELECT TOP 7 id, mag FROM s.t ORDER BY mag DESC, id OFFSET 5")
    t = data["t"]
    order = sorted(zip((-t["mag"].to_numpy()).tolist(), t["id"].to_numpy().tolist(), strict=True))
    assert got["id"].to_pylist() == [i for _, i in order[5:12]]


def test_set_operations_and_with(con: Any, lookup: Any) -> None:
    got = run(
        con,
        lookup,
        "WITH low AS (SELECT id FROM s.t WHERE id < 10) "
        "SELECT id FROM low WHERE id > 5 UNION SELECT id FROM s.t WHERE id BETWEEN 8 AND 12 "
        "EXCEPT SELECT id FROM s.t WHERE id = 9 ORDER BY id",
    )
    assert got["id"].to_pylist() == [6, 7, 8, 10, 11, 12]
    got = run(
        con,
        lookup,
        "(SELECT TOP 2 id FROM s.t ORDER BY id) UNION ALL (SELECT TOP 2 id FROM s.t ORDER BY id DESC) ORDER BY 1",
    )
    assert got["id"].to_pylist() == [0, 1, 5998, 5999]
    got = run(
        con, lookup, "SELECT id FROM s.t WHERE id < 5 INTERSECT SELECT id FROM s.other WHERE id > 2"
    )
    assert sorted(got["id"].to_pylist()) == [3, 4]


def test_joins_using_natural_subqueries(con: Any, lookup: Any, data: dict[str, pa.Table]) -> None:
    got = run(con, lookup, "SELECT * FROM s.t JOIN s.other USING (id) WHERE id < 3 ORDER BY id")
    assert got.column_names[0] == "id" and got.column_names.count("id") == 1
    assert got["id"].to_pylist() == [0, 1, 2]
    got = run(
        con,
        lookup,
        "SELECT COUNT(*) AS n FROM s.t AS a LEFT OUTER JOIN s.other AS b ON a.id = b.id WHERE b.id IS NULL",
    )
    assert got["n"].to_pylist() == [6000 - 800]
    got = run(
        con,
        lookup,
        "SELECT id FROM s.t WHERE id IN (SELECT id FROM s.other WHERE kind = 'b') AND id < 10 ORDER BY id",
    )
    assert got["id"].to_pylist() == [0, 3, 6, 9]
    got = run(
        con,
        lookup,
        "SELECT q.x FROM (SELECT id * 2 AS x FROM s.t WHERE id < 3) AS q WHERE EXISTS (SELECT * FROM s.other AS o WHERE o.id = q.x) ORDER BY 1",
    )
    assert got["x"].to_pylist() == [0, 2, 4]
    got = run(
        con,
        lookup,
        "SELECT (SELECT MAX(id) FROM s.other) AS m, 7 / 2 AS i, 7 / 2.0 AS f, 5 & 3 AS b FROM s.t WHERE id = 0",
    )
    assert got.to_pylist() == [{"m": 799, "i": 3, "f": 3.5, "b": 1}]


def test_string_functions_and_udfs(con: Any, lookup: Any) -> None:
    got = run(
        con,
        lookup,
        "SELECT UPPER(name) AS u, name || '!' AS x, ivo_hasword(name, 'star') AS w, "
        "ivo_hashlist_has('a#Star 1#b', name) AS h, ivo_interval_overlaps(id, id + 1, 2, 3) AS o, "
        "COALESCE(NULL, name) AS c, CASE WHEN id = 1 THEN 'one' ELSE 'other' END AS k "
        "FROM s.t WHERE name ILIKE 'STAR _' ORDER BY id",
    )
    rows = got.to_pylist()
    assert rows[1] == {
        "u": "STAR 1",
        "x": "Star 1!",
        "w": 1,
        "h": 1,
        "o": 1,
        "c": "Star 1",
        "k": "one",
    }
    assert [r["o"] for r in rows[:4]] == [0, 1, 1, 1]
    got = run(con, lookup, "SELECT ivo_string_agg(kind, ',') AS s FROM s.other WHERE id < 4")
    assert sorted(got["s"][0].as_py().split(",")) == ["a", "a", "b", "b"]


def test_geometry_values_and_healpix(con: Any, lookup: Any, data: dict[str, pa.Table]) -> None:
    got = run(
        con,
        lookup,
        "SELECT POINT(ra, dec) AS p, CIRCLE(ra, dec, 1) AS c, COORD1(POINT(ra, dec)) AS c1, "
        "ivo_healpix_index(29, ra, dec) AS h, AREA(CIRCLE(0, 0, 1)) AS a, AREA(POLYGON(0, 0, 10, 0, 0, 10)) AS pa "
        "FROM s.t WHERE id = 17",
    )
    t = data["t"].to_pandas().set_index("id")
    row = got.to_pylist()[0]
    assert row["p"] == [t.loc[17, "ra"], t.loc[17, "dec"]]
    assert row["c"] == [t.loc[17, "ra"], t.loc[17, "dec"], 1.0]
    assert row["h"] == t.loc[17, "_healpix_29"]
    assert row["a"] == pytest.approx(2 * np.pi * (1 - np.cos(np.radians(1))) * (180 / np.pi) ** 2)
    # spherical triangle with three right... area by Girard's theorem via astropy-free formula
    assert 49 < row["pa"] < 51


def test_epoch_propagation_against_astropy(con: Any, lookup: Any) -> None:
    from astropy.time import Time

    got = run(
        con,
        lookup,
        "SELECT ivo_epoch_prop_pos(269.452, 4.693, 546.98, -801.55, 10362.39, -110.5, 2016.0, 2050.0) AS p FROM s.t WHERE id = 0",
    )
    c = SkyCoord(
        269.452 * u.deg,
        4.693 * u.deg,
        distance=(1000 / 546.98) * u.pc,
        pm_ra_cosdec=-801.55 * u.mas / u.yr,
        pm_dec=10362.39 * u.mas / u.yr,
        radial_velocity=-110.5 * u.km / u.s,
        obstime=Time(2016.0, format="jyear"),
    )
    want = c.apply_space_motion(new_obstime=Time(2050.0, format="jyear"))
    ra, dec = got["p"][0].as_py()
    assert SkyCoord(ra * u.deg, dec * u.deg).separation(SkyCoord(want.ra, want.dec)).arcsec < 0.01


def test_bitwise_operators_match_numpy(con: Any, lookup: Any, data: dict[str, pa.Table]) -> None:
    got = run(
        con,
        lookup,
        "SELECT id, flags ^ 5 AS x, flags & 6 AS a, flags | 9 AS o, ~flags AS n, "
        "(flags ^ id) & 255 AS xi FROM s.t WHERE (flags ^ 3) > 4 ORDER BY id",
    )
    t = data["t"].sort_by("id")
    f, ids = t["flags"].to_numpy(), t["id"].to_numpy()
    keep = (f ^ 3) > 4
    f, ids = f[keep], ids[keep]
    assert got["id"].to_pylist() == ids.tolist()
    assert got["x"].to_pylist() == (f ^ 5).tolist()
    assert got["a"].to_pylist() == (f & 6).tolist()
    assert got["o"].to_pylist() == (f | 9).tolist()
    assert got["n"].to_pylist() == (~f).tolist()
    assert got["xi"].to_pylist() == ((f ^ ids) & 255).tolist()


# ----- shape-vs-shape predicates against a brute-force sampling oracle ----------------
# Each case is (ADQL predicate, shape a, shape b); shapes are ADQL constructors whose
# arguments may use the row's ra and dec. The oracle samples boundaries densely.
SHAPE_CASES = [
    ("CONTAINS", "CIRCLE(ra, dec, 0.3)", "POLYGON(40, -3, 48, -4, 49, 4, 42, 5)"),
    ("INTERSECTS", "CIRCLE(ra, dec, 0.3)", "POLYGON(40, -3, 48, -4, 49, 4, 42, 5)"),
    (
        "CONTAINS",
        "POLYGON(ra - 0.2, dec - 0.2, ra + 0.2, dec - 0.2, ra, dec + 0.3)",
        "CIRCLE(45, 0, 2)",
    ),
    (
        "INTERSECTS",
        "POLYGON(ra - 0.2, dec - 0.2, ra + 0.2, dec - 0.2, ra, dec + 0.3)",
        "CIRCLE(45, 0, 2)",
    ),
    (
        "CONTAINS",
        "POLYGON(44.9, -0.1, 45.1, -0.1, 45, 0.1)",
        "POLYGON(ra - 1, dec - 1, ra + 1, dec - 1, ra, dec + 1)",
    ),
    (
        "CONTAINS",
        "POLYGON(ra - 0.2, dec - 0.2, ra + 0.2, dec - 0.2, ra, dec + 0.3)",
        "POLYGON(40, -3, 48, -4, 49, 4, 42, 5)",
    ),
    (
        "INTERSECTS",
        "POLYGON(ra - 0.2, dec - 0.2, ra + 0.2, dec - 0.2, ra, dec + 0.3)",
        "POLYGON(40, -3, 48, -4, 49, 4, 42, 5)",
    ),
    ("CONTAINS", "BOX(ra, dec, 0.4, 0.3)", "CIRCLE(45, 0, 2)"),
    ("CONTAINS", "CIRCLE(ra, dec, 0.2)", "BOX(45, 1, 6, 4)"),
    ("CONTAINS", "BOX(44, 1, 0.5, 0.5)", "CIRCLE(ra, dec, 1.5)"),
    ("INTERSECTS", "CIRCLE(ra, dec, 0.2)", "BOX(45, 1, 6, 4)"),
    ("INTERSECTS", "BOX(ra, dec, 0.4, 0.3)", "POLYGON(40, -3, 48, -4, 49, 4, 42, 5)"),
    ("CONTAINS", "BOX(ra, dec, 0.4, 0.3)", "BOX(45, 1, 6, 4)"),
    ("INTERSECTS", "BOX(ra, dec, 0.4, 0.3)", "BOX(45, 1, 6, 4)"),
    ("CONTAINS", "CIRCLE(45, 0, 0.5)", "CIRCLE(ra, dec, 2)"),
]
SHAPE_ROWS = "(id < 700 OR id >= 5900)"


def _shape(spec: str, ra: float, dec: float) -> tuple[Any, ...]:
    """('circle'|'polygon'|'box', numbers...) of an ADQL constructor at one row."""
    kind, _, args = spec.partition("(")
    return (kind.lower(), *eval("(" + args[:-1] + ",)", {"ra": ra, "dec": dec}))  # noqa: S307


def _xyz(ra: Any, dec: Any) -> np.ndarray:
    r, d = np.radians(ra), np.radians(dec)
    return np.stack([np.cos(d) * np.cos(r), np.cos(d) * np.sin(r), np.sin(d)], axis=-1)


def _boundary(s: tuple[Any, ...], n: int = 400) -> np.ndarray:
    """Unit vectors densely sampling a shape's boundary."""
    kind, *v = s
    t = np.linspace(0, 1, n)
    if kind == "circle":
        ra, d, r = np.radians(v[0]), np.radians(v[1]), np.radians(v[2])
        pa_ = 2 * np.pi * t
        dec2 = np.arcsin(np.sin(d) * np.cos(r) + np.cos(d) * np.sin(r) * np.cos(pa_))
        ra2 = ra + np.arctan2(
            np.sin(pa_) * np.sin(r) * np.cos(d), np.cos(r) - np.sin(d) * np.sin(dec2)
        )
        return _xyz(np.degrees(ra2), np.degrees(dec2))
    if kind == "box":
        ra, dec, w, h = v
        x = t - 0.5
        lo, hi = np.full(n, ra - w / 2), np.full(n, ra + w / 2)
        ras = np.concatenate([ra + x * w, ra + x * w, lo, hi])
        decs = np.concatenate(
            [np.full(n, dec - h / 2), np.full(n, dec + h / 2), dec + x * h, dec + x * h]
        )
        return _xyz(ras, decs)
    pts = _xyz(np.array(v[0::2]), np.array(v[1::2]))
    out = []
    for i in range(len(pts)):  # slerp along each great-circle edge
        a, b = pts[i], pts[(i + 1) % len(pts)]
        om = np.arccos(np.clip(a @ b, -1, 1))
        out.append((np.sin((1 - t)[:, None] * om) * a + np.sin(t[:, None] * om) * b) / np.sin(om))
    return np.concatenate(out)


def _inside(s: tuple[Any, ...], p: np.ndarray) -> np.ndarray:
    """Which unit vectors lie in the shape (convex polygons: same side of every edge)."""
    kind, *v = s
    if kind == "circle":
        return p @ _xyz(v[0], v[1]) >= np.cos(np.radians(v[2]))
    if kind == "box":
        ra, dec, w, h = v
        lon = np.degrees(np.arctan2(p[:, 1], p[:, 0]))
        lat = np.degrees(np.arcsin(np.clip(p[:, 2], -1, 1)))
        return ((lon - (ra - w / 2)) % 360 <= w) & (lat >= dec - h / 2) & (lat <= dec + h / 2)
    vs = _xyz(np.array(v[0::2]), np.array(v[1::2]))
    normals = np.cross(vs, np.roll(vs, -1, axis=0))
    orient = np.sign(vs.mean(axis=0) @ normals[0])
    return np.all(orient * (p @ normals.T) > 0, axis=1)


def shape_oracle(op: str, a: tuple[Any, ...], b: tuple[Any, ...]) -> bool:
    """CONTAINS: a's boundary inside b; INTERSECTS: a boundary point in the other shape."""
    if op == "CONTAINS":
        return bool(_inside(b, _boundary(a)).all())
    return bool(_inside(b, _boundary(a)).any() or _inside(a, _boundary(b)).any())


@pytest.mark.parametrize(("op", "a", "b"), SHAPE_CASES)
def test_shape_predicates_match_oracle(
    con: Any, lookup: Any, data: dict[str, pa.Table], op: str, a: str, b: str
) -> None:
    got = run(con, lookup, f"SELECT id FROM s.t WHERE {op}({a}, {b}) = 1 AND {SHAPE_ROWS}")
    t = data["t"].to_pandas()
    t = t[(t["id"] < 700) | (t["id"] >= 5900)]
    want = [
        int(i)
        for i, ra, dec in zip(t["id"], t["ra"], t["dec"], strict=True)
        if shape_oracle(op, _shape(a, ra, dec), _shape(b, ra, dec))
    ]
    assert sorted(got["id"].to_pylist()) == sorted(want)
    assert 0 < len(want) < len(t)


def test_shape_columns(con: Any, lookup: Any) -> None:
    """Per-row circle and polygon columns against constant shapes and each other."""
    got = run(
        con,
        lookup,
        "SELECT a.rid AS a, b.rid AS b, CONTAINS(a.shape, b.fov) AS pc, INTERSECTS(a.shape, b.fov) AS p_i, "
        "CONTAINS(a.fov, b.shape) AS cp, INTERSECTS(a.shape, b.shape) AS pp, "
        "CONTAINS(a.shape, BOX(45, 0, 3, 3)) AS pb FROM s.regions AS a, s.regions AS b ORDER BY 1, 2",
    )
    # region 1: polygon 44..46 x -1..1 in circle r=2 at (45, 0); region 2 far away
    assert got.to_pylist() == [
        {"a": 1, "b": 1, "pc": 1, "p_i": 1, "cp": 0, "pp": 1, "pb": 1},
        {"a": 1, "b": 2, "pc": 0, "p_i": 0, "cp": 0, "pp": 0, "pb": 1},
        {"a": 2, "b": 1, "pc": 0, "p_i": 0, "cp": 0, "pp": 0, "pb": 0},
        {"a": 2, "b": 2, "pc": 0, "p_i": 1, "cp": 0, "pp": 1, "pb": 0},
    ]


def test_cone_radius_with_integer_division(
    con: Any, lookup: Any, data: dict[str, pa.Table]
) -> None:
    """The pruning ranges use the radius SQL computes: 10 - 19/2 is 1 (integer division)."""
    got = run(
        con,
        lookup,
        "SELECT id FROM s.t WHERE 1 = CONTAINS(POINT(ra, dec), CIRCLE(45, 0, 10 - 19/2))",
    )
    t = data["t"]
    sep = coords(t).separation(SkyCoord(45 * u.deg, 0 * u.deg)).deg
    assert sorted(got["id"].to_pylist()) == sorted(t["id"].to_numpy()[sep <= 1].tolist())
    assert ((sep > 0.6) & (sep <= 1)).sum() > 10

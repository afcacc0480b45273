"""DuckDB macros and functions the ADQL translator's SQL relies on.

``register(con)`` runs once per connection. Spherical tests are SQL macros
(inlined and vectorized by DuckDB); only what needs loops over per-row
vertex lists or HEALPix bit twiddling is a vectorized (Arrow) Python UDF.
Semantics follow pgSphere: great-circle polygon edges, boxes as RA/Dec
ranges (sbox), distances in degrees.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import duckdb
import duckdb.sqltypes as dtypes
import numpy as np
import pyarrow as pa

from sciportal.adql.shapes import box_polygon, polygon_vectors, relate, valid_polygons
from sciportal.adql.sphere import points_in_polygon, polygon_area, polygon_centroid, unit_vectors
from sciportal.adql.xmatch import disc_cells

_MACROS = [
    # great-circle distance in degrees (haversine, stable for small angles)
    """adql_sdist(ra1, dec1, ra2, dec2) AS degrees(2 * asin(least(1.0, sqrt(
        pow(sin(radians(dec2 - dec1) / 2), 2)
        + cos(radians(dec1)) * cos(radians(dec2)) * pow(sin(radians(ra2 - ra1) / 2), 2)))))""",
    # point in a pgSphere box: Dec range and an RA range taken eastwards from ra - w/2
    """adql_point_in_box(ra, dec, bra, bdec, w, h) AS
        dec BETWEEN bdec - h / 2.0 AND bdec + h / 2.0
        AND (w >= 360 OR ((((ra - (bra - w / 2.0)) % 360) + 360) % 360) <= w)""",
    """adql_box_polygon(ra, dec, w, h) AS [
        CAST(ra - w / 2.0 AS DOUBLE), dec - h / 2.0, ra + w / 2.0, dec - h / 2.0,
        ra + w / 2.0, dec + h / 2.0, ra - w / 2.0, dec + h / 2.0]""",
    """adql_box_area(dec, w, h) AS
        degrees(degrees(radians(least(w, 360)) * (sin(radians(least(90, dec + h / 2.0)))
        - sin(radians(greatest(-90, dec - h / 2.0))))))""",
    # point in a constant polygon, given its gnomonic frame (C, E, N) and the
    # projected vertices xs, ys (computed by the translator): even-odd rule
    """adql_crossings(px, py, xs, ys) AS list_sum(list_transform(range(1, len(xs) + 1), lambda i:
        CASE WHEN (ys[i] > py) <> (ys[i % len(xs) + 1] > py)
              AND px < (xs[i % len(xs) + 1] - xs[i]) * (py - ys[i])
                       / (ys[i % len(xs) + 1] - ys[i]) + xs[i]
             THEN 1 ELSE 0 END))""",
    """adql_in_planar(x, y, z, cx, cy, cz, ex, ey, ez, nx, ny, nz, xs, ys) AS
        (x * cx + y * cy + z * cz) > 0 AND adql_crossings(
            (x * ex + y * ey + z * ez) / (x * cx + y * cy + z * cz),
            (x * nx + y * ny + z * nz) / (x * cx + y * cy + z * cz), xs, ys) % 2 = 1""",
    """adql_in_projected_polygon(ra, dec, cx, cy, cz, ex, ey, ez, nx, ny, nz, xs, ys) AS
        adql_in_planar(
            cos(radians(dec)) * cos(radians(ra)), cos(radians(dec)) * sin(radians(ra)),
            sin(radians(dec)), cx, cy, cz, ex, ey, ez, nx, ny, nz, xs, ys)""",
    # TAPRegExt UDFs
    "ivo_nocasematch(value, pattern) AS CAST(value ILIKE pattern AS INTEGER)",
    """ivo_hasword(haystack, needle) AS CAST(regexp_matches(haystack,
        '(^|[^[:alnum:]_])' || regexp_escape(needle) || '($|[^[:alnum:]_])', 'i') AS INTEGER)""",
    """ivo_hashlist_has(hashlist, item) AS
        CAST(list_contains(string_split(lower(hashlist), '#'), lower(item)) AS INTEGER)""",
    "ivo_interval_overlaps(l1, h1, l2, h2) AS CAST(h1 >= l2 AND h2 >= l1 AS INTEGER)",
    "ivo_string_agg(expr, delim) AS string_agg(expr, delim)",
]

_MAS = math.pi / (180 * 3600 * 1000)
_KM_S_TO_AU_YR = 1 / 4.740470463533348  # 1 km/s in au/yr


def _point_in_polygon(ra: pa.Array, dec: pa.Array, poly: pa.Array) -> pa.Array:
    """CONTAINS(point, polygon) for per-row polygons."""
    ras = ra.to_numpy(zero_copy_only=False)
    decs = dec.to_numpy(zero_copy_only=False)
    polys = poly.to_pylist()
    out = np.zeros(len(ras), dtype=bool)
    valid = np.ones(len(ras), dtype=bool)
    for i, p in enumerate(polys):
        if p is None or ras[i] is None or np.isnan(ras[i]) or np.isnan(decs[i]):
            valid[i] = False
            continue
        try:
            out[i] = bool(points_in_polygon(np.array([ras[i]]), np.array([decs[i]]), p)[0])
        except ValueError:
            valid[i] = False
    return pa.array(out, mask=~valid)


def _polygon_area(poly: pa.Array) -> pa.Array:
    return pa.array(
        [None if p is None else polygon_area(p) for p in poly.to_pylist()], pa.float64()
    )


def _polygon_centroid(poly: pa.Array) -> pa.Array:
    return pa.array(
        [None if p is None else list(polygon_centroid(p)) for p in poly.to_pylist()],
        pa.list_(pa.float64()),
    )


_CHUNK_ELEMENTS = 1 << 20  # rows x vertices x vertices per numpy step


def _shape_lists(kind: str, arr: pa.Array) -> tuple[str, np.ndarray, np.ndarray, np.ndarray]:
    """(kind, values, offsets, valid) of a DOUBLE[] column; boxes become polygons."""
    if isinstance(arr, pa.ChunkedArray):
        arr = arr.combine_chunks()
    offsets = arr.offsets.to_numpy().astype(np.int64)
    values = np.asarray(arr.values.to_numpy(zero_copy_only=False), dtype=float)
    valid = np.asarray(arr.is_valid().to_numpy(zero_copy_only=False), dtype=bool)
    lengths = np.diff(offsets)
    if kind == "box":
        cache: dict[tuple[float, ...], list[float]] = {}
        polys: list[list[float]] = []
        for i in range(len(lengths)):
            box = tuple(values[offsets[i] : offsets[i + 1]].tolist())
            if not (valid[i] and len(box) == 4 and np.isfinite(box).all()):
                valid[i] = False
                polys.append([])
                continue
            if box not in cache:
                cache[box] = box_polygon(*box)
            polys.append(cache[box])
        lengths = np.array([len(p) for p in polys], dtype=np.int64)
        offsets = np.concatenate([[0], np.cumsum(lengths)])
        values = np.array([x for p in polys for x in p], dtype=float)
        kind = "polygon"
    ok = lengths == 3 if kind == "circle" else (lengths >= 6) & (lengths % 2 == 0)
    return kind, values, offsets, valid & ok


def _shape_stack(kind: str, flat: np.ndarray) -> tuple[tuple[np.ndarray, ...], np.ndarray]:
    """Rows of one length -> the stacked shape and which rows are usable."""
    finite = np.isfinite(flat).all(axis=1)
    if kind == "circle":
        shape = (unit_vectors(flat[:, 0], flat[:, 1]), np.radians(flat[:, 2]))
        return shape, finite
    v = polygon_vectors(flat)
    return (v,), finite & valid_polygons(v)


def _relation(op: str) -> Callable[[pa.Array, pa.Array, pa.Array, pa.Array], pa.Array]:
    def udf(ka: pa.Array, a: pa.Array, kb: pa.Array, b: pa.Array) -> pa.Array:
        """``a`` within / intersecting ``b`` for shape kinds given as constant strings."""
        n = len(a)
        if n == 0:
            return pa.array([], pa.bool_())
        kind_a, va, oa, ok_a = _shape_lists(str(ka[0]), a)
        kind_b, vb, ob, ok_b = _shape_lists(str(kb[0]), b)
        valid = ok_a & ok_b
        out = np.zeros(n, dtype=bool)
        la, lb = np.diff(oa), np.diff(ob)
        for len_a, len_b in {(int(x), int(y)) for x, y in zip(la[valid], lb[valid], strict=True)}:
            rows = np.flatnonzero(valid & (la == len_a) & (lb == len_b))
            step = max(1, _CHUNK_ELEMENTS // max(1, len_a * len_b))
            for start in range(0, len(rows), step):
                idx = rows[start : start + step]
                sa, fine_a = _shape_stack(kind_a, va[oa[idx, None] + np.arange(len_a)])
                sb, fine_b = _shape_stack(kind_b, vb[ob[idx, None] + np.arange(len_b)])
                with np.errstate(invalid="ignore", divide="ignore"):
                    out[idx] = relate(op, kind_a, sa, kind_b, sb)
                valid[idx] &= fine_a & fine_b
        return pa.array(out, mask=~valid)

    return udf


def _healpix_index(order: pa.Array, ra: pa.Array, dec: pa.Array) -> pa.Array:
    import astropy.units as u
    import cdshealpix.nested as chp
    from astropy.coordinates import Latitude, Longitude

    o = order.to_numpy(zero_copy_only=False)
    r = np.asarray(ra.to_numpy(zero_copy_only=False), dtype=float)
    d = np.asarray(dec.to_numpy(zero_copy_only=False), dtype=float)
    out = np.zeros(len(r), dtype=np.int64)
    valid = ~(np.isnan(r) | np.isnan(d))
    for depth in np.unique(o[valid]) if valid.any() else []:
        sel = valid & (o == depth)
        out[sel] = chp.lonlat_to_healpix(
            Longitude(r[sel] % 360, unit=u.deg), Latitude(d[sel], unit=u.deg), int(depth)
        )
    return pa.array(out, mask=~valid)


def _xmatch_cells(depth: pa.Array, ra: pa.Array, dec: pa.Array, radius: pa.Array) -> pa.Array:
    """Per row, the HEALPix cells (nested, at ``depth``) its cross-match circle may touch.

    ``depth`` and ``radius`` are constants of the query (see sciportal.adql.xmatch);
    rows without a finite position get an empty list.
    """
    n = len(ra)
    if n == 0:
        return pa.array([], pa.list_(pa.int64()))
    r = np.asarray(ra.to_numpy(zero_copy_only=False), dtype=float)
    d = np.asarray(dec.to_numpy(zero_copy_only=False), dtype=float)
    cells, rows = disc_cells(int(depth[0].as_py()), r, d, float(radius[0].as_py()))
    offsets = np.zeros(n + 1, dtype=np.int32)
    np.cumsum(np.bincount(rows, minlength=n), out=offsets[1:])
    return pa.ListArray.from_arrays(pa.array(offsets), pa.array(cells, pa.int64()))


def _healpix_center(order: pa.Array, ipix: pa.Array) -> pa.Array:
    import cdshealpix.nested as chp

    o = order.to_numpy(zero_copy_only=False)
    p = ipix.to_numpy(zero_copy_only=False)
    result: list[list[float] | None] = []
    for depth, pix in zip(o, p, strict=True):
        if depth is None or pix is None:
            result.append(None)
            continue
        lon, lat = chp.healpix_to_lonlat(np.array([int(pix)], dtype=np.uint64), int(depth))
        result.append([float(lon.deg[0]), float(lat.deg[0])])
    return pa.array(result, pa.list_(pa.float64()))


def epoch_prop_pos(
    ra: np.ndarray,
    dec: np.ndarray,
    parallax: np.ndarray,
    pmra: np.ndarray,
    pmdec: np.ndarray,
    rv: np.ndarray,
    ref_epoch: np.ndarray,
    out_epoch: np.ndarray,
) -> tuple[np.ndarray, np.ndarray]:
    """Rigorous space-motion propagation (ESA 1997, Hipparcos vol. 1, sec. 1.5.5).

    Units: deg, mas, mas/yr (pmra includes cos dec), km/s, Julian years.
    """
    plx = np.nan_to_num(parallax) * _MAS  # radians
    a, d = np.radians(ra), np.radians(dec)
    p = np.stack([-np.sin(a), np.cos(a), np.zeros_like(a)])
    q = np.stack([-np.sin(d) * np.cos(a), -np.sin(d) * np.sin(a), np.cos(d)])
    r = np.stack([np.cos(d) * np.cos(a), np.cos(d) * np.sin(a), np.sin(d)])
    mu_a = np.nan_to_num(pmra) * _MAS
    mu_d = np.nan_to_num(pmdec) * _MAS
    mu_r = np.nan_to_num(rv) * _KM_S_TO_AU_YR * plx
    t = out_epoch - ref_epoch
    pm0 = p * mu_a + q * mu_d
    f = 1 / np.sqrt(1 + 2 * mu_r * t + (mu_a**2 + mu_d**2 + mu_r**2) * t**2)
    u_ = (r * (1 + mu_r * t) + pm0 * t) * f
    ra1 = np.degrees(np.arctan2(u_[1], u_[0])) % 360
    dec1 = np.degrees(np.arctan2(u_[2], np.hypot(u_[0], u_[1])))
    return ra1, dec1


def _epoch_prop_pos(
    ra: pa.Array,
    dec: pa.Array,
    plx: pa.Array,
    pmra: pa.Array,
    pmdec: pa.Array,
    rv: pa.Array,
    ep0: pa.Array,
    ep1: pa.Array,
) -> pa.Array:
    cols = (ra, dec, plx, pmra, pmdec, rv, ep0, ep1)
    arrs = [np.asarray(c.to_numpy(zero_copy_only=False), dtype=float) for c in cols]
    ra1, dec1 = epoch_prop_pos(*arrs)
    bad = np.isnan(arrs[0]) | np.isnan(arrs[1]) | np.isnan(arrs[6]) | np.isnan(arrs[7])
    values = pa.array(np.stack([ra1, dec1], axis=1).ravel(), pa.float64())
    offsets = pa.array(np.arange(0, 2 * len(ra1) + 1, 2, dtype=np.int32))
    lists = pa.ListArray.from_arrays(offsets, values)
    if bad.any():
        return pa.array(
            [None if b else v for b, v in zip(bad, lists.to_pylist(), strict=True)],
            pa.list_(pa.float64()),
        )
    return lists


def register(con: duckdb.DuckDBPyConnection) -> None:
    """Define every macro and function the ADQL translator's DuckDB SQL uses."""
    for m in _MACROS:
        con.execute("CREATE OR REPLACE MACRO " + m)
    dbl = dtypes.DOUBLE
    dlist = duckdb.list_type(dbl)
    vchar = dtypes.VARCHAR
    fns = [
        ("adql_point_in_polygon", _point_in_polygon, [dbl, dbl, dlist], dtypes.BOOLEAN),
        ("adql_polygon_area", _polygon_area, [dlist], dbl),
        ("adql_region_within", _relation("within"), [vchar, dlist, vchar, dlist], dtypes.BOOLEAN),
        (
            "adql_region_intersects",
            _relation("intersects"),
            [vchar, dlist, vchar, dlist],
            dtypes.BOOLEAN,
        ),
        ("adql_polygon_centroid", _polygon_centroid, [dlist], dlist),
        ("ivo_healpix_index", _healpix_index, [dtypes.INTEGER, dbl, dbl], dtypes.BIGINT),
        (
            "adql_xmatch_cells",
            _xmatch_cells,
            [dtypes.INTEGER, dbl, dbl, dbl],
            duckdb.list_type(dtypes.BIGINT),
        ),
        ("ivo_healpix_center", _healpix_center, [dtypes.INTEGER, dtypes.BIGINT], dlist),
        ("ivo_epoch_prop_pos", _epoch_prop_pos, [dbl] * 8, dlist),
    ]
    for name, func, params, ret in fns:
        try:
            con.remove_function(name)
        except Exception:  # not registered yet
            pass
        con.create_function(  # type: ignore[call-overload]
            name, func, params, ret, type="arrow", null_handling="special", side_effects=False
        )

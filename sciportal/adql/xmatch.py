"""Positional cross-matches as equi-joins on HEALPix pixels.

A conjunct such as ``CONTAINS(POINT(t.ra, t.dec), CIRCLE(o.ra, o.dec, r)) = 1``
or ``DISTANCE(POINT(t.ra, t.dec), POINT(o.ra, o.dec)) < r``, where ``t`` is a
positional table (a HATS catalog with ``_healpix_29``), ``o`` another FROM item
of the same SELECT and ``r`` a constant, would otherwise be a nested-loop join.
Here it is planned as a hash join: at a HEALPix depth ``k`` chosen from ``r``,
``o`` gets one row per depth-``k`` cell its circle may touch (the
``adql_xmatch_pixels`` UDF, unnested), and the join compares that cell with
``t._healpix_29 >> 2 * (29 - k)``. The exact test stays in the query.

Correctness: the cells of one circle are distinct and a ``t`` row lies in
exactly one cell, so each matching (t, o) pair survives exactly once; the
cells cover the circle, so no pair is lost. Duplicating ``o`` rows is harmless
wherever the predicate filters them afterwards: in WHERE, or in the ON of a
join that does not preserve ``o`` (an inner join, or an outer join with ``o``
on its inner side). Other placements are left as they are.

When ``o`` is an upload whose rows translation is given, ``t`` is also
pruned (:func:`prune_by_uploads`): its ``ranges`` become the union of the
cells of all the upload's circles, so the engine reads only the partitions
and row groups the join can meet.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from . import nodes as n
from .scope import RangeVar, Scope
from .spatial import (
    Ranges,
    conjuncts,
    const_value,
    distance_within,
    intersect,
    joins,
    position_var,
    shape_args,
)
from .types import geometry_kind

if TYPE_CHECKING:
    import pyarrow as pa

#: Smallest distance (radians) between opposite edges of any HEALPix cell, by
#: depth (cds-healpix-rust's ``SMALLER_EDGE2OPEDGE_DIST``). A disc whose radius
#: is below this lies within its centre's cell and that cell's 8 neighbours.
_MIN_CELL_WIDTH = (
    8.410686705679302e-1,
    3.7723631722170065e-1,
    1.8203364957037313e-1,
    8.91145416330163e-2,
    4.3989734509169175e-2,
    2.1817362566054977e-2,
    1.0854009694242892e-2,
    5.409888140793663e-3,
    2.6995833266547898e-3,
    1.3481074874673246e-3,
    6.735240905806414e-4,
    3.365953703015157e-4,
    1.682452196838741e-4,
    8.410609042173736e-5,
    4.204784317861652e-5,
    2.1022283297961136e-5,
    1.0510625670060442e-5,
    5.255150320257332e-6,
    2.6275239729465538e-6,
    1.3137458638808036e-6,
    6.568678535571394e-7,
    3.284323270983175e-7,
    1.642156595517884e-7,
    8.21076709163242e-8,
    4.105378528139296e-8,
    2.0526876713226626e-8,
    1.0263433216329513e-8,
    5.131714858175969e-9,
    2.5658567623093986e-9,
    1.2829280665188905e-9,
)
#: fraction of the tabulated width a radius may use (a safety margin)
_WIDTH_MARGIN = 0.9
#: relative and absolute (radians) allowance for rounding in the exact test
_RADIUS_SLACK = (1e-9, 1e-13)
#: a cell's farthest point from its centre is within this factor of its
#: farthest vertex (measured: below 1.0 at depths 1 to 12; the covering is
#: tested in tests/adql/test_crossmatch.py)
_VERTEX_FACTOR = 1.05
#: an upload with more circles than this does not prune the catalog it is matched with
MAX_PRUNE_CIRCLES = 100_000
#: most ``_healpix_29`` ranges an upload's circles prune a catalog to (the
#: smallest gaps between them are filled beyond this)
MAX_PRUNE_RANGES = 256


@dataclass(eq=False)
class CrossMatch:
    """One cross-match conjunct planned as a pixel equi-join.

    ``indexed`` is the positional table whose (ra, dec) is one point; ``other``
    gets a row per cell of depth ``depth`` that the circle of ``radius``
    degrees around (``ra``, ``dec``), expressions over its columns, may touch,
    in its extra column ``column``. ``target`` is where the predicate sits:
    ``"WHERE"`` or the :class:`~sciportal.adql.nodes.Join` whose ON holds it.
    """

    indexed: RangeVar
    other: RangeVar
    ra: n.Expr
    dec: n.Expr
    radius: float
    depth: int
    target: object
    column: str


def match_depth(radius_deg: float) -> int | None:
    """The deepest HEALPix depth whose 3x3 cell blocks cover any disc of this radius.

    None when the radius is negative, not finite, or too large for depth 0
    (then no pixel join is worth making).
    """
    if not (math.isfinite(radius_deg) and radius_deg >= 0):
        return None
    rel, absolute = _RADIUS_SLACK
    r = math.radians(radius_deg) * (1 + rel) + absolute
    for depth in range(len(_MIN_CELL_WIDTH) - 1, -1, -1):
        if r < _WIDTH_MARGIN * _MIN_CELL_WIDTH[depth]:
            return depth
    return None


def _angle(lon1: np.ndarray, lat1: np.ndarray, lon2: np.ndarray, lat2: np.ndarray) -> np.ndarray:
    a = (
        np.sin((lat2 - lat1) / 2) ** 2
        + np.cos(lat1) * np.cos(lat2) * np.sin((lon2 - lon1) / 2) ** 2
    )
    return 2 * np.arcsin(np.sqrt(np.clip(a, 0.0, 1.0)))


def disc_cells(
    depth: int, ra_deg: np.ndarray, dec_deg: np.ndarray, radius_deg: float
) -> tuple[np.ndarray, np.ndarray]:
    """Nested cells of ``depth`` that discs around (ra, dec) may touch: (cells, row index).

    A superset of the cells each disc meets (its centre's cell and those of
    the 8 neighbours not provably out of reach), each cell once per disc.
    ``depth`` must come from :func:`match_depth` for this radius or a larger
    one. Rows whose centre is not finite get no cells. Declinations outside
    [-90, 90] are taken as the point the haversine formula sees (reflected).
    """
    import astropy.units as u
    import cdshealpix.nested as chp
    from astropy.coordinates import Latitude, Longitude

    ra = np.radians(np.asarray(ra_deg, dtype=np.float64))
    dec = np.radians(np.asarray(dec_deg, dtype=np.float64))
    ok = np.flatnonzero(np.isfinite(ra) & np.isfinite(dec))
    if len(ok) == 0:
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    x = np.cos(dec[ok]) * np.cos(ra[ok])
    y = np.cos(dec[ok]) * np.sin(ra[ok])
    z = np.sin(dec[ok])
    lon = np.arctan2(y, x) % (2 * np.pi)
    lat = np.arctan2(z, np.hypot(x, y))
    rel, absolute = _RADIUS_SLACK
    r = math.radians(radius_deg) * (1 + rel) + absolute
    centre = chp.lonlat_to_healpix(Longitude(lon, unit=u.rad), Latitude(lat, unit=u.rad), depth)
    cand = np.asarray(chp.neighbours(centre, depth), dtype=np.int64)  # (n, 9), -1: none
    cand[:, 4] = np.asarray(centre, dtype=np.int64)
    # the same cell twice in one row (never expected) is kept once
    cand.sort(axis=1)
    cand[:, 1:][cand[:, 1:] == cand[:, :-1]] = -1
    rows = np.broadcast_to(np.arange(len(ok))[:, None], cand.shape)
    keep = cand >= 0
    cells, rows = cand[keep], rows[keep]
    # drop neighbours provably out of reach: centre distance - circumradius > r
    clon, clat = chp.healpix_to_lonlat(cells.astype(np.uint64), depth)
    vlon, vlat = chp.vertices(cells.astype(np.uint64), depth)
    cl, cb = clon.rad, clat.rad
    circum = _angle(cl[:, None], cb[:, None], vlon.rad, vlat.rad).max(axis=1) * _VERTEX_FACTOR
    near = _angle(lon[rows], lat[rows], cl, cb) - circum <= r
    near |= cells == np.asarray(centre, dtype=np.int64)[rows]
    return cells[near], ok[rows[near]]


# ----- planning ---------------------------------------------------------------


def _var_only(e: n.Expr, var: RangeVar) -> bool:
    """Whether ``e`` is a deterministic expression over ``var``'s columns (at least one)."""
    found = False

    def walk(x: n.Expr) -> bool:
        nonlocal found
        if isinstance(x, n.ColumnRef):
            if x.source is not var or x.output_alias is not None or x.merged_from:
                return False
            found = True
            return True
        if isinstance(x, n.Literal):
            return True
        if isinstance(x, n.Unary):
            return walk(x.operand)
        if isinstance(x, n.Binary):
            return walk(x.left) and walk(x.right)
        if isinstance(x, n.Cast):
            return walk(x.operand)
        if isinstance(x, n.Func):
            return not x.udf and x.name != "RAND" and all(walk(a) for a in x.args)
        return False

    return walk(e) and found


def _point_args(e: n.Expr) -> tuple[n.Expr, n.Expr] | None:
    """(ra, dec) of a POINT constructor or of another point-valued expression."""
    if isinstance(e, n.Func) and not e.udf and e.name == "POINT":
        args = shape_args(e)
        return (args[0], args[1]) if len(args) == 2 else None
    if geometry_kind(e) == "point":
        return n.Func("COORD1", [e]), n.Func("COORD2", [e])
    return None


def _circle_args(e: n.Expr) -> tuple[n.Expr, n.Expr, n.Expr] | None:
    if not (isinstance(e, n.Func) and not e.udf and e.name == "CIRCLE"):
        return None
    args = shape_args(e)
    if len(args) == 2:
        centre = _point_args(args[0])
        return None if centre is None else (*centre, args[1])
    if len(args) == 3:
        return args[0], args[1], args[2]
    return None


Pair = tuple[tuple[n.Expr, n.Expr], tuple[n.Expr, n.Expr], n.Expr]  # point, point, radius


def _point_pair(pred: n.Expr) -> Pair | None:
    """(point, point, radius) when ``pred`` says two points are within a radius."""
    if not isinstance(pred, n.Comparison):
        return None
    left, op, right = pred.left, pred.op, pred.right
    for f, other in ((left, right), (right, left)):
        if op != "=" or const_value(other) != 1 or not isinstance(f, n.Func) or f.udf:
            continue
        if f.name not in ("CONTAINS", "INTERSECTS") or len(f.args) != 2:
            continue
        pairs = [(f.args[0], f.args[1])]
        if f.name == "INTERSECTS":
            pairs.append((f.args[1], f.args[0]))
        for p, c in pairs:
            point, circle = _point_args(p), _circle_args(c)
            if point is not None and circle is not None:
                return point, (circle[0], circle[1]), circle[2]
    within = distance_within(pred)
    if within is None:
        return None
    dist, bound = within
    if len(dist.args) == 4:
        a, b, c, d = dist.args
        return (a, b), (c, d), bound
    if len(dist.args) == 2:
        p1, p2 = _point_args(dist.args[0]), _point_args(dist.args[1])
        if p1 is not None and p2 is not None:
            return p1, p2, bound
    return None


def _subtree(item: n.FromItem) -> list[RangeVar]:
    if isinstance(item, (n.TableRef, n.DerivedTable)):
        return [item.var] if item.var is not None else []
    return _subtree(item.left) + _subtree(item.right)


Option = tuple[RangeVar, RangeVar, tuple[n.Expr, n.Expr], n.Expr]


def _options(pred: n.Expr, allowed: list[RangeVar]) -> list[Option]:
    """Ways to plan ``pred`` as a cross-match between two of ``allowed``.

    Each is (indexed, other, other's centre, radius); the point side comes
    first, then (when both are catalogs) the other way round, the table with
    fewer known rows preferred as the one repeated per cell.
    """
    pair = _point_pair(pred)
    if pair is None:
        return []
    a, b, bound = pair
    out: list[Option] = []
    for mine, theirs in ((a, b), (b, a)):
        t = position_var(n.Func("POINT", list(mine)))
        if t is None or t not in allowed:
            continue
        for o in allowed:
            if o is not t and all(_var_only(e, o) for e in theirs):
                out.append((t, o, theirs, bound))
    if len(out) == 2 and _rows(out[1][1]) < _rows(out[0][1]):
        out.reverse()
    return out


def _rows(var: RangeVar) -> float:
    rows = var.table.nrows if var.table is not None else None
    return math.inf if rows is None else rows


def plan_crossmatches(sel: n.Select, scope: Scope) -> None:
    """Find the cross-match conjuncts of one SELECT and record them on ``sel``."""
    candidates: list[tuple[n.Expr, object, list[RangeVar]]] = [
        (p, "WHERE", list(scope.vars)) for p in conjuncts(sel.where)
    ]
    for join in joins(sel.from_):
        if join.on is not None:
            both = _subtree(join.left) + _subtree(join.right)
            candidates += [(p, join, both) for p in conjuncts(join.on)]
    done: set[int] = set()  # one cell join per repeated table
    for pred, target, allowed in candidates:
        for t, o, (ora, odec), bound in _options(pred, allowed):
            if id(o) in done or not _may_duplicate(o, target):
                continue
            radius = const_value(bound)
            depth = None if radius is None else match_depth(radius)
            if radius is None or depth is None:
                break
            names = {c.name.lower() for c in o.columns}
            column = "_xmatch_cell"
            while column in names:
                column = "_" + column
            sel.crossmatches.append(CrossMatch(t, o, ora, odec, radius, depth, target, column))
            done.add(id(o))
            break


def _may_duplicate(o: RangeVar, target: object) -> bool:
    """Whether rows of ``o`` may be repeated below a predicate placed at ``target``."""
    if not isinstance(target, n.Join):
        return True
    if target.kind == "LEFT":
        return o in _subtree(target.right)
    if target.kind == "RIGHT":
        return o in _subtree(target.left)
    return target.kind in ("INNER", "CROSS")


# ----- pruning the catalog by an upload's circles ---------------------------------


def cell_ranges(cells: np.ndarray, depth: int, cap: int = MAX_PRUNE_RANGES) -> Ranges:
    """Sorted, disjoint ``_healpix_29`` ranges covering nested cells of ``depth``.

    Adjacent cells make one range; beyond ``cap`` ranges the smallest gaps
    between them are filled (a superset of the cells, never fewer).
    """
    cells = np.unique(np.asarray(cells, dtype=np.int64))
    if len(cells) == 0:
        return []
    breaks = np.flatnonzero(np.diff(cells) != 1) + 1
    first = np.concatenate([[0], breaks])
    last = np.concatenate([breaks - 1, [len(cells) - 1]])
    lo, hi = cells[first], cells[last] + 1
    if len(lo) > cap > 0:
        gaps = lo[1:] - hi[:-1]
        keep = np.sort(np.argsort(gaps, kind="stable")[len(gaps) - (cap - 1) :])
        lo = np.concatenate([lo[:1], lo[keep + 1]])
        hi = np.concatenate([hi[keep], hi[-1:]])
    shift = 2 * (29 - depth)
    return list(zip((lo << shift).tolist(), (hi << shift).tolist(), strict=True))


def _upload_column(data: pa.Table, e: n.Expr, var: RangeVar) -> np.ndarray | None:
    """The values of ``e`` as floats (NaN for NULL) when it is a plain column of ``var``."""
    if not (isinstance(e, n.ColumnRef) and e.source is var and e.column is not None):
        return None
    if e.output_alias is not None or e.merged_from or e.column not in data.column_names:
        return None
    import pyarrow as pa

    try:
        col = data.column(e.column).cast(pa.float64()).fill_null(math.nan)
        return np.asarray(col.to_numpy(), dtype=np.float64)
    except (pa.ArrowException, TypeError, ValueError):
        return None


def prune_by_uploads(sel: n.Select, data: Mapping[int, pa.Table]) -> None:
    """Set ``ranges`` on catalogs cross-matched with an upload whose rows are known.

    ``data`` maps ``id(table)`` of an upload's :class:`Table` to its rows. The
    catalog of each planned cross-match with such an upload (centre a plain
    column pair of it) is limited to the cells, at the match depth, of all the
    upload's circles: the cells the pixel join can meet, so no match is lost.
    Like :func:`~sciportal.adql.spatial.prune_select`, only where that is
    valid: the predicate in WHERE, or in a join's ON that does not preserve
    the catalog.
    """
    for x in sel.crossmatches:
        t, o = x.indexed, x.other
        rows = data.get(id(o.table)) if o.table is not None and o.cte is None else None
        if rows is None or rows.num_rows > MAX_PRUNE_CIRCLES:
            continue
        if x.target != "WHERE" and t.preserved:
            continue
        ra, dec = _upload_column(rows, x.ra, o), _upload_column(rows, x.dec, o)
        if ra is None or dec is None:
            continue
        cells, _ = disc_cells(x.depth, ra, dec, x.radius)
        ranges = cell_ranges(cells, x.depth)
        if t.ranges is None:
            t.ranges, t.filter_target = ranges, x.target
        else:
            t.ranges = intersect(t.ranges, ranges)
            if x.target == "WHERE":
                t.filter_target = "WHERE"

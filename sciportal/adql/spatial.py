"""Spatial pruning: find cone/polygon/box constraints a query puts on a positional table.

Phase one of the two-phase spatial search (STYLE.md point 9): a top-level
AND-conjunct of WHERE (or of a JOIN's ON, for a side the join does not
preserve) such as ``CONTAINS(POINT(t.ra, t.dec), CIRCLE(10, 20, 0.5)) = 1``
or ``DISTANCE(POINT(t.ra, t.dec), POINT(10, 20)) < 0.5`` with constant shape
arguments becomes a list of ``_healpix_29`` ranges for ``t``. The exact
spherical test stays in the query (phase two).
"""

from __future__ import annotations

import math

import numpy as np

from sciportal import healpix

from . import nodes as n
from .scope import RangeVar, Scope
from .types import is_integer

Ranges = list[tuple[int, int]]


def const_value(e: n.Expr) -> float | None:
    """The numeric value of a constant expression, else None."""
    if isinstance(e, n.Literal):
        return float(e.value) if e.kind in ("int", "float") else None
    if isinstance(e, n.Unary) and e.op in ("-", "+"):
        v = const_value(e.operand)
        return None if v is None else (-v if e.op == "-" else v)
    if isinstance(e, n.Binary) and e.op in ("+", "-", "*", "/"):
        a, b = const_value(e.left), const_value(e.right)
        if a is None or b is None:
            return None
        if e.op == "+":
            return a + b
        if e.op == "-":
            return a - b
        if e.op == "*":
            return a * b
        if b == 0:
            return None
        if is_integer(e.left.meta) and is_integer(e.right.meta):
            # SQL divides integers with truncation (the generators emit // or /)
            return float(math.trunc(a / b)) if abs(a) < 2**52 else None
        return a / b
    if isinstance(e, n.Func) and not e.udf and e.name == "PI" and not e.args:
        return math.pi
    return None


def shape_args(f: n.Func) -> list[n.Expr]:
    """Geometry constructor arguments without the coordinate system."""
    if f.args and isinstance(f.args[0], n.Literal) and f.args[0].kind in ("str", "null"):
        return f.args[1:]
    return f.args


def _consts(args: list[n.Expr]) -> list[float] | None:
    vals = [const_value(a) for a in args]
    return None if any(v is None for v in vals) else [v for v in vals if v is not None]


def position_var(e: n.Expr) -> RangeVar | None:
    """The positional table whose (ra, dec) columns ``e`` is a POINT of."""
    if not (isinstance(e, n.Func) and e.name == "POINT" and not e.udf):
        return None
    args = shape_args(e)
    if len(args) != 2:
        return None
    ra, dec = args
    if not (isinstance(ra, n.ColumnRef) and isinstance(dec, n.ColumnRef)):
        return None
    var = ra.source
    if var is None or var is not dec.source or var.table is None or not var.table.positional:
        return None
    if ra.merged_from or dec.merged_from:
        return None
    if ra.column != var.table.ra_column or dec.column != var.table.dec_column:
        return None
    return var


def _shape_ranges(shape: n.Expr) -> Ranges | None:
    """Ranges covering a constant CIRCLE/POLYGON/BOX, else None."""
    if not (isinstance(shape, n.Func) and not shape.udf):
        return None
    args = shape_args(shape)
    if shape.name == "CIRCLE":
        if len(args) == 2 and isinstance(args[0], n.Func) and args[0].name == "POINT":
            args = shape_args(args[0]) + [args[1]]
        vals = _consts(args)
        if vals is None or len(vals) != 3:
            return None
        return cone(vals[0], vals[1], vals[2])
    if shape.name == "POLYGON":
        vals = _consts(args)
        if vals is None or len(vals) < 6 or len(vals) % 2:
            return None
        try:
            return healpix.polygon_ranges(vals[0::2], vals[1::2])
        except Exception:  # degenerate polygons: no pruning, the exact test decides
            return None
    if shape.name == "BOX":
        if len(args) == 3 and isinstance(args[0], n.Func) and args[0].name == "POINT":
            args = shape_args(args[0]) + args[1:]
        vals = _consts(args)
        if vals is None or len(vals) != 4:
            return None
        return box_ranges(*vals)
    return None


def cone(ra: float, dec: float, radius: float) -> Ranges:
    """Ranges of a cone (empty for a negative radius)."""
    if radius < 0 or not all(map(math.isfinite, (ra, dec, radius))):
        return []
    return healpix.cone_ranges(ra % 360.0, max(-90.0, min(90.0, dec)), radius)


def box_ranges(ra: float, dec: float, width: float, height: float) -> Ranges | None:
    """Ranges of a cone enclosing a pgSphere-style box (None when it is too large)."""
    if width >= 180 or height >= 180 or width < 0 or height < 0:
        return None
    lo, hi = dec - height / 2, dec + height / 2
    if lo <= -90 or hi >= 90:
        return None
    t = np.linspace(-0.5, 0.5, 65)
    ras = np.concatenate(
        [ra + t * width, ra + t * width, np.full(65, ra - width / 2), np.full(65, ra + width / 2)]
    )
    decs = np.concatenate([np.full(65, lo), np.full(65, hi), dec + t * height, dec + t * height])
    r1, d1 = np.radians(ra), np.radians(dec)
    r2, d2 = np.radians(ras), np.radians(decs)
    cosd = np.sin(d1) * np.sin(d2) + np.cos(d1) * np.cos(d2) * np.cos(r2 - r1)
    radius = float(np.degrees(np.arccos(np.clip(cosd, -1, 1))).max()) * 1.01 + 1e-6
    return cone(ra, dec, radius)


def intersect(a: Ranges, b: Ranges) -> Ranges:
    """Intersection of two sorted lists of half-open ranges."""
    out: Ranges = []
    i = j = 0
    while i < len(a) and j < len(b):
        lo, hi = max(a[i][0], b[j][0]), min(a[i][1], b[j][1])
        if lo < hi:
            out.append((lo, hi))
        if a[i][1] < b[j][1]:
            i += 1
        else:
            j += 1
    return out


def _constraint(pred: n.Expr) -> tuple[RangeVar, Ranges] | None:
    """(table, ranges) for one conjunct, or None if it is not a prunable constraint."""
    if not isinstance(pred, n.Comparison):
        return None
    left, op, right = pred.left, pred.op, pred.right
    # CONTAINS(...) = 1 / INTERSECTS(...) = 1, either way round
    for a, b in ((left, right), (right, left)):
        if op == "=" and const_value(b) == 1 and isinstance(a, n.Func) and not a.udf:
            if a.name in ("CONTAINS", "INTERSECTS"):
                g1, g2 = a.args
                pairs = [(g1, g2)] if a.name == "CONTAINS" else [(g1, g2), (g2, g1)]
                for p, shape in pairs:
                    var = position_var(p)
                    if var is not None:
                        ranges = _shape_ranges(shape)
                        if ranges is not None:
                            return var, ranges
                # CONTAINS(POINT(const), CIRCLE(t.ra, t.dec, r)): a cone too
                if a.name == "CONTAINS" and isinstance(g2, n.Func) and g2.name == "CIRCLE":
                    hit = _circle_around_table(g2, g1)
                    if hit is not None:
                        return hit
    within = distance_within(pred)
    if within is None:
        return None
    dist, bound = within
    r = const_value(bound)
    if r is None:
        return None
    args = dist.args
    if len(args) == 4:
        pts: list[n.Expr] = [n.Func("POINT", args[:2]), n.Func("POINT", args[2:])]
    else:
        pts = list(args)
    for p, c in ((pts[0], pts[1]), (pts[1], pts[0])):
        var = position_var(p)
        if var is not None and isinstance(c, n.Func) and c.name == "POINT":
            vals = _consts(shape_args(c))
            if vals is not None and len(vals) == 2:
                return var, cone(vals[0], vals[1], r)
    return None


def distance_within(pred: n.Comparison) -> tuple[n.Func, n.Expr] | None:
    """(the DISTANCE call, its bound) when ``pred`` reads DISTANCE(...) < bound, either way round."""
    if pred.op in ("<", "<="):
        dist, bound = pred.left, pred.right
    elif pred.op in (">", ">="):
        dist, bound = pred.right, pred.left
    else:
        return None
    if not (isinstance(dist, n.Func) and dist.name == "DISTANCE" and not dist.udf):
        return None
    return dist, bound


def _circle_around_table(circle: n.Func, point: n.Expr) -> tuple[RangeVar, Ranges] | None:
    args = shape_args(circle)
    if len(args) != 3 or not (isinstance(point, n.Func) and point.name == "POINT"):
        return None
    var = position_var(n.Func("POINT", args[:2]))
    r = const_value(args[2])
    vals = _consts(shape_args(point))
    if var is None or r is None or vals is None or len(vals) != 2:
        return None
    return var, cone(vals[0], vals[1], r)


def conjuncts(e: n.Expr | None) -> list[n.Expr]:
    """Top-level AND terms of a condition."""
    if e is None:
        return []
    if isinstance(e, n.BoolOp) and e.op == "AND":
        return [t for item in e.items for t in conjuncts(item)]
    return [e]


def prune_select(sel: n.Select, scope: Scope) -> None:
    """Set ``ranges`` (and where to filter) on the positional tables of one SELECT."""
    found: dict[int, tuple[RangeVar, Ranges, object]] = {}

    def add(var: RangeVar, ranges: Ranges, where: object) -> None:
        old = found.get(id(var))
        if old is None:
            found[id(var)] = (var, ranges, where)
        else:
            target = "WHERE" if "WHERE" in (old[2], where) else old[2]
            found[id(var)] = (var, intersect(old[1], ranges), target)

    for pred in conjuncts(sel.where):
        hit = _constraint(pred)
        if hit is not None and hit[0] in scope.vars:
            add(hit[0], hit[1], "WHERE")
    for join in joins(sel.from_):
        if join.on is None:
            continue
        for pred in conjuncts(join.on):
            hit = _constraint(pred)
            if hit is not None and hit[0] in scope.vars and not hit[0].preserved:
                add(hit[0], hit[1], join)
    for var, ranges, where in found.values():
        var.ranges = ranges
        var.filter_target = where


def joins(items: list[n.FromItem]) -> list[n.Join]:
    """Every join of a FROM list, nested ones too."""
    out: list[n.Join] = []
    for it in items:
        if isinstance(it, n.Join):
            out.append(it)
            out.extend(joins([it.left, it.right]))
    return out

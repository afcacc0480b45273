"""Relations between spherical shapes (circles, polygons, boxes), vectorised over rows.

CONTAINS and INTERSECTS between two extended shapes, with pgSphere's
semantics: polygons have great-circle edges and are smaller than a
hemisphere; boxes are pgSphere sboxes (RA range times Dec range), turned
into polygons here whose constant-Dec edges are split into great-circle
segments short enough to stay within :data:`BOX_EDGE_TOLERANCE` of the
parallel. Everything works on stacks of equal-sized shapes, ``(m, 3)``
circle centres and ``(m, k, 3)`` polygon vertices (unit vectors), so a
batch of rows costs a few numpy operations.
"""

from __future__ import annotations

import math

import numpy as np

from .sphere import unit_vectors

#: Largest distance (radians) between a box's Dec edge and the segments replacing it.
BOX_EDGE_TOLERANCE = 1e-7
_MAX_SEGMENTS = 512


def box_polygon(ra: float, dec: float, width: float, height: float) -> list[float]:
    """Vertices ``[ra1, dec1, ...]`` (degrees) of a polygon tracing a pgSphere box.

    The meridian edges are great circles already; each Dec edge is cut into
    segments whose great-circle sagitta stays below ``BOX_EDGE_TOLERANCE``.
    """
    lo, hi = max(-90.0, dec - height / 2), min(90.0, dec + height / 2)
    w = min(width, 360.0)
    left = ra - w / 2

    def parallel(d: float) -> np.ndarray:
        if abs(d) >= 90.0:
            return np.array([left])
        # sagitta of a great-circle chord of dlon along latitude d: ~ dlon^2/8 * sin(2d)/2
        k = abs(math.sin(2 * math.radians(d))) / 2
        dlon = math.sqrt(8 * BOX_EDGE_TOLERANCE / k) if k > 0 else math.radians(w)
        n = min(_MAX_SEGMENTS, max(1, math.ceil(math.radians(w) / dlon)))
        return left + w * np.linspace(0.0, 1.0, n + 1)

    bottom, top = parallel(lo), parallel(hi)[::-1]
    out: list[float] = []
    for ras, d in ((bottom, lo), (top, hi)):
        for r in ras:
            out += [float(r), d]
    return out


def _unit(v: np.ndarray) -> np.ndarray:
    return v / np.linalg.norm(v, axis=-1, keepdims=True)


def _dot(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return np.einsum("...i,...i->...", a, b)


def _angle(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Angle between (not necessarily unit) vectors, stable for tiny and large angles."""
    return np.arctan2(np.linalg.norm(np.cross(a, b), axis=-1), _dot(a, b))


def polygon_vectors(flat: np.ndarray) -> np.ndarray:
    """``(m, 2k)`` rows of ``ra, dec`` degrees -> ``(m, k, 3)`` unit vectors."""
    return unit_vectors(flat[:, 0::2], flat[:, 1::2])


def in_polygons(p: np.ndarray, v: np.ndarray) -> np.ndarray:
    """``(m, j)`` booleans: is point ``p[i, a]`` (``(m, j, 3)``) inside polygon ``v[i]``?

    Even-odd rule in the gnomonic projection centred on the vertices' mean
    direction (great circles project to straight lines). Rows whose polygon
    does not fit in a hemisphere give NaN-free False; see :func:`valid_polygons`.
    """
    c = _unit(v.sum(axis=1))  # (m, 3)
    axis = np.where(np.abs(c[:, 2:3]) < 0.9, [[0.0, 0.0, 1.0]], [[1.0, 0.0, 0.0]])
    e = _unit(np.cross(axis, c))
    nv = np.cross(c, e)
    with np.errstate(divide="ignore", invalid="ignore"):
        dp = _dot(p, c[:, None, :])  # (m, j)
        x, y = _dot(p, e[:, None, :]) / dp, _dot(p, nv[:, None, :]) / dp
        dv = _dot(v, c[:, None, :])
        xs, ys = _dot(v, e[:, None, :]) / dv, _dot(v, nv[:, None, :]) / dv  # (m, k)
        x1, y1 = xs[:, None, :], ys[:, None, :]
        x2, y2 = np.roll(xs, -1, axis=1)[:, None, :], np.roll(ys, -1, axis=1)[:, None, :]
        yy, xx = y[:, :, None], x[:, :, None]
        crosses = ((y1 > yy) != (y2 > yy)) & (xx < (x2 - x1) * (yy - y1) / (y2 - y1) + x1)
    return (dp > 0) & (crosses.sum(axis=2) % 2 == 1)


def valid_polygons(v: np.ndarray) -> np.ndarray:
    """``(m,)``: polygons with finite vertices all in front of their mean direction."""
    s = v.sum(axis=1)
    norm = np.linalg.norm(s, axis=-1)
    with np.errstate(invalid="ignore", divide="ignore"):
        d = _dot(v, s[:, None, :]) / norm[:, None]
    return np.isfinite(v).all(axis=(1, 2)) & (norm > 1e-12) & (d > 1e-9).all(axis=1)


def _edges(v: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    return v, np.roll(v, -1, axis=1)


def arc_min_dist(p: np.ndarray, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Angular distance (radians) from ``p`` (``(m, 3)``) to the arcs a->b (``(m, k, 3)``)."""
    n = _unit(np.cross(a, b))
    pp = p[:, None, :]
    s = _dot(pp, n)
    q = pp - s[..., None] * n
    inside = (_dot(np.cross(a, q), n) >= 0) & (_dot(np.cross(q, b), n) >= 0)
    to_line = np.arcsin(np.clip(np.abs(s), 0.0, 1.0))
    to_ends = np.minimum(_angle(pp, a), _angle(pp, b))
    return np.where(inside, to_line, to_ends)


def arcs_cross(a: np.ndarray, b: np.ndarray, c: np.ndarray, d: np.ndarray) -> np.ndarray:
    """``(m,)``: does any arc a->b (``(m, k, 3)``) properly cross any arc c->d (``(m, j, 3)``)?"""
    a, b = a[:, :, None, :], b[:, :, None, :]
    c, d = c[:, None, :, :], d[:, None, :, :]
    n1, n2 = np.cross(a, b), np.cross(c, d)
    straddle = (_dot(n1, c) * _dot(n1, d) < 0) & (_dot(n2, a) * _dot(n2, b) < 0)
    x = np.cross(n1, n2)
    on_ab = (_dot(np.cross(a, x), n1) > 0) & (_dot(np.cross(x, b), n1) > 0)
    x = np.where(on_ab[..., None], x, -x)
    on_cd = (_dot(np.cross(c, x), n2) > 0) & (_dot(np.cross(x, d), n2) > 0)
    return (straddle & on_cd).any(axis=(1, 2))


# ----- the relations: a within b, a intersects b ---------------------------------------
# circles are (centre (m, 3), radius (m,) radians), polygons (m, k, 3) vertices


def circle_within_circle(
    c1: np.ndarray, r1: np.ndarray, c2: np.ndarray, r2: np.ndarray
) -> np.ndarray:
    """Centre distance plus the inner radius within the outer radius."""
    return _angle(c1, c2) + r1 <= r2


def polygon_within_circle(v: np.ndarray, c: np.ndarray, r: np.ndarray) -> np.ndarray:
    """Every edge stays within r of the centre, and the circle's outside is not inside v."""
    far = np.pi - arc_min_dist(-c, *_edges(v))  # farthest point of each edge
    hole = in_polygons(-c[:, None, :], v)[:, 0] & (r < np.pi)
    return (far <= r[:, None]).all(axis=1) & ~hole


def circle_within_polygon(c: np.ndarray, r: np.ndarray, v: np.ndarray) -> np.ndarray:
    """The centre is inside and no edge comes closer than r."""
    near = arc_min_dist(c, *_edges(v))
    return in_polygons(c[:, None, :], v)[:, 0] & (near >= r[:, None]).all(axis=1)


def polygon_within_polygon(v: np.ndarray, w: np.ndarray) -> np.ndarray:
    """All vertices of v inside w and no edges crossing (both < hemisphere)."""
    return in_polygons(v, w).all(axis=1) & ~arcs_cross(*_edges(v), *_edges(w))


def circles_intersect(c1: np.ndarray, r1: np.ndarray, c2: np.ndarray, r2: np.ndarray) -> np.ndarray:
    """Centres no farther apart than the sum of the radii."""
    return _angle(c1, c2) <= r1 + r2


def circle_intersects_polygon(c: np.ndarray, r: np.ndarray, v: np.ndarray) -> np.ndarray:
    """The centre is inside, or some edge comes within r."""
    near = arc_min_dist(c, *_edges(v))
    return in_polygons(c[:, None, :], v)[:, 0] | (near <= r[:, None]).any(axis=1)


def polygons_intersect(v: np.ndarray, w: np.ndarray) -> np.ndarray:
    """A vertex of one inside the other, crossing edges, or a shared inner point.

    The last catches equal polygons, whose vertices lie on each other's edges.
    """
    mid = _unit(v.sum(axis=1))[:, None, :]
    return (
        (in_polygons(mid, v) & in_polygons(mid, w))[:, 0]
        | in_polygons(v, w).any(axis=1)
        | in_polygons(w, v).any(axis=1)
        | arcs_cross(*_edges(v), *_edges(w))
    )


Shape = tuple[np.ndarray, ...]


def relate(op: str, ka: str, a: Shape, kb: str, b: Shape) -> np.ndarray:
    """``op`` ("within" or "intersects") for stacks of shapes of kinds ka, kb.

    Circles are ``(centre, radius)`` and polygons ``(vertices,)`` as above
    (convert boxes with :func:`box_polygon` first).
    """
    if op == "intersects":
        if ka == "polygon" and kb == "circle":
            ka, a, kb, b = kb, b, ka, a
        if ka == "circle" and kb == "circle":
            return circles_intersect(*a, *b)
        if ka == "circle":
            return circle_intersects_polygon(*a, *b)
        return polygons_intersect(*a, *b)
    if ka == "circle" and kb == "circle":
        return circle_within_circle(*a, *b)
    if ka == "circle":
        return circle_within_polygon(*a, *b)
    if kb == "circle":
        return polygon_within_circle(*a, *b)
    return polygon_within_polygon(*a, *b)

"""Spherical geometry in numpy, with pgSphere's semantics.

Polygons have great-circle edges; the inside is the part of the sphere the
vertices enclose on the side of their mean direction (polygons must be
smaller than a hemisphere, as in pgSphere). Great circles are straight
lines in the gnomonic projection centred on that mean direction, so a point
is inside exactly when its projection is inside the projected (planar)
polygon: that is the test used here and in the DuckDB macros.
"""

from __future__ import annotations

import numpy as np


def unit_vectors(ra_deg: np.ndarray, dec_deg: np.ndarray) -> np.ndarray:
    """(n, 3) unit vectors of positions in degrees."""
    ra, dec = np.radians(ra_deg), np.radians(dec_deg)
    return np.stack([np.cos(dec) * np.cos(ra), np.cos(dec) * np.sin(ra), np.sin(dec)], axis=-1)


def to_radec(v: np.ndarray) -> tuple[float, float]:
    """Position in degrees of a (not necessarily unit) vector."""
    x, y, z = (float(c) for c in v)
    ra = np.degrees(np.arctan2(y, x)) % 360.0
    dec = np.degrees(np.arctan2(z, np.hypot(x, y)))
    return float(ra), float(dec)


def projection_frame(
    ras: np.ndarray, decs: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Centre C and tangent-plane axes E, N for a polygon's gnomonic projection."""
    v = unit_vectors(np.asarray(ras, float), np.asarray(decs, float))
    c = v.sum(axis=0)
    norm = np.linalg.norm(c)
    if norm < 1e-12:
        raise ValueError("polygon vertices have no mean direction (polygon too large)")
    c = c / norm
    axis = np.array([0.0, 0.0, 1.0]) if abs(c[2]) < 0.9 else np.array([1.0, 0.0, 0.0])
    e = np.cross(axis, c)
    e /= np.linalg.norm(e)
    nvec = np.cross(c, e)
    return c, e, nvec


def project(
    v: np.ndarray, c: np.ndarray, e: np.ndarray, nvec: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Gnomonic projection of unit vectors: (x, y, d) with d = v.C (> 0 in front)."""
    d = v @ c
    with np.errstate(divide="ignore", invalid="ignore"):
        return (v @ e) / d, (v @ nvec) / d, d


def polygon_projection(
    ras: list[float], decs: list[float]
) -> tuple[np.ndarray, np.ndarray, np.ndarray, list[float], list[float]]:
    """Frame and projected vertices of a polygon (raises ValueError if > hemisphere)."""
    c, e, nvec = projection_frame(np.asarray(ras), np.asarray(decs))
    v = unit_vectors(np.asarray(ras, float), np.asarray(decs, float))
    xs, ys, d = project(v, c, e, nvec)
    if np.any(d <= 1e-9):
        raise ValueError("polygon vertices must lie within a hemisphere")
    return c, e, nvec, xs.tolist(), ys.tolist()


def in_planar_polygon(x: np.ndarray, y: np.ndarray, xs: np.ndarray, ys: np.ndarray) -> np.ndarray:
    """Even-odd rule point-in-polygon for arrays of points."""
    inside = np.zeros(np.shape(x), dtype=bool)
    nv = len(xs)
    for i in range(nv):
        j = (i + 1) % nv
        xi, yi, xj, yj = xs[i], ys[i], xs[j], ys[j]
        crosses = (yi > y) != (yj > y)
        with np.errstate(divide="ignore", invalid="ignore"):
            xint = (xj - xi) * (y - yi) / (yj - yi) + xi
        inside ^= crosses & (x < xint)
    return inside


def points_in_polygon(ra: np.ndarray, dec: np.ndarray, poly: list[float]) -> np.ndarray:
    """Which positions (degrees) lie inside a spherical polygon [ra1, dec1, ...]."""
    c, e, nvec, xs, ys = polygon_projection(poly[0::2], poly[1::2])
    x, y, d = project(unit_vectors(ra, dec), c, e, nvec)
    return (d > 0) & in_planar_polygon(x, y, np.asarray(xs), np.asarray(ys))


def polygon_area(poly: list[float]) -> float:
    """Solid angle of a spherical polygon in square degrees (fan of triangles)."""
    v = unit_vectors(np.asarray(poly[0::2], float), np.asarray(poly[1::2], float))
    total = 0.0
    a = v[0]
    for i in range(1, len(v) - 1):
        b, c = v[i], v[i + 1]
        num = float(np.dot(a, np.cross(b, c)))
        den = 1.0 + float(np.dot(a, b) + np.dot(b, c) + np.dot(c, a))
        total += 2.0 * np.arctan2(num, den)
    total = abs(total)
    if total > 2 * np.pi:
        total = 4 * np.pi - total
    return float(total * (180.0 / np.pi) ** 2)


def polygon_centroid(poly: list[float]) -> tuple[float, float]:
    """Mean direction of a polygon's vertices (ra, dec in degrees)."""
    c, _, _ = projection_frame(np.asarray(poly[0::2], float), np.asarray(poly[1::2], float))
    return to_radec(c)

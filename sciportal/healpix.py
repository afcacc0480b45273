"""The HEALPix layout of the catalog store, in one place.

Catalogs follow the HATS layout used by LSDB (``Norder=K/Dir=D/Npix=P.parquet``
with a ``_healpix_29`` nested index column). Every path, constant and
sky-region-to-index-range conversion lives here, over one shim to the HEALPix
library (cdshealpix), so the store, the ADQL translator and the engines agree.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import astropy.units as u
import cdshealpix.nested as chp
import numpy as np
from astropy.coordinates import Latitude, Longitude

SPATIAL_INDEX_COLUMN = "_healpix_29"
SPATIAL_INDEX_ORDER = 29
DATASET_DIR = "dataset"
PARTITION_INFO_FILE = "partition_info.csv"
PROPERTIES_FILE = "properties"
DIR_DIVISOR = 10_000  # HATS groups pixel files in Dir=(Npix // 10000) * 10000


@dataclass(frozen=True, slots=True, order=True)
class HealpixPixel:
    """One HEALPix cell (nested scheme): an order and a pixel number."""

    order: int
    pixel: int

    def index_range(self) -> tuple[int, int]:
        """The half-open ``[lo, hi)`` range of ``_healpix_29`` values inside this cell."""
        shift = 2 * (SPATIAL_INDEX_ORDER - self.order)
        return self.pixel << shift, (self.pixel + 1) << shift

    def relative_path(self) -> str:
        """Path of this pixel's Parquet file relative to the catalog root."""
        d = (self.pixel // DIR_DIVISOR) * DIR_DIVISOR
        return f"{DATASET_DIR}/Norder={self.order}/Dir={d}/Npix={self.pixel}.parquet"

    def path(self, catalog_root: str | Path) -> Path:
        """Absolute path of this pixel's file in a catalog."""
        return Path(catalog_root) / self.relative_path()


def healpix_29(ra_deg: np.ndarray, dec_deg: np.ndarray) -> np.ndarray:
    """The ``_healpix_29`` spatial index (int64) of positions in degrees."""
    ipix = chp.lonlat_to_healpix(
        Longitude(np.asarray(ra_deg, dtype=np.float64), unit=u.deg),
        Latitude(np.asarray(dec_deg, dtype=np.float64), unit=u.deg),
        SPATIAL_INDEX_ORDER,
    )
    return np.asarray(ipix, dtype=np.int64)


def index_to_order(index29: np.ndarray, order: int) -> np.ndarray:
    """Map ``_healpix_29`` values to the pixel numbers of a coarser order."""
    return np.right_shift(np.asarray(index29, dtype=np.int64), 2 * (SPATIAL_INDEX_ORDER - order))


def _cells_to_ranges(ipix: np.ndarray, depth: np.ndarray) -> list[tuple[int, int]]:
    shifts = 2 * (SPATIAL_INDEX_ORDER - np.asarray(depth, dtype=np.int64))
    lo = np.left_shift(np.asarray(ipix, dtype=np.int64), shifts)
    hi = np.left_shift(np.asarray(ipix, dtype=np.int64) + 1, shifts)
    order = np.argsort(lo)
    return merge_ranges(list(zip(lo[order].tolist(), hi[order].tolist(), strict=True)))


def merge_ranges(ranges: list[tuple[int, int]]) -> list[tuple[int, int]]:
    """Merge sorted half-open ranges that touch or overlap."""
    out: list[tuple[int, int]] = []
    for lo, hi in sorted(ranges):
        if out and lo <= out[-1][1]:
            if hi > out[-1][1]:
                out[-1] = (out[-1][0], hi)
        else:
            out.append((lo, hi))
    return out


def coverage_depth(radius_deg: float) -> int:
    """A HEALPix depth whose cells are a little smaller than a region of this size.

    Deep enough that the covering is tight, shallow enough that it stays a
    handful of ranges (a cone covers ~10-30 cells at this depth).
    """
    if radius_deg <= 0:
        return SPATIAL_INDEX_ORDER
    # cell size at depth d is ~ 58.6 deg / 2**d
    d = int(np.floor(np.log2(58.6 / radius_deg))) + 1
    return max(0, min(d, SPATIAL_INDEX_ORDER))


def cone_ranges(ra_deg: float, dec_deg: float, radius_deg: float) -> list[tuple[int, int]]:
    """``_healpix_29`` ranges covering a cone (a superset: exact test still needed)."""
    if radius_deg >= 180:
        return [(0, 12 << (2 * SPATIAL_INDEX_ORDER))]
    ipix, depth, _ = chp.cone_search(
        Longitude(ra_deg, unit=u.deg),
        Latitude(dec_deg, unit=u.deg),
        radius_deg * u.deg,
        coverage_depth(radius_deg),
    )
    return _cells_to_ranges(ipix, depth)


def polygon_ranges(ras_deg: list[float], decs_deg: list[float]) -> list[tuple[int, int]]:
    """``_healpix_29`` ranges covering a spherical polygon (great-circle edges)."""
    ras = np.asarray(ras_deg, dtype=np.float64)
    decs = np.asarray(decs_deg, dtype=np.float64)
    # size of the polygon: largest distance from its first vertex
    span = float(np.max(_angdist(ras[0], decs[0], ras, decs)))
    ipix, depth, _ = chp.polygon_search(
        Longitude(ras, unit=u.deg), Latitude(decs, unit=u.deg), coverage_depth(max(span / 2, 1e-6))
    )
    return _cells_to_ranges(ipix, depth)


def _angdist(ra1: float, dec1: float, ra2: np.ndarray, dec2: np.ndarray) -> np.ndarray:
    r1, d1 = np.radians(ra1), np.radians(dec1)
    r2, d2 = np.radians(ra2), np.radians(dec2)
    a = np.sin((d2 - d1) / 2) ** 2 + np.cos(d1) * np.cos(d2) * np.sin((r2 - r1) / 2) ** 2
    return np.degrees(2 * np.arcsin(np.sqrt(np.clip(a, 0, 1))))


def pixels_overlapping(
    pixels: list[HealpixPixel], ranges: list[tuple[int, int]]
) -> list[HealpixPixel]:
    """The partitions whose index range meets any of ``ranges``."""
    if not ranges:
        return []
    los = np.array([r[0] for r in ranges], dtype=np.int64)
    his = np.array([r[1] for r in ranges], dtype=np.int64)
    out = []
    for p in pixels:
        plo, phi = p.index_range()
        # first range whose hi > plo
        i = int(np.searchsorted(his, plo, side="right"))
        if i < len(los) and los[i] < phi:
            out.append(p)
    return out

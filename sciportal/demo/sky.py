"""The demo survey's sky: footprint, coadd tiling and HEALPix maps.

Everything that must be the same for every chunk (footprint, the galaxy
density field, stellar density, dust and depth maps) is built here once from
the survey seed, so chunks can be generated independently and still describe
one coherent sky.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import astropy.units as u
import cdshealpix.nested as chp
import healpy as hp
import numpy as np
from astropy.coordinates import ICRS, Galactic, SkyCoord

from sciportal.demo.columns import BANDS

# The footprint as one polygon in (RA unwrapped to [-180, 180), Dec) degrees:
# the wide "SPT" region in the south, the "neck" up to the equator and the
# Stripe 82 strip westwards along it -- the outline of the DES wide field.
FOOTPRINT_POLYGON = np.array(
    [
        (-60.0, -61.0),
        (-60.0, -40.0),
        (-25.0, -40.0),
        (-5.0, -35.0),
        (-5.0, -2.0),
        (-60.0, -2.0),
        (-60.0, 3.0),
        (48.0, 3.0),
        (48.0, -22.0),
        (60.0, -30.0),
        (100.0, -40.0),
        (100.0, -65.0),
        (40.0, -65.0),
        (-20.0, -62.0),
    ]
)
RA_MIN, RA_MAX = -60.0, 100.0
DEC_MIN, DEC_MAX = -65.0, 3.0

# DES coadd tiles: 0.7306 deg squares (10000 pixels of 0.263"), rows spaced
# so that neighbours overlap by about 1.8 arcmin.
TILE_SIZE_DEG = 0.7306
TILE_STEP_DEG = 0.7
NATIVE_PIXEL_ARCSEC = 0.263

# The demo's imaged tiles (one tile row, three neighbours) double as a deep
# patch: they hold objects at the real survey's density whatever the row
# count, so the tile images show a realistic field.
DEEP_TILE_ROW = -64  # Dec -44.8
DEEP_TILE_COLUMNS = (74, 75, 76)  # RA 72.4, 73.4, 74.3: DES0450-4448 ... DES0457-4448
DEEP_DENSITY = 20_000.0  # objects per deg2 in the deep patch (DES wide: ~2-8e4)
DEEP_MAX_FRACTION = 0.05  # never more than this share of the rows

MAP_ORDER = 8  # HEALPix order of the survey maps (~0.23 deg cells)
MAP_NSIDE = 1 << MAP_ORDER

# DES DR2-like median 10-sigma limiting magnitudes (1.95" aperture) for the
# nominal number of epochs, and the Galactic extinction coefficients.
DEPTH_10SIGMA = {"g": 24.6, "r": 24.3, "i": 23.7, "z": 23.0, "y": 21.6}
NOMINAL_EPOCHS = 8
EXTINCTION_R = {"g": 3.186, "r": 2.140, "i": 1.569, "z": 1.196, "y": 1.048}


def unwrap_ra(ra: np.ndarray) -> np.ndarray:
    """RA in degrees mapped to [-180, 180), the footprint polygon's frame."""
    return (np.asarray(ra, dtype=np.float64) + 180.0) % 360.0 - 180.0


def in_footprint(ra: np.ndarray, dec: np.ndarray) -> np.ndarray:
    """True where (ra, dec) in degrees lies inside the demo footprint (even-odd rule)."""
    x = unwrap_ra(ra)
    y = np.asarray(dec, dtype=np.float64)
    inside = np.zeros(x.shape, dtype=bool)
    poly = FOOTPRINT_POLYGON
    n = len(poly)
    for k in range(n):
        x1, y1 = poly[k]
        x2, y2 = poly[(k + 1) % n]
        if y1 == y2:
            continue
        crosses = (y1 > y) != (y2 > y)
        xint = x1 + (y - y1) * (x2 - x1) / (y2 - y1)
        inside ^= crosses & (x < xint)
    return inside


def footprint_area_deg2(samples: int = 2_000_000, seed: int = 0) -> float:
    """Monte Carlo area of the footprint, for documentation and tests."""
    rng = np.random.default_rng(seed)
    ra = rng.uniform(RA_MIN, RA_MAX, samples)
    sd0, sd1 = np.sin(np.radians(DEC_MIN)), np.sin(np.radians(DEC_MAX))
    dec = np.degrees(np.arcsin(rng.uniform(sd0, sd1, samples)))
    box = (RA_MAX - RA_MIN) * np.degrees(sd1 - sd0)
    return float(box * in_footprint(ra, dec).mean())


# --- coadd tiling -----------------------------------------------------------


def _row_layout(row: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Centre Dec and number of tiles around the sky for tile rows."""
    dec_c = row * TILE_STEP_DEG
    # enough tiles that they overlap even on the row's equator-side edge
    edge = np.maximum(np.abs(dec_c) - TILE_STEP_DEG / 2, 0.0)
    ntiles = np.ceil(360.0 * np.cos(np.radians(edge)) / TILE_STEP_DEG).astype(np.int64)
    return dec_c, ntiles


def tile_index(ra: np.ndarray, dec: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The (row, column) of the tile whose centre is nearest in each row direction."""
    row = np.rint(np.asarray(dec, dtype=np.float64) / TILE_STEP_DEG).astype(np.int64)
    _, ntiles = _row_layout(row)
    col = np.rint(np.mod(ra, 360.0) / (360.0 / ntiles)).astype(np.int64) % ntiles
    return row, col


def tile_center(row: np.ndarray, col: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """RA, Dec in degrees of tile centres."""
    dec_c, ntiles = _row_layout(np.asarray(row, dtype=np.int64))
    return np.asarray(col) * (360.0 / ntiles), dec_c


def tile_name(ra_c: float, dec_c: float) -> str:
    """DES-style name of the tile centred at (ra_c, dec_c): ``DESHHMM+DDMM``."""
    minutes = int(round(ra_c / 15.0 * 60.0)) % 1440
    sign = "-" if dec_c < 0 else "+"
    arcmin = int(round(abs(dec_c) * 60.0))
    return f"DES{minutes // 60:02d}{minutes % 60:02d}{sign}{arcmin // 60:02d}{arcmin % 60:02d}"


def tile_names(ra: np.ndarray, dec: np.ndarray) -> np.ndarray:
    """Tile name of each position, as a numpy object array of str."""
    row, col = tile_index(ra, dec)
    key = (row + 1000) * 100_000 + col
    uniq, inverse = np.unique(key, return_inverse=True)
    urow, ucol = uniq // 100_000 - 1000, uniq % 100_000
    ura, udec = tile_center(urow, ucol)
    names = np.array(
        [tile_name(float(a), float(d)) for a, d in zip(ura, udec, strict=True)], dtype=object
    )
    return names[inverse]


def deep_total(rows: int) -> int:
    """Objects of a ``rows``-object survey that lie in the deep patch."""
    area = len(DEEP_TILE_COLUMNS) * TILE_SIZE_DEG**2
    return min(int(rows * DEEP_MAX_FRACTION), int(round(DEEP_DENSITY * area)))


def sample_deep(rng: np.random.Generator, n: int) -> tuple[np.ndarray, np.ndarray]:
    """Uniform positions over the deep tiles (each point in the tile it is named after)."""
    cols = np.array(DEEP_TILE_COLUMNS)
    ra_c, dec_c = tile_center(np.full(cols.shape, DEEP_TILE_ROW), cols)
    ra_out = np.empty(n)
    dec_out = np.empty(n)
    filled = 0
    half = np.radians(TILE_SIZE_DEG / 2)
    while filled < n:
        m = int((n - filled) * 1.2) + 16
        k = rng.integers(0, cols.size, m)
        xi = rng.uniform(-half, half, m)
        eta = rng.uniform(-half, half, m)
        # inverse gnomonic projection about the tile centre
        a0, d0 = np.radians(ra_c[k]), np.radians(dec_c[k])
        rho = np.hypot(xi, eta)
        c = np.arctan(rho)
        with np.errstate(invalid="ignore", divide="ignore"):
            sin_d = np.cos(c) * np.sin(d0) + np.where(
                rho > 0, eta * np.sin(c) * np.cos(d0) / rho, 0
            )
        dec = np.degrees(np.arcsin(sin_d))
        ra = (
            np.degrees(
                a0
                + np.arctan2(
                    xi * np.sin(c), rho * np.cos(d0) * np.cos(c) - eta * np.sin(d0) * np.sin(c)
                )
            )
            % 360.0
        )
        row, col = tile_index(ra, dec)
        own = (row == DEEP_TILE_ROW) & (col == cols[k])  # drop the overlaps with neighbours
        ra, dec = ra[own][: n - filled], dec[own][: n - filled]
        ra_out[filled : filled + ra.size] = ra
        dec_out[filled : filled + dec.size] = dec
        filled += ra.size
    return ra_out, dec_out


# --- HEALPix maps -----------------------------------------------------------


@dataclass(frozen=True, slots=True)
class SkyMaps:
    """Survey-wide maps at ``MAP_ORDER`` (nested), restricted to footprint cells."""

    pixels: np.ndarray  # int64 cell numbers inside the footprint
    galaxy_cdf: np.ndarray  # cumulative galaxy density over ``pixels`` (ends at 1)
    star_cdf: np.ndarray  # cumulative stellar density over ``pixels``
    ebv: np.ndarray  # E(B-V) per cell of the full sphere (float32)
    nepochs: np.ndarray  # (5, ncells) exposures per band per cell (int16)


GALACTIC_TO_ICRS = SkyCoord(
    l=[0.0, 90.0, 0.0] * u.deg, b=[0.0, 0.0, 90.0] * u.deg, frame=Galactic()
).transform_to(ICRS())


def _icrs_to_galactic_matrix() -> np.ndarray:
    """The ICRS->Galactic rotation, taken from astropy once (then a plain matmul)."""
    c = GALACTIC_TO_ICRS.cartesian.xyz.value  # columns: Galactic axes in ICRS
    return np.asarray(c.T, dtype=np.float64)


_ICRS_TO_GAL = _icrs_to_galactic_matrix()


def galactic(ra: np.ndarray, dec: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Galactic (l, b) in degrees; agrees with astropy to well below a milliarcsecond."""
    ra_r, dec_r = np.radians(ra), np.radians(dec)
    cd = np.cos(dec_r)
    xyz = np.stack([cd * np.cos(ra_r), cd * np.sin(ra_r), np.sin(dec_r)])
    gx, gy, gz = _ICRS_TO_GAL @ xyz
    lon = np.degrees(np.arctan2(gy, gx)) % 360.0
    lat = np.degrees(np.arcsin(np.clip(gz, -1.0, 1.0)))
    return lon, lat


def _gaussian_field(rng: np.random.Generator, slope: float, lmin: float) -> np.ndarray:
    """A unit-variance Gaussian random field on the nested map grid."""
    lmax = 2 * MAP_NSIDE
    ell, em = hp.Alm.getlm(lmax)
    cl = (ell + lmin) ** (-slope)
    cl[ell < 2] = 0.0
    re = rng.standard_normal(ell.size)
    im = rng.standard_normal(ell.size)
    alm = (re + 1j * im) * np.sqrt(cl / 2.0)
    alm[em == 0] = re[em == 0] * np.sqrt(cl[em == 0])
    ring = hp.alm2map(alm, MAP_NSIDE, lmax=lmax)
    field = np.asarray(hp.reorder(ring, r2n=True), dtype=np.float64)
    return (field - field.mean()) / field.std()


@functools.lru_cache(maxsize=2)
def build_maps(seed: int) -> SkyMaps:
    """Build the survey maps from the seed (deterministic, ~0.4 s; cached, read-only)."""
    rng = np.random.Generator(np.random.PCG64(np.random.SeedSequence(seed, spawn_key=(1 << 20,))))
    ncell = hp.nside2npix(MAP_NSIDE)
    allpix = np.arange(ncell, dtype=np.int64)
    lon, lat = chp.healpix_to_lonlat(allpix, MAP_ORDER)
    ra = np.asarray(lon.to_value(u.deg), dtype=np.float64)
    dec = np.asarray(lat.to_value(u.deg), dtype=np.float64)
    _, b = galactic(ra, dec)
    inside = in_footprint(ra, dec)
    pixels = allpix[inside]

    # galaxies: a lognormal field (sigma_G = 0.35 on ~0.2 deg cells)
    sigma = 0.35
    delta = _gaussian_field(rng, slope=1.3, lmin=15.0)
    gal_density = np.exp(sigma * delta - sigma**2 / 2)
    # stars: thin + thick disc and halo, denser toward the Galactic plane
    sinb = np.maximum(np.abs(np.sin(np.radians(b))), 0.05)
    star_density = 0.1 + 0.5 / sinb**1.5 + 3.0 * np.exp(-np.abs(b) / 10.0)

    # dust: SFD-like, E(B-V) ~ 0.015 csc|b| with patchy structure
    dust = _gaussian_field(rng, slope=2.0, lmin=5.0)
    ebv = 0.014 / sinb * np.exp(0.45 * dust - 0.45**2 / 2)
    ebv = np.clip(ebv, 0.002, 1.5).astype(np.float32)

    # exposure counts: coherent over several cells (dither pattern, missing epochs)
    depth_field = _gaussian_field(rng, slope=1.0, lmin=40.0)
    nepochs = np.empty((len(BANDS), ncell), dtype=np.int16)
    for k in range(len(BANDS)):
        noise = rng.standard_normal(ncell)
        n = NOMINAL_EPOCHS + 1.6 * depth_field + 0.8 * noise
        nepochs[k] = np.clip(np.rint(n), 2, 16).astype(np.int16)

    gcdf = np.cumsum(gal_density[inside])
    scdf = np.cumsum(star_density[inside])
    return SkyMaps(
        pixels=pixels,
        galaxy_cdf=gcdf / gcdf[-1],
        star_cdf=scdf / scdf[-1],
        ebv=ebv,
        nepochs=nepochs,
    )


def sample_positions(
    rng: np.random.Generator, cdf: np.ndarray, pixels: np.ndarray, n: int
) -> tuple[np.ndarray, np.ndarray]:
    """Draw ``n`` positions from a cell density (uniform inside each cell, in the footprint)."""
    ra_out = np.empty(n, dtype=np.float64)
    dec_out = np.empty(n, dtype=np.float64)
    filled = 0
    sub = 4 ** (29 - MAP_ORDER)
    while filled < n:
        want = n - filled
        m = int(want * 1.05) + 16
        cells = pixels[np.minimum(np.searchsorted(cdf, rng.random(m), side="right"), len(cdf) - 1)]
        ipix = cells * sub + rng.integers(0, sub, m, dtype=np.int64)
        lon, lat = chp.healpix_to_lonlat(ipix, 29)
        ra = np.asarray(lon.to_value(u.deg), dtype=np.float64)
        dec = np.asarray(lat.to_value(u.deg), dtype=np.float64)
        ok = in_footprint(ra, dec)
        ra, dec = ra[ok][:want], dec[ok][:want]
        ra_out[filled : filled + len(ra)] = ra
        dec_out[filled : filled + len(dec)] = dec
        filled += len(ra)
    return ra_out, dec_out


def cell_of(ra: np.ndarray, dec: np.ndarray) -> np.ndarray:
    """Map-order cell number of each position."""
    ipix = chp.lonlat_to_healpix(
        np.asarray(ra, dtype=np.float64) * u.deg, np.asarray(dec, dtype=np.float64) * u.deg, 29
    )
    return np.right_shift(np.asarray(ipix, dtype=np.int64), 2 * (29 - MAP_ORDER))

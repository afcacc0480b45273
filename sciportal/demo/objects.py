"""One chunk of the demo coadd catalog: stars and galaxies with DES-like photometry.

A chunk is a pure function of (survey seed, chunk index, number of rows) and
the survey-wide maps, so chunks are generated one at a time, in constant
memory, and any chunk can be regenerated alone.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pyarrow as pa

from sciportal.demo import sky
from sciportal.demo.columns import BANDS, COADD_COLUMNS, arrow_schema
from sciportal.healpix import healpix_29

ZEROPOINT = 30.0  # DES coadd magnitude zero point: mag = 30 - 2.5 log10(counts)
ID_BASE = 1_000_000_000  # coadd_object_id of the first object
STAR_FRACTION = 0.12  # stars among detected objects, survey average
CLUSTERED_FRACTION = 0.25  # galaxies living in compact groups (Neyman-Scott)
NATIVE_PIX = sky.NATIVE_PIXEL_ARCSEC
PSF_FWHM = {"g": 1.12, "r": 0.96, "i": 0.88, "z": 0.84, "y": 0.95}  # arcsec, DES-like
SATURATION = {"g": 16.4, "r": 16.6, "i": 16.5, "z": 16.0, "y": 14.8}  # mag

COADD_SCHEMA = arrow_schema(COADD_COLUMNS)

# Colour tracks (g-r, r-i, i-z, z-Y) against redshift for the two galaxy
# populations, roughly following red-sequence and star-forming templates in
# the DES filters; the 4000 A break moves from g-r to r-i to i-z with z.
_Z_GRID = np.array([0.0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0, 1.2, 1.5, 2.0])
_RED = np.array(
    [
        [0.75, 0.95, 1.20, 1.45, 1.65, 1.78, 1.85, 1.88, 1.90, 1.90, 1.90, 1.90, 1.85, 1.70],
        [0.38, 0.42, 0.48, 0.56, 0.72, 0.92, 1.10, 1.24, 1.34, 1.40, 1.44, 1.48, 1.45, 1.30],
        [0.25, 0.28, 0.30, 0.33, 0.36, 0.40, 0.48, 0.57, 0.66, 0.76, 0.85, 0.95, 1.00, 0.95],
        [0.10, 0.12, 0.14, 0.15, 0.18, 0.20, 0.22, 0.25, 0.30, 0.35, 0.40, 0.46, 0.52, 0.55],
    ]
)
_BLUE = np.array(
    [
        [0.35, 0.45, 0.55, 0.65, 0.75, 0.80, 0.80, 0.78, 0.74, 0.68, 0.60, 0.48, 0.35, 0.20],
        [0.20, 0.22, 0.25, 0.28, 0.32, 0.38, 0.45, 0.52, 0.58, 0.62, 0.64, 0.60, 0.52, 0.40],
        [0.10, 0.12, 0.13, 0.14, 0.15, 0.17, 0.20, 0.25, 0.30, 0.35, 0.40, 0.46, 0.45, 0.40],
        [0.05, 0.05, 0.06, 0.07, 0.08, 0.09, 0.10, 0.12, 0.14, 0.16, 0.18, 0.21, 0.26, 0.30],
    ]
)
# The stellar locus in the same colours, parameterised by g-r.
_LOCUS_GR = np.array([-0.3, 0.2, 0.4, 0.6, 0.8, 1.0, 1.2, 1.3, 1.4, 1.45, 1.5, 1.6])
_LOCUS = np.array(
    [
        [-0.15, 0.05, 0.12, 0.20, 0.28, 0.38, 0.55, 0.75, 1.00, 1.30, 1.60, 2.00],
        [-0.10, 0.00, 0.04, 0.08, 0.12, 0.17, 0.25, 0.35, 0.50, 0.65, 0.80, 0.95],
        [-0.05, 0.00, 0.02, 0.04, 0.05, 0.07, 0.10, 0.14, 0.20, 0.25, 0.30, 0.36],
    ]
)


@dataclass(frozen=True, slots=True)
class Chunk:
    """A generated chunk: the Arrow table plus truth the other products need."""

    table: pa.Table
    is_star: np.ndarray  # bool per row
    z_true: np.ndarray  # true redshift per row (0 for stars)
    true_mag: np.ndarray  # (5, n) noiseless observed-frame magnitudes (reddened)
    r50_arcsec: np.ndarray  # intrinsic half-light radius (0 for stars)
    axis_ratio: np.ndarray  # b/a of the light profile


def chunk_rng(seed: int, chunk: int, stream: int = 0) -> np.random.Generator:
    """The independent, reproducible random stream of one chunk."""
    return np.random.Generator(
        np.random.PCG64(np.random.SeedSequence(seed, spawn_key=(chunk, stream)))
    )


def _sample_counts(
    rng: np.random.Generator, n: int, slope: float, lo: float, hi: float, limit: float, width: float
) -> np.ndarray:
    """Magnitudes from N(m) ~ 10^(slope m) times a logistic detection completeness."""
    grid = np.linspace(lo, hi, 2001)
    pdf = 10.0 ** (slope * (grid - hi)) / (1.0 + np.exp((grid - limit) / width))
    cdf = np.concatenate([[0.0], np.cumsum(0.5 * (pdf[1:] + pdf[:-1]) * np.diff(grid))])
    cdf /= cdf[-1]
    return np.interp(rng.random(n), cdf, grid)


def _group_redshifts(
    rng: np.random.Generator, z: np.ndarray, imag: np.ndarray, group: np.ndarray
) -> np.ndarray:
    """Members of a group (``group >= 0``) take the redshift of its brightest member."""
    members = np.flatnonzero(group >= 0)
    if members.size == 0:
        return z
    order = members[np.lexsort((imag[members], group[members]))]
    first = np.ones(order.size, dtype=bool)
    first[1:] = group[order][1:] != group[order][:-1]
    starts = np.flatnonzero(first)
    run = np.diff(np.append(starts, order.size))
    zgroup = np.repeat(z[order][starts], run)
    out = z.copy()
    out[order] = zgroup + rng.normal(0.0, 0.002, order.size) * (1 + zgroup)  # ~600 km/s
    return np.clip(out, 0.005, 3.0)


def _galaxy_population(
    rng: np.random.Generator, imag: np.ndarray, group: np.ndarray
) -> tuple[np.ndarray, ...]:
    """Redshift, red fraction, colours and size of galaxies of given true i magnitude.

    Galaxies in the same compact group (``group`` label, -1 for the field)
    share a redshift and are mostly red-sequence, like galaxy clusters.
    """
    n = imag.size
    # median redshift grows with magnitude; Smail-type p(z|i) ~ z^2 exp(-(z/z0)^1.5)
    zmed = np.interp(
        imag, [16.0, 18.0, 20.0, 22.0, 24.0, 25.0], [0.06, 0.15, 0.33, 0.58, 0.92, 1.1]
    )
    z = zmed / 1.412 * rng.gamma(2.0, 1.0, n) ** (1.0 / 1.5)
    z = _group_redshifts(rng, np.clip(z, 0.005, 3.0), imag, group)
    red_frac = np.interp(imag, [16.0, 19.0, 22.0, 24.0], [0.7, 0.5, 0.3, 0.2])
    red_frac = np.where(group >= 0, np.minimum(red_frac + 0.35, 0.9), red_frac)
    t = (rng.random(n) < red_frac).astype(np.float64)
    t = np.clip(t + rng.normal(0.0, 0.15, n) * (1 - t) + rng.normal(0.0, 0.05, n) * t, 0.0, 1.0)
    colours = np.empty((4, n))
    for k in range(4):
        red = np.interp(z, _Z_GRID, _RED[k])
        blue = np.interp(z, _Z_GRID, _BLUE[k])
        colours[k] = t * red + (1 - t) * blue + rng.normal(0.0, 0.04 + 0.03 * k, n)
    # sizes: log-normal half-light radius shrinking with magnitude; ellipticals smaller
    r50_med = np.interp(imag, [16.0, 19.0, 22.0, 24.0, 25.0], [3.0, 1.5, 0.8, 0.5, 0.4])
    r50 = r50_med * (1 - 0.25 * t) * 10.0 ** rng.normal(0.0, 0.2, n)
    q = np.clip(rng.beta(4.0, 2.0, n) * (1 - 0.3 * (1 - t)) + 0.2 * t, 0.15, 1.0)
    return z, t, colours, r50, q


def _star_population(rng: np.random.Generator, n: int) -> np.ndarray:
    """Colours along the stellar locus: halo turn-off stars plus disc K/M dwarfs."""
    kind = rng.random(n)
    gr = np.where(
        kind < 0.5,
        rng.normal(0.38, 0.10, n),
        np.where(kind < 0.8, rng.normal(0.95, 0.22, n), rng.uniform(1.25, 1.55, n)),
    )
    gr = np.clip(gr, -0.3, 1.6)
    colours = np.empty((4, n))
    colours[0] = gr
    for k in range(3):
        colours[k + 1] = np.interp(gr, _LOCUS_GR, _LOCUS[k]) + rng.normal(0.0, 0.03, n)
    return colours


def _clustered_positions(
    rng: np.random.Generator,
    n: int,
    centres: Callable[[int], tuple[np.ndarray, np.ndarray]],
    refill: Callable[[int], tuple[np.ndarray, np.ndarray]],
    inside: Callable[[np.ndarray, np.ndarray], np.ndarray],
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Galaxies in compact groups: centres follow ``centres``, members scatter by arcminutes.

    Returns positions and each member's group number (-1 where it was redrawn).
    """
    if n == 0:
        return np.zeros(0), np.zeros(0), np.zeros(0, dtype=np.int64)
    mean_members = 12.0
    ncen = max(1, int(round(n / mean_members)))
    cra, cdec = centres(ncen)
    owner = rng.integers(0, ncen, n)
    scale = 10.0 ** rng.uniform(np.log10(0.3), np.log10(2.0), ncen) / 60.0  # deg
    s = scale[owner]
    dx = rng.normal(0.0, 1.0, n) * s
    dy = rng.normal(0.0, 1.0, n) * s
    dec = np.clip(cdec[owner] + dy, -89.9, 89.9)
    ra = np.mod(cra[owner] + dx / np.cos(np.radians(dec)), 360.0)
    ok = inside(ra, dec)
    if not ok.all():  # members pushed over the edge: redraw them unclustered
        ra[~ok], dec[~ok] = refill(int((~ok).sum()))
        owner[~ok] = -1
    return ra, dec, owner


def _in_deep(ra: np.ndarray, dec: np.ndarray) -> np.ndarray:
    row, col = sky.tile_index(ra, dec)
    return (row == sky.DEEP_TILE_ROW) & np.isin(col, sky.DEEP_TILE_COLUMNS)


def _positions(
    rng: np.random.Generator,
    maps: sky.SkyMaps,
    nstar: int,
    ngal: int,
    nstar_deep: int,
    ngal_deep: int,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Star positions first, then galaxies; wide field, then the deep patch; group labels."""

    def wide_gal(k: int) -> tuple[np.ndarray, np.ndarray]:
        return sky.sample_positions(rng, maps.galaxy_cdf, maps.pixels, k)

    def deep(k: int) -> tuple[np.ndarray, np.ndarray]:
        return sky.sample_deep(rng, k)

    ngal_wide = ngal - ngal_deep
    nclu_wide = int(round(CLUSTERED_FRACTION * ngal_wide))
    nclu_deep = int(round(CLUSTERED_FRACTION * ngal_deep))

    def field(pos: tuple[np.ndarray, np.ndarray]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        return pos[0], pos[1], np.full(pos[0].size, -1, dtype=np.int64)

    wide_groups = _clustered_positions(rng, nclu_wide, wide_gal, wide_gal, sky.in_footprint)
    deep_groups = _clustered_positions(rng, nclu_deep, deep, deep, _in_deep)
    offset = int(wide_groups[2].max(initial=-1)) + 1
    deep_label = np.where(deep_groups[2] >= 0, deep_groups[2] + offset, -1)
    parts = [
        field(sky.sample_positions(rng, maps.star_cdf, maps.pixels, nstar - nstar_deep)),
        field(deep(nstar_deep)),
        field(wide_gal(ngal_wide - nclu_wide)),
        wide_groups,
        field(deep(ngal_deep - nclu_deep)),
        (deep_groups[0], deep_groups[1], deep_label),
    ]
    return (
        np.concatenate([p[0] for p in parts]),
        np.concatenate([p[1] for p in parts]),
        np.concatenate([p[2] for p in parts]),
    )


def _measure(
    rng: np.random.Generator, true_mag: np.ndarray, nepochs: np.ndarray, size_factor: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Noisy MAG_AUTO and its error per band; NaN where the measured flux is not positive."""
    mag = np.empty_like(true_mag)
    err = np.empty_like(true_mag)
    for k, b in enumerate(BANDS):
        m10 = sky.DEPTH_10SIGMA[b] + 1.25 * np.log10(nepochs[k] / sky.NOMINAL_EPOCHS)
        f10 = 10.0 ** (-0.4 * (m10 - ZEROPOINT))
        flux = 10.0 ** (-0.4 * (true_mag[k] - ZEROPOINT))
        # MAG_AUTO apertures grow with the object: more sky noise for extended sources
        sky_sigma = f10 / 10.0 * size_factor
        sigma = np.sqrt(sky_sigma**2 + flux * f10 / 400.0 + (0.002 * flux) ** 2)
        measured = flux + rng.standard_normal(flux.size) * sigma
        good = measured > 0
        with np.errstate(divide="ignore", invalid="ignore"):
            mag[k] = np.where(good, ZEROPOINT - 2.5 * np.log10(measured), np.nan)
            err[k] = np.where(good, 1.0857 * sigma / measured, np.nan)
        # objects below ~1 sigma are reported as non-detections
        bad = ~good | (err[k] > 1.0857)
        mag[k][bad] = np.nan
        err[k][bad] = np.nan
    return mag, err


def generate_chunk(
    seed: int, chunk: int, nrows: int, first_id: int, maps: sky.SkyMaps, ndeep: int = 0
) -> Chunk:
    """Generate rows ``first_id ...`` of the catalog as chunk ``chunk``.

    ``ndeep`` of the rows lie in the deep patch (the imaged tiles).
    """
    rng = chunk_rng(seed, chunk)
    nstar = int(round(STAR_FRACTION * nrows))
    ngal = nrows - nstar
    nstar_deep = min(nstar, int(round(STAR_FRACTION * ndeep)))
    ngal_deep = min(ngal, ndeep - nstar_deep)
    ra, dec, group = _positions(rng, maps, nstar, ngal, nstar_deep, ngal_deep)
    is_star = np.zeros(nrows, dtype=bool)
    is_star[:nstar] = True

    # true i-band magnitudes (before extinction) and the rest of the SED
    imag = np.empty(nrows)
    imag[:nstar] = _sample_counts(rng, nstar, 0.13, 14.0, 25.5, 23.9, 0.35)
    imag[nstar:] = _sample_counts(rng, ngal, 0.34, 15.5, 25.5, 23.9, 0.30)
    z_true = np.zeros(nrows)
    colours = np.empty((4, nrows))
    r50 = np.zeros(nrows)
    q = np.clip(rng.normal(0.95, 0.03, nrows), 0.8, 1.0)
    colours[:, :nstar] = _star_population(rng, nstar)
    zg, _, cg, rg, qg = _galaxy_population(rng, imag[nstar:], group[nstar:])
    z_true[nstar:], colours[:, nstar:], r50[nstar:], q[nstar:] = zg, cg, rg, qg

    cell = sky.cell_of(ra, dec)
    ebv = maps.ebv[cell]
    nepochs = maps.nepochs[:, cell]
    true_mag = np.empty((5, nrows))
    true_mag[2] = imag
    true_mag[1] = imag + colours[1]  # r = i + (r-i)
    true_mag[0] = true_mag[1] + colours[0]  # g = r + (g-r)
    true_mag[3] = imag - colours[2]  # z = i - (i-z)
    true_mag[4] = true_mag[3] - colours[3]  # Y = z - (z-Y)
    for k, b in enumerate(BANDS):
        true_mag[k] += sky.EXTINCTION_R[b] * ebv

    # morphology in the i band
    psf_i = PSF_FWHM["i"]
    psf_hlr = psf_i / 2.0
    obs_hlr = np.sqrt(r50**2 + psf_hlr**2)
    size_factor = obs_hlr / psf_hlr
    mag, err = _measure(rng, true_mag, nepochs, size_factor)

    ierr = np.where(np.isnan(err[2]), 1.0, err[2])
    flux_radius = obs_hlr / NATIVE_PIX * (1 + rng.normal(0.0, 1.0, nrows) * np.minimum(ierr, 0.3))
    flux_radius = np.maximum(flux_radius, 0.5)
    a_image = flux_radius / 1.18 / np.sqrt(q)
    b_image = a_image * q
    theta = rng.uniform(-90.0, 90.0, nrows)

    spread_true = np.where(is_star, 0.0, 0.025 * (1 - np.exp(-r50 / 0.7)))
    spreaderr = 0.0015 * 10.0 ** (0.22 * (np.clip(imag, 15, 26) - 19.0)) + 0.0003
    spread = spread_true + rng.standard_normal(nrows) * spreaderr
    ecl = (
        (spread + 3 * spreaderr > 0.005).astype(np.int16)
        + (spread + spreaderr > 0.003).astype(np.int16)
        + (spread - spreaderr > 0.003).astype(np.int16)
    )
    cs = 1.0 / (1.0 + np.exp((spread - 0.003) / (0.0006 + 0.4 * spreaderr)))
    class_star = np.clip(cs + rng.normal(0, 0.03, nrows), 0.0, 1.0)

    flags = np.zeros((5, nrows), dtype=np.int16)
    blend = rng.random(nrows)
    for k, b in enumerate(BANDS):
        flags[k] |= np.where(blend < 0.09, 2, 0).astype(np.int16)
        flags[k] |= np.where(blend < 0.03, 1, 0).astype(np.int16)
        flags[k] |= np.where(true_mag[k] < SATURATION[b], 4, 0).astype(np.int16)

    # DNF-like photo-z: scatter and outliers grow toward the faint end; stars get
    # a photo-z too (as in the real catalogs), from their colours.
    zsig = 0.025 * (1 + z_true) * 10.0 ** (0.18 * (np.clip(imag, 16, 25) - 20.0))
    zsig = np.where(is_star, 0.05 + 0.1 * rng.random(nrows), zsig)
    zphot = z_true + rng.standard_normal(nrows) * zsig
    outlier = rng.random(nrows) < np.where(is_star, 0.0, 0.02 + 0.04 * (imag > 23))
    zphot[outlier] = rng.uniform(0.0, 1.6, int(outlier.sum()))
    zphot = np.where(
        is_star, np.interp(colours[0], [-0.3, 0.6, 1.6], [0.02, 0.15, 0.5]) + zphot, zphot
    )
    zphot = np.clip(zphot, 0.0, 3.0)
    zsig_obs = np.abs(zsig * np.exp(rng.normal(0.0, 0.2, nrows)))
    no_pz = np.isnan(mag[:4]).sum(axis=0) > 1  # DNF needs at least three of griz
    zphot[no_pz] = np.nan
    zsig_obs[no_pz] = np.nan

    # order rows along the sky (as tile-by-tile catalogs are) and number them
    h29 = healpix_29(ra, dec)
    order = np.argsort(h29, kind="stable")
    ra, dec, h29 = ra[order], dec[order], h29[order]
    glon, glat = sky.galactic(ra, dec)

    def f32(x: np.ndarray) -> pa.Array:
        return pa.array(x[order].astype(np.float32), from_pandas=True)

    cols: dict[str, pa.Array] = {
        "coadd_object_id": pa.array(np.arange(first_id, first_id + nrows, dtype=np.int64)),
        "ra": pa.array(ra),
        "dec": pa.array(dec),
        "tilename": pa.array(sky.tile_names(ra, dec), type=pa.string()),
        "hpix_32": pa.array(np.right_shift(h29, 2 * (29 - 5)).astype(np.int32)),
        "hpix_4096": pa.array(np.right_shift(h29, 2 * (29 - 12)).astype(np.int32)),
        "l": pa.array(glon),
        "b": pa.array(glat),
    }
    for k, band in enumerate(BANDS):
        cols[f"mag_auto_{band}"] = f32(mag[k])
    for k, band in enumerate(BANDS):
        cols[f"magerr_auto_{band}"] = f32(err[k])
    for k, band in enumerate(BANDS):
        cols[f"flags_{band}"] = pa.array(flags[k][order])
    for k, band in enumerate(BANDS):
        cols[f"nepochs_{band}"] = pa.array(nepochs[k][order])
    cols["spread_model_i"] = f32(spread)
    cols["spreaderr_model_i"] = f32(spreaderr)
    cols["class_star_i"] = f32(class_star)
    cols["extended_class_coadd"] = pa.array(ecl[order])
    cols["flux_radius_i"] = f32(flux_radius)
    cols["a_image"] = f32(a_image)
    cols["b_image"] = f32(b_image)
    cols["theta_j2000"] = f32(theta)
    cols["ebv_sfd98"] = f32(ebv)
    cols["dnf_zmean"] = f32(zphot)
    cols["dnf_zsigma"] = f32(zsig_obs)
    table = pa.Table.from_arrays([cols[f.name] for f in COADD_SCHEMA], schema=COADD_SCHEMA)
    return Chunk(
        table=table,
        is_star=is_star[order],
        z_true=z_true[order],
        true_mag=true_mag[:, order],
        r50_arcsec=r50[order],
        axis_ratio=q[order],
    )

"""Coadd tile images of the demo survey, painted from the catalog.

Each tile is a full 0.73 deg DES-style coadd tile, resampled to a small
image (512x512 by default, ~5.1"/pixel) so that every catalog object in the
tile lands in the image while the files stay small enough for CI. Objects
are painted as PSF (stars) or PSF-softened elliptical exponential (galaxies)
profiles with the fluxes of their true magnitudes at zero point 30, then
Gaussian sky noise matching the local depth is added.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from astropy.io import fits
from astropy.wcs import WCS

from sciportal.demo import sky
from sciportal.demo.columns import BANDS
from sciportal.demo.objects import ZEROPOINT, Chunk

APERTURE_DIAMETER = 1.95  # arcsec, the aperture the 10-sigma depths refer to
SUPERSAMPLE = 5
PAINT_FWHM = 0.95  # arcsec
MJD_START, MJD_END = 56534.0, 58540.0  # DES wide survey, Aug 2013 - Feb 2019


@dataclass(frozen=True, slots=True)
class TileSpec:
    """One tile image: its name, centre and pixel grid."""

    name: str
    ra: float
    dec: float
    npix: int

    @property
    def scale_arcsec(self) -> float:
        """Pixel scale that makes the image span the whole coadd tile."""
        return sky.TILE_SIZE_DEG * 3600.0 / self.npix

    def wcs(self) -> WCS:
        """The gnomonic (TAN) WCS of the tile, north up, east left."""
        w = WCS(naxis=2)
        w.wcs.ctype = ["RA---TAN", "DEC--TAN"]
        w.wcs.crval = [self.ra, self.dec]
        w.wcs.crpix = [(self.npix + 1) / 2.0, (self.npix + 1) / 2.0]
        s = self.scale_arcsec / 3600.0
        w.wcs.cd = [[-s, 0.0], [0.0, s]]
        w.wcs.cunit = ["deg", "deg"]
        w.wcs.radesys = "ICRS"
        return w


def demo_tiles(npix: int) -> list[TileSpec]:
    """The demo's tiles: the three neighbours of the deep patch."""
    cols = np.array(sky.DEEP_TILE_COLUMNS)
    ra, dec = sky.tile_center(np.full(cols.shape, sky.DEEP_TILE_ROW), cols)
    return [
        TileSpec(sky.tile_name(float(a), float(d)), float(a), float(d), npix)
        for a, d in zip(ra, dec, strict=True)
    ]


@dataclass(slots=True)
class TileSources:
    """Catalog objects collected (while streaming) that fall on a tile image."""

    spec: TileSpec
    parts: list[dict[str, np.ndarray]] = field(default_factory=list)

    def collect(self, chunk: Chunk) -> None:
        """Keep the objects of ``chunk`` that land on this tile (with a small margin)."""
        t = chunk.table
        ra = t.column("ra").to_numpy()
        dec = t.column("dec").to_numpy()
        half = sky.TILE_SIZE_DEG * 0.75
        near = np.abs(dec - self.spec.dec) < half
        dra = np.abs((ra - self.spec.ra + 180.0) % 360.0 - 180.0)
        near &= dra * np.cos(np.radians(self.spec.dec)) < half
        idx = np.flatnonzero(near)
        if idx.size == 0:
            return
        x, y = self.spec.wcs().all_world2pix(ra[idx], dec[idx], 0)
        margin = 3.0
        on = (x > -margin) & (y > -margin) & (x < self.spec.npix - 1 + margin)
        on &= y < self.spec.npix - 1 + margin
        idx = idx[on]
        self.parts.append(
            {
                "ra": ra[idx],
                "dec": dec[idx],
                "true_mag": chunk.true_mag[:, idx],
                "is_star": chunk.is_star[idx],
                "r50": chunk.r50_arcsec[idx],
                "q": chunk.axis_ratio[idx],
                "theta": t.column("theta_j2000").to_numpy()[idx].astype(np.float64),
                "nepochs": np.stack(
                    [t.column(f"nepochs_{b}").to_numpy()[idx] for b in BANDS]
                ).astype(np.float64),
            }
        )

    def merged(self) -> dict[str, np.ndarray]:
        """All collected objects as one set of arrays."""
        if not self.parts:
            empty = np.zeros(0)
            return {
                "ra": empty,
                "dec": empty,
                "true_mag": np.zeros((5, 0)),
                "is_star": np.zeros(0, dtype=bool),
                "r50": empty,
                "q": empty,
                "theta": empty,
                "nepochs": np.zeros((5, 0)),
            }
        axis = {"true_mag": 1, "nepochs": 1}
        return {
            k: np.concatenate([p[k] for p in self.parts], axis=axis.get(k, 0))
            for k in self.parts[0]
        }


def _profiles(
    npix: int,
    x: np.ndarray,
    y: np.ndarray,
    r50_pix: np.ndarray,
    q: np.ndarray,
    theta_deg: np.ndarray,
    psf_sigma_pix: float,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Unit-flux profiles of all objects, integrated over pixels by supersampling.

    Returns (flat pixel index, weight, object index) triplets, so that each band's
    image is one ``bincount`` with the band's fluxes. Objects are batched by stamp
    size to bound memory.
    """
    extent = np.maximum(np.maximum(4.0 * psf_sigma_pix, 4.5 * r50_pix), 1.0)
    rads = np.minimum(np.ceil(extent), 40).astype(np.int64)
    out_idx: list[np.ndarray] = []
    out_w: list[np.ndarray] = []
    out_obj: list[np.ndarray] = []
    sub = (np.arange(SUPERSAMPLE) + 0.5) / SUPERSAMPLE - 0.5
    for rad in np.unique(rads):
        members = np.flatnonzero(rads == rad)
        side = 2 * int(rad) + 1
        per_obj = side * side * SUPERSAMPLE * SUPERSAMPLE
        batch = max(1, 2_000_000 // per_obj)
        off = np.arange(-rad, rad + 1)
        fine = (off[:, None] + sub[None, :]).ravel()
        for start in range(0, members.size, batch):
            sel = members[start : start + batch]
            bx, by = x[sel], y[sel]
            br, bq, bt = r50_pix[sel], q[sel], np.radians(theta_deg[sel])
            cx, cy = np.rint(bx).astype(np.int64), np.rint(by).astype(np.int64)
            dx = (cx - bx)[:, None, None] + fine[None, None, :]
            dy = (cy - by)[:, None, None] + fine[None, :, None]
            # sky offsets: x grows westward (east left), y northward
            east, north = -dx, dy
            st, ct = np.sin(bt)[:, None, None], np.cos(bt)[:, None, None]
            u = east * st + north * ct  # along the major axis (PA east of north)
            v = east * ct - north * st
            qq = bq[:, None, None]
            rr = br[:, None, None]
            r_ell2 = u**2 * qq + v**2 / qq
            gal = np.exp(-1.678 * np.sqrt(r_ell2 + psf_sigma_pix**2) / np.maximum(rr, 1e-3))
            star = np.exp(-(dx**2 + dy**2) / (2 * psf_sigma_pix**2))
            prof = np.where(rr > 0, gal, star)
            prof = prof.reshape(sel.size, side, SUPERSAMPLE, side, SUPERSAMPLE).sum(axis=(2, 4))
            prof /= prof.sum(axis=(1, 2))[:, None, None]
            iy = np.broadcast_to(cy[:, None, None] + off[None, :, None], prof.shape)
            ix = np.broadcast_to(cx[:, None, None] + off[None, None, :], prof.shape)
            obj = np.broadcast_to(sel[:, None, None], prof.shape)
            keep = (iy >= 0) & (iy < npix) & (ix >= 0) & (ix < npix)
            out_idx.append((iy * npix + ix)[keep])
            out_w.append(prof[keep])
            out_obj.append(obj[keep])
    if not out_idx:
        return np.zeros(0, np.int64), np.zeros(0), np.zeros(0, np.int64)
    return np.concatenate(out_idx), np.concatenate(out_w), np.concatenate(out_obj)


def render_tile(
    sources: TileSources, seed: int, tile_index: int, nepochs_map: np.ndarray
) -> list[fits.PrimaryHDU]:
    """The FITS images of one tile, one per band (grizY)."""
    spec = sources.spec
    w = spec.wcs()
    scale = spec.scale_arcsec
    src = sources.merged()
    # one PSF for all bands: the per-band differences (0.84-1.12") vanish at demo
    # pixel scales, and sharing the profiles makes painting 5x cheaper
    psf_sigma = PAINT_FWHM / 2.3548 / scale
    x, y = w.all_world2pix(src["ra"], src["dec"], 0)
    pix, weight, obj = _profiles(
        spec.npix, x, y, src["r50"] / scale, src["q"], src["theta"], psf_sigma
    )
    cell = sky.cell_of(np.array([spec.ra]), np.array([spec.dec]))[0]
    hdus = []
    for k, band in enumerate(BANDS):
        flux = 10.0 ** (-0.4 * (src["true_mag"][k] - ZEROPOINT))
        counts = np.bincount(pix, weights=weight * flux[obj], minlength=spec.npix**2)
        image = counts.astype(np.float64).reshape(spec.npix, spec.npix)
        nep = int(nepochs_map[k, cell])
        m10 = sky.DEPTH_10SIGMA[band] + 1.25 * np.log10(nep / sky.NOMINAL_EPOCHS)
        f10 = 10.0 ** (-0.4 * (m10 - ZEROPOINT))
        aperture_area = np.pi * (APERTURE_DIAMETER / 2) ** 2
        sigma = f10 / 10.0 * np.sqrt(max(scale**2 / aperture_area, 1.0))
        rng = np.random.Generator(
            np.random.PCG64(np.random.SeedSequence(seed, spawn_key=(1 << 21, tile_index, k)))
        )
        image += rng.standard_normal(image.shape) * sigma
        hdus.append(_hdu(spec, band, image, w, sigma, m10, nep, seed, int(src["ra"].size)))
    return hdus


def _hdu(
    spec: TileSpec,
    band: str,
    image: np.ndarray,
    w: WCS,
    sigma: float,
    m10: float,
    nep: int,
    seed: int,
    nsources: int,
) -> fits.PrimaryHDU:
    """Wrap one band's pixels with the WCS and the keywords services and people need."""
    label = band if band != "y" else "Y"
    hdr = w.to_header()
    hdr["BUNIT"] = ("count", "flux per pixel at zero point MAGZERO")
    hdr["TILENAME"] = (spec.name, "coadd tile name (as in the catalog)")
    hdr["OBJECT"] = spec.name
    hdr["FILTER"] = (label, "DECam band")
    hdr["BAND"] = (label, "DECam band")
    hdr["MAGZERO"] = (ZEROPOINT, "mag = MAGZERO - 2.5 log10(pixel sum)")
    hdr["PIXSCAL1"] = (spec.scale_arcsec, "[arcsec/pixel] pixel scale along axis 1")
    hdr["PIXSCAL2"] = (spec.scale_arcsec, "[arcsec/pixel] pixel scale along axis 2")
    hdr["FWHM"] = (PAINT_FWHM, "[arcsec] PSF FWHM of the painted sources")
    hdr["SKYSIGMA"] = (float(sigma), "[count] sky noise per pixel")
    hdr["MAGLIM10"] = (round(float(m10), 3), "10-sigma limit in a 1.95 arcsec aperture")
    hdr["NEPOCHS"] = (nep, "single-epoch exposures in the coadd")
    hdr["EXPTIME"] = (90.0 * nep, "[s] summed exposure time")
    hdr["MJD-OBS"] = (MJD_START, "first exposure (survey start)")
    hdr["MJD-END"] = (MJD_END, "last exposure (survey end)")
    hdr["TELESCOP"] = "Blanco 4m"
    hdr["INSTRUME"] = "DECam"
    hdr["ORIGIN"] = "sciportal demo survey (synthetic)"
    hdr["DEMOSEED"] = (seed, "seed of the demo survey")
    hdr["NSOURCES"] = (nsources, "catalog objects painted")
    hdr["COMMENT"] = "Synthetic coadd tile generated by sciportal.demo; not real data."
    return fits.PrimaryHDU(data=image.astype(np.float32), header=hdr)


def write_tile(hdu: fits.PrimaryHDU, path: Path) -> None:
    """Write atomically: a temporary file in the same folder, then rename."""
    tmp = path.with_name(f".{path.name}.tmp")
    hdu.writeto(tmp, overwrite=True, output_verify="exception")
    os.replace(tmp, path)

"""The spectroscopic sample: a bright, incomplete subset of the coadd objects.

Each chunk contributes a fixed quota (proportional to its rows), chosen with
magnitude-dependent weights like a real compilation of redshift surveys, so
the sample is built while streaming and is the same for the same seed.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from sciportal.demo.columns import SPECZ_COLUMNS, arrow_schema
from sciportal.demo.objects import Chunk, chunk_rng
from sciportal.demo.sky import unwrap_ra

SPECZ_SCHEMA = arrow_schema(SPECZ_COLUMNS)
SPECZ_MAX = 10_000
SPECZ_MIN = 1_000
SPECZ_FAINT_LIMIT = 22.5  # i-band MAG_AUTO


def specz_total(rows: int) -> int:
    """Target size of the spectroscopic sample for a survey of ``rows`` objects."""
    return min(rows, SPECZ_MAX, max(SPECZ_MIN, rows // 100))


def chunk_quota(rows: int, start: int, stop: int) -> int:
    """How many spectra the rows ``[start, stop)`` contribute (quotas sum to the total)."""
    total = specz_total(rows)
    return total * stop // rows - total * start // rows


def _survey(imag: np.ndarray, ra: np.ndarray, dec: np.ndarray, is_star: np.ndarray) -> np.ndarray:
    """Which survey targeted each object: bright all-sky, SDSS on the equator, deep fields."""
    x = unwrap_ra(ra)
    out = np.full(imag.shape, "OzDES", dtype=object)
    out[imag < 21.0] = "2dFGRS"
    out[imag < 17.5] = "6dFGS"
    out[(dec > -3.0) & (imag < 21.0) & (imag >= 17.5)] = "SDSS"
    out[(dec > -7.0) & (x > 30.0) & (x < 39.0) & (imag >= 21.0)] = "VIPERS"
    out[(dec < -25.0) & (dec > -30.0) & (x > 50.0) & (x < 56.0) & (imag >= 21.0)] = "VVDS"
    out[is_star] = "SDSS"
    return out


def select_chunk(seed: int, chunk_index: int, chunk: Chunk, quota: int) -> pa.Table:
    """Pick ``quota`` spectroscopic targets from a chunk and give them redshifts."""
    rng = chunk_rng(seed, chunk_index, stream=1)
    t = chunk.table
    imag_col = t.column("mag_auto_i")
    imag = np.asarray(pc.fill_null(imag_col, 99.0).to_numpy(), dtype=np.float64)
    cand = np.flatnonzero((imag < SPECZ_FAINT_LIMIT) & (imag > 14.0))
    if quota <= 0 or cand.size == 0:
        return SPECZ_SCHEMA.empty_table()
    mi = imag[cand]
    weight = np.exp(-0.5 * ((mi - 19.5) / 1.6) ** 2) * np.where(chunk.is_star[cand], 0.05, 1.0)
    # weighted sampling without replacement (Efraimidis-Spirakis keys), then id order
    keys = np.log(rng.random(cand.size)) / weight
    k = min(quota, cand.size)
    pick = np.sort(cand[np.argpartition(-keys, k - 1)[:k]])

    is_star = chunk.is_star[pick]
    ztrue = chunk.z_true[pick]
    n = pick.size
    zerr = np.where(is_star, 0.0002, 0.00015 * (1 + ztrue) * np.exp(rng.normal(0, 0.3, n)))
    z = ztrue + rng.standard_normal(n) * zerr
    flag = np.where(rng.random(n) < 0.82, 4, 3).astype(np.int16)
    u = rng.random(n)
    wrong = u < 0.05
    flag[wrong] = np.where(u[wrong] < 0.015, 1, 2).astype(np.int16)
    z[wrong] = np.where(
        is_star[wrong], z[wrong], np.abs(ztrue[wrong] + rng.normal(0, 0.4, int(wrong.sum())))
    )
    ra = t.column("ra").to_numpy()[pick]
    dec = t.column("dec").to_numpy()[pick]
    cols = {
        "coadd_object_id": t.column("coadd_object_id").take(pa.array(pick)),
        "ra": pa.array(ra),
        "dec": pa.array(dec),
        "z": pa.array(np.round(z, 6)),
        "z_err": pa.array(zerr.astype(np.float32)),
        "survey": pa.array(_survey(imag[pick], ra, dec, is_star), type=pa.string()),
        "spec_class": pa.array(
            np.where(is_star, "STAR", "GALAXY").astype(object), type=pa.string()
        ),
        "flag": pa.array(flag),
        "mag_auto_i": imag_col.take(pa.array(pick)),
    }
    arrays = [cols[f.name] for f in SPECZ_SCHEMA]
    return pa.Table.from_arrays(arrays, schema=SPECZ_SCHEMA)

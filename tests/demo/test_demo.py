"""The demo survey generator: determinism, footprint, metadata, physics, tiles.

Oracles are independent of the generator where possible: astropy for units,
UCDs, Galactic coordinates and WCS; brute-force geometry for the footprint;
the committed rd/demo.yaml loaded as plain YAML for the column types.
"""

from __future__ import annotations

from pathlib import Path

import astropy.units as u
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest
import yaml
from astropy.coordinates import SkyCoord
from astropy.io import fits
from astropy.io.votable.ucd import check_ucd
from astropy.wcs import WCS

from sciportal.demo import DemoFiles, generate
from sciportal.demo.descriptor import render
from sciportal.demo.sky import FOOTPRINT_POLYGON, deep_total, in_footprint, unwrap_ra
from sciportal.demo.specz import specz_total

ROOT = Path(__file__).resolve().parents[2]
RD = ROOT / "rd" / "demo.yaml"
ROWS = 100_000
TILE_PIXELS = 256

VOTABLE_OF_ARROW = {
    pa.int64(): "long",
    pa.int32(): "int",
    pa.int16(): "short",
    pa.float32(): "float",
    pa.float64(): "double",
    pa.string(): "char",
    pa.large_string(): "char",
    pa.bool_(): "boolean",
}


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> DemoFiles:
    return generate(tmp_path_factory.mktemp("demo"), rows=ROWS, seed=7, tile_pixels=TILE_PIXELS)


@pytest.fixture(scope="module")
def coadd(demo: DemoFiles) -> pa.Table:
    return pa.concat_tables(pq.read_table(p) for p in demo.coadd)


@pytest.fixture(scope="module")
def rd() -> dict:
    with RD.open() as fh:
        return yaml.safe_load(fh)


def _rd_table(rd: dict, name: str) -> dict:
    return next(t for t in rd["tables"] if t["name"] == name)


# --- determinism and sizes ------------------------------------------------------


def test_same_seed_same_values(demo: DemoFiles, coadd: pa.Table, tmp_path: Path) -> None:
    again = generate(tmp_path, rows=ROWS, seed=7, tiles=False)
    assert pa.concat_tables(pq.read_table(p) for p in again.coadd).equals(coadd)
    assert pq.read_table(again.specz).equals(pq.read_table(demo.specz))
    assert again.tiles == []


def test_other_seed_other_values(coadd: pa.Table, tmp_path: Path) -> None:
    other = generate(tmp_path, rows=2_000, seed=8, tiles=False)
    t = pq.read_table(other.coadd[0])
    assert t.num_rows == 2_000
    assert not np.array_equal(t.column("ra").to_numpy(), coadd.column("ra").to_numpy()[:2000])


def test_row_counts_and_chunking(demo: DemoFiles, coadd: pa.Table) -> None:
    assert [p.name for p in demo.coadd] == ["coadd-0000.parquet"]
    assert coadd.num_rows == ROWS
    ids = coadd.column("coadd_object_id").to_numpy()
    assert np.unique(ids).size == ROWS
    spec = pq.read_table(demo.specz)
    assert spec.num_rows == 1_000  # rows // 100, at least 1000


def test_chunks_are_independent_and_sized(tmp_path: Path) -> None:
    files = generate(tmp_path / "a", rows=7_000, seed=3, tiles=False, chunk_rows=3_000)
    sizes = [pq.read_metadata(p).num_rows for p in files.coadd]
    assert sizes == [3_000, 3_000, 1_000]
    # chunk 0 does not depend on how many rows follow it
    files2 = generate(tmp_path / "b", rows=3_000, seed=3, tiles=False, chunk_rows=3_000)
    assert pq.read_table(files2.coadd[0]).equals(pq.read_table(files.coadd[0]))
    ids = pa.concat_tables(pq.read_table(p) for p in files.coadd).column("coadd_object_id")
    assert np.array_equal(np.sort(ids.to_numpy()), ids.to_numpy()[0] + np.arange(7_000))


def test_regenerating_fewer_rows_removes_stale_chunks(tmp_path: Path) -> None:
    generate(tmp_path, rows=3_000, tiles=False, chunk_rows=1_000)
    files = generate(tmp_path, rows=1_500, tiles=False, chunk_rows=1_000)
    assert sorted(p.name for p in tmp_path.glob("coadd-*.parquet")) == [
        "coadd-0000.parquet",
        "coadd-0001.parquet",
    ]
    assert len(files.coadd) == 2
    assert not list(tmp_path.glob(".*.tmp"))


def test_interrupted_run_keeps_previous_survey(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import sciportal.demo as demo_mod

    first = generate(tmp_path, rows=3_000, seed=1, tiles=False, chunk_rows=1_000)
    before = {p.name: p.read_bytes() for p in tmp_path.glob("*.parquet")}
    real_chunk = demo_mod.generate_chunk

    def failing_chunk(seed: int, chunk: int, *args: object) -> object:
        if chunk == 2:
            raise KeyboardInterrupt  # e.g. Ctrl-C in the middle of a long run
        return real_chunk(seed, chunk, *args)  # type: ignore[arg-type]

    monkeypatch.setattr(demo_mod, "generate_chunk", failing_chunk)
    with pytest.raises(KeyboardInterrupt):
        generate(tmp_path, rows=3_000, seed=2, tiles=False, chunk_rows=1_000)
    assert {p.name: p.read_bytes() for p in tmp_path.glob("*.parquet")} == before
    assert len(first.coadd) == 3
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]


def test_tiny_survey(tmp_path: Path) -> None:
    files = generate(tmp_path, rows=1, tile_pixels=32)
    assert pq.read_metadata(files.coadd[0]).num_rows == 1
    assert pq.read_metadata(files.specz).num_rows <= 1
    assert len(files.tiles) == 15
    data = fits.getdata(files.tiles[0])
    assert data.shape == (32, 32) and np.isfinite(data).all()


def test_sample_sizes_scale_with_rows() -> None:
    assert specz_total(1_000_000) == 10_000
    assert specz_total(10**8) == 10_000
    assert specz_total(200_000) == 2_000
    assert specz_total(50_000) == 1_000
    assert specz_total(300) == 300
    assert deep_total(10**6) == deep_total(10**8) > 30_000  # 2e4 per deg2 over 3 tiles
    assert deep_total(100_000) == 5_000


def test_bad_arguments() -> None:
    with pytest.raises(ValueError, match="rows"):
        generate(Path("/nonexistent-never-created"), rows=0)


# --- footprint and positions -----------------------------------------------------


def _point_in_polygon_brute(x: float, y: float) -> bool:
    """Winding number of the footprint polygon around (x, y): an independent oracle."""
    poly = FOOTPRINT_POLYGON
    angle = 0.0
    for k in range(len(poly)):
        a = poly[k] - (x, y)
        b = poly[(k + 1) % len(poly)] - (x, y)
        angle += np.arctan2(a[0] * b[1] - a[1] * b[0], a @ b)
    return abs(angle) > np.pi


def test_positions_inside_footprint(coadd: pa.Table) -> None:
    ra = coadd.column("ra").to_numpy()
    dec = coadd.column("dec").to_numpy()
    assert ((ra >= 0) & (ra < 360)).all()
    assert in_footprint(ra, dec).all()
    for k in range(0, ROWS, 97):  # brute-force oracle on a sample
        assert _point_in_polygon_brute(float(unwrap_ra(ra[k])), float(dec[k]))
    assert -65.0 <= dec.min() and dec.max() <= 3.0
    # every part of the footprint is populated: south, neck and Stripe 82
    x = unwrap_ra(ra)
    assert ((dec < -45) & (x > 50)).sum() > 500
    assert ((dec > -2) & (x < -20)).sum() > 100
    assert ((dec > -30) & (dec < -5) & (x > 0) & (x < 45)).sum() > 500


def test_footprint_oracle_agrees_off_catalog() -> None:
    rng = np.random.default_rng(0)
    x = rng.uniform(-70, 110, 400)
    y = rng.uniform(-70, 10, 400)
    fast = in_footprint(x, y)
    brute = np.array([_point_in_polygon_brute(a, b) for a, b in zip(x, y, strict=True)])
    assert np.array_equal(fast, brute)
    assert 0 < fast.sum() < len(x)


def test_galactic_coordinates_match_astropy(coadd: pa.Table) -> None:
    sl = coadd.slice(0, 500)
    c = SkyCoord(sl.column("ra").to_numpy() * u.deg, sl.column("dec").to_numpy() * u.deg)
    g = c.galactic
    dl = (sl.column("l").to_numpy() - g.l.deg + 180) % 360 - 180
    assert np.abs(dl).max() < 1e-6
    assert np.abs(sl.column("b").to_numpy() - g.b.deg).max() < 1e-6


def test_stars_denser_toward_galactic_plane(coadd: pa.Table) -> None:
    b = np.abs(coadd.column("b").to_numpy())
    star = coadd.column("extended_class_coadd").to_numpy() == 0
    bright = pc.fill_null(coadd.column("mag_auto_i"), 99).to_numpy() < 21
    low, high = b < 40, b > 60
    assert star[low & bright].mean() > 1.5 * star[high & bright].mean()


def test_galaxies_clustered(coadd: pa.Table) -> None:
    """Counts in cells are over-dispersed relative to Poisson (clustering)."""
    hp = coadd.column("hpix_32").to_numpy()
    counts = np.bincount(hp)
    counts = counts[counts > 20]
    assert counts.var() > 2.0 * counts.mean()


def test_close_galaxy_pairs_share_redshifts(coadd: pa.Table) -> None:
    """Galaxies in compact groups share a redshift: close pairs have similar photo-z."""
    zp = coadd.column("dnf_zmean").to_numpy(zero_copy_only=False)
    i = coadd.column("mag_auto_i").to_numpy(zero_copy_only=False)
    gal = (coadd.column("extended_class_coadd").to_numpy() == 3) & ~np.isnan(zp) & (i < 23)
    c = SkyCoord(
        coadd.column("ra").to_numpy()[gal] * u.deg, coadd.column("dec").to_numpy()[gal] * u.deg
    )
    a, b, _, _ = c.search_around_sky(c, 30 * u.arcsec)
    pairs = a < b
    assert pairs.sum() > 200
    z = zp[gal]
    close = np.median(np.abs(z[a[pairs]] - z[b[pairs]]))
    rng = np.random.default_rng(0)
    ra_, rb = rng.integers(0, z.size, 5000), rng.integers(0, z.size, 5000)
    assert close < 0.5 * np.median(np.abs(z[ra_] - z[rb]))


def test_tilenames_and_healpix(coadd: pa.Table) -> None:
    names = coadd.column("tilename").to_pylist()
    assert all(len(n) == 12 and n.startswith("DES") and n[7] in "+-" for n in names[:1000])
    # the tile centre encoded in the name is within a tile diagonal of the object
    ra = coadd.column("ra").to_numpy()[:1000]
    dec = coadd.column("dec").to_numpy()[:1000]
    tra = np.array([(int(n[3:5]) + int(n[5:7]) / 60) * 15 for n in names[:1000]])
    sign = np.array([-1 if n[7] == "-" else 1 for n in names[:1000]])
    tdec = sign * np.array([int(n[8:10]) + int(n[10:12]) / 60 for n in names[:1000]])
    sep = SkyCoord(ra * u.deg, dec * u.deg).separation(SkyCoord(tra * u.deg, tdec * u.deg))
    assert sep.deg.max() < 0.7306 / np.sqrt(2) + 0.125  # names round RA to 1 min
    import healpy

    h32 = healpy.ang2pix(32, ra, dec, nest=True, lonlat=True)
    assert np.array_equal(h32, coadd.column("hpix_32").to_numpy()[:1000])
    h4096 = healpy.ang2pix(4096, ra, dec, nest=True, lonlat=True)
    assert np.array_equal(h4096, coadd.column("hpix_4096").to_numpy()[:1000])


# --- descriptor ------------------------------------------------------------------


def test_descriptor_is_rendered_from_columns() -> None:
    assert RD.read_text() == render(), "rd/demo.yaml is stale: regenerate it"


@pytest.mark.parametrize("table", ["coadd", "specz"])
def test_parquet_types_match_descriptor(demo: DemoFiles, rd: dict, table: str) -> None:
    path = demo.coadd[0] if table == "coadd" else demo.specz
    schema = pq.read_schema(path)
    cols = _rd_table(rd, table)["columns"]
    assert [c["name"] for c in cols] == schema.names
    for c in cols:
        field = schema.field(c["name"])
        assert VOTABLE_OF_ARROW[field.type] == c["datatype"], c["name"]
        assert c["arraysize"] == ("*" if c["datatype"] == "char" else None)


def test_descriptor_metadata_valid(rd: dict) -> None:
    assert rd["schema"] == "demo"
    assert set(rd["services"]) == {"tap", "scs"}
    assert len(_rd_table(rd, "coadd")["columns"]) >= 30
    for table in rd["tables"]:
        assert table["position"] == {"ra": "ra", "dec": "dec"}
        assert table["source"]["format"] == "parquet"
        assert all(p.startswith("{home}/sources/demo/") for p in table["source"]["paths"])
        names = [c["name"] for c in table["columns"]]
        assert len(names) == len(set(names))
        for c in table["columns"]:
            assert set(c) == {
                "name",
                "datatype",
                "arraysize",
                "unit",
                "ucd",
                "description",
                "nullable",
                "principal",
                "indexed",
            }
            assert check_ucd(c["ucd"], check_controlled_vocabulary=True), c["ucd"]
            if c["unit"] is not None:
                u.Unit(c["unit"], format="vounit")  # raises on an invalid VOUnit
            assert len(c["description"]) > 20


def test_nullability_matches_data(demo: DemoFiles, coadd: pa.Table, rd: dict) -> None:
    for table, data in (("coadd", coadd), ("specz", pq.read_table(demo.specz))):
        for c in _rd_table(rd, table)["columns"]:
            if not c["nullable"]:
                assert data.column(c["name"]).null_count == 0, c["name"]
    # non-detections exist and are NULL, never a sentinel
    assert coadd.column("mag_auto_y").null_count > 0
    for band in "grizy":
        mags = coadd.column(f"mag_auto_{band}")
        assert pc.max(mags).as_py() < 35
        errs = coadd.column(f"magerr_auto_{band}")
        assert pc.equal(pc.is_null(mags), pc.is_null(errs)).to_numpy().all()


# --- physics ---------------------------------------------------------------------


def test_magnitudes_and_errors_plausible(coadd: pa.Table) -> None:
    i = coadd.column("mag_auto_i").to_numpy(zero_copy_only=False)
    ei = coadd.column("magerr_auto_i").to_numpy(zero_copy_only=False)
    ok = ~np.isnan(i)
    i, ei = i[ok], ei[ok]
    assert 13 < i.min() and np.percentile(i, 99) < 25.5
    assert 23.0 < np.percentile(i, 80) < 24.8  # number counts rise to the limit
    # counts rise with magnitude (galaxy number counts) up to ~23
    hist, _ = np.histogram(i, bins=[18, 19, 20, 21, 22, 23])
    assert (np.diff(hist) > 0).all()
    # errors grow with magnitude
    bright, faint = ei[(i > 18) & (i < 19)], ei[(i > 23) & (i < 23.5)]
    assert np.median(bright) < 0.02 < 0.05 < np.median(faint) < 0.3
    assert (ei > 0).all()


def test_star_galaxy_separation(coadd: pa.Table) -> None:
    i = pc.fill_null(coadd.column("mag_auto_i"), 99).to_numpy()
    ecl = coadd.column("extended_class_coadd").to_numpy()
    cs = coadd.column("class_star_i").to_numpy()
    sm = coadd.column("spread_model_i").to_numpy()
    sel = i < 21
    assert 0.03 < (ecl[sel] == 0).mean() < 0.6
    assert np.median(cs[sel & (ecl == 0)]) > 0.8 > 0.2 > np.median(cs[sel & (ecl == 3)])
    assert np.median(sm[ecl == 3]) > 0.005 and abs(np.median(sm[sel & (ecl == 0)])) < 0.002


def test_photoz_follows_colours(coadd: pa.Table) -> None:
    gal = coadd.column("extended_class_coadd").to_numpy() == 3
    zp = coadd.column("dnf_zmean").to_numpy(zero_copy_only=False)
    i = coadd.column("mag_auto_i").to_numpy(zero_copy_only=False)
    r = coadd.column("mag_auto_r").to_numpy(zero_copy_only=False)
    ok = gal & ~np.isnan(zp) & ~np.isnan(i) & ~np.isnan(r) & (i < 22)
    assert np.corrcoef(r[ok] - i[ok], zp[ok])[0, 1] > 0.4
    assert np.corrcoef(i[ok], zp[ok])[0, 1] > 0.3  # fainter galaxies lie further away


def test_specz_subset_of_coadd(demo: DemoFiles, coadd: pa.Table) -> None:
    spec = pq.read_table(demo.specz)
    ids = spec.column("coadd_object_id").to_numpy()
    assert np.unique(ids).size == ids.size
    pos = np.searchsorted(coadd.column("coadd_object_id").to_numpy(), ids)
    assert np.array_equal(coadd.column("coadd_object_id").to_numpy()[pos], ids)
    assert np.array_equal(coadd.column("ra").to_numpy()[pos], spec.column("ra").to_numpy())
    # bright objects, and the photo-z of secure galaxy redshifts tracks them
    assert pc.max(spec.column("mag_auto_i")).as_py() < 22.5
    good = (spec.column("flag").to_numpy() >= 3) & (
        spec.column("spec_class").to_numpy(zero_copy_only=False) == "GALAXY"
    )
    zs = spec.column("z").to_numpy()[good]
    zp = coadd.column("dnf_zmean").to_numpy(zero_copy_only=False)[pos][good]
    dz = (zp - zs) / (1 + zs)
    dz = dz[~np.isnan(dz)]
    assert abs(np.median(dz)) < 0.02
    assert 0.01 < 1.4826 * np.median(np.abs(dz - np.median(dz))) < 0.12
    assert set(spec.column("survey").to_pylist()) <= {
        "2dFGRS",
        "6dFGS",
        "SDSS",
        "OzDES",
        "VIPERS",
        "VVDS",
    }


# --- tiles -----------------------------------------------------------------------


def test_tiles_written_per_band(demo: DemoFiles) -> None:
    assert len(demo.tiles) == 15
    bands = sorted({p.stem.split("_")[1] for p in demo.tiles})
    assert bands == ["Y", "g", "i", "r", "z"]
    for p in demo.tiles:
        assert p.exists() and p.parent.name == "tiles"


def test_tile_headers_and_wcs(demo: DemoFiles) -> None:
    for p in demo.tiles:
        with fits.open(p) as hdul:
            hdr = hdul[0].header
            assert hdul[0].data.shape == (TILE_PIXELS, TILE_PIXELS)
            assert hdul[0].data.dtype.name in ("float32", ">f4")
            name, band = p.stem.split("_")
            assert hdr["TILENAME"] == name and hdr["FILTER"] == band
            u.Unit(hdr["BUNIT"], format="fits")
            assert hdr["MAGZERO"] == 30.0
            w = WCS(hdr)
            assert w.wcs.ctype[0] == "RA---TAN" and w.wcs.ctype[1] == "DEC--TAN"
            # the image spans the whole 0.7306 deg tile around its named centre
            corners = w.pixel_to_world([0, TILE_PIXELS - 1], [0, TILE_PIXELS - 1])
            width = corners[0].separation(corners[1]).deg / np.sqrt(2)
            assert abs(width - 0.7306 * (TILE_PIXELS - 1) / TILE_PIXELS) < 0.01
            centre = w.pixel_to_world((TILE_PIXELS - 1) / 2, (TILE_PIXELS - 1) / 2)
            ra_name = (int(name[3:5]) + int(name[5:7]) / 60) * 15
            assert abs(centre.ra.deg - ra_name) < 0.126  # 1 minute of time, rounded


def test_bright_catalog_sources_on_bright_pixels(demo: DemoFiles, coadd: pa.Table) -> None:
    ra = coadd.column("ra").to_numpy()
    dec = coadd.column("dec").to_numpy()
    best: dict[str, float] = {}
    for p in demo.tiles:
        name, band = p.stem.split("_")
        col = f"mag_auto_{band.lower()}"
        with fits.open(p) as hdul:
            data = hdul[0].data.astype(np.float64)
            w = WCS(hdul[0].header)
        x, y = w.world_to_pixel(SkyCoord(ra * u.deg, dec * u.deg))
        on = (x > 1) & (y > 1) & (x < TILE_PIXELS - 2) & (y < TILE_PIXELS - 2)
        mags = pc.fill_null(coadd.column(col), 99).to_numpy()
        assert on.sum() > 0, "no catalog object on the tile"
        k = np.flatnonzero(on)[np.argmin(mags[on])]
        noise = hdr_noise = 1.4826 * np.median(np.abs(data - np.median(data)))
        px, py = int(round(float(x[k]))), int(round(float(y[k])))
        peak = data[py - 1 : py + 2, px - 1 : px + 2].max()
        flux = 10.0 ** (-0.4 * (mags[k] - 30.0))
        best[band] = max(best.get(band, 0.0), flux / noise)
        if flux > 30 * noise:
            assert peak > 5 * noise, (p.name, mags[k])
        # the flux in a box around it matches the catalog fluxes of the objects in the box
        half = 3
        y0, y1 = max(py - half, 0), min(py + half + 1, TILE_PIXELS)
        x0, x1 = max(px - half, 0), min(px + half + 1, TILE_PIXELS)
        box = data[y0:y1, x0:x1].sum()
        inbox = (x > x0 - 0.5) & (x < x1 - 0.5) & (y > y0 - 0.5) & (y < y1 - 0.5) & (mags < 90)
        expected = (10.0 ** (-0.4 * (mags[inbox] - 30.0))).sum()
        box_noise = hdr_noise * np.sqrt((y1 - y0) * (x1 - x0))
        assert abs(box - expected) < 5 * box_noise + 0.15 * expected, (p.name, box, expected)
        # and the sky is just noise around zero
        assert abs(np.median(data)) < 0.2 * noise
    # the deep bands have sources far above the noise, so the peak test above ran
    assert best["r"] > 30 and best["i"] > 30


def test_deep_patch_on_the_tiles(demo: DemoFiles, coadd: pa.Table) -> None:
    """The imaged tiles hold objects at survey density; each tile's header counts them."""
    names = np.array(coadd.column("tilename").to_pylist(), dtype=object)
    wide_per_tile = ROWS / 5000 * 0.7306**2  # objects per tile at the survey-wide density
    for p in demo.tiles:
        name, band = p.stem.split("_")
        n_in_tile = int((names == name).sum())
        # deep: 5% of the rows (capped at 2e4 per deg2) share the three tiles
        assert n_in_tile > 0.9 * 0.05 * ROWS / 3 > 50 * wide_per_tile
        with fits.open(p) as hdul:
            assert hdul[0].header["NSOURCES"] >= n_in_tile
    described = _rd_table(yaml.safe_load(RD.read_text()), "coadd")["description"]
    assert all(p.stem.split("_")[0] in described for p in demo.tiles)
    # elsewhere the density is the survey's scaled one
    others = (names != demo.tiles[0].stem.split("_")[0]).sum()
    assert others > 0.9 * ROWS

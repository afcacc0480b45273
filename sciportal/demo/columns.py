"""Column metadata of the demo survey, written down once.

The generator builds its Arrow schemas from these specs and
``sciportal.demo.descriptor`` renders ``rd/demo.yaml`` from them, so the
Parquet files and the resource descriptor cannot drift apart (a test checks
the committed descriptor against this module).
"""

from __future__ import annotations

from dataclasses import dataclass

import pyarrow as pa

BANDS = ("g", "r", "i", "z", "y")

# DES grizY against the UCD1+ electromagnetic ranges: g (400-550 nm) sits in
# em.opt.B, r (560-700 nm) in em.opt.R, i (700-850 nm) and z (850-1000 nm) in
# em.opt.I; Y (950-1070 nm, effective wavelength ~1.0 um) is the start of
# em.IR.J.
BAND_UCD = {
    "g": "em.opt.B",
    "r": "em.opt.R",
    "i": "em.opt.I",
    "z": "em.opt.I",
    "y": "em.IR.J",
}

# Arrow type -> VOTable datatype, the mapping the descriptor states.
ARROW_TO_VOTABLE: dict[pa.DataType, str] = {
    pa.int64(): "long",
    pa.int32(): "int",
    pa.int16(): "short",
    pa.float32(): "float",
    pa.float64(): "double",
    pa.string(): "char",
    pa.bool_(): "boolean",
}


@dataclass(frozen=True, slots=True)
class ColumnSpec:
    """One column: its Arrow type plus the VO metadata the descriptor carries."""

    name: str
    arrow_type: pa.DataType
    unit: str | None
    ucd: str
    description: str
    nullable: bool = False
    principal: bool = False
    indexed: bool = False

    @property
    def datatype(self) -> str:
        """The VOTable datatype of this column."""
        return ARROW_TO_VOTABLE[self.arrow_type]

    @property
    def arraysize(self) -> str | None:
        """``*`` for variable-length strings, else scalar."""
        return "*" if self.arrow_type == pa.string() else None


def _band_columns() -> list[ColumnSpec]:
    out: list[ColumnSpec] = []
    for b in BANDS:
        B = b.upper() if b == "y" else b
        out.append(
            ColumnSpec(
                f"mag_auto_{b}",
                pa.float32(),
                "mag",
                f"phot.mag;{BAND_UCD[b]}",
                f"Kron-like (MAG_AUTO) AB magnitude in the {B} band, not corrected for "
                "Galactic extinction; NULL where the object is not detected in this band "
                "(measured flux <= 0).",
                nullable=True,
                principal=b in ("g", "r", "i"),
                indexed=b == "i",
            )
        )
    for b in BANDS:
        B = b.upper() if b == "y" else b
        out.append(
            ColumnSpec(
                f"magerr_auto_{b}",
                pa.float32(),
                "mag",
                f"stat.error;phot.mag;{BAND_UCD[b]}",
                f"1-sigma uncertainty of mag_auto_{b} (sky noise plus source Poisson noise "
                f"at the local {B}-band depth); NULL where mag_auto_{b} is NULL.",
                nullable=True,
            )
        )
    for b in BANDS:
        B = b.upper() if b == "y" else b
        out.append(
            ColumnSpec(
                f"flags_{b}",
                pa.int16(),
                None,
                f"meta.code.qual;{BAND_UCD[b]}",
                f"SExtractor extraction flags in the {B} band (bit 1: neighbours bias the "
                "photometry, 2: deblended, 4: saturated, 8: truncated at the image edge); "
                "0 is clean.",
            )
        )
    for b in BANDS:
        B = b.upper() if b == "y" else b
        out.append(
            ColumnSpec(
                f"nepochs_{b}",
                pa.int16(),
                None,
                f"meta.number;obs.image;{BAND_UCD[b]}",
                f"Number of single-epoch {B}-band exposures contributing to the coadd at "
                "this position; the local depth grows with it.",
            )
        )
    return out


COADD_COLUMNS: tuple[ColumnSpec, ...] = (
    ColumnSpec(
        "coadd_object_id",
        pa.int64(),
        None,
        "meta.id;meta.main",
        "Unique identifier of the object in the coadd catalog.",
        principal=True,
        indexed=True,
    ),
    ColumnSpec(
        "ra",
        pa.float64(),
        "deg",
        "pos.eq.ra;meta.main",
        "Right ascension (ICRS) of the object's windowed centroid in the detection image.",
        principal=True,
        indexed=True,
    ),
    ColumnSpec(
        "dec",
        pa.float64(),
        "deg",
        "pos.eq.dec;meta.main",
        "Declination (ICRS) of the object's windowed centroid in the detection image.",
        principal=True,
        indexed=True,
    ),
    ColumnSpec(
        "tilename",
        pa.string(),
        None,
        "meta.id;obs.field",
        "Name of the 0.73x0.73 deg coadd tile the object belongs to (DESHHMM+DDMM from the "
        "tile centre); the demo's FITS tiles carry the same name.",
        principal=True,
        indexed=True,
    ),
    ColumnSpec(
        "hpix_32",
        pa.int32(),
        None,
        "pos.healpix",
        "HEALPix index of the position, NESTED scheme, NSIDE=32 (order 5).",
    ),
    ColumnSpec(
        "hpix_4096",
        pa.int32(),
        None,
        "pos.healpix",
        "HEALPix index of the position, NESTED scheme, NSIDE=4096 (order 12).",
    ),
    ColumnSpec(
        "l",
        pa.float64(),
        "deg",
        "pos.galactic.lon",
        "Galactic longitude of the object.",
    ),
    ColumnSpec(
        "b",
        pa.float64(),
        "deg",
        "pos.galactic.lat",
        "Galactic latitude of the object.",
    ),
    *_band_columns(),
    ColumnSpec(
        "spread_model_i",
        pa.float32(),
        None,
        "src.morph.param;em.opt.I",
        "SExtractor SPREAD_MODEL in the i band: ~0 for point sources, positive for "
        "resolved ones; the main star/galaxy separator.",
    ),
    ColumnSpec(
        "spreaderr_model_i",
        pa.float32(),
        None,
        "stat.error;src.morph.param;em.opt.I",
        "1-sigma uncertainty of spread_model_i.",
    ),
    ColumnSpec(
        "class_star_i",
        pa.float32(),
        None,
        "src.class.starGalaxy;em.opt.I",
        "SExtractor neural-network stellarity index in the i band (1: star, 0: galaxy).",
    ),
    ColumnSpec(
        "extended_class_coadd",
        pa.int16(),
        None,
        "src.class.starGalaxy",
        "Morphological class from spread_model_i and its error: 0 high-confidence star, "
        "1 likely star, 2 likely galaxy, 3 high-confidence galaxy.",
        principal=True,
    ),
    ColumnSpec(
        "flux_radius_i",
        pa.float32(),
        "pix",
        "phys.angSize;em.opt.I",
        "Half-light radius (SExtractor FLUX_RADIUS) in the i band, in coadd pixels of "
        "0.263 arcsec.",
    ),
    ColumnSpec(
        "a_image",
        pa.float32(),
        "pix",
        "phys.angSize.smajAxis",
        "Profile RMS along the major axis in the detection image, in coadd pixels.",
    ),
    ColumnSpec(
        "b_image",
        pa.float32(),
        "pix",
        "phys.angSize.sminAxis",
        "Profile RMS along the minor axis in the detection image, in coadd pixels.",
    ),
    ColumnSpec(
        "theta_j2000",
        pa.float32(),
        "deg",
        "pos.posAng",
        "Position angle of the major axis, east of north (-90 to 90).",
    ),
    ColumnSpec(
        "ebv_sfd98",
        pa.float32(),
        "mag",
        "phot.color.excess",
        "Galactic reddening E(B-V) at the position from the demo's SFD98-like dust map; "
        "A_band = R_band * ebv_sfd98 with R = 3.186, 2.140, 1.569, 1.196, 1.048 (grizY).",
    ),
    ColumnSpec(
        "dnf_zmean",
        pa.float32(),
        None,
        "src.redshift.phot",
        "Photometric redshift (mean of the DNF-like estimate from the griz colours).",
        nullable=True,
        principal=True,
    ),
    ColumnSpec(
        "dnf_zsigma",
        pa.float32(),
        None,
        "stat.error;src.redshift.phot",
        "1-sigma uncertainty of dnf_zmean.",
        nullable=True,
    ),
)

SPECZ_COLUMNS: tuple[ColumnSpec, ...] = (
    ColumnSpec(
        "coadd_object_id",
        pa.int64(),
        None,
        "meta.id;meta.main",
        "Identifier of the matched object in demo.coadd.",
        principal=True,
        indexed=True,
    ),
    ColumnSpec(
        "ra",
        pa.float64(),
        "deg",
        "pos.eq.ra;meta.main",
        "Right ascension (ICRS) of the spectroscopic target.",
        principal=True,
        indexed=True,
    ),
    ColumnSpec(
        "dec",
        pa.float64(),
        "deg",
        "pos.eq.dec;meta.main",
        "Declination (ICRS) of the spectroscopic target.",
        principal=True,
        indexed=True,
    ),
    ColumnSpec(
        "z",
        pa.float64(),
        None,
        "src.redshift",
        "Spectroscopic redshift (heliocentric).",
        principal=True,
    ),
    ColumnSpec(
        "z_err",
        pa.float32(),
        None,
        "stat.error;src.redshift",
        "1-sigma uncertainty of z.",
        principal=True,
    ),
    ColumnSpec(
        "survey",
        pa.string(),
        None,
        "meta.dataset",
        "Spectroscopic survey the redshift comes from (2dFGRS, 6dFGS, SDSS, OzDES, VIPERS, VVDS).",
        principal=True,
    ),
    ColumnSpec(
        "spec_class",
        pa.string(),
        None,
        "src.class",
        "Spectral class: GALAXY or STAR.",
    ),
    ColumnSpec(
        "flag",
        pa.int16(),
        None,
        "meta.code.qual",
        "Redshift quality: 4 >99% secure, 3 ~95%, 2 ~75% (unreliable), 1 tentative guess.",
        principal=True,
    ),
    ColumnSpec(
        "mag_auto_i",
        pa.float32(),
        "mag",
        "phot.mag;em.opt.I",
        "i-band MAG_AUTO of the matched coadd object (copied for convenience).",
        nullable=True,
    ),
)


def arrow_schema(columns: tuple[ColumnSpec, ...]) -> pa.Schema:
    """The Arrow schema, with unit/UCD/description as field metadata for ingest."""
    fields = []
    for c in columns:
        meta = {"ucd": c.ucd, "description": c.description}
        if c.unit:
            meta["unit"] = c.unit
        fields.append(pa.field(c.name, c.arrow_type, nullable=c.nullable, metadata=meta))
    return pa.schema(fields)

"""DALI examples: useful queries on the demo survey, as RDFa XHTML.

TOPCAT shows these in its TAP window; tests run every one of them, so an
example that stops working fails the suite.
"""

from __future__ import annotations

from dataclasses import dataclass
from html import escape


@dataclass(frozen=True)
class Example:
    """One example query with a name and a sentence on what it shows."""

    ident: str
    name: str
    doc: str
    query: str


EXAMPLES: tuple[Example, ...] = (
    Example(
        "cone",
        "Cone search",
        "Objects within 3 arcminutes of a position, nearest first: the spatial "
        "constraint reads only the HEALPix partitions that the circle touches.",
        "SELECT coadd_object_id, ra, dec, mag_auto_i,\n"
        "       DISTANCE(POINT('ICRS', ra, dec), POINT('ICRS', 73.37, -44.80)) * 3600 AS dist_arcsec\n"
        "FROM demo.coadd\n"
        "WHERE 1 = CONTAINS(POINT('ICRS', ra, dec), CIRCLE('ICRS', 73.37, -44.80, 0.05))\n"
        "ORDER BY dist_arcsec",
    ),
    Example(
        "bright_stars",
        "Bright point sources",
        "Star-like objects (small spread_model) brighter than i = 18.",
        "SELECT TOP 100 coadd_object_id, ra, dec, mag_auto_g, mag_auto_r, mag_auto_i\n"
        "FROM demo.coadd\n"
        "WHERE ABS(spread_model_i) < 0.003 AND mag_auto_i < 18\n"
        "ORDER BY mag_auto_i",
    ),
    Example(
        "counts_by_class",
        "Number counts by class",
        "How many objects of each extended_class_coadd value the survey holds.",
        "SELECT extended_class_coadd, COUNT(*) AS n\n"
        "FROM demo.coadd\n"
        "GROUP BY extended_class_coadd\n"
        "ORDER BY extended_class_coadd",
    ),
    Example(
        "mag_histogram",
        "Magnitude histogram",
        "Number counts in half-magnitude bins of i-band magnitude.",
        "SELECT FLOOR(mag_auto_i * 2) / 2 AS mag_bin, COUNT(*) AS n\n"
        "FROM demo.coadd\n"
        "WHERE mag_auto_i IS NOT NULL\n"
        "GROUP BY mag_bin\n"
        "ORDER BY mag_bin",
    ),
    Example(
        "colour_cut",
        "Red galaxies by a colour cut",
        "Extended objects with g - i > 2, a crude red-sequence selection.",
        "SELECT TOP 1000 coadd_object_id, ra, dec, mag_auto_g - mag_auto_i AS g_i, dnf_zmean\n"
        "FROM demo.coadd\n"
        "WHERE extended_class_coadd = 3 AND mag_auto_g - mag_auto_i > 2",
    ),
    Example(
        "specz_join",
        "Photo-z against spec-z",
        "Join the spectroscopic sample to the objects to compare photometric "
        "and spectroscopic redshifts.",
        "SELECT s.coadd_object_id, s.z AS spec_z, c.dnf_zmean AS photo_z,\n"
        "       c.dnf_zmean - s.z AS dz\n"
        "FROM demo.specz AS s\n"
        "JOIN demo.coadd AS c ON c.coadd_object_id = s.coadd_object_id",
    ),
    Example(
        "box",
        "Objects in a box",
        "Everything in a 0.2 x 0.2 degree box, with its tile name.",
        "SELECT coadd_object_id, ra, dec, tilename\n"
        "FROM demo.coadd\n"
        "WHERE 1 = CONTAINS(POINT('ICRS', ra, dec), BOX('ICRS', 73.37, -44.80, 0.2, 0.2))",
    ),
    Example(
        "polygon",
        "Objects in a polygon",
        "A triangular region on the sky (great-circle edges).",
        "SELECT COUNT(*) AS n\n"
        "FROM demo.coadd\n"
        "WHERE 1 = CONTAINS(POINT('ICRS', ra, dec),\n"
        "                   POLYGON('ICRS', 73.0, -45.0, 73.7, -45.0, 73.35, -44.6))",
    ),
    Example(
        "per_tile",
        "Objects per tile",
        "Object counts and median-ish depth per coadd tile.",
        "SELECT TOP 20 tilename, COUNT(*) AS n, MAX(mag_auto_i) AS faintest_i\n"
        "FROM demo.coadd\n"
        "GROUP BY tilename\n"
        "ORDER BY n DESC",
    ),
    Example(
        "tap_schema",
        "What columns a table has",
        "TAP_SCHEMA describes every published column, with units and UCDs.",
        "SELECT column_name, datatype, unit, ucd, description\n"
        "FROM TAP_SCHEMA.columns\n"
        "WHERE table_name = 'demo.coadd'\n"
        "ORDER BY column_index",
    ),
    Example(
        "healpix",
        "Density on HEALPix cells",
        "Object counts per order-6 HEALPix cell, for a density map.",
        "SELECT ivo_healpix_index(6, ra, dec) AS hpx6, COUNT(*) AS n\n"
        "FROM demo.coadd\n"
        "GROUP BY hpx6\n"
        "ORDER BY n DESC",
    ),
    Example(
        "offset_paging",
        "Paging through a result",
        "ADQL 2.1 OFFSET: the second page of 50 bright objects.",
        "SELECT coadd_object_id, mag_auto_r\n"
        "FROM demo.coadd\n"
        "WHERE mag_auto_r < 19\n"
        "ORDER BY coadd_object_id\n"
        "OFFSET 50",
    ),
)


def render(base: str) -> bytes:
    """The examples document (DALI 1.1 section 2.3) as XHTML with RDFa."""
    parts = [
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        '<!DOCTYPE html>\n<html xmlns="http://www.w3.org/1999/xhtml">\n'
        "<head><title>TAP examples</title></head>\n"
        '<body vocab="http://www.ivoa.net/rdf/examples#">\n<h1>Example queries</h1>\n'
    ]
    for ex in EXAMPLES:
        parts.append(
            f'<div typeof="example" id="{ex.ident}" resource="#{ex.ident}">\n'
            f'<h2 property="name">{escape(ex.name)}</h2>\n'
            f"<p>{escape(ex.doc)}</p>\n"
            f'<pre property="query">{escape(ex.query)}</pre>\n'
            "</div>\n"
        )
    parts.append("</body>\n</html>\n")
    return "".join(parts).encode("utf-8")

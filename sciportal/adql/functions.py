"""What the ADQL front end knows about functions: arities, result types, UDFs.

One table for the built-in functions (checked by the parser, typed by the
resolver, mapped per dialect by the generators) and one registry of
user-defined functions, which is also what TAPRegExt advertises.
"""

from __future__ import annotations

from dataclasses import dataclass

from sciportal.metadata.model import Column

# name -> (min args, max args); None = unbounded
ARITY: dict[str, tuple[int, int | None]] = {
    "ABS": (1, 1),
    "ACOS": (1, 1),
    "ASIN": (1, 1),
    "ATAN": (1, 1),
    "ATAN2": (2, 2),
    "CEILING": (1, 1),
    "COS": (1, 1),
    "COT": (1, 1),
    "DEGREES": (1, 1),
    "EXP": (1, 1),
    "FLOOR": (1, 1),
    "LOG": (1, 1),
    "LOG10": (1, 1),
    "MOD": (2, 2),
    "PI": (0, 0),
    "POWER": (2, 2),
    "RADIANS": (1, 1),
    "RAND": (0, 1),
    "ROUND": (1, 2),
    "SIN": (1, 1),
    "SQRT": (1, 1),
    "TAN": (1, 1),
    "TRUNCATE": (1, 2),
    "LOWER": (1, 1),
    "UPPER": (1, 1),
    "COALESCE": (1, None),
    "IN_UNIT": (2, 2),
    # geometry
    "AREA": (1, 1),
    "BOX": (3, 5),
    "CENTROID": (1, 1),
    "CIRCLE": (2, 4),
    "CONTAINS": (2, 2),
    "COORD1": (1, 1),
    "COORD2": (1, 1),
    "COORDSYS": (1, 1),
    "DISTANCE": (2, 4),
    "INTERSECTS": (2, 2),
    "POINT": (2, 3),
    "POLYGON": (3, None),
    "REGION": (1, 1),
}

GEOMETRY_CONSTRUCTORS = frozenset({"POINT", "CIRCLE", "BOX", "POLYGON", "REGION", "CENTROID"})
GEOMETRY_FUNCTIONS = GEOMETRY_CONSTRUCTORS | {
    "AREA",
    "CONTAINS",
    "COORD1",
    "COORD2",
    "COORDSYS",
    "DISTANCE",
    "INTERSECTS",
}
STRING_FUNCTIONS = frozenset({"LOWER", "UPPER", "COORDSYS"})

DOUBLE = Column("_", datatype="double")
LONG = Column("_", datatype="long")
INT = Column("_", datatype="int")
SHORT = Column("_", datatype="short")
FLOAT = Column("_", datatype="float")
STRING = Column("_", datatype="char", arraysize="*")
BOOLEAN_INT = Column("_", datatype="int")  # CONTAINS/INTERSECTS give 0/1
TIMESTAMP = Column("_", datatype="char", arraysize="*", xtype="timestamp")
POINT = Column("_", datatype="double", arraysize="2", xtype="point", unit="deg")
CIRCLE = Column("_", datatype="double", arraysize="3", xtype="circle", unit="deg")
POLYGON = Column("_", datatype="double", arraysize="*", xtype="polygon", unit="deg")
NULL = Column("_", datatype="char", arraysize="*")

GEOMETRY_META = {"point": POINT, "circle": CIRCLE, "polygon": POLYGON, "box": POLYGON}

# Feature lists for TAPRegExt (ivo://ivoa.net/std/TAPRegExt#features-adql-*).
_GEO = "ivo://ivoa.net/std/TAPRegExt#features-adqlgeo"
FEATURES: list[tuple[str, str]] = [
    *(
        (_GEO, name)
        for name in (
            "AREA",
            "BOX",
            "CENTROID",
            "CIRCLE",
            "CONTAINS",
            "COORD1",
            "COORD2",
            "COORDSYS",
            "DISTANCE",
            "INTERSECTS",
            "POINT",
            "POLYGON",
            "REGION",
        )
    ),
    ("ivo://ivoa.net/std/TAPRegExt#features-adql-string", "LOWER"),
    ("ivo://ivoa.net/std/TAPRegExt#features-adql-string", "UPPER"),
    ("ivo://ivoa.net/std/TAPRegExt#features-adql-string", "ILIKE"),
    ("ivo://ivoa.net/std/TAPRegExt#features-adql-sets", "UNION"),
    ("ivo://ivoa.net/std/TAPRegExt#features-adql-sets", "EXCEPT"),
    ("ivo://ivoa.net/std/TAPRegExt#features-adql-sets", "INTERSECT"),
    ("ivo://ivoa.net/std/TAPRegExt#features-adql-common-table", "WITH"),
    ("ivo://ivoa.net/std/TAPRegExt#features-adql-type", "CAST"),
    ("ivo://ivoa.net/std/TAPRegExt#features-adql-conditional", "COALESCE"),
    ("ivo://ivoa.net/std/TAPRegExt#features-adql-unit", "IN_UNIT"),
    ("ivo://ivoa.net/std/TAPRegExt#features-adql-offset", "OFFSET"),
]


@dataclass(frozen=True, slots=True)
class UDF:
    """A user-defined function as TAPRegExt declares it."""

    name: str  # lower-case
    signature: str
    description: str
    min_args: int
    max_args: int
    result: Column
    aggregate: bool = False


UDF_LIST: list[UDF] = [
    UDF(
        "ivo_healpix_index",
        "ivo_healpix_index(hpxorder INTEGER, ra DOUBLE, dec DOUBLE) -> BIGINT",
        "The nested HEALPix index of the position (ra, dec) in degrees at the given order.",
        3,
        3,
        LONG,
    ),
    UDF(
        "ivo_healpix_center",
        "ivo_healpix_center(hpxorder INTEGER, hpxindex BIGINT) -> POINT",
        "The centre of the nested HEALPix cell hpxindex at order hpxorder.",
        2,
        2,
        POINT,
    ),
    UDF(
        "ivo_nocasematch",
        "ivo_nocasematch(value VARCHAR(*), pattern VARCHAR(*)) -> INTEGER",
        "1 if value matches the LIKE pattern case-insensitively, 0 otherwise.",
        2,
        2,
        INT,
    ),
    UDF(
        "ivo_hasword",
        "ivo_hasword(haystack VARCHAR(*), needle VARCHAR(*)) -> INTEGER",
        "1 if needle occurs in haystack as a whole word (case-insensitive), 0 otherwise.",
        2,
        2,
        INT,
    ),
    UDF(
        "ivo_hashlist_has",
        "ivo_hashlist_has(hashlist VARCHAR(*), item VARCHAR(*)) -> INTEGER",
        "1 if item is one of the #-separated words of hashlist (case-insensitive), 0 otherwise.",
        2,
        2,
        INT,
    ),
    UDF(
        "ivo_interval_overlaps",
        "ivo_interval_overlaps(l1 NUMERIC, h1 NUMERIC, l2 NUMERIC, h2 NUMERIC) -> INTEGER",
        "1 if the closed intervals [l1, h1] and [l2, h2] overlap, 0 otherwise.",
        4,
        4,
        INT,
    ),
    UDF(
        "ivo_string_agg",
        "ivo_string_agg(expr VARCHAR(*), delimiter VARCHAR(*)) -> VARCHAR(*)",
        "Aggregate: the non-NULL values of expr joined by delimiter.",
        2,
        2,
        STRING,
        aggregate=True,
    ),
    UDF(
        "ivo_epoch_prop_pos",
        "ivo_epoch_prop_pos(ra DOUBLE, dec DOUBLE, parallax DOUBLE, pmra DOUBLE, pmdec DOUBLE,"
        " radial_velocity DOUBLE, ref_epoch DOUBLE, out_epoch DOUBLE) -> POINT",
        "The position at out_epoch (Julian years) of a star at (ra, dec) [deg] at ref_epoch,"
        " with parallax [mas], pmra (with cos dec) and pmdec [mas/yr] and radial velocity"
        " [km/s] (NULLs count as 0), by rigorous space-motion propagation.",
        8,
        8,
        POINT,
    ),
]
UDFS_BY_NAME: dict[str, UDF] = {u.name: u for u in UDF_LIST}

#: Names the parser accepts as functions beyond the built-ins: the ``ivo_``
#: prefix is reserved for IVOA-defined functions (ADQL 2.1 section 4.3), so
#: unknown ``ivo_`` names parse and fail later, at translation, as unsupported.
IVOA_UDF_PREFIX = "ivo_"

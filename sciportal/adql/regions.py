"""REGION('...') literals: the STC-S subset we turn into ADQL geometries.

Supported: Position, Circle, Box and Polygon with an optional frame,
reference position and flavor (ignored beyond validation, like coordsys
arguments). Union, Intersection and Not parse in ADQL but are refused here
as unsupported, with a clear message.
"""

from __future__ import annotations

from sciportal.errors import QueryError, UnsupportedError

from . import nodes as n

_FRAMES = {
    "ICRS",
    "FK4",
    "FK5",
    "J2000",
    "B1950",
    "GALACTIC",
    "GALACTIC_II",
    "ECLIPTIC",
    "UNKNOWNFRAME",
    "SUPER_GALACTIC",
    "GEO_C",
    "GEO_D",
}
_REFPOS = {
    "BARYCENTER",
    "GEOCENTER",
    "HELIOCENTER",
    "LSR",
    "TOPOCENTER",
    "RELOCATABLE",
    "UNKNOWNREFPOS",
}
_FLAVORS = {"SPHERICAL2", "CARTESIAN2", "UNITSPHERE"}
_SHAPES = {"POSITION": ("POINT", 2), "CIRCLE": ("CIRCLE", 3), "BOX": ("BOX", 4)}


def region_to_geometry(text: str, pos: n.Pos = None) -> n.Func:
    """The ADQL geometry constructor equivalent to an STC-S string."""
    words = text.replace("(", " ( ").replace(")", " ) ").split()
    if not words:
        raise QueryError("empty REGION string", *(pos or (None, None)))
    shape = words[0].upper()
    if shape in ("UNION", "INTERSECTION", "NOT"):
        raise UnsupportedError(f"REGION with STC-S {words[0]} is not supported; use one shape")
    if shape not in _SHAPES and shape != "POLYGON":
        raise QueryError(
            f"REGION: unknown STC-S shape {words[0]!r} (Position, Circle, Box or Polygon)",
            *(pos or (None, None)),
        )
    rest = words[1:]
    frame = "UNKNOWNFrame"
    while rest and rest[0].upper() in (_FRAMES | _REFPOS | _FLAVORS):
        if rest[0].upper() in _FRAMES:
            frame = rest[0]
        rest = rest[1:]
    try:
        nums = [float(w) for w in rest]
    except ValueError:
        raise QueryError(
            f"REGION: cannot read numbers in {text!r}", *(pos or (None, None))
        ) from None
    if shape == "POLYGON":
        name, count = "POLYGON", len(nums)
        if count < 6 or count % 2:
            raise QueryError(
                "REGION Polygon needs at least three ra dec pairs", *(pos or (None, None))
            )
    else:
        name, count = _SHAPES[shape]
        if len(nums) != count:
            raise QueryError(
                f"REGION {words[0]} needs {count} numbers, got {len(nums)}", *(pos or (None, None))
            )
    args: list[n.Expr] = [n.Literal(frame, "str")]
    args += [n.Literal(v, "float") for v in nums]
    return n.Func(name, args, pos)

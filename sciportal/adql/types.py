"""Derived column metadata for ADQL expressions (VOTable datatype, unit, xtype)."""

from __future__ import annotations

from dataclasses import replace

from sciportal.metadata.model import Column

from . import functions as fn
from . import nodes as n

_INTEGER_TYPES = ("short", "int", "long", "unsignedByte", "boolean")
_RANK = {"unsignedByte": 0, "boolean": 0, "short": 1, "int": 2, "long": 3, "float": 4, "double": 5}

_CAST_META = {
    "SMALLINT": fn.SHORT,
    "INTEGER": fn.INT,
    "BIGINT": fn.LONG,
    "REAL": fn.FLOAT,
    "DOUBLE PRECISION": fn.DOUBLE,
    "TIMESTAMP": fn.TIMESTAMP,
    "POINT": fn.POINT,
    "CIRCLE": fn.CIRCLE,
    "POLYGON": fn.POLYGON,
}

_KEEP_UNIT = {"ABS", "CEILING", "FLOOR", "ROUND", "TRUNCATE", "MOD"}
_GEOMETRY_KIND = {"POINT": "point", "CENTROID": "point", "CIRCLE": "circle", "POLYGON": "polygon"}


def is_integer(meta: Column | None) -> bool:
    """True for integer VOTable types (that SQL divides as integers)."""
    return meta is not None and meta.datatype in _INTEGER_TYPES and meta.arraysize is None


def is_string(meta: Column | None) -> bool:
    return meta is not None and meta.datatype in ("char", "unicodeChar")


def geometry_kind(e: n.Expr) -> str | None:
    """'point', 'circle', 'polygon' or 'box' for geometry-valued expressions."""
    if isinstance(e, n.Func) and not e.udf:
        if e.name == "BOX":
            return "box"
        return _GEOMETRY_KIND.get(e.name)
    meta = e.meta
    if meta is not None and meta.xtype in ("point", "circle", "polygon"):
        return meta.xtype
    return None


def _numeric(a: Column | None, b: Column | None) -> Column:
    ra = _RANK.get(a.datatype, 5) if a is not None else 5
    rb = _RANK.get(b.datatype, 5) if b is not None else 5
    r = max(ra, rb)
    if r <= 2:
        return fn.INT
    return {3: fn.LONG, 4: fn.FLOAT}.get(r, fn.DOUBLE)


def _plain(meta: Column) -> Column:
    """Type-only metadata (no name, description or UCD carried over)."""
    return Column("_", datatype=meta.datatype, arraysize=meta.arraysize, xtype=meta.xtype)


def expr_meta(e: n.Expr) -> Column:
    """Metadata of ``e`` once its children have metadata."""
    if isinstance(e, n.Predicate):
        return fn.INT
    if isinstance(e, n.Literal):
        if e.kind == "int":
            return fn.INT if -(2**31) <= e.value < 2**31 else fn.LONG
        if e.kind == "float":
            return fn.DOUBLE
        return fn.STRING if e.kind == "str" else fn.NULL
    if isinstance(e, n.Unary):
        m = e.operand.meta
        assert m is not None
        return replace(_plain(m), unit=m.unit) if e.op != "~" else _plain(m)
    if isinstance(e, n.Binary):
        lm, rm = e.left.meta, e.right.meta
        if e.op == "||":
            return fn.STRING
        if e.op in ("&", "|", "^"):
            return _numeric(lm, rm) if is_integer(lm) and is_integer(rm) else fn.LONG
        out = _numeric(lm, rm)
        if e.op in ("+", "-") and lm is not None and rm is not None and lm.unit == rm.unit:
            out = replace(out, unit=lm.unit)
        return out
    if isinstance(e, n.Aggregate):
        am = e.arg.meta if e.arg is not None else None
        if e.name == "COUNT":
            return fn.LONG
        assert am is not None
        if e.name == "AVG":
            return replace(fn.DOUBLE, unit=am.unit)
        if e.name == "SUM":
            base = fn.LONG if is_integer(am) else fn.DOUBLE
            return replace(base, unit=am.unit)
        return replace(am, name="_", description="", principal=False, indexed=False)
    if isinstance(e, n.Cast):
        if e.type_name in ("CHAR", "VARCHAR"):
            size = str(e.length) if e.length else None
            if e.type_name == "VARCHAR" and size:
                size += "*"
            return Column("_", datatype="char", arraysize=size or "*")
        return _CAST_META[e.type_name]
    if isinstance(e, n.Case):
        for _, v in e.whens:
            if v.meta is not None and not (isinstance(v, n.Literal) and v.kind == "null"):
                return _plain(v.meta)
        if e.default is not None and e.default.meta is not None:
            return _plain(e.default.meta)
        return fn.NULL
    if isinstance(e, n.Func):
        return _func_meta(e)
    return fn.DOUBLE


def _func_meta(e: n.Func) -> Column:
    if e.udf:
        return fn.UDFS_BY_NAME[e.name.lower()].result
    name = e.name
    first = e.args[0].meta if e.args else None
    if name in ("POINT", "CENTROID"):
        return fn.POINT
    if name == "CIRCLE":
        return fn.CIRCLE
    if name in ("POLYGON", "BOX"):
        return fn.POLYGON
    if name in ("CONTAINS", "INTERSECTS"):
        return fn.INT
    if name in ("COORD1", "COORD2", "DISTANCE"):
        return replace(fn.DOUBLE, unit="deg")
    if name == "AREA":
        return replace(fn.DOUBLE, unit="deg**2")
    if name in ("LOWER", "UPPER", "COORDSYS"):
        return fn.STRING
    if name == "COALESCE":
        for a in e.args:
            if a.meta is not None and not (isinstance(a, n.Literal) and a.kind == "null"):
                return replace(_plain(a.meta), unit=a.meta.unit)
        return fn.NULL
    if name == "IN_UNIT":
        unit = e.args[1]
        assert isinstance(unit, n.Literal)
        return replace(fn.DOUBLE, unit=str(unit.value))
    if name == "DEGREES":
        return replace(fn.DOUBLE, unit="deg")
    if name == "RADIANS":
        return replace(fn.DOUBLE, unit="rad")
    if name in _KEEP_UNIT and first is not None:
        if name in ("CEILING", "FLOOR", "ROUND", "TRUNCATE") and is_integer(first):
            return replace(_plain(first), unit=first.unit)
        if name in ("ABS", "MOD") and is_integer(first):
            return replace(_plain(first), unit=first.unit)
        return replace(fn.DOUBLE, unit=first.unit)
    return fn.DOUBLE

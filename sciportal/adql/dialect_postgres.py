"""The PostgreSQL + pgSphere dialect (the geometry mapping DaCHS's morphpg uses).

Geometries become pgSphere values in radians (spoint, scircle, sbox, spoly);
CONTAINS is ``<@``, INTERSECTS ``&&``, DISTANCE ``<->``. Point, circle and
polygon columns are assumed to be stored as spoint, scircle and spoly.
Selected geometries are returned as float8[] in degrees (DALI) when built
from constructors; geometry columns are returned as stored.
"""

from __future__ import annotations

from sciportal.errors import UnsupportedError

from . import nodes as n
from .generator import Generator, number, quote_string
from .spatial import const_value, shape_args
from .types import geometry_kind


class PostgresGenerator(Generator):
    dialect = "postgres"
    FUNCTIONS = {**Generator.FUNCTIONS, "LOG10": "log"}

    def spoint(self, e: n.Expr) -> str:
        if isinstance(e, n.Func) and not e.udf:
            if e.name == "POINT":
                ra, dec = shape_args(e)
                return f"spoint(radians({self.expr(ra)}), radians({self.expr(dec)}))"
            if e.name == "CENTROID":
                return f"(@@ {self.pg_geometry(e.args[0])})"
        return self.expr(e)

    def pg_geometry(self, e: n.Expr) -> str:
        """pgSphere value of a geometry expression."""
        kind = geometry_kind(e)
        if not (isinstance(e, n.Func) and not e.udf):
            if kind is None:
                raise UnsupportedError("expected a geometry here")
            if isinstance(e, n.Func) and e.name.lower() == "ivo_healpix_center":
                return self.udf_point(e)
            return self.expr(e)
        args = shape_args(e)
        if kind == "point":
            return self.spoint(e)
        if e.name == "CIRCLE":
            if len(args) == 2:
                return f"scircle({self.spoint(args[0])}, radians({self.expr(args[1])}))"
            ra, dec, r = (self.expr(a) for a in args)
            return f"scircle(spoint(radians({ra}), radians({dec})), radians({r}))"
        if e.name == "BOX":
            if len(args) == 3:
                raise UnsupportedError("BOX with a point centre is not supported on PostgreSQL")
            ra, dec, w, h = (self.expr(a) for a in args)
            return (
                f"sbox(spoint(radians(({ra}) - ({w}) / 2.0), radians(({dec}) - ({h}) / 2.0)), "
                f"spoint(radians(({ra}) + ({w}) / 2.0), radians(({dec}) + ({h}) / 2.0)))"
            )
        if e.name == "POLYGON":
            vals = [const_value(a) for a in args]
            if all(v is not None for v in vals) and len(vals) % 2 == 0:
                pts = ",".join(
                    f"({number(float(vals[i]))}d,{number(float(vals[i + 1]))}d)"  # type: ignore[arg-type]
                    for i in range(0, len(vals), 2)
                )
                return f"spoly {quote_string('{' + pts + '}')}"
            if all(geometry_kind(a) == "point" for a in args):
                return "spoly(ARRAY[" + ", ".join(self.spoint(a) for a in args) + "])"
            return "spoly(ARRAY[" + ", ".join(f"radians({self.expr(a)})" for a in args) + "])"
        raise UnsupportedError(f"{e.name} is not supported on PostgreSQL")

    def geometry_value(self, e: n.Expr) -> str:
        kind = geometry_kind(e)
        if isinstance(e, n.Func) and not e.udf and e.name in ("POINT", "CIRCLE", "POLYGON"):
            args = shape_args(e)
            if e.name == "CIRCLE" and len(args) == 2:
                p = self.spoint(args[0])
                return (
                    f"ARRAY[degrees(long({p})), degrees(lat({p})), {self.expr(args[1])}]::float8[]"
                )
            if all(geometry_kind(a) is None for a in args):
                return "ARRAY[" + ", ".join(self.expr(a) for a in args) + "]::float8[]"
        if kind == "point":
            p = self.pg_geometry(e)
            return f"ARRAY[degrees(long({p})), degrees(lat({p}))]"
        return self.pg_geometry(e)

    def f_POINT(self, e: n.Func) -> str:
        return self.pg_geometry(e)

    f_CIRCLE = f_POLYGON = f_BOX = f_CENTROID = f_POINT

    def contains(self, a: n.Expr, b: n.Expr) -> str:
        return f"({self.pg_geometry(a)} <@ {self.pg_geometry(b)})"

    def intersects(self, a: n.Expr, b: n.Expr) -> str:
        if geometry_kind(b) == "point":
            a, b = b, a
        if geometry_kind(a) == "point":
            return self.contains(a, b)
        return f"({self.pg_geometry(a)} && {self.pg_geometry(b)})"

    def predicate_comparison(self, e: n.Comparison) -> str | None:
        for f, other in ((e.left, e.right), (e.right, e.left)):
            if isinstance(f, n.Func) and not f.udf and f.name in ("CONTAINS", "INTERSECTS"):
                v = const_value(other)
                if v in (0.0, 1.0) and e.op in ("=", "<>"):
                    test = (
                        self.contains(*f.args) if f.name == "CONTAINS" else self.intersects(*f.args)
                    )
                    return test if (v == 1.0) == (e.op == "=") else f"(NOT {test})"
        if geometry_kind(e.left) or geometry_kind(e.right):
            return f"{self.pg_geometry(e.left)} {e.op} {self.pg_geometry(e.right)}"
        return None

    def f_CONTAINS(self, e: n.Func) -> str:
        return f"CAST({self.contains(*e.args)} AS INTEGER)"

    def f_INTERSECTS(self, e: n.Func) -> str:
        return f"CAST({self.intersects(*e.args)} AS INTEGER)"

    def f_DISTANCE(self, e: n.Func) -> str:
        if len(e.args) == 4:
            a, b, c, d = (self.expr(x) for x in e.args)
            return f"degrees(spoint(radians({a}), radians({b})) <-> spoint(radians({c}), radians({d})))"
        return f"degrees({self.spoint(e.args[0])} <-> {self.spoint(e.args[1])})"

    def f_COORD1(self, e: n.Func) -> str:
        return f"degrees(long({self.spoint(e.args[0])}))"

    def f_COORD2(self, e: n.Func) -> str:
        return f"degrees(lat({self.spoint(e.args[0])}))"

    def f_COORDSYS(self, e: n.Func) -> str:
        g = e.args[0]
        if (
            isinstance(g, n.Func)
            and g.args
            and isinstance(g.args[0], n.Literal)
            and g.args[0].kind == "str"
        ):
            return self.expr(g.args[0])
        return "'ICRS'"

    def f_AREA(self, e: n.Func) -> str:
        return f"degrees(degrees(area({self.pg_geometry(e.args[0])})))"

    def f_ROUND(self, e: n.Func) -> str:
        digits = self.expr(e.args[1]) if len(e.args) > 1 else "0"
        return f"round(CAST({self.expr(e.args[0])} AS NUMERIC), {digits})"

    def f_TRUNCATE(self, e: n.Func) -> str:
        digits = self.expr(e.args[1]) if len(e.args) > 1 else "0"
        return f"trunc(CAST({self.expr(e.args[0])} AS NUMERIC), {digits})"

    def f_MOD(self, e: n.Func) -> str:
        a, b = (f"CAST({self.expr(x)} AS NUMERIC)" for x in e.args)
        return f"mod({a}, {b})"

    def geometry_cast(self, e: n.Cast) -> str:
        raise UnsupportedError("CAST to a geometry is not supported on PostgreSQL yet")

    def udf_point(self, e: n.Func) -> str:
        order, ipix = (self.expr(a) for a in e.args)
        return f"centre({order}, {ipix})"

    def udf(self, e: n.Func) -> str:
        name = e.name.lower()
        a = [self.expr(x) for x in e.args]
        if name == "ivo_nocasematch":
            return f"(CASE WHEN {a[0]} ILIKE {a[1]} THEN 1 ELSE 0 END)"
        if name == "ivo_hasword":
            return (
                f"(CASE WHEN to_tsvector('english', {a[0]}) @@ plainto_tsquery('english', {a[1]})"
                " THEN 1 ELSE 0 END)"
            )
        if name == "ivo_hashlist_has":
            return f"(CASE WHEN lower({a[1]}) = ANY(string_to_array(lower({a[0]}), '#')) THEN 1 ELSE 0 END)"
        if name == "ivo_interval_overlaps":
            return f"(CASE WHEN {a[1]} >= {a[2]} AND {a[3]} >= {a[0]} THEN 1 ELSE 0 END)"
        if name == "ivo_string_agg":
            return f"string_agg({a[0]}, {a[1]})"
        if name == "ivo_healpix_index":
            return f"healpix_nest({a[0]}, spoint(radians({a[1]}), radians({a[2]})))"
        if name == "ivo_healpix_center":
            p = self.udf_point(e)
            return f"ARRAY[degrees(long({p})), degrees(lat({p}))]"
        raise UnsupportedError(f"{e.name} is not available on the PostgreSQL engine")

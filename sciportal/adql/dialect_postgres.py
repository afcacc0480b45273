"""The PostgreSQL + pgSphere dialect (the geometry mapping DaCHS's morphpg uses).

Geometries become pgSphere values in radians (spoint, scircle, sbox, spoly);
CONTAINS is ``<@``, INTERSECTS ``&&``, DISTANCE ``<->``. Point, circle and
polygon columns are assumed to be stored as spoint, scircle and spoly.
Selected geometries are returned as float8[] in degrees (DALI) when built
from constructors; geometry columns are returned as stored.
"""

from __future__ import annotations

from sciportal.errors import UnsupportedError
from sciportal.healpix import SPATIAL_INDEX_COLUMN

from . import nodes as n
from .generator import Generator, number, quote_string
from .scope import RangeVar
from .shapes import box_polygon
from .spatial import const_value, shape_args
from .sphere import polygon_centroid
from .types import geometry_kind


class PostgresGenerator(Generator):
    dialect = "postgres"
    FUNCTIONS = {**Generator.FUNCTIONS, "LOG10": "log"}

    def has_spatial_index(self, var: RangeVar) -> bool:
        """Only tables whose metadata declares ``_healpix_29`` get the range filter."""
        return var.table is not None and any(
            c.name == SPATIAL_INDEX_COLUMN for c in var.table.columns
        )

    def spoint(self, e: n.Expr) -> str:
        if isinstance(e, n.Func) and not e.udf:
            if e.name == "POINT":
                ra, dec = shape_args(e)
                return f"spoint(radians({self.expr(ra)}), radians({self.expr(dec)}))"
            if e.name == "CENTROID":
                return self.centroid(e.args[0])
        if isinstance(e, n.Func) and e.udf and e.name.lower() == "ivo_healpix_center":
            return self.udf_point(e)
        return self.expr(e)

    def centroid(self, g: n.Expr) -> str:
        """spoint of CENTROID(g); pgSphere's ``@@`` only knows circles and ellipses."""
        kind = geometry_kind(g)
        if kind == "point":
            return self.spoint(g)
        if kind == "circle":
            return f"(@@ {self.pg_geometry(g)})"
        if kind == "box":
            if isinstance(g, n.Func) and len(shape_args(g)) == 3:
                return self.spoint(shape_args(g)[0])
            ra, dec, _, _ = self.box_parts(g)
            return f"spoint(radians({ra}), radians({dec}))"
        if kind == "polygon":
            vals = self.const_polygon(g)
            if vals is not None:
                try:
                    cra, cdec = polygon_centroid(vals)
                except ValueError as exc:
                    raise UnsupportedError(f"CENTROID: {exc}") from None
                return f"spoint(radians({number(cra)}), radians({number(cdec)}))"
            raise UnsupportedError(
                "CENTROID of a polygon column or of a polygon with non-constant vertices is "
                "not supported on the PostgreSQL engine (pgSphere has no polygon centroid)"
            )
        raise UnsupportedError("CENTROID needs a geometry argument")

    def box_parts(self, e: n.Expr) -> tuple[str, str, str, str]:
        """SQL of (ra, dec, width, height) in degrees of a BOX constructor."""
        if not (isinstance(e, n.Func) and not e.udf and e.name == "BOX"):
            raise UnsupportedError("box columns are not supported on the PostgreSQL engine")
        args = shape_args(e)
        if len(args) == 3:
            p = self.spoint(args[0])
            w, h = self.expr(args[1]), self.expr(args[2])
            return f"degrees(long({p}))", f"degrees(lat({p}))", w, h
        ra, dec, w, h = (self.expr(a) for a in args)
        return ra, dec, w, h

    def const_polygon(self, e: n.Expr) -> list[float] | None:
        """Vertices of a POLYGON with constant numeric arguments, else None."""
        if not (isinstance(e, n.Func) and not e.udf and e.name == "POLYGON"):
            return None
        vals = [const_value(a) for a in shape_args(e)]
        if any(v is None for v in vals) or len(vals) % 2:
            return None
        return [float(v) for v in vals if v is not None]

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
            ra, dec, w, h = self.box_parts(e)
            return (
                f"sbox(spoint(radians(({ra}) - ({w}) / 2.0), radians(({dec}) - ({h}) / 2.0)), "
                f"spoint(radians(({ra}) + ({w}) / 2.0), radians(({dec}) + ({h}) / 2.0)))"
            )
        if e.name == "POLYGON":
            vals = [const_value(a) for a in args]
            if all(v is not None for v in vals) and len(vals) % 2 == 0:
                text = ",".join(
                    f"({number(float(vals[i]))}d,{number(float(vals[i + 1]))}d)"  # type: ignore[arg-type]
                    for i in range(0, len(vals), 2)
                )
                return f"spoly {quote_string('{' + text + '}')}"
            if all(geometry_kind(a) == "point" for a in args):
                pts = [self.spoint(a) for a in args]
            else:
                if len(args) % 2:
                    raise UnsupportedError("POLYGON needs pairs of coordinates")
                pts = [
                    f"spoint(radians({self.expr(args[i])}), radians({self.expr(args[i + 1])}))"
                    for i in range(0, len(args), 2)
                ]
            # pgSphere 1.2 has no spoly(array) constructor, only the spoly(spoint) aggregate
            # (the parts are generated SQL: identifiers and literals are quoted)
            array = "ARRAY[" + ", ".join(pts) + "]"
            return f"(SELECT spoly(_v.p ORDER BY _v.i) FROM unnest({array}) WITH ORDINALITY AS _v(p, i))"  # noqa: S608
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
        if geometry_kind(a) == "point":
            return f"({self.pg_geometry(a)} <@ {self.pg_geometry(b)})"
        return f"({self.shape(a)} <@ {self.shape(b)})"

    def intersects(self, a: n.Expr, b: n.Expr) -> str:
        if geometry_kind(b) == "point":
            a, b = b, a
        if geometry_kind(a) == "point":
            return self.contains(a, b)
        return f"({self.shape(a)} && {self.shape(b)})"

    def shape(self, e: n.Expr) -> str:
        """pgSphere value of a shape related to another shape.

        A constant BOX becomes a polygon tracing it (:func:`box_polygon`):
        pgSphere 1.2's sbox-versus-circle and sbox-versus-box overlap tests
        miss overlaps across a box's Dec edges.
        """
        if geometry_kind(e) == "box" and isinstance(e, n.Func):
            vals = [const_value(a) for a in shape_args(e)]
            if len(vals) == 4 and all(v is not None for v in vals):
                poly = box_polygon(*(float(v) for v in vals if v is not None))
                text = ",".join(
                    f"({number(poly[i])}d,{number(poly[i + 1])}d)" for i in range(0, len(poly), 2)
                )
                return f"spoly {quote_string('{' + text + '}')}"
        return self.pg_geometry(e)

    def predicate_comparison(self, e: n.Comparison) -> str | None:
        for f, other in ((e.left, e.right), (e.right, e.left)):
            if isinstance(f, n.Func) and not f.udf and f.name in ("CONTAINS", "INTERSECTS"):
                v = const_value(other)
                if v in (0.0, 1.0) and e.op in ("=", "<>"):
                    test = (
                        self.contains(*f.args) if f.name == "CONTAINS" else self.intersects(*f.args)
                    )
                    # IS NOT TRUE: NULL counts as false (as on DuckDB), and the planner
                    # cannot swap in pgSphere's negators (spoly !&& spoly is broken)
                    return test if (v == 1.0) == (e.op == "=") else f"({test} IS NOT TRUE)"
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
        if geometry_kind(e.args[0]) == "point":
            return "0.0"
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
        """spoint of ivo_healpix_center (pgSphere's ``centre_of_healpix_nest``)."""
        order, ipix = (self.expr(a) for a in e.args)
        c = f"centre_of_healpix_nest(CAST({order} AS INTEGER), CAST({ipix} AS BIGINT))"
        # its longitude can come out negative; spoint(lng, lat) normalises it to [0, 2 pi)
        return f"spoint(long({c}), lat({c}))"

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
            return (
                f"healpix_nest(CAST({a[0]} AS INTEGER), spoint(radians({a[1]}), radians({a[2]})))"
            )
        if name == "ivo_healpix_center":
            p = self.udf_point(e)
            return f"ARRAY[degrees(long({p})), degrees(lat({p}))]"
        if name == "ivo_epoch_prop_pos":
            raise UnsupportedError(
                "ivo_epoch_prop_pos is not available on the PostgreSQL engine (pgSphere has no "
                "epoch propagation); query a table served by the DuckDB engine instead"
            )
        raise UnsupportedError(f"{e.name} is not available on the PostgreSQL engine")

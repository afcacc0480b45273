"""The DuckDB dialect: geometries as DOUBLE[] lists in degrees, macros for the sphere.

Points are ``[ra, dec]``, circles ``[ra, dec, r]``, polygons
``[ra1, dec1, ...]`` (DALI serializations), so geometry columns and
selected geometries are plain lists. Predicates on constructors are
expanded to scalar arithmetic (no lists built per row); the macros they use
are defined by :mod:`sciportal.engines.duckdb_udfs`.
"""

from __future__ import annotations

import math

from sciportal.errors import UnsupportedError

from . import nodes as n
from .generator import Generator, number, quote_ident
from .spatial import const_value, shape_args
from .sphere import polygon_area, polygon_centroid, polygon_projection
from .types import geometry_kind
from .xmatch import CrossMatch

Point = tuple[str, str]
#: extended shapes the shape-relation UDFs (sciportal.adql.shapes) handle
_SHAPES = ("circle", "polygon", "box")


class DuckDBGenerator(Generator):
    dialect = "duckdb"
    INT_DIV = "//"
    CAST_LENGTHS = False

    CELL_JOINS = True

    def cell_source(self, x: CrossMatch, sql: str) -> str:
        """The other side of a cross-match, one row per HEALPix cell its circle may touch."""
        alias = quote_ident(x.other.alias)
        ra, dec, r = self.expr(x.ra), self.expr(x.dec), number(float(x.radius))
        cells = f"unnest(adql_xmatch_cells({x.depth}, {ra}, {dec}, {r}))"
        # every part is generated SQL: quoted identifiers, numbers, translated expressions
        select = f"SELECT {alias}.*, {cells} AS {quote_ident(x.column)} FROM {sql}"  # noqa: S608
        return f"({select}) AS {alias}"

    def nulls_sort_first(self, descending: bool) -> bool:
        """DuckDB's default null order (``default_null_order``) is NULLS LAST either way."""
        return False

    def bit_xor(self, left: str, right: str) -> str:
        """DuckDB has no infix XOR operator (``xor`` is a function)."""
        return f"xor({left}, {right})"

    # ----- geometry parts -------------------------------------------------------
    def point_parts(self, e: n.Expr) -> Point:
        """SQL for (ra, dec) of a point-valued expression."""
        if isinstance(e, n.Func) and not e.udf:
            if e.name == "POINT":
                ra, dec = shape_args(e)
                return self.expr(ra), self.expr(dec)
            if e.name == "CENTROID":
                return self.centroid_parts(e.args[0])
        if geometry_kind(e) == "point":
            v = self.geometry_value(e)
            return f"({v})[1]", f"({v})[2]"
        raise UnsupportedError("expected a point here")

    def centroid_parts(self, g: n.Expr) -> Point:
        kind = geometry_kind(g)
        if kind == "point":
            return self.point_parts(g)
        if kind == "circle":
            ra, dec, _ = self.circle_parts(g)
            return ra, dec
        if kind == "box":
            ra, dec, _, _ = self.box_parts(g)
            return ra, dec
        if kind == "polygon":
            vals = self.const_polygon(g)
            if vals is not None:
                cra, cdec = polygon_centroid(vals)
                return number(cra), number(cdec)
            v = self.polygon_sql(g)
            return f"adql_polygon_centroid({v})[1]", f"adql_polygon_centroid({v})[2]"
        raise UnsupportedError("CENTROID needs a geometry argument")

    def circle_parts(self, e: n.Expr) -> tuple[str, str, str]:
        if isinstance(e, n.Func) and e.name == "CIRCLE" and not e.udf:
            args = shape_args(e)
            if len(args) == 2:
                ra, dec = self.point_parts(args[0])
                return ra, dec, self.expr(args[1])
            return self.expr(args[0]), self.expr(args[1]), self.expr(args[2])
        v = self.geometry_value(e)
        return f"({v})[1]", f"({v})[2]", f"({v})[3]"

    def box_parts(self, e: n.Expr) -> tuple[str, str, str, str]:
        assert isinstance(e, n.Func)
        args = shape_args(e)
        if len(args) == 3:
            ra, dec = self.point_parts(args[0])
            return ra, dec, self.expr(args[1]), self.expr(args[2])
        return self.expr(args[0]), self.expr(args[1]), self.expr(args[2]), self.expr(args[3])

    def const_polygon(self, e: n.Expr) -> list[float] | None:
        if not (isinstance(e, n.Func) and e.name == "POLYGON" and not e.udf):
            return None
        vals = [const_value(a) for a in shape_args(e)]
        if any(v is None for v in vals) or len(vals) % 2:
            return None
        return [float(v) for v in vals if v is not None]

    def polygon_sql(self, e: n.Expr) -> str:
        """SQL of a DOUBLE[] ``[ra1, dec1, ...]`` for a polygon (or box) expression."""
        if isinstance(e, n.Func) and not e.udf and e.name == "POLYGON":
            args = shape_args(e)
            if (
                all(geometry_kind(a) == "point" for a in args)
                and len(args) >= 3
                and not (len(args) % 2 == 0 and all(geometry_kind(a) is None for a in args))
            ):
                flat = [p for a in args for p in self.point_parts(a)]
            else:
                flat = [self.expr(a) for a in args]
            return "[" + ", ".join(f"CAST({x} AS DOUBLE)" for x in flat) + "]"
        if isinstance(e, n.Func) and not e.udf and e.name == "BOX":
            return "adql_box_polygon({}, {}, {}, {})".format(*self.box_parts(e))
        return self.expr(e)

    # ----- geometry values ----------------------------------------------------------
    def geometry_value(self, e: n.Expr) -> str:
        kind = geometry_kind(e)
        if isinstance(e, n.Func) and not e.udf:
            if kind == "point":
                ra, dec = self.point_parts(e)
                return f"[CAST({ra} AS DOUBLE), CAST({dec} AS DOUBLE)]"
            if kind == "circle":
                parts = self.circle_parts(e)
                return "[" + ", ".join(f"CAST({p} AS DOUBLE)" for p in parts) + "]"
            if kind in ("polygon", "box"):
                return self.polygon_sql(e)
        return self.expr(e)

    def geometry_cast(self, e: n.Cast) -> str:
        # DALI serialization: blank-separated numbers
        return f"list_transform(string_split(trim(regexp_replace(CAST({self.expr(e.operand)} AS VARCHAR), '\\s+', ' ', 'g')), ' '), lambda x: CAST(x AS DOUBLE))"

    def f_POINT(self, e: n.Func) -> str:
        return self.geometry_value(e)

    f_CIRCLE = f_POLYGON = f_BOX = f_CENTROID = f_POINT

    # ----- predicates ------------------------------------------------------------------
    def contains(self, a: n.Expr, b: n.Expr) -> str:
        """SQL boolean for CONTAINS(a, b)."""
        ka, kb = geometry_kind(a), geometry_kind(b)
        if ka == "point":
            ra, dec = self.point_parts(a)
            if kb == "circle":
                cra, cdec, r = self.circle_parts(b)
                return f"adql_sdist({ra}, {dec}, {cra}, {cdec}) <= {r}"
            if kb == "box":
                return "adql_point_in_box({}, {}, {}, {}, {}, {})".format(
                    ra, dec, *self.box_parts(b)
                )
            if kb == "polygon":
                vals = self.const_polygon(b)
                if vals is not None:
                    try:
                        c, ev, nv, xs, ys = polygon_projection(vals[0::2], vals[1::2])
                    except ValueError as exc:
                        raise UnsupportedError(f"POLYGON: {exc}") from None
                    consts = ", ".join(number(float(x)) for x in (*c, *ev, *nv))
                    lx = "[" + ", ".join(number(x) for x in xs) + "]"
                    ly = "[" + ", ".join(number(y) for y in ys) + "]"
                    return f"adql_in_projected_polygon({ra}, {dec}, {consts}, {lx}, {ly})"
                return f"adql_point_in_polygon({ra}, {dec}, {self.polygon_sql(b)})"
            if kb == "point":
                rb, db = self.point_parts(b)
                return f"adql_sdist({ra}, {dec}, {rb}, {db}) = 0"
        if ka == "circle" and kb == "circle":
            r1, d1, rad1 = self.circle_parts(a)
            r2, d2, rad2 = self.circle_parts(b)
            return f"adql_sdist({r1}, {d1}, {r2}, {d2}) + {rad1} <= {rad2}"
        if ka in _SHAPES and kb in _SHAPES:
            return f"adql_region_within({self.region_sql(a)}, {self.region_sql(b)})"
        raise UnsupportedError(
            f"CONTAINS({ka or 'value'}, {kb or 'value'}) is not supported by the DuckDB engine"
        )

    def region_sql(self, e: n.Expr) -> str:
        """``'kind', DOUBLE[]`` arguments of the shape-relation UDFs for a circle, polygon or box."""
        kind = geometry_kind(e)
        if kind == "box":
            parts = ", ".join(f"CAST({p} AS DOUBLE)" for p in self.box_parts(e))
            return f"'box', [{parts}]"
        if kind == "polygon":
            return f"'polygon', {self.polygon_sql(e)}"
        return f"'circle', {self.geometry_value(e)}"

    def intersects(self, a: n.Expr, b: n.Expr) -> str:
        ka, kb = geometry_kind(a), geometry_kind(b)
        if ka == "point":
            return self.contains(a, b)
        if kb == "point":
            return self.contains(b, a)
        if ka == "circle" and kb == "circle":
            r1, d1, rad1 = self.circle_parts(a)
            r2, d2, rad2 = self.circle_parts(b)
            return f"adql_sdist({r1}, {d1}, {r2}, {d2}) <= {rad1} + {rad2}"
        if ka in _SHAPES and kb in _SHAPES:
            return f"adql_region_intersects({self.region_sql(a)}, {self.region_sql(b)})"
        raise UnsupportedError(
            f"INTERSECTS({ka or 'value'}, {kb or 'value'}) is not supported by the DuckDB engine"
        )

    def predicate_comparison(self, e: n.Comparison) -> str | None:
        for f, other in ((e.left, e.right), (e.right, e.left)):
            if isinstance(f, n.Func) and not f.udf and f.name in ("CONTAINS", "INTERSECTS"):
                v = const_value(other)
                if v in (0.0, 1.0) and e.op in ("=", "<>"):
                    test = (
                        self.contains(*f.args) if f.name == "CONTAINS" else self.intersects(*f.args)
                    )
                    positive = (v == 1.0) == (e.op == "=")
                    return f"({test})" if positive else f"(NOT COALESCE({test}, FALSE))"
        if geometry_kind(e.left) or geometry_kind(e.right):
            if e.op not in ("=", "<>"):
                raise UnsupportedError("geometries can only be compared with = or <>")
            return f"{self.geometry_value(e.left)} {e.op} {self.geometry_value(e.right)}"
        return None

    def f_CONTAINS(self, e: n.Func) -> str:
        return f"CAST({self.contains(*e.args)} AS INTEGER)"

    def f_INTERSECTS(self, e: n.Func) -> str:
        return f"CAST({self.intersects(*e.args)} AS INTEGER)"

    def f_DISTANCE(self, e: n.Func) -> str:
        if len(e.args) == 4:
            return "adql_sdist({}, {}, {}, {})".format(*(self.expr(a) for a in e.args))
        (r1, d1), (r2, d2) = self.point_parts(e.args[0]), self.point_parts(e.args[1])
        return f"adql_sdist({r1}, {d1}, {r2}, {d2})"

    def f_COORD1(self, e: n.Func) -> str:
        return self.point_parts(e.args[0])[0]

    def f_COORD2(self, e: n.Func) -> str:
        return self.point_parts(e.args[0])[1]

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
        g = e.args[0]
        kind = geometry_kind(g)
        if kind == "circle":
            _, _, r = self.circle_parts(g)
            return f"(2 * pi() * (1 - cos(radians({r}))) * {number((180 / math.pi) ** 2)})"
        if kind == "box":
            _, dec, w, h = self.box_parts(g)
            return f"adql_box_area({dec}, {w}, {h})"
        if kind == "polygon":
            vals = self.const_polygon(g)
            if vals is not None:
                return number(polygon_area(vals))
            return f"adql_polygon_area({self.polygon_sql(g)})"
        if kind == "point":
            return "0.0"
        raise UnsupportedError("AREA needs a geometry argument")

    # ----- UDFs ----------------------------------------------------------------------------
    def udf(self, e: n.Func) -> str:
        name = e.name.lower()
        args = [self.expr(a) for a in e.args]
        if name == "ivo_string_agg":
            return f"string_agg({args[0]}, {args[1]})"
        return f"{name}({', '.join(args)})"

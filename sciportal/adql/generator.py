"""SQL generation from a resolved ADQL tree: one base class, small dialect subclasses.

Like sqlglot's generators, scaled down: a method per node type, a table of
function mappings, and hooks a dialect overrides (geometry above all).
Every identifier and literal is quoted here; no user text reaches the SQL
any other way.
"""

from __future__ import annotations

import math
from typing import Protocol

from astropy import units as u

from sciportal.errors import QueryError, UnsupportedError
from sciportal.healpix import SPATIAL_INDEX_COLUMN, SPATIAL_INDEX_ORDER
from sciportal.metadata.model import Table

from . import nodes as n
from .scope import RangeVar
from .topn import TopN
from .types import geometry_kind, is_integer
from .xmatch import CrossMatch


class TableSQL(Protocol):
    """The engine hook giving the FROM text of a stored table.

    ``ranges``: the ``_healpix_29`` ranges the query's spatial constraints
    imply (None: no constraint). ``topn``: the query wants only the first
    rows of the table in some order (see :mod:`sciportal.adql.topn`); the
    hook may restrict the table to rows that can be among them. The
    generator passes ``topn`` only when it has one, so two-argument hooks
    keep working for queries without one.
    """

    def __call__(
        self, table: Table, ranges: list[tuple[int, int]] | None, /, topn: TopN | None = None
    ) -> str: ...


def quote_ident(name: str) -> str:
    """A delimited SQL identifier."""
    if "\x00" in name:
        raise QueryError("identifiers cannot contain NUL characters")
    return '"' + name.replace('"', '""') + '"'


def quote_string(value: str) -> str:
    """A standard SQL string literal (no backslash escapes)."""
    if "\x00" in value:
        raise QueryError("string literals cannot contain NUL characters")
    return "'" + value.replace("'", "''") + "'"


def default_table_sql(
    table: Table, ranges: list[tuple[int, int]] | None, /, topn: TopN | None = None
) -> str:
    """The quoted qualified name of a table."""
    return ".".join(quote_ident(p) for p in table.name.split(".", 1))


def number(v: float | int) -> str:
    if isinstance(v, bool):
        raise TypeError(v)
    if isinstance(v, int):
        return str(v)
    if not math.isfinite(v):
        raise QueryError(f"number out of range: {v}")
    return repr(float(v))


class Generator:
    """Standard-SQL generation; dialects override the ``*_sql`` hooks."""

    dialect = "sql"
    #: ADQL function name -> SQL function name for simple one-to-one mappings
    FUNCTIONS: dict[str, str] = {
        "ABS": "abs",
        "ACOS": "acos",
        "ASIN": "asin",
        "ATAN": "atan",
        "ATAN2": "atan2",
        "CEILING": "ceil",
        "COS": "cos",
        "COT": "cot",
        "DEGREES": "degrees",
        "EXP": "exp",
        "FLOOR": "floor",
        "LOG": "ln",
        "LOG10": "log10",
        "PI": "pi",
        "POWER": "power",
        "RADIANS": "radians",
        "SIN": "sin",
        "SQRT": "sqrt",
        "TAN": "tan",
        "LOWER": "lower",
        "UPPER": "upper",
        "COALESCE": "coalesce",
    }
    CAST_TYPES = {
        "SMALLINT": "SMALLINT",
        "INTEGER": "INTEGER",
        "BIGINT": "BIGINT",
        "REAL": "REAL",
        "DOUBLE PRECISION": "DOUBLE PRECISION",
        "TIMESTAMP": "TIMESTAMP",
        "CHAR": "VARCHAR",
        "VARCHAR": "VARCHAR",
    }

    #: whether cross-match conjuncts also become equi-joins on HEALPix cells
    #: (see :mod:`sciportal.adql.xmatch`; needs :meth:`cell_source`)
    CELL_JOINS = False

    def __init__(self, table_sql: TableSQL | None = None) -> None:
        self.table_sql = table_sql or default_table_sql
        self._crossmatches: list[CrossMatch] = []  # those of the SELECT being generated
        self._topn: tuple[RangeVar, TopN] | None = None  # that of the SELECT being generated

    # ----- statements and queries ---------------------------------------------
    def statement(self, stmt: n.Statement, maxrec: int | None = None) -> tuple[str, int | None]:
        """SQL for a whole statement and the row limit applied at its top."""
        parts = []
        if stmt.ctes:
            parts.append(
                "WITH "
                + ", ".join(
                    f"{quote_ident(c.name.name)} AS ({self.query(c.query)})" for c in stmt.ctes
                )
            )
        limit = None if maxrec is None else maxrec + 1
        q = stmt.query
        if isinstance(q.body, n.Select) and q.body.top is not None:
            limit = q.body.top if limit is None else min(limit, q.body.top)
        parts.append(self.query(q, limit=limit))
        return " ".join(parts), limit

    def query(self, q: n.QueryExpr, limit: int | None = None) -> str:
        body = q.body
        if isinstance(body, n.Select):
            lim = body.top if limit is None else limit
            return self.select(body, q.order_by, q.offset, lim)
        if isinstance(body, n.SetOp):
            op = body.op + (" ALL" if body.all else "")
            sql = f"({self.query(body.left)}) {op} ({self.query(body.right)})"
        else:
            sql = f"({self.query(body)})"
        return sql + self.tail(q.order_by, q.offset, limit)

    def tail(self, order_by: list[n.OrderTerm], offset: int | None, limit: int | None) -> str:
        sql = ""
        if order_by:
            sql += " ORDER BY " + ", ".join(self.order_term(t) for t in order_by)
        if limit is not None:
            sql += f" LIMIT {int(limit)}"
        if offset is not None:
            sql += f" OFFSET {int(offset)}"
        return sql

    def order_term(self, t: n.OrderTerm) -> str:
        e = t.expr
        if isinstance(e, n.Literal) and e.kind == "int":
            s = str(int(e.value))
        elif isinstance(e, n.ColumnRef) and e.output_alias is not None:
            s = quote_ident(e.output_alias)
        else:
            s = self.expr(e)
        return s + (" DESC" if t.descending else " ASC")

    def select(
        self, sel: n.Select, order_by: list[n.OrderTerm], offset: int | None, limit: int | None
    ) -> str:
        outer = self._crossmatches, self._topn
        self._crossmatches = sel.crossmatches if self.CELL_JOINS else []
        self._topn = self.topn_request(sel, offset, limit)
        try:
            return self._select(sel, order_by, offset, limit)
        finally:
            self._crossmatches, self._topn = outer

    def topn_request(
        self, sel: n.Select, offset: int | None, limit: int | None
    ) -> tuple[RangeVar, TopN] | None:
        """The top-N request for the table of ``sel`` (see :mod:`sciportal.adql.topn`)."""
        key = sel.topn
        if key is None or limit is None:
            return None
        rows = int(limit) + max(int(offset or 0), 0)
        if rows <= 0:
            return None
        nulls_first = self.nulls_sort_first(key.descending) and not key.not_null
        return key.var, TopN(key.column, rows, key.descending, nulls_first)

    def nulls_sort_first(self, descending: bool) -> bool:
        """Whether ``ORDER BY x ASC|DESC`` as generated puts NULLs first.

        Standard SQL leaves it to the implementation; PostgreSQL treats NULL
        as larger than any value (first when descending). Dialects override.
        """
        return descending

    def _select(
        self, sel: n.Select, order_by: list[n.OrderTerm], offset: int | None, limit: int | None
    ) -> str:
        items = ", ".join(f"{self.value(e)} AS {quote_ident(name)}" for name, e, _ in sel.outputs)
        sql = "SELECT " + ("DISTINCT " if sel.distinct else "") + items
        vars_: list[RangeVar] = []
        sql += " FROM " + ", ".join(self.from_item(f, vars_) for f in sel.from_)
        conds = [self.expr(sel.where)] if sel.where is not None else []
        conds += [
            self.range_filter(v)
            for v in vars_
            if v.ranges is not None and v.filter_target == "WHERE" and self.has_spatial_index(v)
        ]
        conds += [self.cell_join(x) for x in self._crossmatches if x.target == "WHERE"]
        if conds:
            sql += " WHERE " + " AND ".join(f"({c})" if len(conds) > 1 else c for c in conds)
        if sel.group_by:
            sql += " GROUP BY " + ", ".join(
                quote_ident(g.output_alias)
                if isinstance(g, n.ColumnRef) and g.output_alias
                else self.expr(g)
                for g in sel.group_by
            )
        if sel.having is not None:
            sql += " HAVING " + self.expr(sel.having)
        return sql + self.tail(order_by, offset, limit)

    def has_spatial_index(self, var: RangeVar) -> bool:
        """Whether the table behind ``var`` has a ``_healpix_29`` column to filter on.

        Positional tables are HATS catalogs, which always have it; dialects
        whose tables may lack it override this.
        """
        return var.table is not None and var.table.positional

    def range_filter(self, var: RangeVar) -> str:
        """``_healpix_29`` range test for a pruned table (row-group statistics prune on it)."""
        col = f"{quote_ident(var.alias)}.{quote_ident(SPATIAL_INDEX_COLUMN)}"
        ranges = var.ranges or []
        if not ranges:
            return "FALSE"
        lo, hi = ranges[0][0], ranges[-1][1]
        terms = " OR ".join(f"({col} >= {a} AND {col} < {b})" for a, b in ranges)
        return f"{col} >= {lo} AND {col} < {hi} AND ({terms})"

    # ----- FROM -------------------------------------------------------------------
    def from_item(self, item: n.FromItem, vars_: list[RangeVar]) -> str:
        if isinstance(item, n.TableRef):
            var = item.var
            assert var is not None
            vars_.append(var)
            if var.cte is not None:
                return self._with_cells(var, f"{quote_ident(var.cte)} AS {quote_ident(var.alias)}")
            assert var.table is not None
            if self._topn is not None and self._topn[0] is var:
                source = self.table_sql(var.table, var.ranges, topn=self._topn[1])
            else:
                source = self.table_sql(var.table, var.ranges)
            sql = f"{source} AS {quote_ident(var.alias)}"
            return self._with_cells(var, sql)
        if isinstance(item, n.DerivedTable):
            var = item.var
            assert var is not None
            vars_.append(var)
            return self._with_cells(var, f"({self.query(item.query)}) AS {quote_ident(var.alias)}")
        inner: list[RangeVar] = []
        left = self.from_item(item.left, inner)
        right = self.from_item(item.right, inner)
        vars_.extend(inner)
        kind = item.kind
        if kind == "CROSS" or (item.on is None and not item.using and not item.natural):
            if kind in ("INNER", "CROSS"):
                return f"({left} CROSS JOIN {right})"
        sql = f"({left} {'FULL OUTER' if kind == 'FULL' else kind} JOIN {right}"
        conds = []
        if item.on is not None:
            conds.append(self.expr(item.on))
        if item.natural or item.using:
            lvars = self._vars_of(item.left)
            rvars = self._vars_of(item.right)
            for name in item.merged:
                lv = next(v for v in lvars if any(c.name == name for c in v.columns))
                rv = next(v for v in rvars if any(c.name == name for c in v.columns))
                conds.append(
                    f"{quote_ident(lv.alias)}.{quote_ident(name)} = {quote_ident(rv.alias)}.{quote_ident(name)}"
                )
        conds += [
            self.range_filter(v)
            for v in inner
            if v.ranges is not None and v.filter_target is item and self.has_spatial_index(v)
        ]
        conds += [self.cell_join(x) for x in self._crossmatches if x.target is item]
        sql += " ON " + (" AND ".join(f"({c})" for c in conds) if conds else "TRUE")
        return sql + ")"

    def _with_cells(self, var: RangeVar, sql: str) -> str:
        """A FROM item, extended with the HEALPix cells of a cross-match it is the circle of."""
        for x in self._crossmatches:
            if x.other is var:
                return self.cell_source(x, sql)
        return sql

    def cell_join(self, x: CrossMatch) -> str:
        """The equi-join of a cross-match: the indexed table's cell = the other's cell."""
        index = f"{quote_ident(x.indexed.alias)}.{quote_ident(SPATIAL_INDEX_COLUMN)}"
        shift = 2 * (SPATIAL_INDEX_ORDER - x.depth)
        cell = f"({index} >> {shift})" if shift else index
        return f"{cell} = {quote_ident(x.other.alias)}.{quote_ident(x.column)}"

    def cell_source(self, x: CrossMatch, sql: str) -> str:
        """``sql`` (``source AS alias``) with one row per cell of ``x`` in ``x.column``."""
        raise UnsupportedError(f"cell joins are not supported by the {self.dialect} engine")

    def _vars_of(self, item: n.FromItem) -> list[RangeVar]:
        if isinstance(item, (n.TableRef, n.DerivedTable)):
            return [item.var] if item.var is not None else []
        return self._vars_of(item.left) + self._vars_of(item.right)

    # ----- expressions -----------------------------------------------------------
    def value(self, e: n.Expr) -> str:
        """An expression used as an output value (geometries as the dialect shows them)."""
        if geometry_kind(e) is not None:
            return self.geometry_value(e)
        if isinstance(e, n.Predicate):
            return f"CASE WHEN {self.expr(e)} THEN 1 ELSE 0 END"
        return self.expr(e)

    def expr(self, e: n.Expr) -> str:
        method = getattr(self, "e_" + type(e).__name__)
        return method(e)

    def e_Literal(self, e: n.Literal) -> str:
        if e.kind == "null":
            return "NULL"
        if e.kind == "str":
            return quote_string(e.value)
        return number(e.value)

    def e_RawSQL(self, e: n.RawSQL) -> str:
        return e.sql

    def column_sql(self, e: n.ColumnRef) -> str:
        if e.output_alias is not None:
            return quote_ident(e.output_alias)
        assert e.source is not None and e.column is not None
        if e.merged_from and e.merge_kind in ("FULL", "RIGHT"):
            refs = [f"{quote_ident(v.alias)}.{quote_ident(e.column)}" for v in e.merged_from]
            if e.merge_kind == "RIGHT":
                return refs[1]
            return f"COALESCE({', '.join(refs)})"
        return f"{quote_ident(e.source.alias)}.{quote_ident(e.column)}"

    def e_ColumnRef(self, e: n.ColumnRef) -> str:
        return self.column_sql(e)

    def e_Unary(self, e: n.Unary) -> str:
        return f"({e.op}{self.expr(e.operand)})"

    def e_Binary(self, e: n.Binary) -> str:
        op = e.op
        if op == "/" and is_integer(e.left.meta) and is_integer(e.right.meta):
            op = self.INT_DIV
        if op == "^":
            return self.bit_xor(self.expr(e.left), self.expr(e.right))
        if op == "%":
            return f"mod({self.expr(e.left)}, {self.expr(e.right)})"
        return f"({self.expr(e.left)} {op} {self.expr(e.right)})"

    INT_DIV = "/"

    def bit_xor(self, left: str, right: str) -> str:
        """ADQL 2.1 ``^`` (bitwise XOR); PostgreSQL spells it ``#``."""
        return f"({left} # {right})"

    def e_Subquery(self, e: n.Subquery) -> str:
        return f"({self.query(e.query)})"

    def e_Aggregate(self, e: n.Aggregate) -> str:
        if e.arg is None:
            return "COUNT(*)"
        return f"{e.name}({'DISTINCT ' if e.distinct else ''}{self.expr(e.arg)})"

    def e_Cast(self, e: n.Cast) -> str:
        if e.type_name in ("POINT", "CIRCLE", "POLYGON"):
            return self.geometry_cast(e)
        t = self.CAST_TYPES[e.type_name]
        if e.length is not None and e.type_name in ("CHAR", "VARCHAR"):
            t = f"{t}({int(e.length)})" if self.CAST_LENGTHS else t
        return f"CAST({self.expr(e.operand)} AS {t})"

    CAST_LENGTHS = True

    def e_Case(self, e: n.Case) -> str:
        sql = "CASE"
        if e.operand is not None:
            sql += " " + self.expr(e.operand)
        for c, v in e.whens:
            sql += f" WHEN {self.expr(c)} THEN {self.value(v)}"
        if e.default is not None:
            sql += f" ELSE {self.value(e.default)}"
        return sql + " END"

    def e_Comparison(self, e: n.Comparison) -> str:
        special = self.predicate_comparison(e)
        if special is not None:
            return special
        return f"{self.expr(e.left)} {e.op} {self.expr(e.right)}"

    def e_Between(self, e: n.Between) -> str:
        neg = "NOT " if e.negated else ""
        return f"{self.expr(e.operand)} {neg}BETWEEN {self.expr(e.low)} AND {self.expr(e.high)}"

    def e_InList(self, e: n.InList) -> str:
        neg = "NOT " if e.negated else ""
        return f"{self.expr(e.operand)} {neg}IN ({', '.join(self.expr(i) for i in e.items)})"

    def e_InQuery(self, e: n.InQuery) -> str:
        neg = "NOT " if e.negated else ""
        return f"{self.expr(e.operand)} {neg}IN ({self.query(e.query)})"

    def e_Like(self, e: n.Like) -> str:
        neg = "NOT " if e.negated else ""
        op = "ILIKE" if e.case_insensitive else "LIKE"
        return f"{self.expr(e.operand)} {neg}{op} {self.expr(e.pattern)}"

    def e_IsNull(self, e: n.IsNull) -> str:
        return f"{self.expr(e.operand)} IS {'NOT ' if e.negated else ''}NULL"

    def e_Exists(self, e: n.Exists) -> str:
        return f"EXISTS ({self.query(e.query)})"

    def e_BoolOp(self, e: n.BoolOp) -> str:
        return "(" + f" {e.op} ".join(self.expr(i) for i in e.items) + ")"

    def e_Not(self, e: n.Not) -> str:
        return f"(NOT ({self.expr(e.operand)}))"

    def e_Func(self, e: n.Func) -> str:
        if e.udf:
            return self.udf(e)
        name = e.name
        args = e.args
        method = getattr(self, "f_" + name, None)
        if method is not None:
            return method(e)
        if name in self.FUNCTIONS:
            return f"{self.FUNCTIONS[name]}({', '.join(self.expr(a) for a in args)})"
        raise UnsupportedError(f"{name} is not supported by the {self.dialect} engine")

    # simple functions needing care
    def f_MOD(self, e: n.Func) -> str:
        return f"mod({self.expr(e.args[0])}, {self.expr(e.args[1])})"

    def f_RAND(self, e: n.Func) -> str:
        return "random()"

    def f_ROUND(self, e: n.Func) -> str:
        x = self.expr(e.args[0])
        digits = self.expr(e.args[1]) if len(e.args) > 1 else "0"
        return f"round({x}, {digits})"

    def f_TRUNCATE(self, e: n.Func) -> str:
        x = self.expr(e.args[0])
        if len(e.args) == 1:
            return f"trunc({x})"
        d = int(e.args[1].value) if isinstance(e.args[1], n.Literal) else 0
        scale = number(10.0**d)
        return f"(trunc({x} * {scale}) / {scale})"

    def f_IN_UNIT(self, e: n.Func) -> str:
        src = e.args[0].meta.unit if e.args[0].meta is not None else None
        target = e.args[1]
        assert isinstance(target, n.Literal)
        if not src:
            raise QueryError(
                "IN_UNIT: the value has no unit to convert from", *(e.pos or (None, None))
            )
        try:
            factor = u.Unit(src, format="vounit", parse_strict="silent").to(
                u.Unit(str(target.value), format="vounit", parse_strict="raise")
            )
        except (ValueError, u.UnitsError) as exc:
            raise QueryError(
                f"IN_UNIT: cannot convert {src} to {target.value}: {exc}", *(e.pos or (None, None))
            ) from None
        return f"({self.expr(e.args[0])} * {number(float(factor))})"

    # ----- hooks the dialects implement ----------------------------------------------
    def udf(self, e: n.Func) -> str:
        raise UnsupportedError(f"function {e.name} is not available on the {self.dialect} engine")

    def geometry_value(self, e: n.Expr) -> str:
        raise UnsupportedError(f"geometry values are not supported by the {self.dialect} engine")

    def geometry_cast(self, e: n.Cast) -> str:
        raise UnsupportedError(
            f"CAST to {e.type_name} is not supported by the {self.dialect} engine"
        )

    def predicate_comparison(self, e: n.Comparison) -> str | None:
        return None

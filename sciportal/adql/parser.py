"""ADQL text -> typed tree (syntax only).

An LALR(1) lark parser whose callbacks build :mod:`nodes` directly while
parsing (no intermediate parse tree), and check what a context-free grammar
cannot: reserved words, function arities, where predicates are required,
geometry values in arithmetic. Every failure is a QueryError with a line,
a column and what was expected.
"""

from __future__ import annotations

import re
from collections.abc import Collection
from functools import lru_cache
from pathlib import Path
from typing import Any

from lark import Lark, Token, Transformer
from lark.exceptions import UnexpectedCharacters, UnexpectedEOF, UnexpectedInput, UnexpectedToken

from sciportal.errors import QueryError
from sciportal.metadata.identifiers import RESERVED

from . import nodes as n
from .functions import (
    ARITY,
    GEOMETRY_CONSTRUCTORS,
    IVOA_UDF_PREFIX,
    UDFS_BY_NAME,
)

_STRING_PART = re.compile(r"'((?:[^']|'')*)'")

# Readable names for terminals in "expected ..." messages.
_TERMINAL_NAMES = {
    "LPAR": "'('",
    "RPAR": "')'",
    "COMMA": "','",
    "DOT": "'.'",
    "STAR": "'*'",
    "COMP_OP": "a comparison operator",
    "ADD_OP": "'+' or '-'",
    "MUL_OP": "'/'",
    "CONCAT": "'||'",
    "UNSIGNED_INT": "an unsigned integer",
    "UNSIGNED_FLOAT": "a number",
    "STRING": "a string literal",
    "REGULAR_IDENTIFIER": "an identifier",
    "DELIMITED_IDENTIFIER": "a delimited identifier",
    "$END": "end of query",
}


def _err(message: str, pos: n.Pos) -> QueryError:
    return QueryError(message, *(pos or (None, None)))


def _pos(tok: Any) -> n.Pos:
    if isinstance(tok, Token) and tok.line is not None:
        return (tok.line, tok.column or 0)
    return getattr(tok, "pos", None)


def _expr_pos(e: Any) -> n.Pos:
    """Best-effort position of an expression (for messages)."""
    for attr in ("pos",):
        p = getattr(e, attr, None)
        if p:
            return p
    for child in ("left", "operand", "arg"):
        c = getattr(e, child, None)
        if c is not None:
            return _expr_pos(c)
    return None


def _value(e: Any, what: str = "a value") -> n.Expr:
    """Check that ``e`` is a value expression, not a predicate or star."""
    if isinstance(e, n.Star):
        raise _err(f"'*' is not allowed here; expected {what}", e.pos)
    if isinstance(e, n.Predicate):
        raise _err(
            f"a condition cannot be used as {what} (ADQL has no boolean values)", _expr_pos(e)
        )
    return e


def _condition(e: Any, where: str) -> n.Expr:
    """Check that ``e`` is a search condition (a predicate)."""
    if not isinstance(e, n.Predicate):
        if isinstance(e, n.Func) and e.name in ("CONTAINS", "INTERSECTS"):
            hint = f"; write {e.name}(...) = 1"
        else:
            hint = ""
        raise _err(f"{where} needs a condition such as a comparison{hint}", _expr_pos(e))
    return e


def _not_geometry(e: n.Expr, op: str) -> n.Expr:
    if isinstance(e, n.Func) and e.name in GEOMETRY_CONSTRUCTORS:
        raise _err(f"a geometry ({e.name}) cannot be an operand of {op}", e.pos)
    return e


def _is_coordsys(e: n.Expr) -> bool:
    return isinstance(e, n.Literal) and e.kind in ("str", "null")


def _maybe_point(e: n.Expr) -> bool:
    """Could ``e`` be a point value (a coord_value in the grammar)?"""
    if isinstance(e, n.Func):
        return e.name in ("POINT", "CENTROID") or e.udf
    return isinstance(e, (n.ColumnRef, n.Cast, n.Subquery, n.Case)) or (
        isinstance(e, n.Func) and e.udf
    )


def _check_geometry_args(name: str, args: list[n.Expr], pos: n.Pos) -> None:
    """Argument shapes of POINT, CIRCLE, BOX, POLYGON, REGION, DISTANCE."""
    rest = args[1:] if args and _is_coordsys(args[0]) else args
    if name == "REGION":
        if not (isinstance(args[0], n.Literal) and args[0].kind == "str"):
            raise _err("REGION needs a string literal argument", pos)
        return
    if name == "POINT":
        if len(rest) != 2:
            raise _err("POINT needs [coordsys,] ra, dec", pos)
        return
    if name in ("CIRCLE", "BOX"):
        extra = 1 if name == "CIRCLE" else 2
        form = "ra, dec, radius" if name == "CIRCLE" else "ra, dec, width, height"
        if len(rest) == 2 + extra:
            return
        if len(rest) == 1 + extra and _maybe_point(rest[0]):
            return
        raise _err(f"{name} needs [coordsys,] {form} or [coordsys,] point, ...", pos)
    if name == "POLYGON":
        if len(rest) >= 6 and len(rest) % 2 == 0:
            return
        if len(rest) >= 3 and all(_maybe_point(a) for a in rest):
            return
        raise _err(
            "POLYGON needs [coordsys,] and at least three vertices, as ra, dec pairs or points",
            pos,
        )
    if name == "DISTANCE":
        if len(args) == 3:
            raise _err("DISTANCE needs two points or four numbers", pos)


def _unquote_string(text: str) -> str:
    return "".join(p.replace("''", "'") for p in _STRING_PART.findall(text))


class _Builder(Transformer):
    """Lark callbacks building nodes while the LALR parser reduces."""

    def __init__(self, udfs: Collection[str]) -> None:
        super().__init__(visit_tokens=False)
        self.udfs = udfs

    # --- identifiers and names -----------------------------------------
    def identifier(self, c: list[Token]) -> n.Ident:
        tok = c[0]
        if tok.type == "DELIMITED_IDENTIFIER":
            return n.Ident(tok.value[1:-1].replace('""', '"'), True, _pos(tok))
        if tok.value.upper() in RESERVED:
            raise _err(
                f"{tok.value!r} is a reserved word; write it as a delimited identifier "
                f'("{tok.value}") to use it as a name',
                _pos(tok),
            )
        return n.Ident(tok.value, False, _pos(tok))

    def qualified(self, c: list[n.Ident]) -> list[n.Ident]:
        if len(c) > 3:
            raise _err("a table name has at most three parts (catalog.schema.table)", c[0].pos)
        return c

    def column_ref(self, c: list[Any]) -> n.ColumnRef | n.Star:
        if isinstance(c[-1], Token):  # STAR
            parts = c[:-1]
            if any(isinstance(x, Token) for x in parts):
                raise _err("'*' may only end a qualified name", _pos(c[-1]))
            if len(parts) > 3:
                raise _err("a table name has at most three parts", parts[0].pos)
            return n.Star(parts, _pos(c[-1]))
        for x in c:
            if isinstance(x, Token):
                raise _err("'*' may only end a qualified name", _pos(x))
        if len(c) > 4:
            raise _err(
                "a column reference has at most four parts (catalog.schema.table.column)",
                c[0].pos,
            )
        return n.ColumnRef(c, c[0].pos)

    # --- literals ---------------------------------------------------------
    def int_literal(self, c: list[Token]) -> n.Literal:
        return n.Literal(int(c[0].value), "int")

    def float_literal(self, c: list[Token]) -> n.Literal:
        return n.Literal(float(c[0].value), "float")

    def string_literal(self, c: list[Token]) -> n.Literal:
        return n.Literal(_unquote_string(c[0].value), "str")

    def null_literal(self, c: list[Token]) -> n.Literal:
        return n.Literal(None, "null")

    # --- expressions --------------------------------------------------------
    def paren(self, c: list[Any]) -> Any:
        return c[0]

    def scalar_subquery(self, c: list[Any]) -> n.Subquery:
        return n.Subquery(c[0])

    def binop(self, c: list[Any]) -> n.Binary:
        left, op, right = c
        what = f"'{op.value}'"
        left = _not_geometry(_value(left, f"an operand of {what}"), what)
        right = _not_geometry(_value(right, f"an operand of {what}"), what)
        return n.Binary(op.value, left, right)

    def unary(self, c: list[Any]) -> n.Expr:
        op, operand = c
        operand = _not_geometry(_value(operand, f"an operand of '{op.value}'"), op.value)
        if op.value == "-" and isinstance(operand, n.Literal) and operand.kind in ("int", "float"):
            return n.Literal(-operand.value, operand.kind)
        return n.Unary(op.value, operand)

    def function_name(self, c: list[Token]) -> Token:
        return c[0]

    def function_call(self, c: list[Any]) -> n.Func:
        tok = c[0]
        args = [a for a in c[1:] if a is not None]
        pos = _pos(tok)
        if tok.type == "REGULAR_IDENTIFIER":
            name = tok.value
            low = name.lower()
            if low.upper() in RESERVED:
                raise _err(f"unknown function {name!r}", pos)
            if low not in UDFS_BY_NAME and low not in self.udfs:
                if not low.startswith(IVOA_UDF_PREFIX):
                    raise _err(
                        f"unknown function {name!r}: neither an ADQL function nor a "
                        f"user-defined function of this service "
                        f"({', '.join(sorted(UDFS_BY_NAME))})",
                        pos,
                    )
            for a in args:
                _value(a, f"an argument of {name}")
            return n.Func(name, args, pos, udf=True)
        name = tok.type
        lo, hi = ARITY[name]
        if len(args) < lo or (hi is not None and len(args) > hi):
            want = str(lo) if lo == hi else f"{lo} to {hi}" if hi is not None else f"{lo} or more"
            raise _err(f"{name} takes {want} argument(s), not {len(args)}", pos)
        for a in args:
            _value(a, f"an argument of {name}")
        if name in ("POINT", "CIRCLE", "BOX", "POLYGON", "REGION", "DISTANCE"):
            _check_geometry_args(name, args, pos)
        if name in ("ROUND", "TRUNCATE") and len(args) == 2:
            a = args[1]
            if not (isinstance(a, n.Literal) and a.kind == "int"):
                raise _err(f"the second argument of {name} must be an integer literal", pos)
        if (
            name == "RAND"
            and args
            and not (isinstance(args[0], n.Literal) and args[0].kind == "int")
        ):
            raise _err("RAND takes an optional integer seed", pos)
        if name == "IN_UNIT" and not (isinstance(args[1], n.Literal) and args[1].kind == "str"):
            raise _err("the second argument of IN_UNIT must be a unit string literal", pos)
        if name in ("LOWER", "UPPER"):
            _not_geometry(args[0], name)
        return n.Func(name, args, pos)

    def aggregate(self, c: list[Any]) -> n.Aggregate:
        name = c[0].type
        distinct = False
        rest = c[1:]
        if isinstance(rest[0], str):  # quantifier
            distinct = rest[0] == "DISTINCT"
            rest = rest[1:]
        return n.Aggregate(name, _value(rest[0], f"the argument of {name}"), distinct)

    def count_star(self, c: list[Any]) -> n.Aggregate:
        return n.Aggregate("COUNT", None)

    def cast(self, c: list[Any]) -> n.Cast:
        operand = _value(c[1], "the argument of CAST")
        type_name, length = c[3]
        return n.Cast(operand, type_name, length)

    def cast_type(self, c: list[Token]) -> tuple[str, int | None]:
        name = c[0].type
        if name == "DOUBLE":
            return "DOUBLE PRECISION", None
        length = int(c[1].value) if len(c) > 1 else None
        return name, length

    def case_expr(self, c: list[Any]) -> n.Case:
        items = c[1:-1]  # drop CASE and END
        operand = None
        if items and not isinstance(items[0], tuple):
            operand = _value(items[0], "the CASE operand")
            items = items[1:]
        whens = [x for x in items if isinstance(x, tuple)]
        default = None
        if len(items) >= 2 and isinstance(items[-2], Token):  # ELSE expr
            default = _value(items[-1], "the ELSE value")
        for cond, _ in whens:
            if operand is None:
                _condition(cond, "WHEN")
            else:
                _value(cond, "a WHEN value")
        return n.Case(operand, whens, default)

    def when_clause(self, c: list[Any]) -> tuple[n.Expr, n.Expr]:
        return (c[1], _value(c[3], "a THEN value"))

    # --- predicates -----------------------------------------------------------
    def comparison(self, c: list[Any]) -> n.Comparison:
        left, op, right = c
        return n.Comparison(
            "<>" if op.value == "!=" else op.value,
            _value(left, "a comparison operand"),
            _value(right, "a comparison operand"),
        )

    @staticmethod
    def _negated(c: list[Any]) -> bool:
        return any(isinstance(x, Token) and x.type == "NOT" for x in c)

    def between(self, c: list[Any]) -> n.Between:
        a, lo, hi = (_value(x, "a BETWEEN operand") for x in c if not isinstance(x, Token))
        return n.Between(a, lo, hi, self._negated(c))

    def in_query(self, c: list[Any]) -> n.InQuery:
        return n.InQuery(_value(c[0], "the IN operand"), c[-1], self._negated(c))

    def in_list(self, c: list[Any]) -> n.InList:
        vals = [x for x in c[1:] if not isinstance(x, Token)]
        return n.InList(
            _value(c[0], "the IN operand"),
            [_value(v, "an IN list item") for v in vals],
            self._negated(c),
        )

    def _like(self, c: list[Any], ci: bool) -> n.Like:
        left, right = c[0], c[-1]
        op = "ILIKE" if ci else "LIKE"
        left = _not_geometry(_value(left, f"a {op} operand"), op)
        right = _not_geometry(_value(right, f"a {op} pattern"), op)
        return n.Like(left, right, self._negated(c), ci)

    def like(self, c: list[Any]) -> n.Like:
        return self._like(c, False)

    def ilike(self, c: list[Any]) -> n.Like:
        return self._like(c, True)

    def is_null(self, c: list[Any]) -> n.IsNull:
        return n.IsNull(_value(c[0], "the IS NULL operand"), self._negated(c))

    def exists(self, c: list[Any]) -> n.Exists:
        return n.Exists(c[-1])

    def and_(self, c: list[Any]) -> n.BoolOp:
        left, right = _condition(c[0], "AND"), _condition(c[2], "AND")
        items = left.items if isinstance(left, n.BoolOp) and left.op == "AND" else [left]
        return n.BoolOp("AND", [*items, right])

    def or_(self, c: list[Any]) -> n.BoolOp:
        left, right = _condition(c[0], "OR"), _condition(c[2], "OR")
        items = left.items if isinstance(left, n.BoolOp) and left.op == "OR" else [left]
        return n.BoolOp("OR", [*items, right])

    def not_(self, c: list[Any]) -> n.Not:
        return n.Not(_condition(c[1], "NOT"))

    # --- queries --------------------------------------------------------------
    def quantifier(self, c: list[Token]) -> str:
        return c[0].type

    def top(self, c: list[Token]) -> tuple[str, int]:
        return ("TOP", int(c[1].value))

    def alias(self, c: list[Any]) -> n.Ident:
        return c[-1]

    def derived_column(self, c: list[Any]) -> n.SelectItem | n.Star:
        expr = c[0]
        alias = c[1] if len(c) > 1 else None
        if isinstance(expr, n.Star):
            if alias is not None:
                raise _err("'t.*' cannot have an alias", alias.pos)
            return expr
        return n.SelectItem(_value(expr, "a select-list item"), alias)

    def all_columns(self, c: list[Token]) -> n.Star:
        return n.Star(None, _pos(c[0]))

    def select_list(self, c: list[Any]) -> list[Any]:
        # The BNF wants a lone '*', but "a, *" is common and every engine runs it.
        return c

    def from_clause(self, c: list[Any]) -> tuple[str, list[Any]]:
        return ("FROM", c[1:])

    def where(self, c: list[Any]) -> tuple[str, n.Expr]:
        return ("WHERE", _condition(c[1], "WHERE"))

    def group_by(self, c: list[Any]) -> tuple[str, list[n.Expr]]:
        return ("GROUP", [_value(x, "a GROUP BY term") for x in c[2:]])

    def having(self, c: list[Any]) -> tuple[str, n.Expr]:
        return ("HAVING", _condition(c[1], "HAVING"))

    def order_by(self, c: list[Any]) -> tuple[str, list[n.OrderTerm]]:
        return ("ORDER", c[2:])

    def order_term(self, c: list[Any]) -> n.OrderTerm:
        desc = len(c) > 1 and c[1] == "DESC"
        return n.OrderTerm(_value(c[0], "an ORDER BY term"), desc)

    def direction(self, c: list[Token]) -> str:
        return c[0].type

    def offset(self, c: list[Token]) -> tuple[str, int]:
        return ("OFFSET", int(c[1].value))

    def select_query(self, c: list[Any]) -> n.QueryExpr:
        sel = n.Select(items=[], from_=[])
        for x in c[1:]:
            if isinstance(x, str):
                sel.distinct = x == "DISTINCT"
            elif isinstance(x, list):
                sel.items = x
            elif x[0] == "TOP":
                sel.top = x[1]
            elif x[0] == "FROM":
                sel.from_ = x[1]
            elif x[0] == "WHERE":
                sel.where = x[1]
            elif x[0] == "GROUP":
                sel.group_by = x[1]
            elif x[0] == "HAVING":
                sel.having = x[1]
        return n.QueryExpr(sel)

    def select_expression(self, c: list[Any]) -> n.QueryExpr:
        q = c[0]
        order = [x[1] for x in c[1:] if x[0] == "ORDER"]
        offset = [x[1] for x in c[1:] if x[0] == "OFFSET"]
        if not order and not offset:
            return q
        if q.order_by or q.offset is not None or q.parenthesized:
            q = n.QueryExpr(q)
        q.order_by = order[0] if order else []
        q.offset = offset[0] if offset else None
        return q

    def paren_query(self, c: list[Any]) -> n.QueryExpr:
        q: n.QueryExpr = c[0]
        q.parenthesized = True
        return q

    def _setop(self, c: list[Any], op: str) -> n.QueryExpr:
        all_ = any(isinstance(x, Token) and x.type == "ALL" for x in c)
        return n.QueryExpr(n.SetOp(op, all_, c[0], c[-1]))

    def union(self, c: list[Any]) -> n.QueryExpr:
        return self._setop(c, "UNION")

    def except_(self, c: list[Any]) -> n.QueryExpr:
        return self._setop(c, "EXCEPT")

    def intersect(self, c: list[Any]) -> n.QueryExpr:
        return self._setop(c, "INTERSECT")

    # --- FROM -------------------------------------------------------------------
    def table_name(self, c: list[Any]) -> n.TableRef:
        parts = c[0]
        return n.TableRef(parts, c[1] if len(c) > 1 else None, parts[0].pos)

    def derived_table(self, c: list[Any]) -> n.DerivedTable:
        return n.DerivedTable(c[0], c[1])

    def join_type(self, c: list[Token]) -> str:
        return "INNER"

    def left(self, c: list[Token]) -> str:
        return "LEFT"

    def right(self, c: list[Token]) -> str:
        return "RIGHT"

    def full(self, c: list[Token]) -> str:
        return "FULL"

    def cross(self, c: list[Token]) -> str:
        return "CROSS"

    def join_on(self, c: list[Any]) -> tuple[str, n.Expr]:
        return ("ON", _condition(c[1], "ON"))

    def join_using(self, c: list[Any]) -> tuple[str, list[n.Ident]]:
        return ("USING", c[1:])

    def joined_table(self, c: list[Any]) -> n.Join:
        left = c[0]
        natural = False
        kind = None
        spec = None
        pos = None
        right = None
        for x in c[1:]:
            if isinstance(x, Token):
                if x.type == "NATURAL":
                    natural = True
                elif x.type == "JOIN":
                    pos = _pos(x)
            elif isinstance(x, str):
                kind = x
            elif isinstance(x, tuple):
                spec = x
            else:
                right = x
        assert right is not None
        j = n.Join(kind or "INNER", left, right, natural, explicit_type=kind is not None)
        if spec is not None:
            if natural or kind == "CROSS":
                raise _err("NATURAL and CROSS joins take no ON or USING", pos)
            if spec[0] == "ON":
                j.on = spec[1]
            else:
                j.using = spec[1]
        return j

    # --- statement ----------------------------------------------------------------
    def with_query(self, c: list[Any]) -> n.CTE:
        return n.CTE(c[0], c[2])

    def with_clause(self, c: list[Any]) -> list[n.CTE]:
        return [x for x in c if isinstance(x, n.CTE)]

    def statement(self, c: list[Any]) -> n.Statement:
        ctes = c[0] if len(c) == 2 else []
        return n.Statement(ctes, c[-1])

    def start(self, c: list[Any]) -> n.Statement:
        return c[0]


@lru_cache(maxsize=1)
def _grammar() -> str:
    return (Path(__file__).with_name("grammar.lark")).read_text()


_PARSERS: dict[frozenset[str], Lark] = {}


def _parser(udfs: frozenset[str]) -> Lark:
    p = _PARSERS.get(udfs)
    if p is None:
        p = Lark(
            _grammar(),
            parser="lalr",
            transformer=_Builder(udfs),
            maybe_placeholders=True,
            cache=False,
        )
        if len(_PARSERS) > 8:
            _PARSERS.clear()
        _PARSERS[udfs] = p
    return p


def _expected(e: UnexpectedInput) -> str:
    exp = getattr(e, "expected", None) or getattr(e, "allowed", None) or set()
    names = sorted({_TERMINAL_NAMES.get(t, t if not t.startswith("__") else "") for t in exp})
    names = [x for x in names if x]
    if not names:
        return ""
    if len(names) > 12:
        names = names[:12] + ["..."]
    return "; expected " + ", ".join(names)


def parse(query: str, udfs: Collection[str] = ()) -> n.Statement:
    """Parse ADQL text into a :class:`nodes.Statement` (syntax and shape checks only).

    Parameters
    ----------
    query:
        The ADQL text.
    udfs:
        Extra user-defined function names (lower-case) to accept besides the
        service's own ``ivo_*`` functions.

    Raises
    ------
    QueryError
        With the line, column and what was expected.
    """
    if not query or not query.strip():
        raise QueryError("empty query", 1, 1)
    try:
        stmt = _parser(frozenset(u.lower() for u in udfs)).parse(query)
        assert isinstance(stmt, n.Statement)
    except QueryError:
        raise
    except UnexpectedCharacters as e:
        at = e.pos_in_stream or 0
        ch = query[at] if at < len(query) else ""
        raise QueryError(f"unexpected character {ch!r}{_expected(e)}", e.line, e.column) from None
    except UnexpectedEOF as e:
        raise QueryError(f"unexpected end of query{_expected(e)}", e.line, e.column) from None
    except UnexpectedToken as e:
        tok = e.token
        if tok.type == "$END":
            line = query.count("\n") + 1
            col = len(query) - query.rfind("\n")
            raise QueryError(f"unexpected end of query{_expected(e)}", line, col) from None
        raise QueryError(f"unexpected {tok.value!r}{_expected(e)}", e.line, e.column) from None
    except Exception as e:  # lark wraps callback errors
        inner = getattr(e, "orig_exc", None)
        if isinstance(inner, QueryError):
            raise inner from None
        raise
    stmt.text = query
    return stmt

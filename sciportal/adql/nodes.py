"""The typed ADQL tree: what the parser builds and the resolver annotates.

Plain dataclasses, one per construct. The resolver fills in ``meta`` (the
column metadata an expression carries) and binds column references to the
range variable they come from; the generators only read the tree.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from sciportal.metadata.model import Column

    from .scope import RangeVar
    from .topn import TopNKey
    from .xmatch import CrossMatch

Pos = tuple[int, int] | None  # (line, column) in the query text


@dataclass(slots=True)
class Ident:
    """An identifier; ``quoted`` ones are case-sensitive (delimited)."""

    name: str
    quoted: bool = False
    pos: Pos = None

    def key(self) -> str:
        """The form used to compare names: lower-case unless delimited."""
        return self.name if self.quoted else self.name.lower()

    def matches(self, other: str) -> bool:
        """ADQL case rules: regular identifiers match case-insensitively."""
        return other == self.name if self.quoted else other.lower() == self.name.lower()

    def __str__(self) -> str:
        return '"' + self.name.replace('"', '""') + '"' if self.quoted else self.name


# ----- expressions ------------------------------------------------------


@dataclass(slots=True, eq=False)
class Expr:
    """Base of every value or predicate; ``meta`` is set by the resolver."""

    meta: Column | None = field(default=None, init=False, repr=False)


@dataclass(slots=True, eq=False)
class Literal(Expr):
    value: Any  # int, float, str or None
    kind: str  # "int", "float", "str", "null"


@dataclass(slots=True, eq=False)
class ColumnRef(Expr):
    parts: list[Ident]
    pos: Pos = None
    # set by the resolver: the range variable and the column's name in it
    source: RangeVar | None = field(default=None, init=False, repr=False)
    column: str | None = field(default=None, init=False, repr=False)
    output_alias: str | None = field(default=None, init=False, repr=False)
    merged_from: list[RangeVar] | None = field(default=None, init=False, repr=False)
    merge_kind: str = field(default="INNER", init=False, repr=False)

    @property
    def name(self) -> Ident:
        return self.parts[-1]


@dataclass(slots=True, eq=False)
class Unary(Expr):
    op: str  # "-", "+", "~"
    operand: Expr


@dataclass(slots=True, eq=False)
class Binary(Expr):
    op: str  # + - * / % || & | ^
    left: Expr
    right: Expr


@dataclass(slots=True, eq=False)
class Func(Expr):
    """A function call: built-ins have upper-case names, UDFs as written."""

    name: str
    args: list[Expr]
    pos: Pos = None
    udf: bool = False


@dataclass(slots=True, eq=False)
class Aggregate(Expr):
    name: str  # AVG MAX MIN SUM COUNT
    arg: Expr | None  # None for COUNT(*)
    distinct: bool = False


@dataclass(slots=True, eq=False)
class Cast(Expr):
    operand: Expr
    type_name: str  # SMALLINT INTEGER BIGINT REAL DOUBLE PRECISION CHAR VARCHAR TIMESTAMP POINT ...
    length: int | None = None


@dataclass(slots=True, eq=False)
class Case(Expr):
    operand: Expr | None
    whens: list[tuple[Expr, Expr]]
    default: Expr | None


@dataclass(slots=True, eq=False)
class Subquery(Expr):
    """A scalar subquery used as a value."""

    query: QueryExpr


# ----- predicates -------------------------------------------------------


@dataclass(slots=True, eq=False)
class Predicate(Expr):
    """Base of boolean-valued nodes (ADQL has no boolean values)."""


@dataclass(slots=True, eq=False)
class Comparison(Predicate):
    op: str
    left: Expr
    right: Expr


@dataclass(slots=True, eq=False)
class Between(Predicate):
    operand: Expr
    low: Expr
    high: Expr
    negated: bool = False


@dataclass(slots=True, eq=False)
class InList(Predicate):
    operand: Expr
    items: list[Expr]
    negated: bool = False


@dataclass(slots=True, eq=False)
class InQuery(Predicate):
    operand: Expr
    query: QueryExpr
    negated: bool = False


@dataclass(slots=True, eq=False)
class Like(Predicate):
    operand: Expr
    pattern: Expr
    negated: bool = False
    case_insensitive: bool = False


@dataclass(slots=True, eq=False)
class IsNull(Predicate):
    operand: Expr
    negated: bool = False


@dataclass(slots=True, eq=False)
class Exists(Predicate):
    query: QueryExpr


@dataclass(slots=True, eq=False)
class BoolOp(Predicate):
    op: str  # "AND" / "OR"
    items: list[Expr]


@dataclass(slots=True, eq=False)
class Not(Predicate):
    operand: Expr


@dataclass(slots=True, eq=False)
class RawSQL(Predicate):
    """SQL text the generator inserted itself (HEALPix range filters); never user text."""

    sql: str


# ----- FROM clause ------------------------------------------------------


@dataclass(slots=True, eq=False)
class TableRef:
    parts: list[Ident]
    alias: Ident | None = None
    pos: Pos = None
    var: RangeVar | None = field(default=None, init=False, repr=False)


@dataclass(slots=True, eq=False)
class DerivedTable:
    query: QueryExpr
    alias: Ident
    var: RangeVar | None = field(default=None, init=False, repr=False)


@dataclass(slots=True, eq=False)
class Join:
    kind: str  # INNER LEFT RIGHT FULL CROSS
    left: FromItem
    right: FromItem
    natural: bool = False
    on: Expr | None = None
    using: list[Ident] | None = None
    explicit_type: bool = False
    # columns merged by USING/NATURAL, filled by the resolver
    merged: list[str] = field(default_factory=list, init=False, repr=False)


FromItem = TableRef | DerivedTable | Join


# ----- queries ----------------------------------------------------------


@dataclass(slots=True, eq=False)
class SelectItem:
    expr: Expr
    alias: Ident | None = None


@dataclass(slots=True, eq=False)
class Star:
    """``*`` or ``qualifier.*`` in a select list."""

    qualifier: list[Ident] | None = None
    pos: Pos = None


@dataclass(slots=True, eq=False)
class OrderTerm:
    expr: Expr
    descending: bool = False


@dataclass(slots=True, eq=False)
class Select:
    items: list[SelectItem | Star]
    from_: list[FromItem]
    distinct: bool = False
    top: int | None = None
    where: Expr | None = None
    group_by: list[Expr] = field(default_factory=list)
    having: Expr | None = None
    # set by the resolver
    outputs: list[tuple[str, Expr, Column]] = field(default_factory=list, init=False, repr=False)
    # positional cross-matches a dialect may run as pixel equi-joins (adql.xmatch)
    crossmatches: list[CrossMatch] = field(default_factory=list, init=False, repr=False)
    # a row limit on this SELECT may bound its table scan (adql.topn)
    topn: TopNKey | None = field(default=None, init=False, repr=False)


@dataclass(slots=True, eq=False)
class SetOp:
    op: str  # UNION EXCEPT INTERSECT
    all: bool
    left: QueryExpr
    right: QueryExpr


@dataclass(slots=True, eq=False)
class QueryExpr:
    """A select or set operation with its ORDER BY and OFFSET."""

    body: Select | SetOp | QueryExpr
    order_by: list[OrderTerm] = field(default_factory=list)
    offset: int | None = None
    parenthesized: bool = False
    # set by the resolver: output (name, metadata)
    columns: list[Column] = field(default_factory=list, init=False, repr=False)


@dataclass(slots=True, eq=False)
class CTE:
    name: Ident
    query: QueryExpr


@dataclass(slots=True, eq=False)
class Statement:
    """A whole ADQL query: optional WITH list and the main query."""

    ctes: list[CTE]
    query: QueryExpr
    text: str = ""

"""Top-N queries on one stored table: mark them so an engine can bound the scan.

``SELECT TOP n ... FROM t ORDER BY c`` ("the n brightest objects") needs only
rows with ``c <= b``, where ``b`` is the n-th smallest of the Parquet row
groups' ``min(c)`` statistics: the n row groups with the smallest minima each
hold a row with ``c`` equal to its minimum, so at least n rows have
``c <= b`` and every row of the first n does too. Symmetrically for
``DESC`` with the maxima and ``c >= b``. An engine that knows the statistics
adds that filter, and row groups (and files) whose minimum exceeds ``b`` are
never read.

This module decides when the argument holds and records it on the SELECT
(:attr:`~sciportal.adql.nodes.Select.topn`); the generator, which knows the
row limit, turns it into a :class:`TopN` request for the engine's table hook.
The argument holds when the ordered rows are exactly the table's rows: one
stored table in FROM, no grouping, aggregates or DISTINCT, and a WHERE that
is absent or only says ``c IS NOT NULL`` (which removes no row the bound
keeps). The first ORDER BY key must be a plain column of the table; further
keys only break ties, and ties at the bound are kept (``<=``/``>=``).

The filter drops NULLs: the engine may apply it only when NULLs sort after
the other values (:attr:`TopN.nulls_first` false), or when statistics show
the column has none. NaN sorts above every number in DuckDB and PostgreSQL,
so it comes first in a descending order and statistics do not count it;
engines skip floating-point columns for ``DESC``.
"""

from __future__ import annotations

from dataclasses import dataclass, fields

from . import nodes as n
from .scope import RangeVar, Scope
from .spatial import conjuncts


@dataclass(frozen=True)
class TopN:
    """What an engine's table hook receives: the query wants the first ``n`` rows by ``column``.

    ``n`` counts OFFSET rows too. ``nulls_first``: NULLs of ``column`` may be
    among those rows (they sort first in this order and nothing excludes them).
    """

    column: str
    n: int
    descending: bool
    nulls_first: bool


@dataclass(frozen=True)
class TopNKey:
    """The resolver's finding: this SELECT reads ``var`` in the order of ``column``."""

    var: RangeVar
    column: str
    descending: bool
    not_null: bool  # the WHERE clause is ``column IS NOT NULL``


def plan_topn(sel: n.Select, order_by: list[n.OrderTerm], scope: Scope) -> None:
    """Set ``sel.topn`` when a row limit on this SELECT may bound its table scan."""
    sel.topn = None
    if not order_by or len(sel.from_) != 1 or not isinstance(sel.from_[0], n.TableRef):
        return
    var = sel.from_[0].var
    if var is None or var.table is None or var.cte is not None or var not in scope.vars:
        return
    if sel.distinct or sel.group_by or sel.having is not None or sel.crossmatches:
        return
    exprs = [it.expr for it in sel.items if isinstance(it, n.SelectItem)]
    if any(_has_aggregate(e) for e in exprs + [t.expr for t in order_by]):
        return
    first = order_by[0]
    key = _order_column(first.expr, sel)
    if key is None or key.source is not var:
        return
    column = key.column
    assert column is not None
    not_null = False
    for pred in conjuncts(sel.where):
        if (
            isinstance(pred, n.IsNull)
            and pred.negated
            and isinstance(pred.operand, n.ColumnRef)
            and _plain(pred.operand, var)
            and pred.operand.column == column
        ):
            not_null = True
        else:
            return
    sel.topn = TopNKey(var, column, first.descending, not_null)


def _plain(e: n.ColumnRef, var: RangeVar) -> bool:
    return e.source is var and e.column is not None and not e.merged_from and e.output_alias is None


def _order_column(e: n.Expr, sel: n.Select) -> n.ColumnRef | None:
    """The table column an ORDER BY key sorts by (through output names and positions)."""
    if isinstance(e, n.Literal) and e.kind == "int":
        k = int(e.value)
        e = sel.outputs[k - 1][1] if 1 <= k <= len(sel.outputs) else e
    elif isinstance(e, n.ColumnRef) and e.output_alias is not None:
        hit = [x for name, x, _ in sel.outputs if name == e.output_alias]
        e = hit[0] if len(hit) == 1 else e
    if isinstance(e, n.ColumnRef) and e.source is not None and _plain(e, e.source):
        return e
    return None


def _has_aggregate(e: object) -> bool:
    """Whether an expression contains an aggregate of its own SELECT (not a subquery's)."""
    if isinstance(e, n.Aggregate):
        return True
    if isinstance(e, (n.Subquery, n.InQuery, n.Exists, n.QueryExpr)):
        return isinstance(e, n.InQuery) and _has_aggregate(e.operand)
    if isinstance(e, (list, tuple)):
        return any(_has_aggregate(x) for x in e)
    if isinstance(e, n.Expr):
        return any(_has_aggregate(getattr(e, f.name)) for f in fields(e) if f.name != "meta")
    return False

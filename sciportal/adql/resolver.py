"""Name resolution and typing: bind every name of a parsed query to metadata.

Walks the tree scope by scope (WITH, FROM, then the rest), binds column
references to range variables, expands ``*``, and gives every expression the
column metadata it carries (copied from tables, derived for expressions).
Unknown and ambiguous names are QueryErrors that name the candidates.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Mapping
from dataclasses import replace
from typing import TYPE_CHECKING, Protocol

from sciportal.errors import QueryError, UnsupportedError
from sciportal.metadata.model import Column, Table

from . import functions as fn
from . import nodes as n
from .regions import region_to_geometry
from .scope import RangeVar, Scope
from .spatial import prune_select
from .topn import plan_topn
from .types import expr_meta
from .xmatch import plan_crossmatches, prune_by_uploads

if TYPE_CHECKING:
    import pyarrow as pa


class TableLookup(Protocol):
    """Where the resolver finds tables (the metadata store, with access rules applied)."""

    def get_table(self, name: str) -> Table | None: ...

    def list_tables(self) -> Iterable[Table]: ...


def _err(msg: str, pos: n.Pos = None) -> QueryError:
    return QueryError(msg, *(pos or (None, None)))


def _suggest(name: str, candidates: Iterable[str]) -> str:
    cands = sorted(set(candidates))
    close = difflib.get_close_matches(name.lower(), [c.lower() for c in cands], n=5, cutoff=0.6)
    close_names = [c for c in cands if c.lower() in close]
    if close_names:
        return "; did you mean " + ", ".join(close_names) + "?"
    if cands and len(cands) <= 12:
        return "; known: " + ", ".join(cands)
    return ""


class Resolver:
    """Resolves one statement against a :class:`TableLookup`."""

    def __init__(
        self,
        lookup: TableLookup,
        uploads: Mapping[str, Table] | None = None,
        upload_data: Mapping[str, pa.Table] | None = None,
    ) -> None:
        self.lookup = lookup
        self.uploads = {k.lower(): v for k, v in (uploads or {}).items()}
        # rows of the uploads, by id() of their Table (for cross-match pruning)
        self._upload_rows: dict[int, pa.Table] = {}
        for k, rows in (upload_data or {}).items():
            table = self.uploads.get(k.lower())
            if table is not None:
                self._upload_rows[id(table)] = rows
        self.tables: list[Table] = []
        self._aliases_used: set[str] = set()
        self._ctes: dict[str, tuple[str, list[Column]]] = {}

    # ----- statement and queries -------------------------------------------
    def resolve(self, stmt: n.Statement) -> list[Column]:
        for cte in stmt.ctes:
            cols = self.query(cte.query, None)
            key = cte.name.key()
            if key in self._ctes:
                raise _err(f"WITH query {cte.name} defined twice", cte.name.pos)
            self._ctes[key] = (cte.name.name, cols)
        return self.query(stmt.query, None)

    def query(self, q: n.QueryExpr, parent: Scope | None) -> list[Column]:
        body = q.body
        if isinstance(body, n.Select):
            cols = self.select(body, parent, q.order_by)
        elif isinstance(body, n.SetOp):
            left = self.query(body.left, parent)
            right = self.query(body.right, parent)
            if len(left) != len(right):
                raise _err(
                    f"the operands of {body.op} have {len(left)} and {len(right)} columns; "
                    "they must have the same number"
                )
            cols = left
            self._order_by_outputs(q.order_by, cols)
        else:
            cols = self.query(body, parent)
            self._order_by_outputs(q.order_by, cols)
        q.columns = cols
        return cols

    def _order_by_outputs(self, terms: list[n.OrderTerm], cols: list[Column]) -> None:
        """ORDER BY of a set operation: only output names or positions."""
        for t in terms:
            e = t.expr
            if isinstance(e, n.Literal) and e.kind == "int":
                if not 1 <= e.value <= len(cols):
                    raise _err(f"ORDER BY {e.value}: there are {len(cols)} output columns")
                continue
            if isinstance(e, n.ColumnRef) and len(e.parts) == 1:
                for c in cols:
                    if e.name.matches(c.name):
                        e.output_alias = c.name
                        e.meta = c
                        break
                else:
                    raise _err(
                        f"unknown output column {e.name}"
                        + _suggest(e.name.name, [c.name for c in cols]),
                        e.pos,
                    )
                continue
            raise UnsupportedError(
                "ORDER BY after a set operation takes output column names or numbers"
            )

    # ----- SELECT ------------------------------------------------------------
    def select(
        self, sel: n.Select, parent: Scope | None, order_by: list[n.OrderTerm]
    ) -> list[Column]:
        scope = Scope([], parent)
        for item in sel.from_:
            self.from_item(item, scope)
        for sitem in sel.items:
            if isinstance(sitem, n.SelectItem):
                self.expr(sitem.expr, scope)
        if sel.where is not None:
            self.expr(sel.where, scope)
        outputs = self._outputs(sel, scope)
        out_names = {name.lower(): (name, e, c) for name, e, c in outputs}
        for g in sel.group_by:
            if (
                isinstance(g, n.ColumnRef)
                and len(g.parts) == 1
                and self._try_column(g, scope) is None
            ):
                hit = out_names.get(g.name.key().lower())
                if hit is None:
                    self.expr(g, scope)  # raises the usual error
                g.output_alias = hit[0]  # type: ignore[index]
                g.meta = hit[2]  # type: ignore[index]
            else:
                self.expr(g, scope)
        if sel.having is not None:
            self.expr(sel.having, scope)
        for t in order_by:
            e = t.expr
            if isinstance(e, n.Literal) and e.kind == "int":
                if not 1 <= e.value <= len(outputs):
                    raise _err(f"ORDER BY {e.value}: there are {len(outputs)} output columns")
                continue
            if isinstance(e, n.ColumnRef) and len(e.parts) == 1:
                found = [(nm, col) for nm, _x, col in outputs if e.name.matches(nm)]
                if found:
                    e.output_alias, e.meta = found[0]
                    continue
            self.expr(e, scope)
        sel.outputs = outputs
        prune_select(sel, scope)
        plan_crossmatches(sel, scope)
        if self._upload_rows:
            prune_by_uploads(sel, self._upload_rows)
        plan_topn(sel, order_by, scope)
        return [c for _, _, c in outputs]

    def _outputs(self, sel: n.Select, scope: Scope) -> list[tuple[str, n.Expr, Column]]:
        outputs: list[tuple[str, n.Expr, Column]] = []
        for item in sel.items:
            if isinstance(item, n.Star):
                outputs.extend(self._expand_star(item, scope))
                continue
            meta = item.expr.meta
            assert meta is not None
            if item.alias is not None:
                name = item.alias.name if item.alias.quoted else item.alias.name.lower()
            elif isinstance(item.expr, n.ColumnRef):
                name = meta.name
            else:
                name = _default_name(item.expr)
            outputs.append((name, item.expr, meta))
        # unique names, in order
        seen: dict[str, int] = {}
        result = []
        for name, e, meta in outputs:
            key = name.lower()
            if key in seen:
                seen[key] += 1
                new = f"{name}_{seen[key]}"
                while new.lower() in seen:
                    seen[key] += 1
                    new = f"{name}_{seen[key]}"
                name = new
                seen[name.lower()] = 1
            else:
                seen[key] = 1
            result.append((name, e, meta.renamed(name)))
        return result

    def _expand_star(self, star: n.Star, scope: Scope) -> list[tuple[str, n.Expr, Column]]:
        if star.qualifier:
            vars_ = [v for v in scope.vars if v.qualifies(star.qualifier)]
            if not vars_:
                q = ".".join(str(p) for p in star.qualifier)
                raise _err(
                    f"unknown table {q} in {q}.*" + _suggest(q, [v.alias for v in scope.vars]),
                    star.pos,
                )
            vars_ = vars_[:1]
        else:
            vars_ = scope.vars
        out: list[tuple[str, n.Expr, Column]] = []
        done_merged: set[str] = set()
        if not star.qualifier:
            for key, (col, mvars, kind) in scope.merged.items():
                ref = n.ColumnRef([n.Ident(col.name, True)])
                ref.column = col.name
                ref.merged_from = mvars
                ref.merge_kind = kind
                ref.source = mvars[0]
                ref.meta = col
                out.append((col.name, ref, col))
                done_merged.add(key)
        for var in vars_:
            for col in var.columns:
                if col.name.lower() in done_merged and any(
                    var in mv for _, mv, _ in [scope.merged[col.name.lower()]]
                ):
                    continue
                ref = n.ColumnRef([n.Ident(col.name, True)])
                ref.source = var
                ref.column = col.name
                ref.meta = col
                out.append((col.name, ref, col))
        return out

    # ----- FROM ----------------------------------------------------------------
    def _unique_alias(self, name: str) -> str:
        base = name
        i = 1
        while name.lower() in self._aliases_used:
            i += 1
            name = f"{base}_{i}"
        self._aliases_used.add(name.lower())
        return name

    def from_item(self, item: n.FromItem, scope: Scope) -> list[RangeVar]:
        if isinstance(item, n.TableRef):
            var = self._table_var(item, scope)
            item.var = var
            scope.vars.append(var)
            return [var]
        if isinstance(item, n.DerivedTable):
            cols = self.query(item.query, None)
            var = RangeVar(
                self._unique_alias(item.alias.name),
                cols,
                match_names=[(item.alias.name,)],
            )
            item.var = var
            scope.vars.append(var)
            return [var]
        left = self.from_item(item.left, scope)
        right = self.from_item(item.right, scope)
        if item.kind in ("LEFT", "FULL"):
            for v in left:
                v.preserved = True
        if item.kind in ("RIGHT", "FULL"):
            for v in right:
                v.preserved = True
        names: list[n.Ident] = []
        if item.natural:
            lnames = {c.name.lower() for v in left for c in v.columns}
            names = [
                n.Ident(c.name, True) for v in right for c in v.columns if c.name.lower() in lnames
            ]
        elif item.using:
            names = item.using
        for ident in names:
            lv = [v for v in left if v.find(ident)]
            rv = [v for v in right if v.find(ident)]
            if len(lv) != 1 or len(rv) != 1:
                raise _err(
                    f"USING column {ident} must occur once on each side of the join", ident.pos
                )
            mcol = lv[0].find(ident)
            assert mcol is not None
            col = mcol
            scope.merged[col.name.lower()] = (col, [lv[0], rv[0]], item.kind)
            item.merged.append(col.name)
        if item.on is not None:
            self.expr(item.on, scope)
        return left + right

    def _table_var(self, ref: n.TableRef, scope: Scope) -> RangeVar:
        parts = ref.parts[-2:] if len(ref.parts) == 3 else ref.parts
        if len(ref.parts) == 3:
            raise UnsupportedError(
                f"catalog-qualified table names are not supported ({ref.parts[0]})"
            )
        alias_ident = ref.alias
        if len(parts) == 1:
            key = parts[0].key()
            cte = self._ctes.get(key) or self._ctes.get(key.lower())
            if cte is not None:
                name = alias_ident.name if alias_ident else cte[0]
                return RangeVar(
                    self._unique_alias(name),
                    cte[1],
                    cte=cte[0],
                    match_names=[(alias_ident.name if alias_ident else cte[0],)],
                )
        table = self._find_table(parts, ref.pos)
        if table not in self.tables:
            self.tables.append(table)
        short = table.short_name
        if alias_ident is not None:
            match: list[tuple[str, ...]] = [(alias_ident.name,)]
            alias = alias_ident.name
        else:
            match = [(short,), (table.schema, short)]
            alias = short
        return RangeVar(
            self._unique_alias(alias), list(table.columns), table=table, match_names=match
        )

    def _find_table(self, parts: list[n.Ident], pos: n.Pos) -> Table:
        if len(parts) == 2 and parts[0].name.lower() == "tap_upload":
            t = self.uploads.get(parts[1].name.lower())
            if t is not None and parts[1].matches(t.short_name):
                return t
            raise _err(
                f"unknown upload table TAP_UPLOAD.{parts[1]}"
                + _suggest(parts[1].name, [u.short_name for u in self.uploads.values()]),
                pos,
            )
        wanted = ".".join(p.key() for p in parts)
        t = self.lookup.get_table(wanted)
        if t is not None:
            return t
        # Regular identifiers match case-insensitively: scan for a unique match.
        cands = []
        all_names = []
        for tab in self.lookup.list_tables():
            all_names.append(tab.name)
            tparts = tab.name.split(".", 1) if len(parts) == 2 else [tab.short_name]
            if len(tparts) == len(parts) and all(
                p.matches(tp) for p, tp in zip(parts, tparts, strict=True)
            ):
                cands.append(tab)
        if len(cands) == 1:
            return cands[0]
        shown = ".".join(str(p) for p in parts)
        if len(cands) > 1:
            raise _err(
                f"table name {shown} is ambiguous: " + ", ".join(sorted(c.name for c in cands)), pos
            )
        raise _err(f"unknown table {shown}" + _suggest(wanted, all_names), pos)

    # ----- expressions -----------------------------------------------------------
    def _try_column(self, ref: n.ColumnRef, scope: Scope) -> Column | None:
        """Bind ``ref`` in ``scope`` only (no parents); None when not found there."""
        name = ref.name
        if len(ref.parts) == 1:
            merged = scope.merged.get(name.key().lower())
            if merged is not None and merged[0].name and name.matches(merged[0].name):
                col, mvars, kind = merged
                ref.source, ref.column, ref.merged_from, ref.merge_kind = (
                    mvars[0],
                    col.name,
                    mvars,
                    kind,
                )
                return col
            hits = [(v, c) for v in scope.vars if (c := v.find(name)) is not None]
            if len(hits) > 1:
                exact = [(v, c) for v, c in hits if c.name == name.name]
                if len(exact) == 1:
                    hits = exact
            if len(hits) > 1:
                raise _err(
                    f"column name {name} is ambiguous: "
                    + ", ".join(f"{v.alias}.{c.name}" for v, c in hits),
                    ref.pos,
                )
            if hits:
                ref.source, ref.column = hits[0][0], hits[0][1].name
                return hits[0][1]
            return None
        qualifier = ref.parts[:-1]
        vars_ = [v for v in scope.vars if v.qualifies(qualifier)]
        if not vars_:
            return None
        if len(vars_) > 1:
            q = ".".join(str(p) for p in qualifier)
            raise _err(f"table reference {q} is ambiguous; give the tables aliases", ref.pos)
        qcol = vars_[0].find(name)
        if qcol is None:
            raise _err(
                f"unknown column {name} in {vars_[0].alias}"
                + _suggest(name.name, [c.name for c in vars_[0].columns]),
                ref.pos,
            )
        ref.source, ref.column = vars_[0], qcol.name
        return qcol

    def column(self, ref: n.ColumnRef, scope: Scope) -> Column:
        s: Scope | None = scope
        while s is not None:
            col = self._try_column(ref, s)
            if col is not None:
                return col
            s = s.parent
        shown = ".".join(str(p) for p in ref.parts)
        if len(ref.parts) > 1:
            q = ".".join(str(p) for p in ref.parts[:-1])
            raise _err(
                f"unknown table {q} in {shown}" + _suggest(q, [v.alias for v in scope.vars]),
                ref.pos,
            )
        cands = [c.name for v in scope.vars for c in v.columns]
        raise _err(f"unknown column {shown}" + _suggest(ref.name.name, cands), ref.pos)

    def expr(self, e: n.Expr, scope: Scope) -> None:
        """Resolve names below ``e`` and set ``meta`` on every node."""
        if isinstance(e, n.ColumnRef):
            if e.output_alias is None:
                e.meta = self.column(e, scope)
            return
        if isinstance(e, (n.Subquery, n.InQuery, n.Exists)):
            cols = self.query(e.query, scope)
            if isinstance(e, n.InQuery):
                self.expr(e.operand, scope)
            if isinstance(e, (n.Subquery, n.InQuery)) and len(cols) != 1:
                raise _err("a subquery used as a value must return exactly one column")
            if isinstance(e, n.Subquery):
                e.meta = replace(cols[0], name="_")
            else:
                e.meta = fn.INT
            return
        if isinstance(e, n.Func) and e.name == "REGION":
            lit = e.args[0]
            assert isinstance(lit, n.Literal)
            geom = region_to_geometry(str(lit.value), e.pos)
            e.name, e.args = geom.name, geom.args
        for child in _children(e):
            self.expr(child, scope)
        if isinstance(e, n.Func) and e.udf and e.name.lower() not in fn.UDFS_BY_NAME:
            raise UnsupportedError(f"function {e.name} is not available on this service")
        e.meta = expr_meta(e)


def _children(e: n.Expr) -> list[n.Expr]:
    if isinstance(e, n.Func):
        return e.args
    if isinstance(e, n.Binary):
        return [e.left, e.right]
    if isinstance(e, (n.Unary, n.IsNull, n.Not)):
        return [e.operand]
    if isinstance(e, n.Aggregate):
        return [e.arg] if e.arg is not None else []
    if isinstance(e, n.Cast):
        return [e.operand]
    if isinstance(e, n.Case):
        out = [e.operand] if e.operand is not None else []
        for c, v in e.whens:
            out += [c, v]
        if e.default is not None:
            out.append(e.default)
        return out
    if isinstance(e, n.Comparison):
        return [e.left, e.right]
    if isinstance(e, n.Between):
        return [e.operand, e.low, e.high]
    if isinstance(e, n.InList):
        return [e.operand, *e.items]
    if isinstance(e, n.Like):
        return [e.operand, e.pattern]
    if isinstance(e, n.BoolOp):
        return e.items
    return []


def _default_name(e: n.Expr) -> str:
    if isinstance(e, n.Func):
        return e.name.lower()
    if isinstance(e, n.Aggregate):
        return e.name.lower()
    if isinstance(e, n.Cast):
        return _default_name(e.operand) if isinstance(e.operand, (n.Func, n.ColumnRef)) else "cast"
    if isinstance(e, n.ColumnRef):
        return e.name.name
    return "expr"

"""Range variables and name scopes: what a FROM clause makes visible."""

from __future__ import annotations

from dataclasses import dataclass, field

from sciportal.metadata.model import Column, Table

from .nodes import Ident


@dataclass(eq=False)
class RangeVar:
    """One FROM item a column can come from: a table, a derived table or a CTE.

    ``alias`` is the (unique, generator-chosen) SQL alias; ``match_names``
    are the names ADQL may qualify its columns with (the alias, or the table
    name with and without schema).
    """

    alias: str
    columns: list[Column]
    table: Table | None = None
    match_names: list[tuple[str, ...]] = field(default_factory=list)
    quoted_match: bool = False
    cte: str | None = None
    # pruning: HEALPix ranges found for this table (None: no constraint)
    ranges: list[tuple[int, int]] | None = None
    # True when the table is the preserved side of an outer join (never prune
    # it from an ON condition)
    preserved: bool = False
    # where the HEALPix range filter goes: "WHERE" or the Join whose ON holds it
    filter_target: object = None

    def find(self, name: Ident) -> Column | None:
        """The column ``name`` refers to, by ADQL case rules (exact case wins)."""
        hit = None
        for col in self.columns:
            if col.name == name.name:
                return col
            if not name.quoted and col.name.lower() == name.name.lower():
                hit = col
        return hit

    def qualifies(self, qualifier: list[Ident]) -> bool:
        """Does ``qualifier`` (``t`` or ``s.t`` or ``c.s.t``) name this range variable?"""
        q = qualifier[-2:] if len(qualifier) == 3 else qualifier
        for names in self.match_names:
            if len(names) != len(q):
                continue
            if all(part.matches(nm) for part, nm in zip(q, names, strict=True)):
                return True
        return False


@dataclass(eq=False)
class Scope:
    """The range variables of one SELECT, with the enclosing scope for correlation."""

    vars: list[RangeVar]
    parent: Scope | None = None
    # merged USING/NATURAL columns: lower-case name -> (column, [range vars], join kind)
    merged: dict[str, tuple[Column, list[RangeVar], str]] = field(default_factory=dict)
    ctes: dict[str, tuple[str, list[Column]]] = field(default_factory=dict)

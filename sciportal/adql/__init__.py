"""ADQL 2.1 front end: parse, resolve against table metadata, translate per engine.

Public API (used by the TAP service)::

    parse(query) -> Statement                      # syntax only
    translate(query, lookup, dialect="duckdb", *, uploads=None, maxrec=None,
              table_sql=None, upload_data=None) -> Translation

Table lookup contract: ``lookup.get_table(name)`` is called with
``"schema.table"`` or ``"table"`` where every regular (undelimited)
identifier is lower-cased and delimited ones are passed exactly as written.
When that finds nothing, regular identifiers are matched case-insensitively
against ``lookup.list_tables()`` (a unique match wins). TAP_UPLOAD tables
come from ``uploads`` (keyed by their short name, matched case-insensitively).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

from sciportal.errors import UnsupportedError
from sciportal.metadata.model import Column, Table

from .dialect_duckdb import DuckDBGenerator
from .dialect_postgres import PostgresGenerator
from .functions import FEATURES, UDF_LIST
from .generator import Generator, TableSQL
from .nodes import Statement
from .parser import parse
from .resolver import Resolver, TableLookup

if TYPE_CHECKING:
    import pyarrow as pa

__all__ = [
    "FEATURES",
    "UDFS",
    "TableLookup",
    "Translation",
    "parse",
    "translate",
    "DIALECTS",
]

#: (signature, description) of every user-defined function, for TAPRegExt.
UDFS: list[tuple[str, str]] = [(u.signature, u.description) for u in UDF_LIST]

DIALECTS: dict[str, type[Generator]] = {
    "duckdb": DuckDBGenerator,
    "postgres": PostgresGenerator,
    "postgresql": PostgresGenerator,
}


@dataclass
class Translation:
    """A query ready for an engine, with what the TAP layer needs to know about it."""

    sql: str
    columns: list[Column]
    tables: list[Table]
    limit: int | None


def translate(
    query: str,
    lookup: TableLookup,
    dialect: str = "duckdb",
    *,
    uploads: Mapping[str, Table] | None = None,
    maxrec: int | None = None,
    table_sql: TableSQL | None = None,
    upload_data: Mapping[str, pa.Table] | None = None,
) -> Translation:
    """Translate ADQL to the SQL of ``dialect``.

    Parameters
    ----------
    query:
        ADQL text.
    lookup:
        Table metadata (see the module docstring for how names are passed).
    dialect:
        ``"duckdb"`` or ``"postgres"`` (PostgreSQL with pgSphere).
    uploads:
        TAP_UPLOAD tables by short name.
    maxrec:
        When given, the SQL returns at most ``maxrec + 1`` rows (combined with TOP).
    table_sql:
        Hook giving the SQL text of a FROM reference to a table, with the
        ``_healpix_29`` ranges the query's spatial constraints imply (or None)
        and, for a top-N query, the order and row count it needs
        (:class:`~sciportal.adql.topn.TopN`); see
        :class:`~sciportal.adql.generator.TableSQL`.
    upload_data:
        Optional rows of the ``uploads`` (same keys). A cross-match of a
        catalog with an upload then reads only the catalog's HEALPix cells its
        circles can reach (the ``ranges`` passed to ``table_sql``).

    Raises
    ------
    QueryError
        Syntax errors, unknown or ambiguous names.
    UnsupportedError
        Valid ADQL the chosen engine cannot run.
    """
    gen_cls = DIALECTS.get(dialect.lower())
    if gen_cls is None:
        raise UnsupportedError(f"unknown SQL dialect {dialect!r}")
    stmt: Statement = parse(query)
    resolver = Resolver(lookup, uploads, upload_data)
    columns = resolver.resolve(stmt)
    sql, limit = gen_cls(table_sql).statement(stmt, maxrec)
    return Translation(sql, columns, resolver.tables, limit)


def _tables(lookup: TableLookup) -> Iterable[Table]:  # pragma: no cover - convenience
    return lookup.list_tables()

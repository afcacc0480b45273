"""TAP_SCHEMA (TAP 1.1 section 4) built from the metadata store as Arrow tables.

The engines register these as ordinary tables, so ``SELECT ... FROM
TAP_SCHEMA.columns`` is just another ADQL query. The TAP_SCHEMA tables
describe themselves too (schema ``tap_schema``, ``std=1`` columns), and what
a user sees is filtered by table visibility.
"""

from __future__ import annotations

from collections.abc import Iterable

import pyarrow as pa

from sciportal.metadata.identifiers import adql_name
from sciportal.metadata.model import Column, ForeignKey, Schema, Table
from sciportal.metadata.store import MetadataStore, visible

TAP_SCHEMA = "tap_schema"


def _c(
    name: str,
    datatype: str,
    description: str,
    principal: bool = True,
    *,
    nullable: bool = True,
    indexed: bool = False,
) -> Column:
    return Column(
        name=name,
        datatype=datatype,
        arraysize="*" if datatype == "char" else None,
        description=description,
        principal=principal,
        std=True,
        nullable=nullable,
        indexed=indexed,
    )


_TABLES: dict[str, tuple[str, tuple[Column, ...]]] = {
    "schemas": (
        "Schemas in this service",
        (
            _c(
                "schema_name",
                "char",
                "schema name for reference to tap_schema.schemas",
                nullable=False,
                indexed=True,
            ),
            _c("utype", "char", "lists the utypes of schemas in the tableset"),
            _c("description", "char", "describes schemas in the tableset"),
            _c("schema_index", "int", "recommended sort order when listing schemas", False),
        ),
    ),
    "tables": (
        "Tables in this service",
        (
            _c("schema_name", "char", "the schema this table belongs to", nullable=False),
            _c(
                "table_name", "char", "the fully qualified table name", nullable=False, indexed=True
            ),
            _c("table_type", "char", "one of: table view", nullable=False),
            _c("utype", "char", "lists the utype of tables in the tableset"),
            _c("description", "char", "describes tables in the tableset"),
            _c("table_index", "int", "recommended sort order when listing tables", False),
        ),
    ),
    "columns": (
        "Columns of the tables in this service",
        (
            _c(
                "table_name",
                "char",
                "the table this column belongs to",
                nullable=False,
                indexed=True,
            ),
            _c("column_name", "char", "the column name", nullable=False),
            _c("utype", "char", "lists the utypes of columns in the tableset"),
            _c("ucd", "char", "lists the UCDs of columns in the tableset"),
            _c("unit", "char", "lists the unit used for column values in the tableset"),
            _c("description", "char", "describes the columns in the tableset"),
            _c(
                "datatype",
                "char",
                "lists the ADQL datatype of columns in the tableset",
                nullable=False,
            ),
            _c("arraysize", "char", "lists the size of variable-length columns in the tableset"),
            _c("xtype", "char", "a DALI or custom extended type annotation"),
            _c("size", "int", "deprecated: use arraysize", False),
            _c("principal", "int", "a principal column; 1 means 1, 0 means 0", nullable=False),
            _c("indexed", "int", "an indexed column; 1 means 1, 0 means 0", nullable=False),
            _c("std", "int", "a standard column; 1 means 1, 0 means 0", nullable=False),
            _c("column_index", "int", "recommended sort order when listing columns", False),
        ),
    ),
    "keys": (
        "Foreign keys between tables in this service",
        (
            _c(
                "key_id",
                "char",
                "unique key to join to tap_schema.key_columns",
                nullable=False,
                indexed=True,
            ),
            _c("from_table", "char", "the table with the foreign key", nullable=False),
            _c("target_table", "char", "the table with the primary key", nullable=False),
            _c("utype", "char", "lists the utype of keys in the tableset"),
            _c("description", "char", "describes keys in the tableset"),
        ),
    ),
    "key_columns": (
        "Columns of the foreign keys in this service",
        (
            _c("key_id", "char", "key to join to tap_schema.keys", nullable=False, indexed=True),
            _c("from_column", "char", "column in the from_table", nullable=False),
            _c("target_column", "char", "column in the target_table", nullable=False),
        ),
    ),
}

_ARROW = {"char": pa.string(), "int": pa.int32()}


# The foreign keys TAP 1.1 section 4 requires between the TAP_SCHEMA tables.
_KEYS: dict[str, tuple[tuple[str, str, str, str], ...]] = {
    "tables": (("tables_schema", "schemas", "schema_name", "schema_name"),),
    "columns": (("columns_table", "tables", "table_name", "table_name"),),
    "keys": (
        ("keys_from", "tables", "from_table", "table_name"),
        ("keys_target", "tables", "target_table", "table_name"),
    ),
    "key_columns": (("key_columns_key", "keys", "key_id", "key_id"),),
}


def tap_schema_metadata() -> list[Table]:
    """Table objects describing the TAP_SCHEMA tables themselves."""
    out = []
    for short, (desc, cols) in _TABLES.items():
        name = f"{TAP_SCHEMA}.{short}"
        keys = tuple(
            ForeignKey(
                key_id=f"{TAP_SCHEMA}.{key_id}",
                from_table=name,
                target_table=f"{TAP_SCHEMA}.{target}",
                columns=((frm, to),),
            )
            for key_id, target, frm, to in _KEYS.get(short, ())
        )
        out.append(Table(name=name, columns=cols, description=desc, foreign_keys=keys))
    return out


def _arrow_table(table: Table, rows: list[dict[str, object]]) -> pa.Table:
    schema = pa.schema([pa.field(c.name, _ARROW[c.datatype]) for c in table.columns])
    return pa.Table.from_pylist(rows, schema=schema)


def _size(arraysize: str | None) -> int | None:
    if arraysize and arraysize.rstrip("*").isdigit():
        return int(arraysize.rstrip("*"))
    return None


def tap_schema_tables(
    store: MetadataStore, user: str | None = None, groups: Iterable[str] = ()
) -> list[tuple[Table, pa.Table]]:
    """TAP_SCHEMA.schemas/tables/columns/keys/key_columns as seen by ``user``.

    Schemas with no visible table are left out (except TAP_SCHEMA itself).
    """
    groups = tuple(groups)
    meta = tap_schema_metadata()
    own = Schema(
        TAP_SCHEMA, "Metadata of the tables in this service (TAP 1.1)", "TAP_SCHEMA", tuple(meta)
    )
    schemas: list[tuple[Schema, list[Table]]] = [(own, meta)]
    for s in store.list_schemas():
        tables = [t for t in s.tables if visible(t, user, groups)]
        if tables:
            schemas.append((s, tables))
    names = {t.name.lower() for _, ts in schemas for t in ts}
    Rows = list[dict[str, object]]
    srows: Rows = []
    trows: Rows = []
    crows: Rows = []
    krows: Rows = []
    kcrows: Rows = []
    for si, (s, tables) in enumerate(schemas):
        srows.append(
            {"schema_name": s.name, "utype": None, "description": s.description, "schema_index": si}
        )
        for ti, t in enumerate(tables):
            trows.append(
                {
                    "schema_name": s.name,
                    "table_name": t.name,
                    "table_type": t.table_type,
                    "utype": t.utype,
                    "description": t.description,
                    "table_index": ti,
                }
            )
            for ci, c in enumerate(t.columns):
                crows.append(
                    {
                        "table_name": t.name,
                        "column_name": adql_name(c.name),
                        "utype": c.utype,
                        "ucd": c.ucd,
                        "unit": c.unit,
                        "description": c.description,
                        "datatype": c.datatype,
                        "arraysize": c.arraysize,
                        "xtype": c.xtype,
                        "size": _size(c.arraysize),
                        "principal": int(c.principal),
                        "indexed": int(c.indexed),
                        "std": int(c.std),
                        "column_index": ci,
                    }
                )
            for fk in t.foreign_keys:
                if fk.target_table.lower() not in names:
                    continue  # do not reveal a key into a table the user cannot see
                krows.append(
                    {
                        "key_id": fk.key_id,
                        "from_table": fk.from_table,
                        "target_table": fk.target_table,
                        "utype": None,
                        "description": fk.description,
                    }
                )
                kcrows.extend(
                    {"key_id": fk.key_id, "from_column": a, "target_column": b}
                    for a, b in fk.columns
                )
    rows: dict[str, Rows] = {
        "schemas": srows,
        "tables": trows,
        "columns": crows,
        "keys": krows,
        "key_columns": kcrows,
    }
    return [(t, _arrow_table(t, rows[t.short_name])) for t in meta]

"""TAP_SCHEMA built from the metadata store, checked with DuckDB queries."""

from __future__ import annotations

from pathlib import Path

import duckdb

from sciportal.metadata.model import Column, ForeignKey, Schema, Table
from sciportal.metadata.store import MetadataStore
from sciportal.metadata.tap_schema import tap_schema_tables

TAP11_COLUMNS = {
    "schemas": ["schema_name", "utype", "description", "schema_index"],
    "tables": ["schema_name", "table_name", "table_type", "utype", "description", "table_index"],
    "columns": [
        "table_name", "column_name", "utype", "ucd", "unit", "description", "datatype",
        "arraysize", "xtype", "size", "principal", "indexed", "std", "column_index",
    ],
    "keys": ["key_id", "from_table", "target_table", "utype", "description"],
    "key_columns": ["key_id", "from_column", "target_column"],
}  # fmt: skip


def _store(tmp_path: Path) -> MetadataStore:
    st = MetadataStore(tmp_path / "m.sqlite")
    a = Table(
        "des.main",
        (
            Column("id", "long", ucd="meta.id;meta.main", principal=True, indexed=True),
            Column("mag", "float", unit="mag", arraysize=None),
            Column("name", "char", arraysize="16*"),
        ),
        description="objects",
    )
    fk = ForeignKey("des.phot_main", "des.phot", "des.main", (("obj_id", "id"),))
    b = Table("des.phot", (Column("obj_id", "long"),), foreign_keys=(fk,))
    secret = Table("lsst.secret", (Column("x", "double"),), owner="alice", groups=("lsst",))
    st.publish(Schema("des", "DES"), [a, b])
    st.publish(Schema("lsst", "LSST"), [secret])
    return st


def _con(tables) -> duckdb.DuckDBPyConnection:
    con = duckdb.connect()
    con.execute("CREATE SCHEMA tap_schema")
    for meta, data in tables:
        con.register(f"_{meta.short_name}", data)
        con.execute(f"CREATE VIEW {meta.name} AS SELECT * FROM _{meta.short_name}")
    return con


def test_tap_schema_columns_and_contents(tmp_path: Path) -> None:
    tables = tap_schema_tables(_store(tmp_path))
    by_name = {m.name: (m, t) for m, t in tables}
    assert sorted(by_name) == sorted(f"tap_schema.{k}" for k in TAP11_COLUMNS)
    for short, cols in TAP11_COLUMNS.items():
        meta, data = by_name[f"tap_schema.{short}"]
        assert data.schema.names == cols
        assert [c.name for c in meta.columns] == cols
        assert all(c.std for c in meta.columns)
    con = _con(tables)
    rows = con.execute(
        "SELECT column_name, datatype, arraysize, size, principal, indexed, std, column_index, unit "
        "FROM tap_schema.columns WHERE table_name = 'des.main' ORDER BY column_index"
    ).fetchall()
    assert rows == [
        ("id", "long", None, None, 1, 1, 0, 0, None),
        ("mag", "float", None, None, 0, 0, 0, 1, "mag"),
        ("name", "char", "16*", 16, 0, 0, 0, 2, None),
    ]
    # TAP_SCHEMA describes itself
    n = con.execute(
        "SELECT COUNT(*) FROM tap_schema.columns WHERE table_name = 'tap_schema.columns'"
    ).fetchone()
    assert n == (14,)
    schemas = [
        r[0]
        for r in con.execute(
            "SELECT schema_name FROM tap_schema.schemas ORDER BY schema_index"
        ).fetchall()
    ]
    assert schemas == ["tap_schema", "des"]  # lsst has no table visible to anonymous
    keys = con.execute(
        "SELECT k.from_table, k.target_table, c.from_column, c.target_column "
        "FROM tap_schema.keys k JOIN tap_schema.key_columns c USING (key_id) "
        "WHERE k.from_table NOT LIKE 'tap_schema.%'"
    ).fetchall()
    assert keys == [("des.phot", "des.main", "obj_id", "id")]
    own = con.execute(
        "SELECT k.from_table, k.target_table FROM tap_schema.keys k "
        "WHERE k.from_table LIKE 'tap_schema.%' ORDER BY 1, 2"
    ).fetchall()
    assert ("tap_schema.columns", "tap_schema.tables") in own
    assert ("tap_schema.tables", "tap_schema.schemas") in own
    # every table listed has its columns, and every column's table is listed
    orphans = con.execute(
        "SELECT COUNT(*) FROM tap_schema.columns c LEFT JOIN tap_schema.tables t "
        "USING (table_name) WHERE t.table_name IS NULL"
    ).fetchone()
    assert orphans == (0,)


def test_visibility(tmp_path: Path) -> None:
    st = _store(tmp_path)
    for user, groups, seen in [
        (None, (), False),
        ("bob", ("sdss",), False),
        ("bob", ("lsst",), True),
        ("alice", (), True),
    ]:
        tables = dict((m.short_name, t) for m, t in tap_schema_tables(st, user, groups))
        names = tables["tables"].column("table_name").to_pylist()
        assert ("lsst.secret" in names) is seen
        assert ("lsst.secret" in tables["columns"].column("table_name").to_pylist()) is seen

"""The metadata store: published schemas, tables, columns, keys and versions.

SQLite (WAL) by default so zero configuration works and readers never block
the publisher; every publish is one transaction, so TAP_SCHEMA, VOSI and the
ADQL resolver see either the old version of a table or the new one, never a
mixture. A ``generation`` counter lets callers cache derived views.
"""

from __future__ import annotations

import json
import sqlite3
import threading
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sciportal.metadata.model import Column, ForeignKey, Schema, Table

_DDL = """
CREATE TABLE IF NOT EXISTS meta(key TEXT PRIMARY KEY, value TEXT);
CREATE TABLE IF NOT EXISTS schemas(
    lname TEXT PRIMARY KEY, name TEXT NOT NULL, title TEXT, description TEXT,
    resource TEXT, schema_index INTEGER, published_at TEXT);
CREATE TABLE IF NOT EXISTS tables(
    lname TEXT PRIMARY KEY, name TEXT NOT NULL, schema_lname TEXT NOT NULL,
    title TEXT, description TEXT, table_type TEXT, utype TEXT,
    ra_column TEXT, dec_column TEXT, storage TEXT, nrows INTEGER, version INTEGER,
    owner TEXT, groups TEXT, table_index INTEGER, published_at TEXT);
CREATE TABLE IF NOT EXISTS columns(
    table_lname TEXT NOT NULL, column_index INTEGER NOT NULL, name TEXT NOT NULL,
    datatype TEXT, arraysize TEXT, xtype TEXT, unit TEXT, ucd TEXT, utype TEXT,
    description TEXT, nullable INTEGER, principal INTEGER, indexed INTEGER, std INTEGER,
    PRIMARY KEY(table_lname, column_index));
CREATE TABLE IF NOT EXISTS keys(
    key_id TEXT PRIMARY KEY, from_lname TEXT NOT NULL, from_table TEXT, target_table TEXT,
    description TEXT);
CREATE TABLE IF NOT EXISTS key_columns(
    key_id TEXT NOT NULL, position INTEGER NOT NULL, from_column TEXT, target_column TEXT,
    PRIMARY KEY(key_id, position));
CREATE TABLE IF NOT EXISTS versions(
    lname TEXT NOT NULL, version INTEGER NOT NULL, storage TEXT, nrows INTEGER,
    published_at TEXT, retired_at TEXT, PRIMARY KEY(lname, version));
"""


@dataclass(frozen=True, slots=True)
class TableVersion:
    """One published version of a table and where its files are."""

    table: str
    version: int
    storage: str | None
    nrows: int | None
    published_at: str
    retired_at: str | None  # None: the live version (unless the table was unpublished)


def visible(table: Table, user: str | None, groups: Iterable[str] = ()) -> bool:
    """May ``user`` (member of ``groups``) see ``table``? Public tables have no owner."""
    if table.owner is None:
        return True
    if user is not None and user == table.owner:
        return True
    return bool(set(groups) & set(table.groups))


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


class MetadataStore:
    """Schemas, tables and columns of everything published, in one SQLite file."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        with self._connect() as db:
            db.execute("PRAGMA journal_mode=WAL")
            db.executescript(_DDL)
            db.execute("INSERT OR IGNORE INTO meta VALUES ('generation', '0')")

    @contextmanager
    def _connect(self) -> Iterator[sqlite3.Connection]:
        db = sqlite3.connect(self.path, timeout=30, isolation_level=None)
        db.row_factory = sqlite3.Row
        try:
            yield db
        finally:
            db.close()

    @contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        with self._lock, self._connect() as db:
            db.execute("BEGIN IMMEDIATE")
            try:
                yield db
                db.execute(
                    "UPDATE meta SET value = CAST(value AS INTEGER) + 1 WHERE key = 'generation'"
                )
                db.execute("COMMIT")
            except BaseException:
                db.execute("ROLLBACK")
                raise

    # ---- writing ---------------------------------------------------------

    def publish(
        self,
        schema: Schema,
        tables: list[Table],
        resource: dict[str, Any] | None = None,
        *,
        drop_others: bool = False,
    ) -> None:
        """Register ``tables`` (and their schema) atomically, replacing earlier versions.

        Other tables of the schema stay unless ``drop_others``. ``resource``
        holds resource-level metadata (creators, subjects, services...).
        """
        now = _now()
        slname = schema.name.lower()
        with self._transaction() as db:
            row = db.execute("SELECT schema_index FROM schemas WHERE lname=?", (slname,)).fetchone()
            if row is None:
                idx = db.execute("SELECT COALESCE(MAX(schema_index), -1) + 1 FROM schemas")
                schema_index = idx.fetchone()[0]
            else:
                schema_index = row[0]
            db.execute(
                "INSERT OR REPLACE INTO schemas VALUES (?,?,?,?,?,?,?)",
                (
                    slname,
                    schema.name,
                    schema.title,
                    schema.description,
                    json.dumps(resource or {}),
                    schema_index,
                    now,
                ),
            )
            keep = {t.name.lower() for t in tables}
            if drop_others:
                for (other,) in db.execute(
                    "SELECT lname FROM tables WHERE schema_lname=?", (slname,)
                ).fetchall():
                    if other not in keep:
                        self._delete_table(db, other, now)
            for table in tables:
                if table.schema.lower() != slname:
                    raise ValueError(f"table {table.name} is not in schema {schema.name}")
                self._write_table(db, slname, table, now)

    def _write_table(self, db: sqlite3.Connection, slname: str, t: Table, now: str) -> None:
        lname = t.name.lower()
        row = db.execute("SELECT table_index FROM tables WHERE lname=?", (lname,)).fetchone()
        if row is not None:
            table_index = row[0]
        else:
            q = "SELECT COALESCE(MAX(table_index), -1) + 1 FROM tables WHERE schema_lname=?"
            table_index = db.execute(q, (slname,)).fetchone()[0]
        self._delete_table(db, lname, now, retire_only=True)
        db.execute(
            "INSERT INTO tables VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
            (
                lname,
                t.name,
                slname,
                t.title,
                t.description,
                t.table_type,
                t.utype,
                t.ra_column,
                t.dec_column,
                t.storage,
                t.nrows,
                t.version,
                t.owner,
                json.dumps(list(t.groups)),
                table_index,
                now,
            ),
        )
        db.executemany(
            "INSERT INTO columns VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
            [
                (
                    lname,
                    i,
                    c.name,
                    c.datatype,
                    c.arraysize,
                    c.xtype,
                    c.unit,
                    c.ucd,
                    c.utype,
                    c.description,
                    int(c.nullable),
                    int(c.principal),
                    int(c.indexed),
                    int(c.std),
                )
                for i, c in enumerate(t.columns)
            ],
        )
        for fk in t.foreign_keys:
            db.execute(
                "INSERT OR REPLACE INTO keys VALUES (?,?,?,?,?)",
                (fk.key_id, lname, fk.from_table, fk.target_table, fk.description),
            )
            db.execute("DELETE FROM key_columns WHERE key_id=?", (fk.key_id,))
            db.executemany(
                "INSERT INTO key_columns VALUES (?,?,?,?)",
                [(fk.key_id, i, a, b) for i, (a, b) in enumerate(fk.columns)],
            )
        db.execute(
            "UPDATE versions SET retired_at=? WHERE lname=? AND retired_at IS NULL", (now, lname)
        )
        db.execute(
            "INSERT OR REPLACE INTO versions VALUES (?,?,?,?,?,NULL)",
            (lname, t.version, t.storage, t.nrows, now),
        )

    def _delete_table(
        self, db: sqlite3.Connection, lname: str, now: str, retire_only: bool = False
    ) -> None:
        db.execute("DELETE FROM tables WHERE lname=?", (lname,))
        db.execute("DELETE FROM columns WHERE table_lname=?", (lname,))
        for (key_id,) in db.execute("SELECT key_id FROM keys WHERE from_lname=?", (lname,)):
            db.execute("DELETE FROM key_columns WHERE key_id=?", (key_id,))
        db.execute("DELETE FROM keys WHERE from_lname=?", (lname,))
        if not retire_only:
            db.execute(
                "UPDATE versions SET retired_at=? WHERE lname=? AND retired_at IS NULL",
                (now, lname),
            )

    def unpublish(self, schema_name: str) -> list[Table]:
        """Remove a schema and all its tables; returns what was removed (for file cleanup)."""
        schema = self.get_schema(schema_name)
        if schema is None:
            return []
        now = _now()
        with self._transaction() as db:
            for t in schema.tables:
                self._delete_table(db, t.name.lower(), now)
            db.execute("DELETE FROM schemas WHERE lname=?", (schema_name.lower(),))
        return list(schema.tables)

    def drop_table(self, name: str) -> Table | None:
        """Remove one table (e.g. a personal table); its schema stays."""
        table = self.get_table(name)
        if table is not None:
            with self._transaction() as db:
                self._delete_table(db, name.lower(), _now())
        return table

    def forget_versions(self, name: str, versions: Iterable[int]) -> None:
        """Drop version records once their files are deleted."""
        with self._transaction() as db:
            db.executemany(
                "DELETE FROM versions WHERE lname=? AND version=?",
                [(name.lower(), v) for v in versions],
            )

    # ---- reading ---------------------------------------------------------

    def generation(self) -> int:
        """A counter bumped by every change: cache derived views (TAP_SCHEMA) on it."""
        with self._connect() as db:
            row = db.execute("SELECT value FROM meta WHERE key='generation'").fetchone()
            return int(row[0])

    def _tables(self, db: sqlite3.Connection, where: str, args: tuple[Any, ...]) -> list[Table]:
        rows = db.execute(
            f"SELECT * FROM tables {where} ORDER BY schema_lname, table_index",  # noqa: S608 (constant fragment)
            args,
        ).fetchall()
        out = []
        for r in rows:
            cols = tuple(
                Column(
                    name=c["name"],
                    datatype=c["datatype"],
                    arraysize=c["arraysize"],
                    xtype=c["xtype"],
                    unit=c["unit"],
                    ucd=c["ucd"],
                    utype=c["utype"],
                    description=c["description"] or "",
                    nullable=bool(c["nullable"]),
                    principal=bool(c["principal"]),
                    indexed=bool(c["indexed"]),
                    std=bool(c["std"]),
                )
                for c in db.execute(
                    "SELECT * FROM columns WHERE table_lname=? ORDER BY column_index",
                    (r["lname"],),
                )
            )
            fks = []
            for k in db.execute("SELECT * FROM keys WHERE from_lname=?", (r["lname"],)):
                kc = db.execute(
                    "SELECT from_column, target_column FROM key_columns WHERE key_id=? "
                    "ORDER BY position",
                    (k["key_id"],),
                ).fetchall()
                fks.append(
                    ForeignKey(
                        key_id=k["key_id"],
                        from_table=k["from_table"],
                        target_table=k["target_table"],
                        columns=tuple((a, b) for a, b in kc),
                        description=k["description"] or "",
                    )
                )
            out.append(
                Table(
                    name=r["name"],
                    columns=cols,
                    description=r["description"] or "",
                    title=r["title"] or "",
                    table_type=r["table_type"] or "table",
                    utype=r["utype"],
                    ra_column=r["ra_column"],
                    dec_column=r["dec_column"],
                    storage=r["storage"],
                    nrows=r["nrows"],
                    version=r["version"],
                    owner=r["owner"],
                    groups=tuple(json.loads(r["groups"] or "[]")),
                    foreign_keys=tuple(fks),
                )
            )
        return out

    def get_table(self, name: str) -> Table | None:
        """The live table of that qualified name (case-insensitive), or None."""
        with self._connect() as db:
            found = self._tables(db, "WHERE lname=?", (name.lower(),))
        return found[0] if found else None

    def list_tables(self) -> list[Table]:
        """All live tables, by schema then publication order."""
        with self._connect() as db:
            return self._tables(db, "", ())

    def _schemas(self, where: str, args: tuple[Any, ...]) -> list[Schema]:
        with self._connect() as db:
            sql = f"SELECT * FROM schemas {where} ORDER BY schema_index"  # noqa: S608 (constant)
            rows = db.execute(sql, args)
            return [
                Schema(
                    name=r["name"],
                    description=r["description"] or "",
                    title=r["title"] or "",
                    tables=tuple(self._tables(db, "WHERE schema_lname=?", (r["lname"],))),
                )
                for r in rows.fetchall()
            ]

    def list_schemas(self) -> list[Schema]:
        """All schemas with their tables."""
        return self._schemas("", ())

    def get_schema(self, name: str) -> Schema | None:
        """One schema (case-insensitive) with its tables, or None."""
        found = self._schemas("WHERE lname=?", (name.lower(),))
        return found[0] if found else None

    def get_resource(self, schema_name: str) -> dict[str, Any]:
        """Resource-level metadata given at publish time ({} if none)."""
        with self._connect() as db:
            row = db.execute(
                "SELECT resource FROM schemas WHERE lname=?", (schema_name.lower(),)
            ).fetchone()
        return json.loads(row[0]) if row and row[0] else {}

    def index_of(self, kind: str, name: str) -> int | None:
        """schema_index / table_index (TAP_SCHEMA ordering) of a schema or table."""
        sql = {
            "schema": "SELECT schema_index FROM schemas WHERE lname=?",
            "table": "SELECT table_index FROM tables WHERE lname=?",
        }[kind]
        with self._connect() as db:
            row = db.execute(sql, (name.lower(),)).fetchone()
        return None if row is None else int(row[0])

    def versions(self, name: str | None = None) -> list[TableVersion]:
        """Version history (one table, or all): live and retired storages."""
        where, args = ("WHERE lname=?", (name.lower(),)) if name else ("", ())
        with self._connect() as db:
            sql = f"SELECT * FROM versions {where} ORDER BY lname, version"  # noqa: S608 (constant)
            rows = db.execute(sql, args)
            return [
                TableVersion(
                    r["lname"],
                    r["version"],
                    r["storage"],
                    r["nrows"],
                    r["published_at"],
                    r["retired_at"],
                )
                for r in rows.fetchall()
            ]

    def next_version(self, name: str) -> int:
        """The version number a new publication of this table gets."""
        with self._connect() as db:
            row = db.execute(
                "SELECT MAX(version) FROM versions WHERE lname=?", (name.lower(),)
            ).fetchone()
        return 1 if row is None or row[0] is None else int(row[0]) + 1

"""The metadata model: schemas, tables and columns as every layer sees them.

One set of value objects feeds TAP_SCHEMA, VOSI tables, VOTable FIELDs,
FITS headers and the ADQL resolver, so a column's unit or UCD is written
down once (in a resource descriptor) and flows everywhere.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Literal

# VOTable primitive datatypes (VOTable 1.4, section 2.1).
VOTABLE_DATATYPES = (
    "boolean",
    "bit",
    "unsignedByte",
    "short",
    "int",
    "long",
    "char",
    "unicodeChar",
    "float",
    "double",
    "floatComplex",
    "doubleComplex",
)


@dataclass(frozen=True, slots=True)
class Column:
    """One column of a published table or of a query result.

    ``datatype`` and ``arraysize`` are VOTable terms; ``xtype`` carries DALI
    extended types (``timestamp``, ``point``, ``circle``, ``polygon``...).
    """

    name: str
    datatype: str = "double"
    arraysize: str | None = None
    xtype: str | None = None
    unit: str | None = None
    ucd: str | None = None
    utype: str | None = None
    description: str = ""
    nullable: bool = True
    principal: bool = False
    indexed: bool = False
    std: bool = False

    def renamed(self, name: str) -> Column:
        """Same metadata under another name (ADQL ``AS`` aliases)."""
        return replace(self, name=name)


@dataclass(frozen=True, slots=True)
class ForeignKey:
    """A key from one table to another, for TAP_SCHEMA.keys."""

    key_id: str
    from_table: str
    target_table: str
    columns: tuple[tuple[str, str], ...]  # (from_column, target_column)
    description: str = ""


@dataclass(frozen=True, slots=True)
class Table:
    """A published table (or view) and where its rows live.

    ``name`` is the schema-qualified name clients use in ADQL
    (``des_dr2.main``). ``ra_column``/``dec_column`` are set for positional
    tables, whose storage is a HATS catalog with a ``_healpix_29`` column.
    """

    name: str
    columns: tuple[Column, ...]
    description: str = ""
    title: str = ""
    table_type: Literal["table", "view"] = "table"
    utype: str | None = None
    ra_column: str | None = None
    dec_column: str | None = None
    storage: str | None = None  # path of the HATS catalog or Parquet dataset
    nrows: int | None = None
    version: int = 1
    owner: str | None = None  # None: public; else the user who owns it
    groups: tuple[str, ...] = ()  # groups allowed to read a non-public table
    foreign_keys: tuple[ForeignKey, ...] = field(default=())

    @property
    def schema(self) -> str:
        """The schema part of the qualified name."""
        return self.name.split(".", 1)[0] if "." in self.name else ""

    @property
    def short_name(self) -> str:
        """The table name without its schema."""
        return self.name.split(".", 1)[1] if "." in self.name else self.name

    @property
    def positional(self) -> bool:
        """True when the table has sky positions and a HEALPix index."""
        return self.ra_column is not None and self.dec_column is not None

    def column(self, name: str) -> Column:
        """Look a column up by name, case-insensitively (ADQL regular identifiers)."""
        lname = name.lower()
        for col in self.columns:
            if col.name.lower() == lname:
                return col
        raise KeyError(name)


@dataclass(frozen=True, slots=True)
class Schema:
    """A schema: a named group of tables with a description."""

    name: str
    description: str = ""
    title: str = ""
    tables: tuple[Table, ...] = ()

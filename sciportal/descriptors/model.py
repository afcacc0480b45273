"""What a loaded resource descriptor is: metadata plus how to read each table.

The metadata half (``TableSpec.table``) is the shared ``metadata.model``
value object; the ingestion half (sources, column mappings, position,
partitioning, bad-row policy) only matters to the store while publishing.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from sciportal.metadata.model import Schema, Table

SOURCE_FORMATS = ("parquet", "fits", "csv", "tsv", "votable")
BadRows = Literal["reject", "skip"]
DEFAULT_PARTITION_ROWS = 1_000_000


@dataclass(frozen=True, slots=True)
class SourceSpec:
    """Where a table's rows come from: files (globs expanded) and a reader."""

    patterns: tuple[str, ...]  # as written, after {home} and relative-path resolution
    format: str | None = None  # None: from each file's extension
    options: dict[str, Any] = field(default_factory=dict)

    def files(self) -> list[Path]:
        """The matching files, sorted, de-duplicated (a glob may match nothing)."""
        out: dict[Path, None] = {}
        for pattern in self.patterns:
            p = Path(pattern)
            if any(ch in pattern for ch in "*?["):
                anchor = Path(p.anchor) if p.is_absolute() else Path(".")
                rel = str(p.relative_to(anchor)) if p.is_absolute() else pattern
                for hit in sorted(anchor.glob(rel)):
                    out[hit] = None
            else:
                out[p] = None
        return list(out)


@dataclass(frozen=True, slots=True)
class ColumnMapping:
    """How one stored column is made from a source column."""

    name: str  # stored (published) name
    source: str  # column name in the source files
    scale: float | None = None  # multiply numeric source values by this


@dataclass(frozen=True, slots=True)
class TableSpec:
    """One table of a descriptor: its metadata and how to ingest it."""

    table: Table
    source: SourceSpec
    mappings: tuple[ColumnMapping, ...]
    position: tuple[str, str] | None = None  # (ra column, dec column), stored names
    partition_rows: int = DEFAULT_PARTITION_ROWS
    bad_rows: BadRows = "reject"
    line: int = field(default=0, compare=False)  # line in the descriptor, for messages


@dataclass(frozen=True, slots=True)
class Descriptor:
    """A loaded, validated resource descriptor."""

    path: Path
    schema: str
    title: str
    description: str
    creators: tuple[str, ...] = ()
    subjects: tuple[str, ...] = ()
    reference_url: str | None = None
    version: int | None = None
    services: tuple[str, ...] = ()
    tables: tuple[TableSpec, ...] = ()

    def schema_object(self) -> Schema:
        """The metadata-model schema with this descriptor's tables."""
        return Schema(
            name=self.schema,
            description=self.description,
            title=self.title,
            tables=tuple(t.table for t in self.tables),
        )

    def resource_info(self) -> dict[str, Any]:
        """Resource-level metadata the Schema model has no field for (VOResource, docs)."""
        return {
            "creators": list(self.creators),
            "subjects": list(self.subjects),
            "reference_url": self.reference_url,
            "version": self.version,
            "services": list(self.services),
            "descriptor": str(self.path),
        }

"""Turn source batches into stored batches: rename, scale, cast, check rows.

This is where a descriptor's promises are enforced on real files: a column
that cannot be cast is an error naming file and column (inconsistent types
across files show up here), and bad rows (null in a non-nullable column,
NaN or out-of-range positions) are rejected or skipped and counted as the
descriptor's ``bad_rows`` says.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from sciportal.descriptors.model import TableSpec
from sciportal.descriptors.types import column_arrow_type
from sciportal.errors import IngestError
from sciportal.metadata.model import Column
from sciportal.store.readers import DEFAULT_BATCH_ROWS, CsvReader, SourceReader, open_reader


def field_for(col: Column) -> pa.Field:
    """The stored Arrow field of a column, its VO metadata attached as field metadata."""
    meta = {"datatype": col.datatype}
    for key in ("arraysize", "xtype", "unit", "ucd", "utype"):
        value = getattr(col, key)
        if value:
            meta[key] = value
    if col.description:
        meta["description"] = col.description
    # Arrow/Parquet nullability stays True: NOT NULL is enforced at ingest (bad rows)
    # and recorded in the VO metadata, and readers never trip on a schema mismatch.
    return pa.field(col.name, column_arrow_type(col), metadata=meta)


def target_schema(spec: TableSpec) -> pa.Schema:
    """The stored schema (without the HEALPix column) of a descriptor table."""
    return pa.schema([field_for(c) for c in spec.table.columns])


@dataclass
class BadRowCount:
    """Rows skipped under ``bad_rows: skip``, with the first few reasons for the report."""

    count: int = 0
    examples: list[str] | None = None

    def add(self, n: int, example: str) -> None:
        self.count += n
        if self.examples is None:
            self.examples = []
        if len(self.examples) < 5:
            self.examples.append(example)


def _first_cast_failure(arr: pa.Array, target: pa.DataType) -> int | None:
    for i in range(min(len(arr), 100_000)):
        try:
            arr.slice(i, 1).cast(target)
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
            return i
    return None


class TableConverter:
    """Converts the batches of every source file of one descriptor table."""

    def __init__(self, spec: TableSpec) -> None:
        self.spec = spec
        self.schema = target_schema(spec)
        self.bad = BadRowCount()
        self.files = spec.source.files()
        if not self.files:
            raise IngestError(
                f"{spec.table.name}: no source file matches {', '.join(spec.source.patterns)}"
            )
        self._fields = {f.name: f for f in self.schema}

    @property
    def source_columns(self) -> list[str]:
        """Source column names to read, in descriptor order, without repeats."""
        return list(dict.fromkeys(m.source for m in self.spec.mappings))

    def reader(self, path: Path) -> SourceReader:
        reader = open_reader(path, self.spec.source.format, self.spec.source.options)
        if isinstance(reader, CsvReader):
            # give the CSV parser our types so a bad value is reported where it is
            types = {}
            for m in self.spec.mappings:
                t = self._fields[m.name].type
                if (
                    m.scale is None
                    and not pa.types.is_list(t)
                    and not pa.types.is_fixed_size_list(t)
                ):
                    types[m.source] = t
            reader.column_types = types
        return reader

    def _cast(self, arr: pa.Array, name: str, path: Path, row0: int) -> pa.Array:
        target = self._fields[name].type
        if arr.type == target:
            return arr
        try:
            return arr.cast(target)
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as exc:
            bad = _first_cast_failure(arr, target)
            where = f"row {row0 + bad + 1}, " if bad is not None else ""
            raise IngestError(
                f"{path}: {where}column {name!r}: cannot convert {arr.type} to {target} "
                f"({exc}); is the type the same in every file?"
            ) from None

    def _mapped(self, batch: pa.RecordBatch, names: list[str], path: Path, row0: int) -> dict:
        out = {}
        for m in self.spec.mappings:
            if m.name not in names:
                continue
            arr = batch.column(m.source)
            if m.scale is not None:
                try:
                    arr = pc.multiply(arr.cast(pa.float64()), pa.scalar(m.scale, pa.float64()))
                except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as exc:
                    raise IngestError(f"{path}: column {m.source!r}: cannot scale: {exc}") from None
            out[m.name] = self._cast(arr, m.name, path, row0)
        return out

    def _bad_mask(
        self, cols: dict[str, pa.Array], path: Path, row0: int, positions_only: bool
    ) -> np.ndarray | None:
        """Boolean mask of bad rows (None if all good); raises under ``reject``."""
        n = len(next(iter(cols.values())))
        bad = np.zeros(n, dtype=bool)
        reasons: list[tuple[np.ndarray, str]] = []
        if self.spec.position:
            ra_name, dec_name = self.spec.position
            ra = cols[ra_name].to_numpy(zero_copy_only=False).astype(np.float64)
            dec = cols[dec_name].to_numpy(zero_copy_only=False).astype(np.float64)
            with np.errstate(invalid="ignore"):
                r1 = ~np.isfinite(ra) | (ra < -360) | (ra > 360)
                r2 = ~np.isfinite(dec) | (dec < -90) | (dec > 90)
            reasons.append((r1, f"column {ra_name!r}: RA is null, NaN or outside [-360, 360]"))
            reasons.append((r2, f"column {dec_name!r}: Dec is null, NaN or outside [-90, 90]"))
        if not positions_only:
            for c in self.spec.table.columns:
                if not c.nullable and cols[c.name].null_count:
                    nulls = cols[c.name].is_null().to_numpy(zero_copy_only=False)
                    reasons.append((nulls, f"column {c.name!r}: null in a non-nullable column"))
        for mask, why in reasons:
            if not mask.any():
                continue
            first = int(np.argmax(mask))
            if self.spec.bad_rows == "reject":
                raise IngestError(
                    f"{path}: row {row0 + first + 1}: {why} "
                    "(set bad_rows: skip in the descriptor to skip such rows)"
                )
            bad |= mask
        if not bad.any():
            return None
        first = int(np.argmax(bad))
        if not positions_only:
            why = next(w for m, w in reasons if m[first])
            self.bad.add(int(bad.sum()), f"{path}: row {row0 + first + 1}: {why}")
        return bad

    def positions(
        self, batch_rows: int = DEFAULT_BATCH_ROWS
    ) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        """Pass 1: (ra, dec) in degrees of the good rows, file by file."""
        assert self.spec.position is not None
        names = list(self.spec.position)
        sources = [m.source for m in self.spec.mappings if m.name in names]
        for path in self.files:
            reader = self.reader(path)
            reader.check_columns(self.source_columns)
            row0 = 0
            for batch in reader.batches(list(dict.fromkeys(sources)), batch_rows):
                cols = self._mapped(batch, names, path, row0)
                bad = self._bad_mask(cols, path, row0, positions_only=True)
                ra = cols[names[0]].to_numpy(zero_copy_only=False).astype(np.float64)
                dec = cols[names[1]].to_numpy(zero_copy_only=False).astype(np.float64)
                if bad is not None:
                    ra, dec = ra[~bad], dec[~bad]
                yield ra, dec
                row0 += batch.num_rows

    def batches(self, batch_rows: int = DEFAULT_BATCH_ROWS) -> Iterator[pa.RecordBatch]:
        """Pass 2: stored-schema batches of the good rows, file by file."""
        names = [c.name for c in self.spec.table.columns]
        for path in self.files:
            reader = self.reader(path)
            row0 = 0
            for batch in reader.batches(self.source_columns, batch_rows):
                cols = self._mapped(batch, names, path, row0)
                bad = self._bad_mask(cols, path, row0, positions_only=False)
                out = pa.RecordBatch.from_arrays([cols[n] for n in names], schema=self.schema)
                if bad is not None:
                    out = out.filter(pa.array(~bad))
                yield out
                row0 += batch.num_rows

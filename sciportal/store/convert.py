"""Turn source batches into stored batches: rename, scale, cast, check rows.

This is where a descriptor's promises are enforced on real files: a column
that cannot be cast is an error naming file and column (inconsistent types
across files show up here), and bad rows (null in a non-nullable column,
NaN or out-of-range positions) are rejected or skipped and counted as the
descriptor's ``bad_rows`` says.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
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
class Reason:
    """Why some rows of a batch are bad: which rows, a generic reason, the first case."""

    mask: np.ndarray
    why: str  # e.g. "column 'mag': cannot convert to double" (counted per reason)
    detail: str = ""  # e.g. "column 'mag': cannot convert 'bright' to double"


@dataclass
class BadRowCount:
    """Rows skipped under ``bad_rows: skip``: total, per reason, and a few examples.

    A row bad for several reasons is counted once, under the first.
    """

    count: int = 0
    examples: list[str] | None = None
    by_reason: dict[str, int] = field(default_factory=dict)

    def add(self, n: int, example: str, why: str | None = None) -> None:
        self.count += n
        if why is not None:
            self.by_reason[why] = self.by_reason.get(why, 0) + n
        if self.examples is None:
            self.examples = []
        if len(self.examples) < 5:
            self.examples.append(example)


def _cast_failures(arr: pa.Array, target: pa.DataType, first_only: bool = False) -> np.ndarray:
    """Positions of the values of ``arr`` that cannot be cast to ``target``.

    Bisection: a few casts of ever smaller slices per bad value, so a batch
    with one bad value costs ~log2(len) extra casts, not one per row.
    """
    failed: list[int] = []
    todo = [(0, len(arr))]
    while todo:
        lo, hi = todo.pop()
        try:
            arr.slice(lo, hi - lo).cast(target)
            continue
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
            pass
        if hi - lo == 1:
            failed.append(lo)
            if first_only:
                break
            continue
        mid = (lo + hi) // 2
        todo += [(mid, hi), (lo, mid)]  # the lower half first: failures come out sorted
    return np.array(failed, dtype=np.int64)


def _wrap_ra(arr: pa.Array, wrap: np.ndarray) -> pa.Array:
    """RA values at ``wrap`` moved into [0, 360), in the array's own float type."""
    values = arr.to_numpy(zero_copy_only=False).copy()
    dtype = values.dtype
    values[wrap] = np.mod(values[wrap].astype(np.float64), 360.0).astype(dtype)
    values[wrap & (values >= 360)] = 0  # -1e-20 % 360 rounds to 360
    return pa.array(values, type=arr.type, mask=arr.is_null().to_numpy(zero_copy_only=False))


class TableConverter:
    """Converts the batches of every source file of one descriptor table.

    Pass 1 (:meth:`positions`) and pass 2 (:meth:`batches`) compute the bad-row
    mask from the same columns with the same code, so both keep the same rows:
    pass 1 reads the position columns plus, under ``skip``, every column that
    can make a row bad (non-nullable ones, and ones whose values are converted).
    """

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
        self._skip = spec.bad_rows == "skip"

    @property
    def source_columns(self) -> list[str]:
        """Source column names to read, in descriptor order, without repeats."""
        return list(dict.fromkeys(m.source for m in self.spec.mappings))

    def reader(self, path: Path) -> SourceReader:
        reader = open_reader(path, self.spec.source.format, self.spec.source.options)
        if isinstance(reader, CsvReader):
            # give the CSV parser our types so a bad value is reported where it is;
            # under ``skip`` read text and convert here, so one bad value costs one row
            types = {}
            for m in self.spec.mappings:
                t = self._fields[m.name].type
                if pa.types.is_list(t) or pa.types.is_fixed_size_list(t):
                    continue
                if self._skip:
                    types[m.source] = pa.string()
                elif m.scale is None:
                    types[m.source] = t
            reader.column_types = types
        return reader

    def _mask_columns(self, reader: SourceReader) -> list[str]:
        """Stored columns that decide whether a row is bad (positions first)."""
        assert self.spec.position is not None
        names = list(self.spec.position)
        if not self._skip:
            return names  # under reject a bad row anywhere fails pass 2 anyway
        source = reader.schema()
        for m in self.spec.mappings:
            required = not self.spec.table.column(m.name).nullable
            src = source.field(m.source).type if m.source in source.names else None
            converted = m.scale is not None or src != self._fields[m.name].type
            if (converted or required) and m.name not in names:
                names.append(m.name)
        return names

    def _convert(
        self,
        arr: pa.Array,
        target: pa.DataType,
        name: str,
        where: tuple[Path, int],
        reasons: list[Reason],
    ) -> pa.Array:
        """``arr`` cast to ``target``; under ``skip`` values that fail become bad rows."""
        if arr.type == target:
            return arr
        try:
            return arr.cast(target)
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as exc:
            path, row0 = where
            if isinstance(exc, pa.ArrowNotImplementedError) or not self._skip:
                failed = _cast_failures(arr, target, first_only=True)
                at = f"row {row0 + failed[0] + 1}, " if len(failed) else ""
                raise IngestError(
                    f"{path}: {at}column {name!r}: cannot convert {arr.type} to {target} "
                    f"({exc}); is the type the same in every file?"
                ) from None
            failed = _cast_failures(arr, target)
        mask = np.zeros(len(arr), dtype=bool)
        mask[failed] = True
        value = arr[int(failed[0])].as_py() if len(failed) else None
        reasons.append(
            Reason(
                mask,
                f"column {name!r}: cannot convert to {target}",
                f"column {name!r}: cannot convert {value!r} to {target}",
            )
        )
        nulled = pc.if_else(pa.array(mask), pa.scalar(None, arr.type), arr)
        return nulled.cast(target)

    def _mapped(
        self, batch: pa.RecordBatch, names: list[str], path: Path, row0: int
    ) -> tuple[dict[str, pa.Array], list[Reason]]:
        """The stored columns ``names`` of a source batch, and conversion failures."""
        out = {}
        reasons: list[Reason] = []
        for m in self.spec.mappings:
            if m.name not in names:
                continue
            arr = batch.column(m.source)
            if m.scale is not None:
                arr = self._convert(arr, pa.float64(), m.name, (path, row0), reasons)
                arr = pc.multiply(arr, pa.scalar(m.scale, pa.float64()))
            out[m.name] = self._convert(
                arr, self._fields[m.name].type, m.name, (path, row0), reasons
            )
        return out, reasons

    def _bad_mask(
        self,
        cols: dict[str, pa.Array],
        reasons: list[Reason],
        path: Path,
        row0: int,
        count: bool,
    ) -> np.ndarray | None:
        """Boolean mask of bad rows (None if all good); raises under ``reject``.

        Normalises RA into [0, 360) in ``cols`` under ``skip``. ``reasons``
        holds conversion failures; ``count``: add the bad rows to the report.
        """
        n = len(next(iter(cols.values())))
        bad = np.zeros(n, dtype=bool)
        if self.spec.position:
            reasons = reasons + self._position_checks(cols)
        for c in self.spec.table.columns:
            if not c.nullable and c.name in cols and cols[c.name].null_count:
                nulls = cols[c.name].is_null().to_numpy(zero_copy_only=False)
                reasons.append(Reason(nulls, f"column {c.name!r}: null in a non-nullable column"))
        for r in reasons:
            if not r.mask.any():
                continue
            first = int(np.argmax(r.mask))
            if not self._skip:
                raise IngestError(
                    f"{path}: row {row0 + first + 1}: {r.detail or r.why} "
                    "(set bad_rows: skip in the descriptor to skip such rows)"
                )
            if count:
                new = r.mask & ~bad  # rows not already counted under an earlier reason
                if new.any():
                    at = row0 + int(np.argmax(new)) + 1
                    self.bad.add(int(new.sum()), f"{path}: row {at}: {r.detail or r.why}", r.why)
            bad |= r.mask
        return bad if bad.any() else None

    def _position_checks(self, cols: dict[str, pa.Array]) -> list[Reason]:
        """Bad-position masks; under ``skip`` RA in [-360, 360] is wrapped into [0, 360)."""
        assert self.spec.position is not None
        ra_name, dec_name = self.spec.position
        ra = cols[ra_name].to_numpy(zero_copy_only=False).astype(np.float64)
        dec = cols[dec_name].to_numpy(zero_copy_only=False).astype(np.float64)
        with np.errstate(invalid="ignore"):
            outside = (ra < 0) | (ra >= 360)
            if self._skip:
                r1 = ~np.isfinite(ra) | (ra < -360) | (ra > 360)
                wrap = outside & ~r1
                if wrap.any():
                    cols[ra_name] = _wrap_ra(cols[ra_name], wrap)
                ra_why = "RA is null, NaN or outside [-360, 360]"
            else:
                r1 = ~np.isfinite(ra) | outside
                ra_why = "RA is null, NaN or outside [0, 360) (bad_rows: skip wraps it)"
            r2 = ~np.isfinite(dec) | (dec < -90) | (dec > 90)
        return [
            Reason(r1, f"column {ra_name!r}: {ra_why}"),
            Reason(r2, f"column {dec_name!r}: Dec is null, NaN or outside [-90, 90]"),
        ]

    def positions(
        self, batch_rows: int = DEFAULT_BATCH_ROWS
    ) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        """Pass 1: (ra, dec) in degrees of the good rows, file by file."""
        assert self.spec.position is not None
        ra_name, dec_name = self.spec.position
        for path in self.files:
            reader = self.reader(path)
            reader.check_columns(self.source_columns)
            names = self._mask_columns(reader)
            sources = [m.source for m in self.spec.mappings if m.name in names]
            row0 = 0
            for batch in reader.batches(list(dict.fromkeys(sources)), batch_rows):
                cols, reasons = self._mapped(batch, names, path, row0)
                bad = self._bad_mask(cols, reasons, path, row0, count=False)
                ra = cols[ra_name].to_numpy(zero_copy_only=False).astype(np.float64)
                dec = cols[dec_name].to_numpy(zero_copy_only=False).astype(np.float64)
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
                cols, reasons = self._mapped(batch, names, path, row0)
                bad = self._bad_mask(cols, reasons, path, row0, count=True)
                out = pa.RecordBatch.from_arrays([cols[n] for n in names], schema=self.schema)
                if bad is not None:
                    out = out.filter(pa.array(~bad))
                yield out
                row0 += batch.num_rows

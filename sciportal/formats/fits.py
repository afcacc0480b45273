"""FITS binary table (application/fits), streamed through a spool file.

A FITS header states the row count, the widths of string columns and the
heap size before any data, so the result is first spooled (already cast to
its output types) to an Arrow IPC temp file while those numbers are counted;
then the header is written and the spool is read back batch by batch:
rows as one big-endian numpy structured array per batch, then the heap of
variable-length arrays. Memory stays bounded by one batch.
"""

from __future__ import annotations

import tempfile
from collections.abc import Iterable, Iterator, Sequence
from typing import Any, BinaryIO

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from sciportal.formats.base import ResultInfo, WriteStats, limited, peek
from sciportal.formats.columns import (
    ColumnPlan,
    coerce_batch,
    null_mask,
    numeric_values,
    plan_columns,
)
from sciportal.formats.unicode import string_parts
from sciportal.formats.votable_binary import fixed_matrix, list_parts
from sciportal.metadata.model import Column

BLOCK = 2880
_CODE = {"unsignedByte": "B", "short": "I", "int": "J", "long": "K", "float": "E", "double": "D"}
_BE = {
    "unsignedByte": "u1",
    "short": ">i2",
    "int": ">i4",
    "long": ">i8",
    "float": ">f4",
    "double": ">f8",
}


def _ascii(s: str) -> str:
    """Header values must be printable ASCII."""
    return "".join(ch if 32 <= ord(ch) < 127 else "?" for ch in s)


class _Spool:
    """The coerced result on disk, plus what the FITS header needs to know about it."""

    def __init__(self, plans: list[ColumnPlan]) -> None:
        self.plans = plans
        self.file = tempfile.TemporaryFile(prefix="sciportal-fits-")
        self.schema = pa.schema([pa.field(f"c{i}", p.arrow_type) for i, p in enumerate(plans)])
        self.writer = pa.ipc.new_stream(self.file, self.schema)
        self.rows = 0
        self.width = [0] * len(plans)  # strings: max bytes; var arrays: max elements
        self.heap = 0

    def add(self, arrays: list[pa.Array]) -> None:
        for i, (arr, p) in enumerate(zip(arrays, self.plans, strict=True)):
            if p.kind == "string":
                lengths = pc.binary_length(arr)
                self.width[i] = max(self.width[i], int(pc.max(lengths).as_py() or 0))
            elif p.kind == "array" and not p.fixed:
                lengths = pc.list_value_length(arr)
                self.width[i] = max(self.width[i], int(pc.max(lengths).as_py() or 0))
                total = int(pc.sum(lengths).as_py() or 0)
                self.heap += total * np.dtype(_BE[p.datatype]).itemsize
        self.rows += len(arrays[0]) if arrays else 0
        self.writer.write_batch(pa.RecordBatch.from_arrays(arrays, schema=self.schema))

    def batches(self) -> Iterator[pa.RecordBatch]:
        self.writer.close()
        self.file.seek(0)
        yield from pa.ipc.open_stream(self.file)

    def close(self) -> None:
        self.file.close()


def _tform(p: ColumnPlan, width: int) -> tuple[str, Any, int]:
    """TFORM, numpy field dtype and byte width of one column."""
    if p.kind == "bool":
        return "L", "u1", 1
    if p.kind in ("int", "float"):
        return _CODE[p.datatype], _BE[p.datatype], np.dtype(_BE[p.datatype]).itemsize
    if p.kind == "string":
        w = max(width, 1)
        return f"{w}A", ("u1", w), w
    if p.fixed:
        return (
            f"{p.fixed}{_CODE[p.datatype]}",
            (_BE[p.datatype], p.fixed),
            p.fixed * np.dtype(_BE[p.datatype]).itemsize,
        )
    return f"1Q{_CODE[p.datatype]}({width})", (">i8", 2), 16


def _header(
    plans: list[ColumnPlan], spool: _Spool, info: ResultInfo, stats: WriteStats
) -> tuple[bytes, list[Any]]:
    from astropy.io import fits  # imported when first needed: astropy is slow to import

    forms = [_tform(p, w) for p, w in zip(plans, spool.width, strict=True)]
    hdr = fits.Header()
    hdr["XTENSION"] = "BINTABLE"
    hdr["BITPIX"] = 8
    hdr["NAXIS"] = 2
    hdr["NAXIS1"] = sum(f[2] for f in forms)
    hdr["NAXIS2"] = spool.rows
    hdr["PCOUNT"] = spool.heap
    hdr["GCOUNT"] = 1
    hdr["TFIELDS"] = len(plans)
    for i, (p, (tform, _, _)) in enumerate(zip(plans, forms, strict=True), start=1):
        c = p.column
        hdr[f"TTYPE{i}"] = _ascii(c.name)
        hdr[f"TFORM{i}"] = tform
        if c.unit:
            hdr[f"TUNIT{i}"] = _ascii(c.unit)
        if p.kind == "int" and p.null_value is not None:
            hdr[f"TNULL{i}"] = p.null_value
        if c.ucd:
            hdr[f"TUCD{i}"] = _ascii(c.ucd)
        if c.utype:
            hdr[f"TUTYP{i}"] = _ascii(c.utype)[:68]
        if c.xtype:
            hdr[f"TXTYP{i}"] = _ascii(c.xtype)
        if c.description:
            hdr[f"TCOMM{i}"] = _ascii(c.description)[:68]
    if info.table_name:
        hdr["EXTNAME"] = _ascii(info.table_name)[:68]
    hdr["QSTATUS"] = ("OVERFLOW" if stats.overflow else info.query_status, "DALI query status")
    if info.query:
        hdr["COMMENT"] = _ascii("Query: " + info.query)
    hdr["COMMENT"] = f"Written by {info.service} {info.version}"
    return hdr.tostring().encode("ascii"), [f[1] for f in forms]


def _primary_header() -> bytes:
    """An empty primary HDU that announces extensions."""
    cards = [
        "SIMPLE  =                    T",
        "BITPIX  =                    8",
        "NAXIS   =                    0",
        "EXTEND  =                    T",
        "END",
    ]
    text = "".join(card.ljust(80) for card in cards)
    return text.ljust(BLOCK).encode("ascii")


def _string_matrix(arr: pa.Array, width: int) -> np.ndarray:
    """Strings as NUL-padded rows of ``width`` bytes."""
    offsets, data = string_parts(arr)
    n = len(offsets) - 1
    mat = np.zeros((n, max(width, 1)), dtype=np.uint8)
    lengths = np.diff(offsets)
    if len(data):
        row = np.repeat(np.arange(n), lengths)
        col = np.arange(len(data)) - np.repeat(offsets[:-1], lengths)
        mat[row, col] = data
    return mat


def _rows(
    batch: pa.RecordBatch,
    plans: list[ColumnPlan],
    dtypes: list[Any],
    widths: list[int],
    heap_at: int,
) -> tuple[bytes, int]:
    """Main-table bytes of one batch; returns them and the heap offset after it."""
    n = batch.num_rows
    fields = [
        (f"f{i}", d) if isinstance(d, str) else (f"f{i}", d[0], (d[1],))
        for i, d in enumerate(dtypes)
    ]
    rec = np.empty(n, dtype=np.dtype(fields))
    for i, p in enumerate(plans):
        arr = batch.column(i)
        name = f"f{i}"
        if p.kind == "bool":
            flags = np.where(
                arr.fill_null(False).to_numpy(zero_copy_only=False), ord("T"), ord("F")
            )
            mask = null_mask(arr)
            if mask is not None:
                flags[mask] = 0
            rec[name] = flags
        elif p.kind in ("int", "float"):
            rec[name] = numeric_values(arr, p)
        elif p.kind == "string":
            rec[name] = _string_matrix(arr, widths[i])
        else:
            offsets, values = list_parts(arr, p)
            if p.fixed:
                fill = np.nan if values.dtype.kind == "f" else (p.null_value or 0)
                rec[name] = fixed_matrix(offsets, values, p.fixed, fill)
            else:
                size = np.dtype(_BE[p.datatype]).itemsize
                desc = np.empty((n, 2), dtype=np.int64)
                desc[:, 0] = np.diff(offsets)
                desc[:, 1] = heap_at + offsets[:-1] * size
                rec[name] = desc
                heap_at += int(offsets[-1]) * size
    return rec.tobytes(), heap_at


def _heap(batch: pa.RecordBatch, plans: list[ColumnPlan]) -> bytes:
    """Heap bytes of one batch: the variable arrays' elements, row by row, column by column.

    Descriptor offsets in :func:`_rows` assume per-batch column-major order.
    """
    parts = []
    for i, p in enumerate(plans):
        if p.kind == "array" and not p.fixed:
            _, values = list_parts(batch.column(i), p)
            parts.append(np.ascontiguousarray(values, dtype=_BE[p.datatype]).tobytes())
    return b"".join(parts)


class FitsWriter:
    """A FITS file: empty primary HDU plus one BINTABLE with units, UCDs and null values."""

    names: tuple[str, ...] = ("fits",)
    mime: str = "application/fits"
    mimes: tuple[str, ...] = ("application/fits", "image/fits", "application/x-fits-bintable")
    extension: str = "fits"
    #: FITS spools every row before writing a byte, so an engine error leaves
    #: nothing written and the caller can still send a DALI error document;
    #: a failure while writing (disk, client) is a truncated file
    reports_errors = False

    def write(
        self,
        batches: Iterable[pa.RecordBatch],
        columns: Sequence[Column],
        out: BinaryIO,
        info: ResultInfo,
    ) -> WriteStats:
        """Spool, then write header, rows and heap."""
        stats = WriteStats()
        first, stream = peek(limited(batches, info.maxrec, stats))
        plans = plan_columns(list(columns), first.schema if first is not None else None, first)
        spool = _Spool(plans)
        try:
            for batch in stream:
                spool.add(coerce_batch(batch, plans))
            header, dtypes = _header(plans, spool, info, stats)
            out.write(_primary_header())
            out.write(header)
            size = 0
            heap_at = 0
            for batch in spool.batches():
                data, heap_at = _rows(batch, plans, dtypes, spool.width, heap_at)
                out.write(data)
                size += len(data)
            if spool.heap:
                for batch in _reread(spool):
                    heap = _heap(batch, plans)
                    out.write(heap)
                    size += len(heap)
            out.write(b"\0" * (-size % BLOCK))
        finally:
            spool.close()
        return stats


def _reread(spool: _Spool) -> Iterator[pa.RecordBatch]:
    spool.file.seek(0)
    yield from pa.ipc.open_stream(spool.file)

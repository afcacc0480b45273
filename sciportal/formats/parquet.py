"""Parquet with VOTable metadata (IVOA VOParquet note 1.0).

The Parquet footer carries, under ``IVOA.VOTable-Parquet.content``, a
VOTable with the FIELDs (units, UCDs, descriptions...) and no DATA, plus
``IVOA.VOTable-Parquet.version`` = ``1.0``. The footer is written last, so
the metadata can still say OVERFLOW when MAXREC cut the stream.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import BinaryIO

import pyarrow as pa
import pyarrow.parquet as pq

from sciportal.formats.base import ResultInfo, WriteStats, limited, peek
from sciportal.formats.columns import coerce_batch
from sciportal.formats.votable import plan_votable
from sciportal.formats.votable_xml import metadata_only
from sciportal.metadata.model import Column

CONTENT_KEY = "IVOA.VOTable-Parquet.content"
VERSION_KEY = "IVOA.VOTable-Parquet.version"


class ParquetWriter:
    """VOParquet: columnar, compressed, with the full column metadata in the footer."""

    names: tuple[str, ...] = ("parquet", "voparquet")
    mime: str = "application/vnd.apache.parquet"
    mimes: tuple[str, ...] = ("application/vnd.apache.parquet", "application/x-parquet")
    extension: str = "parquet"
    #: Parquet has no error convention; an error part-way must not leave a
    #: readable file (see ``write``) and the transport must cut the response
    reports_errors = False

    def write(
        self,
        batches: Iterable[pa.RecordBatch],
        columns: Sequence[Column],
        out: BinaryIO,
        info: ResultInfo,
    ) -> WriteStats:
        """Stream the result as one Parquet file (one row group per batch or so)."""
        stats = WriteStats()
        first, stream = peek(limited(batches, info.maxrec, stats))
        # unicodeChar vs char only matters for binary VOTable; Parquet strings are UTF-8
        plans = plan_votable(columns, first)
        schema = pa.schema(
            [
                pa.field(c.name, p.arrow_type, nullable=True)
                for c, p in zip(columns, plans, strict=True)
            ]
        )
        guard = _Cut(out)
        sink = pa.PythonFile(guard, mode="w")
        writer = pq.ParquetWriter(sink, schema, compression="snappy")
        try:
            pending: list[pa.RecordBatch] = []
            rows = 0
            for batch in stream:
                pending.append(
                    pa.RecordBatch.from_arrays(coerce_batch(batch, plans), schema=schema)
                )
                rows += batch.num_rows
                if rows >= 256 * 1024:  # row groups of ~256k rows
                    writer.write_table(pa.Table.from_batches(pending, schema=schema))
                    pending, rows = [], 0
            if pending or stats.rows == 0:
                writer.write_table(pa.Table.from_batches(pending, schema=schema))
            votable = metadata_only(plans, info, overflow=stats.overflow)
            writer.add_key_value_metadata({VERSION_KEY: "1.0", CONTENT_KEY: votable})
        except BaseException:
            # closing writes the footer, which would make the rows so far a
            # valid, silently truncated file: drop it so the file stays unreadable
            guard.cut = True
            raise
        finally:
            writer.close()
        return stats


class _Cut:
    """Passes writes through to ``out`` until ``cut`` is set, then drops them."""

    def __init__(self, out: BinaryIO) -> None:
        self.out = out
        self.cut = False
        self.closed = False

    def write(self, data: bytes) -> int:
        if not self.cut:
            self.out.write(data)
        return len(data)

    def flush(self) -> None:
        if not self.cut:
            self.out.flush()

    def close(self) -> None:
        self.closed = True

    def writable(self) -> bool:
        return True

    def readable(self) -> bool:
        return False

    def seekable(self) -> bool:
        return False

    def tell(self) -> int:
        return self.out.tell()

"""The common VOTable writer: plan columns, write header, stream the data part, close.

Each serialization (BINARY2, BINARY, TABLEDATA) subclasses it and only says
how to encode one batch of canonical arrays and what wraps the data.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import replace
from typing import BinaryIO, Protocol

import pyarrow as pa

from sciportal.formats.base import ResultInfo, WriteStats, error_message, limited, peek
from sciportal.formats.columns import ColumnPlan, coerce_batch, plan_columns
from sciportal.formats.unicode import is_ascii
from sciportal.formats.votable_xml import footer, header
from sciportal.metadata.model import Column

VOTABLE_MIME = "application/x-votable+xml"


def plan_votable(
    columns: Sequence[Column], first: pa.RecordBatch | None, unicode_strings: bool = False
) -> list[ColumnPlan]:
    """Column plans for VOTable output.

    A ``char`` column whose first batch holds non-ASCII text is declared
    ``unicodeChar`` (VOTable 1.4 ``char`` is ASCII and common readers reject
    anything else in binary streams); later non-ASCII text in a ``char``
    column is written as UTF-8, as VOTable 1.5 allows.
    """
    plans = plan_columns(list(columns), first.schema if first is not None else None, first)
    if first is None:
        return plans
    out: list[ColumnPlan] = []
    for i, p in enumerate(plans):
        if p.kind == "string" and p.datatype == "char":
            arrays = coerce_batch(first.select([i]), [p])
            if unicode_strings or not is_ascii(arrays[0]):
                p = replace(p, column=replace(p.column, datatype="unicodeChar"))
        out.append(p)
    return out


class VOTableWriter:
    """Base of the VOTable serializations."""

    names: tuple[str, ...] = ()
    mime: str = VOTABLE_MIME
    mimes: tuple[str, ...] = ()
    extension: str = "vot"
    #: element name inside DATA
    serialization = ""
    #: declare VALUES null for integer columns (formats without null flags)
    null_values = False
    #: an error after the first row still ends in a valid document (see ``write``)
    reports_errors = True

    def write(
        self,
        batches: Iterable[pa.RecordBatch],
        columns: Sequence[Column],
        out: BinaryIO,
        info: ResultInfo,
    ) -> WriteStats:
        """Stream the result as one VOTable document.

        An error before the first row propagates with nothing written (the
        caller answers with a DALI error document). An error once rows are
        out closes the data element after the last complete batch, appends
        ``<INFO name="QUERY_STATUS" value="ERROR">`` after the TABLE (DALI
        1.1 section 4.4; VOTable 1.4 allows INFO there, and pyvo reads the
        last QUERY_STATUS) and then re-raises, so an async job still fails.
        """
        stats = WriteStats()
        first, stream = peek(limited(batches, info.maxrec, stats))
        plans = plan_votable(columns, first)
        out.write(header(plans, info, self.null_values).encode("utf-8"))
        sink = self.open_data(out)
        try:
            for batch in stream:
                sink.write(coerce_batch(batch, plans), plans)
        except Exception as exc:
            # batches are encoded whole before they are written, so the data
            # element holds complete rows only and can be closed as it is
            sink.close()
            out.write(footer(False, error=error_message(exc)).encode("utf-8"))
            raise
        sink.close()
        out.write(footer(stats.overflow).encode("utf-8"))
        return stats

    def open_data(self, out: BinaryIO) -> DataSink:
        """Start the serialization element; a fresh sink per document (writers are shared)."""
        raise NotImplementedError


class DataSink(Protocol):
    """Per-document state of one serialization."""

    def write(self, arrays: list[pa.Array], plans: list[ColumnPlan]) -> None: ...

    def close(self) -> None: ...

"""CSV (RFC 4180, header line present) and TSV (IANA text/tab-separated-values).

Both are built per batch with Arrow string kernels, columns converted in
parallel. CSV quotes every string, so an empty string ``""`` and a null (an
empty field) stay distinct; arrays are space-separated values. TSV has no quoting, so tabs, newlines and
backslashes inside values are backslash-escaped.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import BinaryIO

import pyarrow as pa
import pyarrow.compute as pc

from sciportal.formats.base import ResultInfo, WriteStats, limited, peek
from sciportal.formats.columns import ColumnPlan, coerce_batch, plan_columns
from sciportal.formats.text import column_text, convert_columns, join_rows, tsv_escape
from sciportal.metadata.model import Column


def _csv_quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _csv_cell(arr: pa.Array, plan: ColumnPlan) -> pa.Array:
    """RFC 4180 text: strings always quoted (so "" and null differ), quotes doubled."""
    text = column_text(arr, plan, true="true", false="false")
    if plan.kind != "string":
        return text
    if bool(pc.any(pc.match_substring(text, '"')).as_py()):
        text = pc.replace_substring(text, '"', '""')
    return pc.binary_join_element_wise('"', text, '"', "")


class CsvWriter:
    """Comma-separated values (RFC 4180) with a header line of column names."""

    names: tuple[str, ...] = ("csv",)
    mime: str = "text/csv;header=present"
    mimes: tuple[str, ...] = ("text/csv;header=present", "text/csv")
    extension: str = "csv"
    #: CSV has no way to say "failed": an error part-way re-raises and the
    #: transport must cut the response (sync: aborted connection, so HTTP/1.1
    #: clients see an incomplete chunked body; async: job ERROR, no result)
    reports_errors = False

    def write(
        self,
        batches: Iterable[pa.RecordBatch],
        columns: Sequence[Column],
        out: BinaryIO,
        info: ResultInfo,
    ) -> WriteStats:
        """Stream the result as CSV."""
        stats = WriteStats()
        first, stream = peek(limited(batches, info.maxrec, stats))
        plans = plan_columns(list(columns), first.schema if first is not None else None, first)
        out.write((",".join(_csv_quote(c.name) for c in columns) + "\r\n").encode("utf-8"))
        for batch in stream:
            texts = convert_columns(coerce_batch(batch, plans), plans, _csv_cell)
            out.write(join_rows(texts, ",", "", "\r\n", batch.num_rows))
        return stats


class TsvWriter:
    """Tab-separated values with a header line; backslash escapes inside values."""

    names: tuple[str, ...] = ("tsv",)
    mime: str = "text/tab-separated-values"
    mimes: tuple[str, ...] = ("text/tab-separated-values",)
    extension: str = "tsv"
    #: no error convention either; see :attr:`CsvWriter.reports_errors`
    reports_errors = False

    def write(
        self,
        batches: Iterable[pa.RecordBatch],
        columns: Sequence[Column],
        out: BinaryIO,
        info: ResultInfo,
    ) -> WriteStats:
        """Stream the result as TSV."""
        stats = WriteStats()
        first, stream = peek(limited(batches, info.maxrec, stats))
        plans = plan_columns(list(columns), first.schema if first is not None else None, first)
        head = "\t".join(_tsv_name(c.name) for c in columns)
        out.write((head + "\n").encode("utf-8"))
        for batch in stream:
            texts = convert_columns(coerce_batch(batch, plans), plans, _tsv_cell)
            out.write(join_rows(texts, "\t", "", "\n", batch.num_rows))
        return stats


def _tsv_cell(arr: pa.Array, plan: ColumnPlan) -> pa.Array:
    text = column_text(arr, plan, true="true", false="false")
    return tsv_escape(text) if plan.kind == "string" else text


def _tsv_name(name: str) -> str:
    return name.replace("\\", "\\\\").replace("\t", "\\t").replace("\n", "\\n")

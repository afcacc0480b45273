"""CSV (RFC 4180, header line present) and TSV (IANA text/tab-separated-values).

CSV goes through Arrow's C++ CSV writer (quotes every string, so an empty
string ``""`` and a null, an empty field, stay distinct); arrays are first
turned into space-separated text. TSV has no quoting, so tabs, newlines and
backslashes inside values are backslash-escaped.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import BinaryIO

import pyarrow as pa
import pyarrow.csv as pacsv

from sciportal.formats.base import ResultInfo, WriteStats, limited, peek
from sciportal.formats.columns import ColumnPlan, coerce_batch, plan_columns
from sciportal.formats.text import column_text, join_rows, tsv_escape
from sciportal.metadata.model import Column


def _csv_quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


class CsvWriter:
    """Comma-separated values with a header line of column names."""

    names: tuple[str, ...] = ("csv",)
    mime: str = "text/csv;header=present"
    mimes: tuple[str, ...] = ("text/csv;header=present", "text/csv")
    extension: str = "csv"

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
        names = [f"c{i}" for i in range(len(plans))]
        schema = pa.schema([(nm, _csv_type(p)) for nm, p in zip(names, plans, strict=True)])
        options = pacsv.WriteOptions(include_header=False, batch_size=8192, eol="\r\n")
        with pacsv.CSVWriter(out, schema, write_options=options) as writer:
            for batch in stream:
                arrays = [
                    column_text(a, p) if p.kind == "array" else a
                    for a, p in zip(coerce_batch(batch, plans), plans, strict=True)
                ]
                writer.write_batch(pa.RecordBatch.from_arrays(arrays, schema=schema))
        return stats


def _csv_type(plan: ColumnPlan) -> pa.DataType:
    return pa.string() if plan.kind == "array" else plan.arrow_type


class TsvWriter:
    """Tab-separated values with a header line; backslash escapes inside values."""

    names: tuple[str, ...] = ("tsv",)
    mime: str = "text/tab-separated-values"
    mimes: tuple[str, ...] = ("text/tab-separated-values",)
    extension: str = "tsv"

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
            texts = []
            for arr, plan in zip(coerce_batch(batch, plans), plans, strict=True):
                text = column_text(arr, plan, true="true", false="false")
                texts.append(tsv_escape(text) if plan.kind == "string" else text)
            out.write(join_rows(texts, "\t", "", "\n", batch.num_rows))
        return stats


def _tsv_name(name: str) -> str:
    return name.replace("\\", "\\\\").replace("\t", "\\t").replace("\n", "\\n")

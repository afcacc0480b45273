"""VOTable TABLEDATA: rows as XML, built with Arrow string kernels per batch.

Nulls are empty cells (VOTable 1.3+ treats an empty TD as null for every
datatype); integer columns also declare a VALUES null sentinel so older
readers agree.
"""

from __future__ import annotations

from typing import BinaryIO

import pyarrow as pa

from sciportal.formats.columns import ColumnPlan
from sciportal.formats.text import column_text, encode_rows, fixed_array_nulls, xml_escape
from sciportal.formats.votable import VOTABLE_MIME, VOTableWriter


def _cell_text(arr: pa.Array, plan: ColumnPlan) -> pa.Array:
    text = column_text(arr, plan)
    return xml_escape(text) if plan.kind == "string" else fixed_array_nulls(text, plan)


def encode_batch(arrays: list[pa.Array], plans: list[ColumnPlan]) -> list[memoryview]:
    """The ``<TR>`` elements of one batch, as consecutive buffers."""
    return encode_rows(arrays, plans, _cell_text, "</TD><TD>", "<TR><TD>", "</TD></TR>\n")


class _TableDataSink:
    def __init__(self, out: BinaryIO) -> None:
        self.out = out
        out.write(b"<TABLEDATA>\n")

    def write(self, arrays: list[pa.Array], plans: list[ColumnPlan]) -> None:
        for part in encode_batch(arrays, plans):
            self.out.write(part)

    def close(self) -> None:
        self.out.write(b"</TABLEDATA>")


class TableDataWriter(VOTableWriter):
    """VOTable TABLEDATA: human-readable XML rows."""

    names: tuple[str, ...] = ("votable/td", "tabledata", "votabletd", "votable/tabledata")
    mime: str = VOTABLE_MIME + ";serialization=TABLEDATA"
    mimes: tuple[str, ...] = (VOTABLE_MIME + ";serialization=TABLEDATA",)
    serialization = "TABLEDATA"
    null_values = True

    def open_data(self, out: BinaryIO) -> _TableDataSink:
        return _TableDataSink(out)

"""Columns as text, a whole batch at a time: the shared core of TABLEDATA, CSV and TSV.

Every conversion is an Arrow compute kernel over the column; rows are then
glued with ``binary_join_element_wise`` so no Python code runs per cell.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from functools import cache

import pyarrow as pa
import pyarrow.compute as pc

from sciportal.formats.columns import ColumnPlan
from sciportal.formats.unicode import string_parts

_XML_SPECIAL = "[&<>\r]"
_XML_INVALID = "[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]"


#: Below this many rows a batch is converted on the calling thread.
PARALLEL_MIN_ROWS = 4096


@cache
def _executor() -> ThreadPoolExecutor:
    """Shared worker threads: Arrow kernels release the GIL, so columns convert in parallel."""
    return ThreadPoolExecutor(max_workers=min(8, os.cpu_count() or 1), thread_name_prefix="fmt")


def convert_columns(
    arrays: Sequence[pa.Array],
    plans: Sequence[ColumnPlan],
    convert: Callable[[pa.Array, ColumnPlan], pa.Array],
) -> list[pa.Array]:
    """``convert`` applied to every column, in parallel for large batches."""
    if not arrays or len(arrays[0]) < PARALLEL_MIN_ROWS or len(arrays) == 1:
        return [convert(a, p) for a, p in zip(arrays, plans, strict=True)]
    return list(_executor().map(convert, arrays, plans))


def _any(mask: pa.Array) -> bool:
    return bool(pc.any(mask).as_py())


def _float_text(arr: pa.Array) -> pa.Array:
    """Shortest round-trip decimal text; NaN and infinities spelt the VOTable way."""
    text = pc.cast(arr, pa.string())
    if arr.type.bit_width and _any(pc.invert(pc.is_finite(arr))):
        text = pc.if_else(pc.is_nan(arr), "NaN", text)
        text = pc.if_else(pc.equal(arr, float("inf")), "+Inf", text)
        text = pc.if_else(pc.equal(arr, float("-inf")), "-Inf", text)
    return text


def _array_text(arr: pa.Array) -> pa.Array:
    """Space-separated elements (VOTable TABLEDATA and DALI array text).

    Works on the sliced child values only: casting a sliced list array would
    convert its whole (shared) child array, once per batch.
    """
    offsets = arr.offsets
    start = offsets[0].as_py()
    end = offsets[-1].as_py()
    values = arr.values.slice(start, end - start)
    text = pc.cast(values, pa.string())
    if pa.types.is_floating(values.type) and _any(pc.invert(pc.is_finite(values))):
        text = pc.if_else(pc.is_nan(values), "NaN", text)
        text = pc.if_else(pc.equal(values, float("inf")), "+Inf", text)
        text = pc.if_else(pc.equal(values, float("-inf")), "-Inf", text)
    rebased = pc.subtract(offsets, pa.scalar(start, pa.int32()))
    lists = pa.ListArray.from_arrays(rebased, text, mask=arr.is_null() if arr.null_count else None)
    return pc.binary_join(lists, " ")


def column_text(arr: pa.Array, plan: ColumnPlan, true: str = "T", false: str = "F") -> pa.Array:
    """A string array with each value's text form; nulls stay null."""
    if plan.kind == "string":
        return arr
    if plan.kind == "bool":
        return pc.if_else(arr, true, false)
    if plan.kind == "float":
        return _float_text(arr)
    if plan.kind == "array":
        return _array_text(arr)
    return pc.cast(arr, pa.string())


def fixed_array_nulls(text: pa.Array, plan: ColumnPlan) -> pa.Array:
    """VOTable: a fixed-size array cell cannot be empty, so nulls become NaNs (or sentinels)."""
    if plan.kind != "array" or not plan.fixed or not text.null_count:
        return text
    fill = "NaN" if plan.datatype in ("float", "double") else str(plan.null_value)
    return pc.fill_null(text, " ".join([fill] * plan.fixed))


def xml_escape(arr: pa.Array) -> pa.Array:
    """Escape XML character data; characters XML 1.0 cannot hold become U+FFFD."""
    if _any(pc.match_substring_regex(arr, _XML_INVALID)):
        arr = pc.replace_substring_regex(arr, _XML_INVALID, "\ufffd")
    if _any(pc.match_substring_regex(arr, _XML_SPECIAL)):
        arr = pc.replace_substring(arr, "&", "&amp;")
        arr = pc.replace_substring(arr, "<", "&lt;")
        arr = pc.replace_substring(arr, ">", "&gt;")
        arr = pc.replace_substring(arr, "\r", "&#13;")
    return arr


def tsv_escape(arr: pa.Array) -> pa.Array:
    """Backslash-escape the characters a TSV field cannot hold (tab, newline, CR)."""
    if _any(pc.match_substring_regex(arr, "[\\\\\t\n\r]")):
        arr = pc.replace_substring(arr, "\\", "\\\\")
        arr = pc.replace_substring(arr, "\t", "\\t")
        arr = pc.replace_substring(arr, "\n", "\\n")
        arr = pc.replace_substring(arr, "\r", "\\r")
    return arr


def join_rows(texts: list[pa.Array], sep: str, prefix: str, suffix: str, n: int) -> memoryview:
    """``prefix + sep.join(cells) + suffix`` for each of ``n`` rows, as one buffer."""
    if not texts:
        return memoryview((prefix + suffix).encode() * n)
    cells = [pc.fill_null(t, "") if t.null_count else t for t in texts]
    joined = cells[0] if len(cells) == 1 else pc.binary_join_element_wise(*cells, sep)
    if prefix or suffix:
        joined = pc.binary_join_element_wise(prefix, joined, suffix, "")
    _, data = string_parts(joined)
    return data.data

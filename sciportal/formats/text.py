"""Columns as text, a whole batch at a time: the shared core of TABLEDATA, CSV and TSV.

Every conversion is an Arrow compute kernel over the column; rows are then
glued with ``binary_join_element_wise`` so no Python code runs per cell.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from functools import cache

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from sciportal.formats.columns import ColumnPlan
from sciportal.formats.unicode import string_parts

_XML_SPECIAL = "[&<>\r]"
_XML_INVALID = "[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]"


_NULL_AS_EMPTY = pc.JoinOptions(null_handling="replace", null_replacement="")

#: Below this many rows a batch is converted on the calling thread.
PARALLEL_MIN_ROWS = 4096


_WORKERS = min(8, os.cpu_count() or 1)


@cache
def _executor() -> ThreadPoolExecutor:
    """Shared worker threads: Arrow kernels release the GIL, so columns convert in parallel."""
    return ThreadPoolExecutor(max_workers=_WORKERS, thread_name_prefix="fmt")


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


def _utf8_bytes(arr: pa.Array) -> np.ndarray:
    """The UTF-8 bytes under a string array's values (null slots included), zero-copy."""
    bufs = arr.buffers()
    if len(arr) == 0 or bufs[2] is None:
        return np.zeros(0, np.uint8)
    offsets = np.frombuffer(bufs[1], dtype=np.int32, count=len(arr) + 1, offset=arr.offset * 4)
    start, end = int(offsets[0]), int(offsets[-1])
    return np.frombuffer(bufs[2], dtype=np.uint8, count=end - start, offset=start)


def _may_hold(arr: pa.Array, below: int, specials: bytes, above: int = 0x100) -> bool:
    """False when no byte of the strings is < ``below``, >= ``above`` or in ``specials``.

    A cheap superset test (numpy min/max and byte compares, no regex): when it
    says True, the exact regex check still decides.
    """
    if arr.type != pa.string():
        return True
    data = _utf8_bytes(arr)
    if not data.size:
        return False
    if int(data.min()) < below or int(data.max()) >= above:
        return True
    return any(bool((data == b).any()) for b in specials)


def xml_escape(arr: pa.Array) -> pa.Array:
    """Escape XML character data; characters XML 1.0 cannot hold become U+FFFD."""
    # controls (with \r) are < 0x20; U+FFFE/U+FFFF start with byte 0xEF in UTF-8
    if not _may_hold(arr, 0x20, b"&<>", above=0xEF):
        return arr
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
    if not _may_hold(arr, 0x20, b"\\"):
        return arr
    if _any(pc.match_substring_regex(arr, "[\\\\\t\n\r]")):
        arr = pc.replace_substring(arr, "\\", "\\\\")
        arr = pc.replace_substring(arr, "\t", "\\t")
        arr = pc.replace_substring(arr, "\n", "\\n")
        arr = pc.replace_substring(arr, "\r", "\\r")
    return arr


def join_rows(texts: list[pa.Array], sep: str, prefix: str, suffix: str, n: int) -> memoryview:
    """``prefix + sep.join(cells) + suffix`` for each of ``n`` rows, as one buffer.

    Nulls join as empty cells. The prefix and suffix are glued to the first
    and last columns (narrow) rather than around the joined rows (wide), so
    the row bytes are copied once.
    """
    if not texts:
        return memoryview((prefix + suffix).encode() * n)
    cells = list(texts)
    if prefix:
        cells[0] = pc.binary_join_element_wise(prefix, cells[0], "", options=_NULL_AS_EMPTY)
    if suffix:
        cells[-1] = pc.binary_join_element_wise(cells[-1], suffix, "", options=_NULL_AS_EMPTY)
    if len(cells) > 1:
        joined = pc.binary_join_element_wise(*cells, sep, options=_NULL_AS_EMPTY)
    else:
        joined = cells[0]
    _, data = string_parts(joined)
    return data.data


def encode_rows(
    arrays: Sequence[pa.Array],
    plans: Sequence[ColumnPlan],
    convert: Callable[[pa.Array, ColumnPlan], pa.Array],
    sep: str,
    prefix: str,
    suffix: str,
) -> list[memoryview]:
    """``join_rows`` over ``convert``-ed columns, in row slices converted in parallel.

    Each worker converts and joins all columns of its own rows, so the join is
    parallel too and uneven column costs balance out. The slices' buffers,
    in order, are the batch's text.
    """
    n = len(arrays[0]) if arrays else 0

    def part(start: int, stop: int) -> memoryview:
        sliced = [a.slice(start, stop - start) for a in arrays]
        texts = [convert(a, p) for a, p in zip(sliced, plans, strict=True)]
        return join_rows(texts, sep, prefix, suffix, stop - start)

    if n < 2 * PARALLEL_MIN_ROWS:
        return [part(0, n)]
    parts = min(2 * _WORKERS, n // PARALLEL_MIN_ROWS)
    bounds = [n * i // parts for i in range(parts + 1)]
    return list(_executor().map(part, bounds[:-1], bounds[1:]))

"""From column metadata and Arrow types to one canonical Arrow type per output column.

The column metadata is authoritative (datatype, arraysize, unit, UCD...), but
the engine's Arrow types decide what the data can hold: an integer column the
engine computes as int64 is declared ``long``, and a declaration the data
cannot be cast to falls back to the type the Arrow data really has. Every
writer then sees arrays of exactly one canonical type per column:

========  =====================================================
kind      canonical Arrow type
========  =====================================================
bool      ``bool``
int       ``uint8`` / ``int16`` / ``int32`` / ``int64``
float     ``float32`` / ``float64``
string    ``string`` (timestamps and dates already as ISO 8601)
array     ``list<numeric>`` (``fixed`` > 0: that many elements)
========  =====================================================
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, replace
from typing import Literal

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from sciportal.metadata.model import Column

log = logging.getLogger(__name__)

Kind = Literal["bool", "int", "float", "string", "array"]

#: VOTable numeric datatypes and their Arrow types.
NUMERIC_ARROW: dict[str, pa.DataType] = {
    "unsignedByte": pa.uint8(),
    "short": pa.int16(),
    "int": pa.int32(),
    "long": pa.int64(),
    "float": pa.float32(),
    "double": pa.float64(),
}
_INT_ORDER = ["unsignedByte", "short", "int", "long"]
#: Null sentinels for integer columns where a format has no null flags.
INT_NULL = {"unsignedByte": 255, "short": -32768, "int": -(2**31), "long": -(2**63)}


@dataclass(frozen=True)
class ColumnPlan:
    """How one result column is written: its declared VOTable type and Arrow type."""

    column: Column  # metadata as declared in the output (datatype/arraysize may be adjusted)
    kind: Kind
    arrow_type: pa.DataType
    fixed: int = 0  # arrays: elements per row when arraysize is fixed, else 0

    @property
    def datatype(self) -> str:
        return self.column.datatype

    @property
    def null_value(self) -> int | None:
        """Sentinel for integer nulls in formats without null flags."""
        return INT_NULL.get(self.column.datatype) if self.kind == "int" else None


def _arraysize_count(arraysize: str | None) -> int | None:
    """Elements per row for a fixed arraysize ("3", "2x3"); None when variable/absent."""
    if not arraysize or "*" in arraysize:
        return None
    n = 1
    for part in arraysize.split("x"):
        n *= int(part)
    return n


def _is_temporal(t: pa.DataType) -> bool:
    return pa.types.is_timestamp(t) or pa.types.is_date(t) or pa.types.is_time(t)


def _is_list(t: pa.DataType) -> bool:
    return pa.types.is_list(t) or pa.types.is_large_list(t) or pa.types.is_fixed_size_list(t)


def _numeric_datatype(t: pa.DataType) -> str | None:
    """The VOTable datatype that holds an Arrow numeric type exactly (or nearly)."""
    if pa.types.is_boolean(t):
        return "boolean"
    if pa.types.is_uint8(t):
        return "unsignedByte"
    if pa.types.is_int8(t) or pa.types.is_int16(t):
        return "short"
    if pa.types.is_int32(t) or pa.types.is_uint16(t):
        return "int"
    if pa.types.is_integer(t):
        return "long"
    if pa.types.is_float16(t) or pa.types.is_float32(t):
        return "float"
    if pa.types.is_floating(t) or pa.types.is_decimal(t):
        return "double"
    return None


def _from_arrow(col: Column, t: pa.DataType) -> ColumnPlan:
    """A plan derived from the Arrow type alone (metadata kept for unit/UCD/description)."""
    if _is_list(t):
        dt = _numeric_datatype(t.value_type)
        if dt is not None and dt != "boolean":
            fixed = t.list_size if pa.types.is_fixed_size_list(t) else 0
            arraysize = str(fixed) if fixed else "*"
            c = replace(col, datatype=dt, arraysize=arraysize)
            return ColumnPlan(c, "array", pa.list_(NUMERIC_ARROW[dt]), fixed)
    dt = _numeric_datatype(t)
    if dt == "boolean":
        return ColumnPlan(replace(col, datatype="boolean", arraysize=None), "bool", pa.bool_())
    if dt is not None:
        kind: Kind = "float" if dt in ("float", "double") else "int"
        return ColumnPlan(replace(col, datatype=dt, arraysize=None), kind, NUMERIC_ARROW[dt])
    xtype = col.xtype
    if _is_temporal(t) and not xtype:
        xtype = "timestamp"
    datatype = col.datatype if col.datatype in ("char", "unicodeChar") else "char"
    return ColumnPlan(
        replace(col, datatype=datatype, arraysize="*", xtype=xtype), "string", pa.string()
    )


def _from_metadata(col: Column, t: pa.DataType) -> ColumnPlan:
    """A plan following the declared metadata, widened where the Arrow type is wider."""
    dt = col.datatype
    if dt == "bit":
        dt = "boolean"
    if dt == "boolean":
        return ColumnPlan(replace(col, datatype="boolean", arraysize=None), "bool", pa.bool_())
    if dt in NUMERIC_ARROW:
        count = _arraysize_count(col.arraysize)
        is_array = col.arraysize is not None and col.arraysize != "1"
        if is_array or _is_list(t):
            if _is_list(t):
                dt = _widen(dt, _numeric_datatype(t.value_type))
            arraysize = col.arraysize or "*"
            c = replace(col, datatype=dt, arraysize=arraysize)
            return ColumnPlan(c, "array", pa.list_(NUMERIC_ARROW[dt]), count or 0)
        dt = _widen(dt, _numeric_datatype(t))
        kind: Kind = "float" if dt in ("float", "double") else "int"
        return ColumnPlan(replace(col, datatype=dt, arraysize=None), kind, NUMERIC_ARROW[dt])
    # char, unicodeChar and anything we do not write natively (complex) become strings
    datatype = dt if dt in ("char", "unicodeChar") else "char"
    arraysize = col.arraysize or "*"
    if "*" not in arraysize:
        # fixed-width strings are written as bounded variable ones: never truncate data
        arraysize = arraysize + "*" if "x" not in arraysize else "*"
    xtype = col.xtype
    if _is_temporal(t) and not xtype:
        xtype = "timestamp"
    return ColumnPlan(
        replace(col, datatype=datatype, arraysize=arraysize, xtype=xtype), "string", pa.string()
    )


def _widen(declared: str, actual: str | None) -> str:
    """Widen a declared integer type to hold the Arrow data; floats stay as declared."""
    if declared in _INT_ORDER and actual in _INT_ORDER:
        return _INT_ORDER[max(_INT_ORDER.index(declared), _INT_ORDER.index(actual))]
    if declared in _INT_ORDER and actual in ("float", "double"):
        return actual  # e.g. AVG over an int column: keep the fractions
    return declared


def plan_columns(
    columns: list[Column] | tuple[Column, ...],
    schema: pa.Schema | None,
    first: pa.RecordBatch | None,
) -> list[ColumnPlan]:
    """Decide the output type of every column, checking the first batch casts cleanly.

    Without a batch (empty result) the metadata alone decides.
    """
    plans: list[ColumnPlan] = []
    for i, col in enumerate(columns):
        t = schema.field(i).type if schema is not None else pa.null()
        plan = _from_metadata(col, t)
        if first is not None and not pa.types.is_null(t):
            try:
                coerce(first.column(i), plan)
            except (pa.ArrowInvalid, pa.ArrowNotImplementedError, pa.ArrowTypeError) as exc:
                log.warning("column %s: %s does not fit %s (%s)", col.name, t, col.datatype, exc)
                plan = _from_arrow(col, t)
        plans.append(plan)
    return plans


def _format_temporal(arr: pa.Array) -> pa.Array:
    """ISO 8601 text for timestamps (DALI: no zone, 'T' separator) and dates."""
    t = arr.type
    if pa.types.is_timestamp(t):
        if t.tz is not None:
            arr = arr.cast(pa.timestamp(t.unit))
        text = pc.cast(arr, pa.string())
        return pc.replace_substring(text, " ", "T", max_replacements=1)
    return pc.cast(arr, pa.string())


def _list_as_text(arr: pa.Array) -> pa.Array:
    """A numeric array rendered as space-separated values (DALI array serialization)."""
    return pc.binary_join(pc.cast(arr, pa.list_(pa.string())), " ")


def coerce(arr: pa.Array | pa.ChunkedArray, plan: ColumnPlan) -> pa.Array:
    """Cast one column of one batch to the plan's canonical Arrow type."""
    if isinstance(arr, pa.ChunkedArray):
        arr = arr.combine_chunks()
    t = arr.type
    if t == plan.arrow_type:
        return arr
    if pa.types.is_null(t):
        return pa.nulls(len(arr), plan.arrow_type)
    if plan.kind == "string":
        if _is_temporal(t):
            return _format_temporal(arr)
        if _is_list(t):
            return _list_as_text(arr)
        if pa.types.is_large_string(t) or pa.types.is_binary(t) or pa.types.is_large_binary(t):
            return arr.cast(pa.string())
        return pc.cast(arr, pa.string())
    if plan.kind == "array":
        if not _is_list(t):
            raise pa.ArrowInvalid(f"cannot write {t} as an array column")
        if pa.types.is_fixed_size_list(t) or pa.types.is_large_list(t):
            arr = arr.cast(pa.list_(t.value_type))
        return arr.cast(plan.arrow_type)
    if pa.types.is_decimal(t):
        arr = arr.cast(pa.float64())
    return arr.cast(plan.arrow_type)


def coerce_batch(batch: pa.RecordBatch, plans: list[ColumnPlan]) -> list[pa.Array]:
    """All columns of a batch, each cast to its plan's canonical type."""
    return [coerce(batch.column(i), p) for i, p in enumerate(plans)]


def null_mask(arr: pa.Array) -> np.ndarray | None:
    """True where the value is null, or None when the array has no nulls."""
    if arr.null_count == 0:
        return None
    return np.asarray(arr.is_null().to_numpy(zero_copy_only=False), dtype=bool)


def numeric_values(arr: pa.Array, plan: ColumnPlan) -> np.ndarray:
    """Numpy values of a numeric column, nulls filled (NaN for floats, the sentinel for ints)."""
    if arr.null_count:
        fill = float("nan") if plan.kind == "float" else (plan.null_value or 0)
        arr = pc.fill_null(arr, pa.scalar(fill, plan.arrow_type))
    return arr.to_numpy(zero_copy_only=False)

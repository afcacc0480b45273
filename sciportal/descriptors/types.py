"""VOTable datatypes <-> Arrow types, in one place.

A descriptor speaks VOTable (what clients see); the store speaks Arrow and
Parquet (what the engines read). Both directions live here so ingestion,
inference and TAP_SCHEMA agree on what e.g. ``short`` or ``char(*)`` means.
"""

from __future__ import annotations

import pyarrow as pa

from sciportal.metadata.model import Column

_SCALAR: dict[str, pa.DataType] = {
    "boolean": pa.bool_(),
    "bit": pa.bool_(),
    "unsignedByte": pa.uint8(),
    "short": pa.int16(),
    "int": pa.int32(),
    "long": pa.int64(),
    "float": pa.float32(),
    "double": pa.float64(),
}
_TEXT = ("char", "unicodeChar")
#: datatypes a descriptor may use (complex numbers have no Arrow type we can query)
STORABLE_DATATYPES = (*_SCALAR, *_TEXT)


def is_text(datatype: str) -> bool:
    """True for ``char``/``unicodeChar`` columns (stored as one Arrow string)."""
    return datatype in _TEXT


def arraysize_length(arraysize: str | None) -> int | None:
    """The fixed element count of an array column, or None (scalar or variable)."""
    if arraysize is None:
        return None
    text = arraysize.rstrip("*")
    if not text or "x" in text:
        return None
    return int(text)


def arrow_type(
    datatype: str, arraysize: str | None = None, xtype: str | None = None
) -> pa.DataType:
    """The Arrow type used to store a column of this VOTable type.

    Text of any arraysize is one string; numeric arrays become lists (fixed
    size when the arraysize is a plain number). Raises ``ValueError`` for a
    datatype we cannot store.
    """
    if datatype in _TEXT:
        return pa.string()
    if datatype not in _SCALAR:
        raise ValueError(
            f"datatype {datatype!r} cannot be stored (use one of {STORABLE_DATATYPES})"
        )
    base = _SCALAR[datatype]
    if arraysize is None or arraysize == "1":
        return base
    n = arraysize_length(arraysize)
    if n is not None and not arraysize.endswith("*"):
        return pa.list_(base, n)
    return pa.list_(base)


def column_arrow_type(col: Column) -> pa.DataType:
    """Arrow storage type of a metadata column."""
    return arrow_type(col.datatype, col.arraysize, col.xtype)


def votable_type(t: pa.DataType) -> tuple[str, str | None, str | None]:
    """(datatype, arraysize, xtype) describing an Arrow type in VOTable terms.

    Used when inferring a descriptor from a file and for query results.
    """
    if pa.types.is_boolean(t):
        return "boolean", None, None
    if pa.types.is_uint8(t) or pa.types.is_int8(t):
        return ("unsignedByte" if pa.types.is_uint8(t) else "short"), None, None
    if pa.types.is_int16(t):
        return "short", None, None
    if pa.types.is_uint16(t) or pa.types.is_int32(t):
        return "int", None, None
    if pa.types.is_uint32(t) or pa.types.is_int64(t) or pa.types.is_uint64(t):
        return "long", None, None
    if pa.types.is_float16(t) or pa.types.is_float32(t):
        return "float", None, None
    if pa.types.is_float64(t) or pa.types.is_decimal(t):
        return "double", None, None
    if pa.types.is_string(t) or pa.types.is_large_string(t):
        return "char", "*", None
    if pa.types.is_binary(t) or pa.types.is_large_binary(t):
        return "unsignedByte", "*", None
    if pa.types.is_timestamp(t) or pa.types.is_date(t):
        return "char", "*", "timestamp"
    if pa.types.is_fixed_size_list(t):
        inner, _, _ = votable_type(t.value_type)
        return inner, str(t.list_size), None
    if pa.types.is_list(t) or pa.types.is_large_list(t):
        inner, _, _ = votable_type(t.value_type)
        return inner, "*", None
    raise ValueError(f"no VOTable datatype for Arrow type {t}")

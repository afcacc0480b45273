"""TAP_UPLOAD: turn uploaded VOTables into Arrow tables with column metadata.

Uploads come inline (``param:NAME``, a multipart part) or by http(s) URL;
both are size-limited before parsing. Each becomes a table visible as
``TAP_UPLOAD.name`` to the one query that uploaded it.
"""

from __future__ import annotations

import io
import re
import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import pyarrow as pa
from astropy.io.votable import parse as parse_votable

from sciportal.errors import LimitExceeded, UsageError
from sciportal.metadata.model import Column, Table

_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_]*$")


@dataclass(frozen=True)
class Upload:
    """One uploaded table: its ADQL metadata and its rows."""

    table: Table
    data: pa.Table


def parse_upload_spec(specs: list[str]) -> list[tuple[str, str]]:
    """Split UPLOAD values (``name,uri;name2,uri2``) into (name, uri) pairs."""
    pairs: list[tuple[str, str]] = []
    for spec in specs:
        for item in spec.split(";"):
            item = item.strip()
            if not item:
                continue
            if "," not in item:
                raise UsageError(f"UPLOAD item {item!r} is not of the form name,URI")
            name, uri = (s.strip() for s in item.split(",", 1))
            if not _NAME.match(name):
                raise UsageError(f"UPLOAD table name {name!r} is not a valid ADQL identifier")
            pairs.append((name, uri))
    names = [n.lower() for n, _ in pairs]
    if len(set(names)) != len(names):
        raise UsageError("UPLOAD names the same table twice")
    return pairs


def _fetch(uri: str, args: Mapping[str, list[Any]], max_bytes: int) -> bytes:
    if uri.startswith("param:"):
        part = uri[6:]
        values = args.get(part.upper())
        if not values:
            raise UsageError(f"UPLOAD refers to {uri} but no such part was sent")
        value = values[0]
        data = value if isinstance(value, bytes) else value.encode("utf-8")
    elif uri.startswith(("http://", "https://")):
        try:
            with urllib.request.urlopen(uri, timeout=60) as resp:  # noqa: S310 (scheme checked)
                data = resp.read(max_bytes + 1)
        except OSError as exc:
            raise UsageError(f"cannot retrieve upload {uri}: {exc}") from None
    else:
        raise UsageError(f"UPLOAD URI {uri!r} must be param:NAME or an http(s) URL")
    if len(data) > max_bytes:
        raise LimitExceeded(f"upload {uri} exceeds the limit of {max_bytes} bytes")
    return data


def _column_from_field(field: Any) -> Column:
    arraysize = field.arraysize
    return Column(
        name=field.name,
        datatype=field.datatype,
        arraysize=str(arraysize) if arraysize is not None else None,
        xtype=field.xtype,
        unit=str(field.unit) if field.unit is not None else None,
        ucd=field.ucd,
        utype=field.utype,
        description=(field.description or "").strip(),
    )


def _to_arrow(values: Any, col: Column) -> pa.Array:
    if isinstance(values, np.ma.MaskedArray):
        mask = np.ma.getmaskarray(values)
        data = np.ma.getdata(values)
    else:
        mask = None
        data = np.asarray(values)
    if data.dtype.kind in "US":
        return pa.array(data.astype(str), type=pa.string(), mask=mask)
    if data.dtype.kind == "O":
        items = [
            None if (mask is not None and m) else v
            for v, m in zip(data, mask if mask is not None else [False] * len(data), strict=True)
        ]
        if col.datatype in ("char", "unicodeChar"):
            return pa.array([None if v is None else str(v) for v in items], type=pa.string())
        return pa.array([None if v is None else np.asarray(v).tolist() for v in items])
    if data.ndim > 1:
        flat = data.reshape(len(data), -1)
        return pa.array(list(flat), type=pa.list_(pa.from_numpy_dtype(flat.dtype)))
    return pa.array(data, mask=mask)


def load_upload(name: str, content: bytes, max_rows: int) -> Upload:
    """Parse one VOTable upload; errors name the table and say what is wrong."""
    try:
        votable = parse_votable(io.BytesIO(content), verify="warn")
        vtable = votable.get_first_table()
    except Exception as exc:  # astropy raises many kinds for bad XML
        raise UsageError(f"upload {name}: not a readable VOTable ({exc})") from None
    if vtable.array is None or len(vtable.array) > max_rows:
        raise LimitExceeded(f"upload {name} has more than {max_rows} rows")
    columns: list[Column] = []
    arrays: list[pa.Array] = []
    for field in vtable.fields:
        col = _column_from_field(field)
        columns.append(col)
        arrays.append(
            _to_arrow(
                vtable.array[field.ID or field.name]
                if (field.ID or field.name) in vtable.array.dtype.names
                else vtable.array[field.name],
                col,
            )
        )
    names = [c.name for c in columns]
    data = pa.Table.from_arrays(arrays, names=names)
    table = Table(name=f"TAP_UPLOAD.{name}", columns=tuple(columns), description="uploaded table")
    return Upload(table=table, data=data)


def load_uploads(
    specs: list[str], args: Mapping[str, list[Any]], max_bytes: int, max_rows: int
) -> dict[str, Upload]:
    """All uploads of a request, keyed by lower-case table name."""
    out: dict[str, Upload] = {}
    total = 0
    for name, uri in parse_upload_spec(specs):
        content = _fetch(uri, args, max_bytes - total)
        total += len(content)
        out[name.lower()] = load_upload(name, content, max_rows)
    return out

"""VOTable BINARY2 and BINARY serializations, vectorised per batch.

A row is the concatenation of its cells (BINARY2 first puts one null-flag bit
per column). Runs of fixed-width cells are laid out as one numpy structured
array with big-endian fields; variable-length cells (strings, arrays) are
Arrow binary arrays; Arrow's ``binary_join_element_wise`` then concatenates
the pieces row by row in C++, and the joined data buffer *is* the stream.
Base64 is encoded in chunks that are multiples of three bytes.
"""

from __future__ import annotations

import binascii
from typing import Any, BinaryIO

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from sciportal.formats.columns import ColumnPlan, null_mask, numeric_values
from sciportal.formats.unicode import binary_from_parts, string_parts, utf16be
from sciportal.formats.votable import VOTABLE_MIME, VOTableWriter

_BE = {
    "unsignedByte": "u1",
    "short": ">i2",
    "int": ">i4",
    "long": ">i8",
    "float": ">f4",
    "double": ">f8",
}
_T, _F, _Q = ord("T"), ord("F"), ord("?")


class Base64Stream:
    """Base64-encode a byte stream written in pieces, one line per piece."""

    def __init__(self, out: BinaryIO) -> None:
        self.out = out
        self.carry = b""

    def write(self, data: bytes | memoryview) -> None:
        mv = memoryview(data).cast("B")
        if self.carry:
            need = 3 - len(self.carry)
            head = self.carry + bytes(mv[:need])
            mv = mv[need:]
            if len(head) < 3:
                self.carry = head
                return
            self.out.write(binascii.b2a_base64(head, newline=False))
            self.carry = b""
        cut = len(mv) - len(mv) % 3
        if cut:
            self.out.write(binascii.b2a_base64(mv[:cut]))
        self.carry = bytes(mv[cut:])

    def close(self) -> None:
        if self.carry:
            self.out.write(binascii.b2a_base64(self.carry))
            self.carry = b""


class _BinarySink:
    """Streams one document's BINARY/BINARY2 element."""

    def __init__(self, out: BinaryIO, element: str, binary2: bool) -> None:
        self.out, self.element, self.binary2 = out, element, binary2
        out.write(f'<{element}>\n<STREAM encoding="base64">\n'.encode())
        self.b64 = Base64Stream(out)

    def write(self, arrays: list[pa.Array], plans: list[ColumnPlan]) -> None:
        self.b64.write(encode_batch(arrays, plans, self.binary2))

    def close(self) -> None:
        self.b64.close()
        self.out.write(f"</STREAM>\n</{self.element}>".encode())


class _RowAssembler:
    """Collects the pieces of a batch's rows in column order and joins them."""

    def __init__(self, n: int) -> None:
        self.n = n
        self.pieces: list[pa.Array | np.ndarray] = []
        self.fields: list[
            tuple[str | tuple[str, int], Any]
        ] = []  # pending fixed-width run: (dtype, values)

    def fixed(self, dtype: str | tuple[str, int], values: Any) -> None:
        self.fields.append((dtype, values))

    def var(self, payload: pa.Array) -> None:
        self._flush()
        self.pieces.append(payload)

    def _flush(self) -> None:
        if not self.fields:
            return
        formats = [
            (f"f{i}", d) if isinstance(d, str) else (f"f{i}", d[0], (d[1],))
            for i, (d, _) in enumerate(self.fields)
        ]
        rec = np.empty(self.n, dtype=np.dtype(formats))  # packed: no alignment padding
        for i, (_, values) in enumerate(self.fields):
            rec[f"f{i}"] = values
        self.pieces.append(rec)
        self.fields = []

    def finish(self) -> memoryview:
        self._flush()
        if len(self.pieces) == 1 and isinstance(self.pieces[0], np.ndarray):
            return self.pieces[0].view(np.uint8).data
        arrays: list[pa.Array] = []
        for piece in self.pieces:
            if isinstance(piece, np.ndarray):
                width = piece.dtype.itemsize
                raw = piece.view(np.uint8)
                offsets = np.arange(0, (self.n + 1) * width, width, dtype=np.int64)
                arrays.append(binary_from_parts(offsets, raw))
            else:
                arrays.append(piece)
        joined = pc.binary_join_element_wise(
            *arrays, b"", null_handling="replace", null_replacement=b""
        )
        offsets, data = string_parts(joined)
        return data.data


def _bool_bytes(arr: pa.Array) -> np.ndarray:
    values = arr.fill_null(False).to_numpy(zero_copy_only=False)
    flags = np.where(values, _T, _F).astype(np.uint8)
    mask = null_mask(arr)
    if mask is not None:
        flags[mask] = _Q
    return flags


def list_parts(arr: pa.Array, plan: ColumnPlan) -> tuple[np.ndarray, np.ndarray]:
    """Element offsets (from 0; null lists empty) and numpy values of a list column."""
    if arr.null_count:
        arr = pc.if_else(arr.is_valid(), arr, pa.scalar([], type=arr.type))
    offsets = arr.offsets.to_numpy().astype(np.int64)
    start, end = int(offsets[0]), int(offsets[-1])
    child = arr.values.slice(start, end - start)
    elem = ColumnPlan(
        plan.column, "float" if plan.datatype in ("float", "double") else "int", arr.type.value_type
    )
    return offsets - start, numeric_values(child, elem)


def fixed_matrix(offsets: np.ndarray, values: np.ndarray, k: int, fill: Any) -> np.ndarray:
    """Rows of exactly ``k`` elements: truncate longer lists, pad shorter ones with ``fill``."""
    n = len(offsets) - 1
    lengths = np.diff(offsets)
    if n and (lengths == k).all():
        return values.reshape(n, k)
    mat = np.full((n, k), fill, dtype=values.dtype)
    row = np.repeat(np.arange(n), lengths)
    col = np.arange(len(values)) - np.repeat(offsets[:-1], lengths)
    keep = col < k
    mat[row[keep], col[keep]] = values[keep]
    return mat


def encode_batch(arrays: list[pa.Array], plans: list[ColumnPlan], binary2: bool) -> memoryview:
    """The BINARY/BINARY2 bytes of one batch of canonical arrays."""
    n = len(arrays[0]) if arrays else 0
    asm = _RowAssembler(n)
    if binary2:
        nulls = np.zeros((n, len(arrays)), dtype=bool)
        for j, arr in enumerate(arrays):
            mask = null_mask(arr)
            if mask is not None:
                nulls[:, j] = mask
        flags = np.packbits(nulls, axis=1, bitorder="big")
        asm.fixed(("u1", flags.shape[1]), flags)
    for arr, plan in zip(arrays, plans, strict=True):
        if plan.kind == "bool":
            asm.fixed("u1", _bool_bytes(arr))
        elif plan.kind in ("int", "float"):
            asm.fixed(_BE[plan.datatype], numeric_values(arr, plan))
        elif plan.kind == "string":
            if plan.datatype == "unicodeChar":
                payload, lengths = utf16be(arr)
            else:
                offsets, data = string_parts(arr)
                payload, lengths = binary_from_parts(offsets, data), np.diff(offsets)
            asm.fixed(">i4", lengths)
            asm.var(payload)
        else:  # array
            offsets, values = list_parts(arr, plan)
            be = _BE[plan.datatype]
            if plan.fixed:
                fill = np.nan if values.dtype.kind == "f" else (plan.null_value or 0)
                asm.fixed((be, plan.fixed), fixed_matrix(offsets, values, plan.fixed, fill))
            else:
                raw = np.ascontiguousarray(values, dtype=be).view(np.uint8)
                asm.fixed(">i4", np.diff(offsets))
                asm.var(binary_from_parts(offsets * np.dtype(be).itemsize, raw))
    return asm.finish()


class Binary2Writer(VOTableWriter):
    """VOTable 1.4 BINARY2: per-row null flags, the default TAP output format."""

    names: tuple[str, ...] = ("votable", "votable/b2", "binary2", "votableb2", "votable/binary2")
    mime: str = VOTABLE_MIME + ";serialization=BINARY2"
    mimes: tuple[str, ...] = (
        VOTABLE_MIME,
        VOTABLE_MIME + ";serialization=BINARY2",
        "text/xml",
        'text/xml;content="votable"',
        "text/xml;content=votable",
    )
    serialization = "BINARY2"
    binary2 = True

    def open_data(self, out: BinaryIO) -> _BinarySink:
        return _BinarySink(out, self.serialization, self.binary2)


class BinaryWriter(Binary2Writer):
    """VOTable BINARY: no null flags, so integer columns declare a VALUES null sentinel."""

    names: tuple[str, ...] = ("votable/b", "binary", "votableb", "votable/binary")
    mime: str = VOTABLE_MIME + ";serialization=BINARY"
    mimes: tuple[str, ...] = (VOTABLE_MIME + ";serialization=BINARY",)
    serialization = "BINARY"
    binary2 = False
    null_values = True

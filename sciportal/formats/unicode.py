"""Vectorised string byte layouts: UTF-8 offsets/data views and UTF-16BE (VOTable unicodeChar).

Arrow holds strings as one UTF-8 data buffer plus int32 offsets; VOTable
binary serializations want, per row, a length and then the bytes. These
helpers work on whole batches with numpy, never per cell.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc


def string_parts(arr: pa.Array) -> tuple[np.ndarray, np.ndarray]:
    """Offsets (int64, starting at 0, nulls as empty) and UTF-8 bytes of a string array."""
    if arr.null_count:
        arr = pc.fill_null(arr, "")
    n = len(arr)
    bufs = arr.buffers()
    offsets = np.frombuffer(bufs[1], dtype=np.int32, count=n + 1, offset=arr.offset * 4)
    start, end = int(offsets[0]), int(offsets[-1])
    data = (
        np.frombuffer(bufs[2], dtype=np.uint8, count=end - start, offset=start)
        if bufs[2] is not None and end > start
        else np.zeros(0, np.uint8)
    )
    return offsets.astype(np.int64) - start, data


def is_ascii(arr: pa.Array) -> bool:
    """True when every string in the array is pure ASCII."""
    _, data = string_parts(arr)
    return not bool((data >= 0x80).any())


def binary_from_parts(offsets: np.ndarray, data: np.ndarray) -> pa.Array:
    """A binary Arrow array (no nulls) over the given offsets and bytes, zero-copy."""
    n = len(offsets) - 1
    off32 = np.ascontiguousarray(offsets, dtype=np.int32)
    return pa.Array.from_buffers(
        pa.binary(), n, [None, pa.py_buffer(off32), pa.py_buffer(np.ascontiguousarray(data))]
    )


def utf16be(arr: pa.Array) -> tuple[pa.Array, np.ndarray]:
    """UTF-16BE bytes of each string (binary array) and its length in code units.

    ASCII batches take a fast path (interleave zero bytes); otherwise the UTF-8
    is decoded to code points with numpy and re-encoded, with surrogate pairs
    above the BMP.
    """
    offsets, data = string_parts(arr)
    if not (data >= 0x80).any():
        out = np.zeros(2 * len(data), np.uint8)
        out[1::2] = data
        return binary_from_parts(offsets * 2, out), np.diff(offsets)
    lead = (data & 0xC0) != 0x80
    starts = np.flatnonzero(lead)
    b0 = data[starts].astype(np.int64)
    nbytes = np.where(b0 < 0x80, 1, np.where(b0 < 0xE0, 2, np.where(b0 < 0xF0, 3, 4)))
    cp = np.where(
        nbytes == 1, b0, np.where(nbytes == 2, b0 & 0x1F, np.where(nbytes == 3, b0 & 0x0F, b0 & 7))
    )
    padded = np.concatenate([data, np.zeros(3, np.uint8)]).astype(np.int64)
    for k in (1, 2, 3):
        m = nbytes > k
        cp[m] = (cp[m] << 6) | (padded[starts[m] + k] & 0x3F)
    units = 1 + (cp > 0xFFFF).astype(np.int64)
    pos = np.cumsum(units) - units
    out16 = np.empty(int(units.sum()), dtype=">u2")
    single = units == 1
    out16[pos[single]] = cp[single]
    sup = cp[~single] - 0x10000
    out16[pos[~single]] = 0xD800 + (sup >> 10)
    out16[pos[~single] + 1] = 0xDC00 + (sup & 0x3FF)
    chars_before = np.concatenate([[0], np.cumsum(lead)])[offsets]
    units_before = np.concatenate([[0], np.cumsum(units)])[chars_before]
    return binary_from_parts(units_before * 2, out16.view(np.uint8)), np.diff(units_before)

"""What every output format shares: the result description, the writer protocol, MAXREC.

A writer turns a stream of Arrow record batches plus the result's column
metadata into bytes on a binary file-like object, one batch at a time, so a
result of any size is written in bounded memory.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import BinaryIO, Protocol

import pyarrow as pa

from sciportal import __version__
from sciportal.errors import SciportalError
from sciportal.metadata.model import Column

#: Rows encoded at a time; bounds memory and keeps Arrow int32 offsets safe.
CHUNK_ROWS = 65536


@dataclass
class ResultInfo:
    """What a result document says about itself besides its rows.

    ``maxrec``: write at most this many rows; when the stream holds more (the
    engine is asked for ``maxrec + 1``), stop and mark the result OVERFLOW.
    """

    query_status: str = "OK"
    query: str | None = None
    service: str = "sciportal"
    version: str = __version__
    maxrec: int | None = None
    table_name: str | None = None
    infos: list[tuple[str, str]] = field(default_factory=list)
    description: str | None = None


@dataclass
class WriteStats:
    """What a writer did: rows written and whether MAXREC cut the result."""

    rows: int = 0
    overflow: bool = False


class Writer(Protocol):
    """One output format (see :mod:`sciportal.formats.registry`).

    When the batches fail part-way (engine error, time limit), ``write``
    re-raises the error. ``reports_errors`` says what the bytes already
    written are then: True, a complete, well-formed document that says it
    failed (VOTable: a trailing ``QUERY_STATUS=ERROR``, as DALI allows);
    False, a truncated file that the transport must present as broken.
    """

    names: tuple[str, ...]
    mime: str
    mimes: tuple[str, ...]
    extension: str
    reports_errors: bool

    def write(
        self,
        batches: Iterable[pa.RecordBatch],
        columns: Sequence[Column],
        out: BinaryIO,
        info: ResultInfo,
    ) -> WriteStats:
        """Write the whole result to ``out`` and say how many rows went out."""
        ...


def limited(
    batches: Iterable[pa.RecordBatch], maxrec: int | None, stats: WriteStats
) -> Iterator[pa.RecordBatch]:
    """Yield batches of at most ``CHUNK_ROWS`` rows, stopping after ``maxrec`` rows.

    Counts rows into ``stats`` and sets ``stats.overflow`` when a row beyond
    ``maxrec`` exists; the source is not read further after that.
    """
    for batch in batches:
        if batch.num_rows == 0:
            continue
        if maxrec is not None and stats.rows + batch.num_rows > maxrec:
            keep = maxrec - stats.rows
            stats.overflow = True
            if keep > 0:
                yield from _chunks(batch.slice(0, keep), stats)
            return
        yield from _chunks(batch, stats)


def _chunks(batch: pa.RecordBatch, stats: WriteStats) -> Iterator[pa.RecordBatch]:
    for start in range(0, batch.num_rows, CHUNK_ROWS):
        part = batch.slice(start, CHUNK_ROWS)
        stats.rows += part.num_rows
        yield part


def peek(
    batches: Iterator[pa.RecordBatch],
) -> tuple[pa.RecordBatch | None, Iterator[pa.RecordBatch]]:
    """Return the first batch (or None) and an iterator that still yields it."""
    first = next(batches, None)
    if first is None:
        return None, iter(())

    def chained() -> Iterator[pa.RecordBatch]:
        yield first
        yield from batches

    return first, chained()


def error_message(exc: BaseException) -> str:
    """The user-facing text of an error that cut a result short."""
    if isinstance(exc, SciportalError):
        return exc.message
    return f"internal error: {type(exc).__name__}: {exc}"

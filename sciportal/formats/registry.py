"""The table of output formats and RESPONSEFORMAT/FORMAT lookup.

Adding a format is one module with a writer class and one line in
``_WRITERS``; the TAP service, TAPRegExt capabilities and docs all read
this table.
"""

from __future__ import annotations

import re

from sciportal.errors import UsageError
from sciportal.formats.base import Writer
from sciportal.formats.csv import CsvWriter, TsvWriter
from sciportal.formats.fits import FitsWriter
from sciportal.formats.parquet import ParquetWriter
from sciportal.formats.votable_binary import Binary2Writer, BinaryWriter
from sciportal.formats.votable_tabledata import TableDataWriter

_WRITERS: tuple[Writer, ...] = (
    Binary2Writer(),
    TableDataWriter(),
    BinaryWriter(),
    CsvWriter(),
    TsvWriter(),
    FitsWriter(),
    ParquetWriter(),
)
DEFAULT: Writer = _WRITERS[0]


def _normalise(fmt: str) -> str:
    """Lower case, no blanks, no quotes around MIME parameter values."""
    return re.sub(r"\s+", "", fmt).lower().replace('"', "").replace("'", "")


def _split_mime(fmt: str) -> tuple[str, dict[str, str]]:
    base, *params = fmt.split(";")
    pairs: dict[str, str] = {}
    for p in params:
        key, _, value = p.partition("=")
        pairs[key] = value
    return base, pairs


def _lookup() -> dict[str, Writer]:
    table: dict[str, Writer] = {}
    for writer in _WRITERS:
        for key in (*writer.names, writer.mime, *writer.mimes):
            table.setdefault(_normalise(key), writer)
    return table


_TABLE = _lookup()


def all_writers() -> list[Writer]:
    """Every output format, the default first (TAPRegExt ``outputFormat``)."""
    return list(_WRITERS)


def get_writer(responseformat: str | None) -> Writer:
    """The writer for a RESPONSEFORMAT/FORMAT value: short name or MIME type.

    Case and blanks are ignored; MIME parameters other than ``serialization``
    (``charset``, ``header``...) do not change the choice.
    """
    if responseformat is None or not responseformat.strip():
        return DEFAULT
    key = _normalise(responseformat)
    if key in _TABLE:
        return _TABLE[key]
    base, params = _split_mime(key)
    serialization = params.get("serialization")
    for writer in _WRITERS:
        for mime in (writer.mime, *writer.mimes):
            wbase, wparams = _split_mime(_normalise(mime))
            if wbase == base and wparams.get("serialization") == serialization:
                return writer
    accepted = ", ".join(f"{w.names[0]} ({w.mime})" for w in _WRITERS)
    raise UsageError(f"Unsupported RESPONSEFORMAT {responseformat!r}; accepted formats: {accepted}")

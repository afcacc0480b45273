"""Output formats: Arrow record batches plus column metadata -> bytes, streamed.

The TAP service (and anything else that returns tables) calls
:func:`get_writer` with the client's RESPONSEFORMAT and then
``writer.write(batches, columns, out, info)``.
"""

from sciportal.formats.base import ResultInfo, Writer, WriteStats
from sciportal.formats.registry import all_writers, get_writer
from sciportal.formats.votable_xml import write_votable_error

__all__ = [
    "ResultInfo",
    "WriteStats",
    "Writer",
    "all_writers",
    "get_writer",
    "write_votable_error",
]

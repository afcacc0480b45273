"""Resource descriptors: one declarative YAML file per published resource.

See ``docs/descriptors.md`` for the format. ``load`` validates a file and
returns a ``Descriptor``; ``dump`` writes one back (e.g. an inferred one).
"""

from sciportal.descriptors.loader import load, loads, validate_ucd, validate_unit
from sciportal.descriptors.model import (
    DEFAULT_PARTITION_ROWS,
    ColumnMapping,
    Descriptor,
    SourceSpec,
    TableSpec,
)
from sciportal.descriptors.writer import dump

__all__ = [
    "DEFAULT_PARTITION_ROWS",
    "ColumnMapping",
    "Descriptor",
    "SourceSpec",
    "TableSpec",
    "dump",
    "load",
    "loads",
    "validate_ucd",
    "validate_unit",
]

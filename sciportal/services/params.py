"""Protocol parameters, each declared once.

A :class:`Param` names a DALI/TAP parameter with its type and doc; the same
declaration drives GET/POST parsing (case-insensitive names per DALI), the
capabilities document and the HTML docs, so they cannot drift apart.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sciportal.errors import UsageError


@dataclass(frozen=True, slots=True)
class Param:
    """One protocol parameter."""

    name: str
    doc: str
    parse: Callable[[str], Any] = str
    default: Any = None
    required: bool = False
    multiple: bool = False


def _nonneg_int(text: str) -> int:
    value = int(text.strip())
    if value < 0:
        raise ValueError("must not be negative")
    return value


TAP_PARAMS: tuple[Param, ...] = (
    Param("REQUEST", "doQuery (optional in TAP 1.1)."),
    Param("LANG", "Query language: ADQL (ADQL-2.0 and ADQL-2.1 accepted).", default="ADQL"),
    Param("QUERY", "The ADQL query.", required=True),
    Param(
        "RESPONSEFORMAT",
        "Output format: a MIME type or short name (votable, csv, tsv, fits, parquet...).",
    ),
    Param("FORMAT", "Synonym of RESPONSEFORMAT (TAP 1.0)."),
    Param("MAXREC", "Largest number of rows to return (0: metadata only).", _nonneg_int),
    Param(
        "UPLOAD",
        "Tables to upload: name,URI pairs separated by ';' (URI: param:PART or http(s)).",
        multiple=True,
    ),
    Param("RUNID", "An identifier of the caller's choice, echoed back."),
)


def parse_params(
    declared: Sequence[Param], args: Mapping[str, list[Any]], check_required: bool = True
) -> dict[str, Any]:
    """Validate the declared parameters in normalised ``args``; others are left alone."""
    result: dict[str, Any] = {}
    for p in declared:
        values = args.get(p.name)
        if not values:
            if p.required and check_required:
                raise UsageError(f"missing parameter {p.name}: {p.doc}")
            result[p.name] = [] if p.multiple else p.default
            continue
        texts = [v if isinstance(v, str) else v.decode("utf-8", "replace") for v in values]
        if not p.multiple and len(set(texts)) > 1:
            raise UsageError(f"parameter {p.name} given more than once")
        try:
            parsed = [p.parse(t) for t in texts]
        except ValueError as exc:
            raise UsageError(f"invalid value for {p.name}: {texts[0]!r} ({exc})") from None
        result[p.name] = parsed if p.multiple else parsed[0]
    return result

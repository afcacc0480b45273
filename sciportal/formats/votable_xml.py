"""The XML around VOTable data: header with FIELDs and INFOs, footer, DALI error document.

Written as plain text (the document skeleton is small; the data part is
what the serializers optimise), with every user-supplied string escaped.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import BinaryIO

from sciportal.formats.base import ResultInfo
from sciportal.formats.columns import ColumnPlan

VOTABLE_NS = "http://www.ivoa.net/xml/VOTable/v1.3"
VOTABLE_VERSION = "1.4"

_OPEN = (
    '<?xml version="1.0" encoding="UTF-8"?>\n'
    f'<VOTABLE version="{VOTABLE_VERSION}" xmlns="{VOTABLE_NS}"'
    ' xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance"'
    f' xsi:schemaLocation="{VOTABLE_NS} http://www.ivoa.net/xml/VOTable/v1.3">\n'
)

# Characters XML 1.0 cannot carry at all, even escaped.
_XML_INVALID = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")
_NCNAME_BAD = re.compile(r"[^A-Za-z0-9_.\-]")


def escape_text(s: str) -> str:
    """Escape character data (and drop characters XML cannot represent)."""
    s = _XML_INVALID.sub("\ufffd", s)
    return s.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def escape_attr(s: str) -> str:
    """Escape an attribute value (double-quoted), keeping newlines and tabs."""
    return (
        escape_text(s)
        .replace('"', "&quot;")
        .replace("\n", "&#10;")
        .replace("\r", "&#13;")
        .replace("\t", "&#9;")
    )


def _attrs(pairs: Sequence[tuple[str, str | None]]) -> str:
    return "".join(f' {k}="{escape_attr(v)}"' for k, v in pairs if v is not None and v != "")


def field_ids(plans: Sequence[ColumnPlan]) -> list[str]:
    """Unique XML IDs (NCNames) for the FIELDs, derived from the column names."""
    seen: set[str] = set()
    ids: list[str] = []
    for p in plans:
        base = _NCNAME_BAD.sub("_", p.column.name) or "col"
        if not (base[0].isalpha() or base[0] == "_"):
            base = "_" + base
        ident, n = base, 1
        while ident in seen:
            n += 1
            ident = f"{base}_{n}"
        seen.add(ident)
        ids.append(ident)
    return ids


def field_xml(plan: ColumnPlan, ident: str, null_values: bool) -> str:
    """One FIELD element; ``null_values`` adds VALUES null for integer columns."""
    c = plan.column
    attrs = _attrs(
        [
            ("name", c.name),
            ("ID", ident),
            ("datatype", c.datatype),
            ("arraysize", c.arraysize),
            ("unit", c.unit),
            ("ucd", c.ucd),
            ("utype", c.utype),
            ("xtype", c.xtype),
        ]
    )
    inner = ""
    if c.description:
        inner += f"<DESCRIPTION>{escape_text(c.description)}</DESCRIPTION>"
    if null_values and plan.null_value is not None:
        inner += f'<VALUES null="{plan.null_value}"/>'
    if not inner:
        return f"<FIELD{attrs}/>\n"
    return f"<FIELD{attrs}>{inner}</FIELD>\n"


def info_xml(name: str, value: str, content: str | None = None) -> str:
    """One INFO element (content optional)."""
    attrs = _attrs([("name", name)]) + f' value="{escape_attr(value)}"'
    if content:
        return f"<INFO{attrs}>{escape_text(content)}</INFO>\n"
    return f"<INFO{attrs}/>\n"


def header(plans: Sequence[ColumnPlan], info: ResultInfo, null_values: bool) -> str:
    """Everything up to and including ``<DATA>``; the caller writes the serialization."""
    parts = [_OPEN, '<RESOURCE type="results">\n']
    parts.append(info_xml("QUERY_STATUS", info.query_status))
    if info.query is not None:
        parts.append(info_xml("QUERY", info.query))
    parts.append(info_xml("server_software", f"{info.service} {info.version}"))
    for name, value in info.infos:
        parts.append(info_xml(name, value))
    parts.append(f"<TABLE{_attrs([('name', info.table_name or 'result')])}>\n")
    if info.description:
        parts.append(f"<DESCRIPTION>{escape_text(info.description)}</DESCRIPTION>\n")
    for plan, ident in zip(plans, field_ids(plans), strict=True):
        parts.append(field_xml(plan, ident, null_values))
    parts.append("<DATA>")
    return "".join(parts)


def metadata_only(plans: Sequence[ColumnPlan], info: ResultInfo, overflow: bool = False) -> str:
    """A complete VOTable with FIELDs and no DATA (VOParquet metadata)."""
    head = header(plans, info, null_values=False)
    head = head[: -len("<DATA>")]
    return head + footer(overflow, data=False)


def footer(overflow: bool, data: bool = True, error: str | None = None) -> str:
    """Close the table; DALI puts the OVERFLOW (or a late ERROR) status after the TABLE."""
    tail = "</DATA>\n</TABLE>\n" if data else "</TABLE>\n"
    if error is not None:
        tail += info_xml("QUERY_STATUS", "ERROR", error or "ERROR")
    elif overflow:
        tail += info_xml("QUERY_STATUS", "OVERFLOW")
    return tail + "</RESOURCE>\n</VOTABLE>\n"


def write_votable_error(out: BinaryIO, message: str, query_status: str = "ERROR") -> None:
    """Write a DALI error document: a results RESOURCE with INFO QUERY_STATUS=ERROR."""
    doc = (
        _OPEN
        + '<RESOURCE type="results">\n'
        + info_xml("QUERY_STATUS", query_status, message or query_status)
        + "</RESOURCE>\n</VOTABLE>\n"
    )
    out.write(doc.encode("utf-8"))

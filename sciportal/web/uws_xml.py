"""UWS 1.1 XML documents (job list, job, results, parameters) written with lxml.

Element order and nillability follow UWS.xsd (namespace
``http://www.ivoa.net/xml/UWS/v1.0``, version attribute "1.1"); the tests
validate these documents against the schema with ``stilts xsdvalidate``.
Functions take already absolute URLs so this module knows nothing of HTTP.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping
from datetime import UTC, datetime

from lxml import etree

from sciportal.jobs.model import Job, Result

UWS_NS = "http://www.ivoa.net/xml/UWS/v1.0"
XLINK_NS = "http://www.w3.org/1999/xlink"
XSI_NS = "http://www.w3.org/2001/XMLSchema-instance"
UWS_VERSION = "1.1"
VOTABLE_NS = "http://www.ivoa.net/xml/VOTable/v1.3"

_NSMAP = {"uws": UWS_NS, "xlink": XLINK_NS, "xsi": XSI_NS}
_NIL = f"{{{XSI_NS}}}nil"
_HREF = f"{{{XLINK_NS}}}href"
_XLTYPE = f"{{{XLINK_NS}}}type"
# Characters XML 1.0 cannot carry at all; dropped from user-supplied text.
_BAD_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")


def format_uws_time(value: datetime) -> str:
    """ISO 8601 UTC with milliseconds and a Z, as in the UWS 1.1 examples."""
    utc = value.astimezone(UTC)
    return utc.strftime("%Y-%m-%dT%H:%M:%S.") + f"{utc.microsecond // 1000:03d}Z"


def parse_uws_time(text: str) -> datetime:
    """Parse an ISO 8601 time from a client; no zone means UTC (UWS times are UTC)."""
    cleaned = text.strip()
    if cleaned.endswith(("Z", "z")):
        cleaned = cleaned[:-1] + "+00:00"
    value = datetime.fromisoformat(cleaned)
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.astimezone(UTC)


def clean_text(text: str) -> str:
    """User text made safe for XML 1.0."""
    return _BAD_XML.sub("", text)


def _el(parent: etree._Element, name: str, text: str | None = None) -> etree._Element:
    child = etree.SubElement(parent, f"{{{UWS_NS}}}{name}")
    if text is not None:
        child.text = clean_text(text)
    return child


def _time_el(parent: etree._Element, name: str, value: datetime | None) -> None:
    child = _el(parent, name)
    if value is None:
        child.set(_NIL, "true")
    else:
        child.text = format_uws_time(value)


def _owner_el(parent: etree._Element, owner: str | None) -> None:
    child = _el(parent, "ownerId")
    if owner is None:
        child.set(_NIL, "true")
    else:
        child.text = clean_text(owner)


def _serialize(root: etree._Element) -> bytes:
    return etree.tostring(root, xml_declaration=True, encoding="UTF-8")


def job_list_xml(jobs: Iterable[Job], job_url: Callable[[Job], str]) -> bytes:
    """The ``uws:jobs`` document: one ``jobref`` per job."""
    root = etree.Element(f"{{{UWS_NS}}}jobs", nsmap=_NSMAP)
    root.set("version", UWS_VERSION)
    for job in jobs:
        ref = _el(root, "jobref")
        ref.set("id", job.job_id)
        ref.set(_XLTYPE, "simple")
        ref.set(_HREF, job_url(job))
        _el(ref, "phase", job.phase.value)
        if job.run_id is not None:
            _el(ref, "runId", job.run_id)
        _owner_el(ref, job.owner)
        _time_el(ref, "creationTime", job.creation_time)
    return _serialize(root)


def _add_results(parent: etree._Element, job: Job, result_url: Callable[[Result], str]) -> None:
    results = _el(parent, "results")
    for res in job.results:
        node = _el(results, "result")
        node.set("id", res.id)
        node.set(_XLTYPE, "simple")
        node.set(_HREF, result_url(res))
        if res.size is not None:
            node.set("size", str(res.size))
        node.set("mime-type", res.mime)


def _add_parameters(parent: etree._Element, job: Job, upload_urls: Mapping[str, str]) -> None:
    params = _el(parent, "parameters")
    for name, value in sorted(job.parameters.items()):
        node = _el(params, "parameter", value)
        node.set("id", name)
    for name, url in sorted(upload_urls.items()):
        if name.lower() in job.parameters:
            continue
        node = _el(params, "parameter", url)
        node.set("id", name)
        node.set("byReference", "true")


def job_xml(
    job: Job,
    result_url: Callable[[Result], str],
    upload_urls: Mapping[str, str] | None = None,
) -> bytes:
    """The ``uws:job`` document (UWS 1.1 JobSummary)."""
    root = etree.Element(f"{{{UWS_NS}}}job", nsmap=_NSMAP)
    root.set("version", UWS_VERSION)
    _el(root, "jobId", job.job_id)
    if job.run_id is not None:
        _el(root, "runId", job.run_id)
    _owner_el(root, job.owner)
    _el(root, "phase", job.phase.value)
    _time_el(root, "quote", job.quote)
    _time_el(root, "creationTime", job.creation_time)
    _time_el(root, "startTime", job.start_time)
    _time_el(root, "endTime", job.end_time)
    _el(root, "executionDuration", str(job.execution_duration))
    _time_el(root, "destruction", job.destruction)
    _add_parameters(root, job, upload_urls or {})
    _add_results(root, job, result_url)
    if job.error is not None:
        summary = _el(root, "errorSummary")
        summary.set("type", job.error.type)
        summary.set("hasDetail", "true" if job.error.has_detail else "false")
        _el(summary, "message", job.error.message)
    return _serialize(root)


def results_xml(job: Job, result_url: Callable[[Result], str]) -> bytes:
    """The ``uws:results`` document of ``/{job}/results``."""
    holder = etree.Element("holder")
    _add_results(holder, job, result_url)
    root = holder[0]
    # re-root with the namespace declarations on the document element
    doc = etree.Element(root.tag, nsmap=_NSMAP)
    for child in root:
        doc.append(child)
    return _serialize(doc)


def parameters_xml(job: Job, upload_urls: Mapping[str, str] | None = None) -> bytes:
    """The ``uws:parameters`` document of ``/{job}/parameters``."""
    holder = etree.Element("holder")
    _add_parameters(holder, job, upload_urls or {})
    doc = etree.Element(holder[0].tag, nsmap=_NSMAP)
    for child in holder[0]:
        doc.append(child)
    return _serialize(doc)


def error_votable(message: str) -> bytes:
    """A DALI error document (VOTable with QUERY_STATUS=ERROR) for ``/{job}/error``."""
    root = etree.Element(f"{{{VOTABLE_NS}}}VOTABLE", nsmap={None: VOTABLE_NS})
    root.set("version", "1.4")
    resource = etree.SubElement(root, f"{{{VOTABLE_NS}}}RESOURCE")
    resource.set("type", "results")
    info = etree.SubElement(resource, f"{{{VOTABLE_NS}}}INFO")
    info.set("name", "QUERY_STATUS")
    info.set("value", "ERROR")
    info.text = clean_text(message)
    return _serialize(root)

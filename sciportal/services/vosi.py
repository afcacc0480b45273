"""VOSI documents: capabilities (with TAPRegExt), availability and tables.

Built with lxml from the same declarations the service uses (formats
registry, ADQL UDF list, configured limits), so what we advertise is what
we do.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import UTC, datetime

from lxml import etree

from sciportal import adql
from sciportal.config import Config
from sciportal.formats import all_writers
from sciportal.metadata.identifiers import adql_name
from sciportal.metadata.model import Column, Table

NS = {
    "vosi": "http://www.ivoa.net/xml/VOSICapabilities/v1.0",
    "avl": "http://www.ivoa.net/xml/VOSIAvailability/v1.0",
    "vtm": "http://www.ivoa.net/xml/VOSITables/v1.0",
    "vr": "http://www.ivoa.net/xml/VOResource/v1.0",
    "vs": "http://www.ivoa.net/xml/VODataService/v1.1",
    "tr": "http://www.ivoa.net/xml/TAPRegExt/v1.0",
    "xsi": "http://www.w3.org/2001/XMLSchema-instance",
    "esatapplus": "http://esa.int/xml/EsaTapPlus",
}
XSI_TYPE = f"{{{NS['xsi']}}}type"
TAP_STD = "ivo://ivoa.net/std/TAP"


def _el(parent: etree._Element, tag: str, text: str | None = None, **attrib: str) -> etree._Element:
    el = etree.SubElement(parent, tag, attrib)
    if text is not None:
        el.text = text
    return el


def _interface(
    parent: etree._Element, url: str, role: str | None = None, vs_type: str = "vs:ParamHTTP"
) -> etree._Element:
    iface = etree.SubElement(parent, "interface")
    iface.set(XSI_TYPE, vs_type)
    if role:
        iface.set("role", role)
    access = _el(iface, "accessURL", url)
    access.set("use", "base" if vs_type == "vs:ParamHTTP" else "full")
    return iface


def tap_capabilities(base: str, config: Config) -> bytes:
    """The VOSI capabilities document of the TAP service at ``base`` (.../tap)."""
    root = etree.Element(
        f"{{{NS['vosi']}}}capabilities", nsmap={k: NS[k] for k in ("vosi", "vr", "vs", "tr", "xsi")}
    )
    cap = etree.SubElement(root, "capability", standardID=TAP_STD)
    cap.set(XSI_TYPE, "tr:TableAccess")
    iface = _interface(cap, base, role="std")
    iface.set("version", "1.1")
    _dm(cap)
    lang = _el(cap, "language")
    _el(lang, "name", "ADQL")
    for ver, ivoid in (
        ("2.0", "ivo://ivoa.net/std/ADQL#v2.0"),
        ("2.1", "ivo://ivoa.net/std/ADQL#v2.1"),
    ):
        v = _el(lang, "version", ver)
        v.set("ivo-id", ivoid)
    _el(
        lang,
        "description",
        "ADQL 2.1 with spherical geometry, HEALPix pruning and ivo_* functions.",
    )
    feature_groups: dict[str, list[tuple[str, str]]] = {}
    for ftype, form, desc in _features():
        feature_groups.setdefault(ftype, []).append((form, desc))
    lf_udf = etree.SubElement(
        lang, "languageFeatures", type="ivo://ivoa.net/std/TAPRegExt#features-udf"
    )
    for form, desc in _udfs():
        f = _el(lf_udf, "feature")
        _el(f, "form", form)
        _el(f, "description", desc)
    for ftype, items in feature_groups.items():
        lf = etree.SubElement(lang, "languageFeatures", type=ftype)
        for form, desc in items:
            f = _el(lf, "feature")
            _el(f, "form", form)
            if desc:
                _el(f, "description", desc)
    for writer in all_writers():
        of = etree.SubElement(cap, "outputFormat")
        _el(of, "mime", writer.mime)
        for alias in writer.names:
            _el(of, "alias", alias)
    for method in ("inline", "http", "https"):
        etree.SubElement(
            cap, "uploadMethod", {"ivo-id": f"ivo://ivoa.net/std/TAPRegExt#upload-{method}"}
        )
    lifetime = _el(cap, "retentionPeriod")
    _el(lifetime, "default", str(config["uws.default_lifetime"]))
    _el(lifetime, "hard", str(config["uws.max_lifetime"]))
    duration = _el(cap, "executionDuration")
    _el(duration, "default", str(config["uws.default_duration"]))
    _el(duration, "hard", str(config["uws.max_duration"]))
    outl = _el(cap, "outputLimit")
    _el(outl, "default", str(config["query.default_maxrec"])).set("unit", "row")
    _el(outl, "hard", str(config["query.hard_maxrec"])).set("unit", "row")
    upl = _el(cap, "uploadLimit")
    _el(upl, "default", str(config["upload.max_bytes"])).set("unit", "byte")
    _el(upl, "hard", str(config["upload.max_bytes"])).set("unit", "byte")
    for std, path in (
        ("ivo://ivoa.net/std/VOSI#capabilities", "capabilities"),
        ("ivo://ivoa.net/std/VOSI#availability", "availability"),
    ):
        c = etree.SubElement(root, "capability", standardID=std)
        _interface(c, f"{base}/{path}", vs_type="vs:ParamHTTP")
    c = etree.SubElement(root, "capability", standardID="ivo://ivoa.net/std/VOSI#tables-1.1")
    _interface(c, f"{base}/tables", vs_type="vs:ParamHTTP")
    c = etree.SubElement(root, "capability", standardID="ivo://ivoa.net/std/DALI#examples")
    _interface(c, f"{base}/examples", vs_type="vr:WebBrowser")
    return etree.tostring(root, xml_declaration=True, encoding="UTF-8", pretty_print=True)


def _dm(cap: etree._Element) -> None:
    dm = _el(cap, "dataModel", "ObsCore-1.1")
    dm.set("ivo-id", "ivo://ivoa.net/std/ObsCore#core-1.1")
    cap.remove(dm)  # no obscore table yet: advertise only what exists


def _udfs() -> Sequence[tuple[str, str]]:
    return list(getattr(adql, "UDFS", []))


# Feature types defined by TAPRegExt 1.0 and ADQL 2.1 (others would confuse validators).
_KNOWN_FEATURE_TYPES = {
    f"ivo://ivoa.net/std/TAPRegExt#features-{name}"
    for name in (
        "adqlgeo",
        "adql-string",
        "adql-sets",
        "adql-type",
        "adql-unit",
        "adql-offset",
        "adql-common-table",
        # ADQL 2.1's "adql-conditional" (COALESCE) is left out: taplint 3.4
        # rejects the key as unknown; COALESCE works all the same.
    )
}


def _features() -> Sequence[tuple[str, str, str]]:
    out: list[tuple[str, str, str]] = []
    for item in getattr(adql, "FEATURES", []):
        if item[0] not in _KNOWN_FEATURE_TYPES:
            continue
        out.append((item[0], item[1], item[2] if len(item) > 2 else ""))
    return out


def availability(up_since: datetime, note: str = "service is accepting queries") -> bytes:
    """The VOSI availability document."""
    root = etree.Element(f"{{{NS['avl']}}}availability", nsmap={"avl": NS["avl"]})
    etree.SubElement(root, f"{{{NS['avl']}}}available").text = "true"
    etree.SubElement(root, f"{{{NS['avl']}}}upSince").text = up_since.astimezone(UTC).strftime(
        "%Y-%m-%dT%H:%M:%SZ"
    )
    etree.SubElement(root, f"{{{NS['avl']}}}note").text = note
    return etree.tostring(root, xml_declaration=True, encoding="UTF-8", pretty_print=True)


# astroquery's TapPlus (ESA's TAP+ client) reads this attribute on every column
ESATAP_FLAGS = "{http://esa.int/xml/EsaTapPlus}flags"


def _column_el(parent: etree._Element, col: Column, esa: bool = False) -> None:
    c = etree.SubElement(parent, "column")
    if esa:
        c.set(ESATAP_FLAGS, "1" if col.principal else "0")
    _el(c, "name", adql_name(col.name))
    if col.description:
        _el(c, "description", col.description)
    if col.unit:
        _el(c, "unit", col.unit)
    if col.ucd:
        _el(c, "ucd", col.ucd)
    if col.utype:
        _el(c, "utype", col.utype)
    dt = _el(c, "dataType", col.datatype)
    dt.set(XSI_TYPE, "vs:VOTableType")
    if col.arraysize:
        dt.set("arraysize", col.arraysize)
    if col.xtype:
        dt.set("extendedType", col.xtype)
    if col.indexed:
        _el(c, "flag", "indexed")
    if col.principal:
        _el(c, "flag", "primary")
    if col.nullable:
        _el(c, "flag", "nullable")
    if col.std:
        _el(c, "flag", "std")


def _table_el(parent: etree._Element, table: Table, detail: bool, esa: bool) -> None:
    _fill_table(etree.SubElement(parent, "table"), table, detail, esa)


def _fill_table(t: etree._Element, table: Table, detail: bool, esa: bool = False) -> None:
    """A vs:Table: name, title, description, utype, nrows, columns and foreign keys."""
    if table.table_type == "view":
        t.set("type", "view")
    _el(t, "name", table.name)
    if table.title:
        _el(t, "title", table.title)
    if table.description:
        _el(t, "description", table.description)
    if table.utype:
        _el(t, "utype", table.utype)
    if table.nrows is not None:
        _el(t, "nrows", str(table.nrows))
    if detail:
        for col in table.columns:
            _column_el(t, col, esa)
        for fk in table.foreign_keys:
            k = etree.SubElement(t, "foreignKey")
            _el(k, "targetTable", fk.target_table)
            for frm, to in fk.columns:
                fc = etree.SubElement(k, "fkColumn")
                _el(fc, "fromColumn", frm)
                _el(fc, "targetColumn", to)
            if fk.description:
                _el(k, "description", fk.description)


def tableset(
    schemas: Iterable[tuple[str, str, list[Table]]], detail: bool = True, esa: bool = False
) -> bytes:
    """The VOSI tables document (``detail=False``: names only, for large archives).

    ``esa`` adds the ``esatapplus:flags`` attribute that astroquery's TapPlus
    needs on every column (astroquery issue 1597, closed as won't-fix); the
    VOSI schema forbids it, so it is given only to that client.
    """
    spaces = ("vtm", "vs", "xsi") + (("esatapplus",) if esa else ())
    root = etree.Element(f"{{{NS['vtm']}}}tableset", nsmap={k: NS[k] for k in spaces})
    for name, description, tables in schemas:
        s = etree.SubElement(root, "schema")
        _el(s, "name", name)
        if description:
            _el(s, "description", description)
        for table in tables:
            _table_el(s, table, detail, esa)
    return etree.tostring(root, xml_declaration=True, encoding="UTF-8", pretty_print=True)


def single_table(table: Table) -> bytes:
    """The VOSI document for one table (``/tables/NAME``): the same detail as in the tableset."""
    root = etree.Element(
        f"{{{NS['vtm']}}}table", nsmap={"vtm": NS["vtm"], "vs": NS["vs"], "xsi": NS["xsi"]}
    )
    _fill_table(root, table, detail=True)
    return etree.tostring(root, xml_declaration=True, encoding="UTF-8", pretty_print=True)

"""VOSI and the TAP landing page on the live server, checked against the schemas."""

from __future__ import annotations

import http.client
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import requests
from lxml import etree

from tests.conftest import LiveServer, xsdvalidate

VS = "http://www.ivoa.net/xml/VODataService/v1.1"
ESA = b"esatapplus"


def test_landing_page(server: LiveServer) -> None:
    r = requests.get(server.tap, timeout=30)
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/html")
    assert f'href="{server.tap}/sync"' in r.text and server.tap in r.text
    assert f"{server.tap}/tables" in r.text and f"{server.tap}/capabilities" in r.text


def test_single_table_document(server: LiveServer, stilts: str, tmp_path: Path) -> None:
    r = requests.get(f"{server.tap}/tables/demo.coadd", timeout=30)
    assert r.status_code == 200
    xsdvalidate(stilts, tmp_path, r.content)
    root = etree.fromstring(r.content)
    assert root.findtext("name") == "demo.coadd"
    cols = {c.findtext("name"): c for c in root.findall("column")}
    assert {"coadd_object_id", "ra", "dec"} <= set(cols)
    assert (
        cols["ra"].findtext("unit") == "deg" and cols["ra"].findtext("ucd") == "pos.eq.ra;meta.main"
    )
    assert cols["ra"].find("dataType").text == "double"
    assert root.findtext("description")


def test_single_table_matches_tableset(server: LiveServer) -> None:
    """Same detail in /tables/NAME as in /tables, foreign keys included."""
    full = etree.fromstring(requests.get(f"{server.tap}/tables", timeout=60).content)
    for name in ("demo.coadd", "tap_schema.columns", "tap_schema.keys"):
        one = etree.fromstring(requests.get(f"{server.tap}/tables/{name}", timeout=30).content)
        (entry,) = [t for t in full.iter("table") if t.findtext("name") == name]
        assert etree.tostring(one).count(b"<column") == etree.tostring(entry).count(b"<column")
        assert _keys(one) == _keys(entry)
        if name == "tap_schema.columns":
            assert ("tap_schema.tables", [("table_name", "table_name")]) in _keys(one)
        for tag in ("title", "description", "utype", "nrows"):
            assert one.findtext(tag) == entry.findtext(tag), (name, tag)


def _keys(table: etree._Element) -> list[tuple[str | None, list[tuple[str | None, ...]]]]:
    return [
        (
            k.findtext("targetTable"),
            [(c.findtext("fromColumn"), c.findtext("targetColumn")) for c in k.iter("fkColumn")],
        )
        for k in table.findall("foreignKey")
    ]


def test_single_table_unknown(server: LiveServer) -> None:
    r = requests.get(f"{server.tap}/tables/demo.nothing", timeout=30)
    assert r.status_code == 404


def _raw_get(server: LiveServer, path: str, headers: dict[str, str]) -> bytes:
    parts = urlsplit(server.url)
    conn = http.client.HTTPConnection(parts.hostname or "127.0.0.1", parts.port, timeout=60)
    try:
        conn.request("GET", path, None, headers)
        resp = conn.getresponse()
        assert resp.status == 200
        return resp.read()
    finally:
        conn.close()


def test_tables_without_user_agent_validates(
    server: LiveServer, stilts: str, tmp_path: Path
) -> None:
    """A client that sends no User-Agent is not taken for astroquery's TapPlus."""
    r = requests.get(f"{server.tap}/tables", headers={"User-Agent": None}, timeout=60)  # type: ignore[dict-item]
    assert "user-agent" not in {k.lower() for k in r.request.headers}
    assert ESA not in r.content
    xsdvalidate(stilts, tmp_path, r.content)
    raw = _raw_get(server, "/tap/tables", {"Accept": "text/xml"})
    assert ESA not in raw


def test_tables_for_tapplus_only(server: LiveServer) -> None:
    """TapPlus GETs (http.client, no headers) and astroquery agents get the flags."""
    assert ESA in _raw_get(server, "/tap/tables", {})
    assert ESA in _raw_get(server, "/tap/tables", {"User-Agent": "astroquery/0.4.11"})
    r = requests.get(f"{server.tap}/tables", timeout=60)
    assert ESA not in r.content


def test_astroquery_tapplus_reads_tables(server: LiveServer) -> None:
    from astroquery.utils.tap.core import TapPlus

    tables = TapPlus(url=server.tap, verbose=False).load_tables(verbose=False)
    assert "demo.coadd" in {t.get_qualified_name().lower() for t in tables}


@pytest.mark.parametrize("path", ["tables?detail=min", "capabilities"])
def test_other_vosi_documents_validate(
    server: LiveServer, stilts: str, tmp_path: Path, path: str
) -> None:
    xsdvalidate(stilts, tmp_path, requests.get(f"{server.tap}/{path}", timeout=60).content)

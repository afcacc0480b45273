"""Every DALI example is served, parses as RDFa, and runs on the demo survey."""

from __future__ import annotations

import pytest
import pyvo
import requests
from lxml import etree

from sciportal.services.examples import EXAMPLES
from tests.conftest import LiveServer


def test_examples_document(server: LiveServer) -> None:
    r = requests.get(f"{server.tap}/examples", timeout=30)
    assert r.status_code == 200
    doc = etree.fromstring(r.content)
    ns = {"h": "http://www.w3.org/1999/xhtml"}
    queries = doc.xpath("//h:*[@property='query']", namespaces=ns)
    assert len(queries) == len(EXAMPLES) >= 10


@pytest.mark.parametrize("example", EXAMPLES, ids=[e.ident for e in EXAMPLES])
def test_example_runs(server: LiveServer, example) -> None:  # type: ignore[no-untyped-def]
    table = pyvo.dal.TAPService(server.tap).run_sync(example.query).to_table()
    assert len(table) > 0, f"example {example.ident} returned nothing on the demo survey"

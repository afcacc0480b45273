"""TAP/DALI parameters against the live server: UPLOAD by URL, FORMAT, RUNID, MAXREC, errors.

Settings-dependent checks run on a second server over a small demo home,
started with ``--set`` overrides (limits small enough to observe).
"""

from __future__ import annotations

import io
import threading
import warnings
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import numpy as np
import pytest
import requests
from astropy.io.votable import parse
from astropy.table import Table

from sciportal.errors import LimitExceeded, UsageError
from sciportal.services.uploads import address_allowed, fetch_url, local_server
from tests.conftest import LiveServer, sciportal, start_server, stop_server

OIDS = [1000000000, 1000000003, 1000000005]
JOIN = (
    "SELECT u.label, c.coadd_object_id FROM TAP_UPLOAD.t AS u "
    "JOIN demo.coadd AS c ON c.coadd_object_id = u.oid ORDER BY u.label"
)


def votable_bytes(n: int = 3) -> bytes:
    buf = io.BytesIO()
    oids = (OIDS * (n // len(OIDS) + 1))[:n]
    Table({"oid": np.array(oids), "label": [f"l{i:06d}" for i in range(n)]}).write(
        buf, format="votable"
    )
    return buf.getvalue()


def read_votable(content: bytes) -> tuple[list[tuple[str, str | None]], Table, list[str]]:
    """QUERY_STATUS INFOs (value, content), the table, and the other INFO names."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        vot = parse(io.BytesIO(content))
    res = vot.resources[0]
    statuses = [(i.value, i.content) for i in res.infos if i.name == "QUERY_STATUS"]
    names = [i.name for i in res.infos]
    table = res.tables[0].to_table() if res.tables else Table()
    return statuses, table, names


def assert_dali_error(r: requests.Response, status: int, text: str) -> None:
    assert r.status_code == status, r.text[:500]
    statuses, _, _ = read_votable(r.content)
    assert statuses and statuses[-1][0] == "ERROR"
    assert text.lower() in (statuses[-1][1] or "").lower(), statuses


class _Files(BaseHTTPRequestHandler):
    routes: dict[str, tuple[int, dict[str, str], bytes]] = {}

    def do_GET(self) -> None:  # noqa: N802 (http.server API)
        code, headers, body = self.routes.get(self.path, (404, {}, b"not here"))
        self.send_response(code)
        for k, v in headers.items():
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture(scope="module")
def files() -> Iterator[str]:
    """A local web server with VOTables and redirects to upload from."""
    _Files.routes = {
        "/t.vot": (200, {"Content-Type": "application/x-votable+xml"}, votable_bytes()),
        "/big.vot": (200, {}, votable_bytes(2000)),
        "/to-file": (302, {"Location": "file:///etc/passwd"}, b""),
        "/to-ftp": (302, {"Location": "ftp://127.0.0.1/x.vot"}, b""),
        "/to-t": (302, {"Location": "/t.vot"}, b""),
    }
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Files)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()


@pytest.fixture(scope="module")
def limited(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    """A server with small default/hard MAXREC and upload limits."""
    home: Path = tmp_path_factory.mktemp("params-home")
    sciportal(home, "demo", "--rows", "300", "--no-tiles")
    srv = start_server(
        home,
        "--set",
        "query.default_maxrec=5",
        "--set",
        "query.hard_maxrec=50",
        "--set",
        "upload.max_bytes=20000",
    )
    yield srv
    stop_server(srv)


def sync(server: LiveServer, **params: str) -> requests.Response:
    return requests.post(f"{server.tap}/sync", data={"LANG": "ADQL", **params}, timeout=120)


# UPLOAD by URL ----------------------------------------------------------------


def test_upload_by_http_url(server: LiveServer, files: str) -> None:
    r = sync(server, QUERY=JOIN, UPLOAD=f"t,{files}/t.vot")
    statuses, table, _ = read_votable(r.content)
    assert r.status_code == 200 and statuses[0][0] == "OK"
    assert list(table["label"]) == ["l000000", "l000001", "l000002"]
    assert sorted(table["coadd_object_id"]) == OIDS


def test_upload_by_url_follows_http_redirects(server: LiveServer, files: str) -> None:
    r = sync(server, QUERY=JOIN, UPLOAD=f"t,{files}/to-t")
    assert r.status_code == 200 and len(read_votable(r.content)[1]) == 3


@pytest.mark.parametrize(
    "uri",
    ["file:///etc/passwd", "ftp://127.0.0.1/x.vot", "gopher://127.0.0.1/", "/etc/passwd"],
)
def test_upload_refuses_other_schemes(server: LiveServer, uri: str) -> None:
    assert_dali_error(sync(server, QUERY=JOIN, UPLOAD=f"t,{uri}"), 400, "http(s)")


@pytest.mark.parametrize("path", ["/to-file", "/to-ftp"])
def test_upload_refuses_redirect_to_other_schemes(
    server: LiveServer, files: str, path: str
) -> None:
    r = sync(server, QUERY=JOIN, UPLOAD=f"t,{files}{path}")
    assert_dali_error(r, 400, "redirect")


@pytest.mark.parametrize(
    "address", ["169.254.169.254", "0.0.0.0", "224.0.0.1", "fe80::1", "fd00:ec2::254", "240.0.0.1"]
)
def test_addresses_never_fetched(address: str) -> None:
    assert not address_allowed(address, internal_ok=True)


def test_internal_addresses_only_for_a_local_server(files: str) -> None:
    for address in ("127.0.0.1", "::1", "10.0.0.7", "192.168.1.2", "::ffff:127.0.0.1"):
        assert address_allowed(address, internal_ok=True)
        assert not address_allowed(address, internal_ok=False)
    assert address_allowed("8.8.8.8", internal_ok=False)
    assert local_server("127.0.0.1", "") and local_server("localhost", "")
    assert not local_server("0.0.0.0", "") and not local_server("::", "")
    assert not local_server("127.0.0.1", "https://tap.example.org/")
    with pytest.raises(UsageError, match="may not point to 127.0.0.1"):
        fetch_url(f"{files}/t.vot", 10**6, internal_ok=False)
    assert fetch_url(f"{files}/t.vot", 10**6, internal_ok=True) == votable_bytes()


def test_upload_url_size_limit(limited: LiveServer, files: str) -> None:
    with pytest.raises(LimitExceeded):
        fetch_url(f"{files}/big.vot", 20000, internal_ok=True)
    r = sync(limited, QUERY="SELECT * FROM TAP_UPLOAD.t", UPLOAD=f"t,{files}/big.vot")
    assert_dali_error(r, 413, "exceeds the limit of 20000 bytes")


def test_inline_upload_size_limit(limited: LiveServer) -> None:
    r = requests.post(
        f"{limited.tap}/sync",
        data={"LANG": "ADQL", "QUERY": "SELECT * FROM TAP_UPLOAD.t", "UPLOAD": "t,param:t"},
        files={"t": ("t.vot", votable_bytes(2000))},
        timeout=120,
    )
    assert_dali_error(r, 413, "exceeds the limit")


# FORMAT, RUNID, case ----------------------------------------------------------

TOP3 = "SELECT TOP 3 coadd_object_id FROM demo.coadd ORDER BY coadd_object_id"


@pytest.mark.parametrize("fmt", ["csv", "text/csv", "text/csv;header=present"])
def test_format_is_an_alias_of_responseformat(server: LiveServer, fmt: str) -> None:
    r = sync(server, QUERY=TOP3, FORMAT=fmt)
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/csv")
    assert r.text.splitlines()[0] == '"coadd_object_id"' and len(r.text.splitlines()) == 4


def test_responseformat_wins_over_format(server: LiveServer) -> None:
    r = sync(server, QUERY=TOP3, FORMAT="csv", RESPONSEFORMAT="tsv")
    assert r.headers["content-type"].startswith("text/tab-separated-values")


def test_runid_echoed(server: LiveServer) -> None:
    r = sync(server, QUERY=TOP3, RUNID="my-run <42>")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        vot = parse(io.BytesIO(r.content))
    runids = [i.value for i in vot.resources[0].infos if i.name == "RUNID"]
    assert runids == ["my-run <42>"]


def test_lower_case_names_in_post(server: LiveServer) -> None:
    r = requests.post(
        f"{server.tap}/sync",
        data={"lang": "ADQL", "query": TOP3, "responseformat": "csv", "maxrec": "2"},
        timeout=60,
    )
    assert r.status_code == 200 and len(r.text.splitlines()) == 3


def test_mixed_case_names_in_multipart_post(server: LiveServer) -> None:
    r = requests.post(
        f"{server.tap}/sync",
        data={"Lang": "ADQL", "Query": JOIN, "Upload": "t,param:mytab", "ResponseFormat": "csv"},
        files={"mytab": ("t.vot", votable_bytes())},
        timeout=60,
    )
    assert r.status_code == 200, r.text[:300]
    assert len(r.text.splitlines()) == 4


def test_unknown_responseformat(server: LiveServer) -> None:
    assert_dali_error(sync(server, QUERY=TOP3, RESPONSEFORMAT="image/gif"), 400, "image/gif")


def test_error_at_run_time_is_a_dali_error(server: LiveServer) -> None:
    """The engine fails before the first row: an error status, not an empty 200."""
    r = sync(server, QUERY="SELECT TOP 10 CAST(coadd_object_id AS SMALLINT) FROM demo.coadd")
    assert_dali_error(r, 400, "")


# MAXREC -----------------------------------------------------------------------


def test_maxrec_zero(server: LiveServer) -> None:
    r = sync(server, QUERY="SELECT coadd_object_id, ra, dec FROM demo.coadd", MAXREC="0")
    statuses, table, _ = read_votable(r.content)
    assert len(table) == 0 and table.colnames == ["coadd_object_id", "ra", "dec"]
    assert str(table["ra"].unit) == "deg"
    assert statuses[-1][0] == "OVERFLOW"


def test_default_maxrec(limited: LiveServer) -> None:
    statuses, table, _ = read_votable(sync(limited, QUERY="SELECT * FROM demo.coadd").content)
    assert len(table) == 5 and statuses[-1][0] == "OVERFLOW"


def test_hard_maxrec_caps(limited: LiveServer) -> None:
    """TAP 1.1 2.7.4 / DALI MAXREC: above the hard limit the service uses the limit."""
    r = sync(limited, QUERY="SELECT * FROM demo.coadd", MAXREC="1000")
    statuses, table, _ = read_votable(r.content)
    assert r.status_code == 200 and len(table) == 50 and statuses[-1][0] == "OVERFLOW"


def test_maxrec_below_hard_limit_is_exact(limited: LiveServer) -> None:
    statuses, table, _ = read_votable(
        sync(limited, QUERY="SELECT * FROM demo.coadd", MAXREC="7").content
    )
    assert len(table) == 7 and statuses[-1][0] == "OVERFLOW"


def test_bad_maxrec(server: LiveServer) -> None:
    assert_dali_error(sync(server, QUERY=TOP3, MAXREC="-1"), 400, "MAXREC")


def test_internal_urls_setting_denies_even_a_local_server(
    tmp_path_factory: pytest.TempPathFactory, files: str
) -> None:
    home: Path = tmp_path_factory.mktemp("deny-home")
    srv = start_server(home, "--set", "upload.internal_urls=deny")
    try:
        r = sync(srv, QUERY="SELECT * FROM TAP_UPLOAD.t", UPLOAD=f"t,{files}/t.vot")
        assert_dali_error(r, 400, "may not point to 127.0.0.1")
    finally:
        assert stop_server(srv) == 0

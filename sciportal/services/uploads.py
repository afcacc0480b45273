"""TAP_UPLOAD: turn uploaded VOTables into Arrow tables with column metadata.

Uploads come inline (``param:NAME``, a multipart part) or by http(s) URL;
both are size-limited before parsing. Each becomes a table visible as
``TAP_UPLOAD.name`` to the one query that uploaded it.

Fetching a URL on a client's behalf must not let the client reach what
only the server can (SSRF). Without any setting, :func:`fetch_url`:

* speaks http and https only, redirects included (no file:, ftp:, data:
  handler exists in its opener), at most 5 redirects, no environment proxy;
* checks the address each connection actually reaches (so DNS rebinding
  and redirects are covered) and always refuses unspecified, link-local
  (cloud metadata at 169.254.169.254), multicast, broadcast, reserved and
  known metadata addresses;
* refuses loopback and private (RFC 1918, ULA, CGNAT) addresses too unless
  the server itself is local: bound to a loopback interface with no public
  ``server.base_url`` (a development or test server, whose users can reach
  those addresses anyway);
* stops at the size limit and after 60 s in all, however slowly bytes come.
"""

from __future__ import annotations

import http.client
import io
import ipaddress
import re
import socket
import time
import urllib.error
import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import pyarrow as pa
from astropy.io.votable import parse as parse_votable

from sciportal.errors import LimitExceeded, UsageError
from sciportal.metadata.model import Column, Table

_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_]*$")


@dataclass(frozen=True)
class Upload:
    """One uploaded table: its ADQL metadata and its rows."""

    table: Table
    data: pa.Table


def parse_upload_spec(specs: list[str]) -> list[tuple[str, str]]:
    """Split UPLOAD values (``name,uri;name2,uri2``) into (name, uri) pairs."""
    pairs: list[tuple[str, str]] = []
    for spec in specs:
        for item in spec.split(";"):
            item = item.strip()
            if not item:
                continue
            if "," not in item:
                raise UsageError(f"UPLOAD item {item!r} is not of the form name,URI")
            name, uri = (s.strip() for s in item.split(",", 1))
            if not _NAME.match(name):
                raise UsageError(f"UPLOAD table name {name!r} is not a valid ADQL identifier")
            pairs.append((name, uri))
    names = [n.lower() for n, _ in pairs]
    if len(set(names)) != len(names):
        raise UsageError("UPLOAD names the same table twice")
    return pairs


FETCH_SECONDS = 60.0
MAX_REDIRECTS = 5
# metadata services outside the link-local range (AWS IPv6, Alibaba Cloud)
_METADATA = {ipaddress.ip_address("fd00:ec2::254"), ipaddress.ip_address("100.100.100.200")}


def address_allowed(address: str, internal_ok: bool) -> bool:
    """Whether an upload may be fetched from IP ``address`` (see the module doc)."""
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    if ip in _METADATA or ip.is_unspecified or ip.is_link_local or ip.is_multicast:
        return False
    if ip.is_loopback:  # before is_reserved, which covers ::1
        return internal_ok
    if ip.is_reserved:
        return False
    if ip.is_private or not ip.is_global:
        return internal_ok
    return True


class UploadRefused(UsageError):
    """An upload URL this server will not fetch."""


def _guarded_opener(internal_ok: bool) -> urllib.request.OpenerDirector:
    def connect(
        address: tuple[str, int], timeout: float | None = None, source: Any = None
    ) -> socket.socket:
        sock = socket.create_connection(address, timeout, source)
        peer = sock.getpeername()[0]
        if not address_allowed(peer, internal_ok):
            sock.close()
            raise UploadRefused(f"UPLOAD URLs may not point to {address[0]} ({peer})")
        return sock

    class Http(urllib.request.HTTPHandler):
        def http_open(self, req: urllib.request.Request) -> http.client.HTTPResponse:
            return self.do_open(_connection(http.client.HTTPConnection), req)

    class Https(urllib.request.HTTPSHandler):
        def https_open(self, req: urllib.request.Request) -> http.client.HTTPResponse:
            return self.do_open(_connection(http.client.HTTPSConnection), req)

    def _connection(cls: type[http.client.HTTPConnection]) -> Any:
        def make(*args: Any, **kwargs: Any) -> http.client.HTTPConnection:
            conn = cls(*args, **kwargs)
            conn._create_connection = connect  # type: ignore[attr-defined]  # checked socket
            return conn

        return make

    class Redirects(urllib.request.HTTPRedirectHandler):
        max_redirections = MAX_REDIRECTS

        def redirect_request(
            self,
            req: urllib.request.Request,
            fp: Any,
            code: int,
            msg: str,
            headers: Any,
            newurl: str,
        ) -> urllib.request.Request | None:
            if not newurl.lower().startswith(("http://", "https://")):
                raise UploadRefused(f"UPLOAD URL redirects to {newurl!r}: http(s) only")
            return super().redirect_request(req, fp, code, msg, headers, newurl)

    opener = urllib.request.OpenerDirector()
    for handler in (
        urllib.request.UnknownHandler(),
        Http(),
        Https(),
        Redirects(),
        urllib.request.HTTPDefaultErrorHandler(),
        urllib.request.HTTPErrorProcessor(),
    ):
        opener.add_handler(handler)
    return opener


def fetch_url(uri: str, max_bytes: int, internal_ok: bool = False) -> bytes:
    """The body at an http(s) ``uri``, at most ``max_bytes`` (+1 to detect excess)."""
    if not uri.lower().startswith(("http://", "https://")):
        raise UsageError(f"UPLOAD URI {uri!r} must be param:NAME or an http(s) URL")
    deadline = time.monotonic() + FETCH_SECONDS
    try:
        with _guarded_opener(internal_ok).open(uri, timeout=FETCH_SECONDS / 2) as resp:
            length = resp.headers.get("content-length")
            if length and length.isdigit() and int(length) > max_bytes:
                raise LimitExceeded(f"upload {uri} exceeds the limit of {max_bytes} bytes")
            parts: list[bytes] = []
            size = 0
            while size <= max_bytes:
                if time.monotonic() > deadline:
                    raise UsageError(f"upload {uri} took more than {FETCH_SECONDS:g} s")
                chunk = resp.read(min(1 << 20, max_bytes + 1 - size))
                if not chunk:
                    break
                parts.append(chunk)
                size += len(chunk)
    except urllib.error.HTTPError as exc:
        raise UsageError(f"cannot retrieve upload {uri}: HTTP {exc.code} {exc.reason}") from None
    except urllib.error.URLError as exc:
        if isinstance(exc.reason, UsageError):
            raise exc.reason from None
        raise UsageError(f"cannot retrieve upload {uri}: {exc.reason}") from None
    except (OSError, http.client.HTTPException) as exc:
        raise UsageError(f"cannot retrieve upload {uri}: {exc}") from None
    return b"".join(parts)


def _fetch(
    uri: str, args: Mapping[str, list[Any]], max_bytes: int, internal_ok: bool = False
) -> bytes:
    if uri.startswith("param:"):
        part = uri[6:]
        values = args.get(part.upper())
        if not values:
            raise UsageError(f"UPLOAD refers to {uri} but no such part was sent")
        value = values[0]
        data = value if isinstance(value, bytes) else value.encode("utf-8")
    else:
        data = fetch_url(uri, max_bytes, internal_ok)
    if len(data) > max_bytes:
        raise LimitExceeded(f"upload {uri} exceeds the limit of {max_bytes} bytes")
    return data


def _column_from_field(field: Any) -> Column:
    arraysize = field.arraysize
    return Column(
        name=field.name,
        datatype=field.datatype,
        arraysize=str(arraysize) if arraysize is not None else None,
        xtype=field.xtype,
        unit=str(field.unit) if field.unit is not None else None,
        ucd=field.ucd,
        utype=field.utype,
        description=(field.description or "").strip(),
    )


def _to_arrow(values: Any, col: Column) -> pa.Array:
    if isinstance(values, np.ma.MaskedArray):
        mask = np.ma.getmaskarray(values)
        data = np.ma.getdata(values)
    else:
        mask = None
        data = np.asarray(values)
    if data.dtype.kind in "US":
        return pa.array(data.astype(str), type=pa.string(), mask=mask)
    if data.dtype.kind == "O":
        items = [
            None if (mask is not None and m) else v
            for v, m in zip(data, mask if mask is not None else [False] * len(data), strict=True)
        ]
        if col.datatype in ("char", "unicodeChar"):
            return pa.array([None if v is None else str(v) for v in items], type=pa.string())
        return pa.array([None if v is None else np.asarray(v).tolist() for v in items])
    if data.ndim > 1:
        flat = data.reshape(len(data), -1)
        return pa.array(list(flat), type=pa.list_(pa.from_numpy_dtype(flat.dtype)))
    return pa.array(data, mask=mask)


def load_upload(name: str, content: bytes, max_rows: int) -> Upload:
    """Parse one VOTable upload; errors name the table and say what is wrong."""
    try:
        votable = parse_votable(io.BytesIO(content), verify="warn")
        vtable = votable.get_first_table()
    except Exception as exc:  # astropy raises many kinds for bad XML
        raise UsageError(f"upload {name}: not a readable VOTable ({exc})") from None
    if vtable.array is None or len(vtable.array) > max_rows:
        raise LimitExceeded(f"upload {name} has more than {max_rows} rows")
    columns: list[Column] = []
    arrays: list[pa.Array] = []
    for field in vtable.fields:
        col = _column_from_field(field)
        columns.append(col)
        arrays.append(
            _to_arrow(
                vtable.array[field.ID or field.name]
                if (field.ID or field.name) in vtable.array.dtype.names
                else vtable.array[field.name],
                col,
            )
        )
    names = [c.name for c in columns]
    data = pa.Table.from_arrays(arrays, names=names)
    table = Table(name=f"TAP_UPLOAD.{name}", columns=tuple(columns), description="uploaded table")
    return Upload(table=table, data=data)


def load_uploads(
    specs: list[str],
    args: Mapping[str, list[Any]],
    max_bytes: int,
    max_rows: int,
    internal_ok: bool = False,
) -> dict[str, Upload]:
    """All uploads of a request, keyed by lower-case table name.

    ``internal_ok``: URLs may point to loopback and private addresses (see
    the module doc; :func:`local_server` decides it from the configuration).
    """
    out: dict[str, Upload] = {}
    total = 0
    for name, uri in parse_upload_spec(specs):
        content = _fetch(uri, args, max_bytes - total, internal_ok)
        total += len(content)
        out[name.lower()] = load_upload(name, content, max_rows)
    return out


def local_server(host: str, base_url: str) -> bool:
    """A server bound to loopback only and with no public base URL (development, tests)."""
    if base_url.strip():
        return False
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False

"""Twisted resources of the TAP service: sync, VOSI, examples.

Each resource parses parameters, makes one service call off the reactor and
renders the answer (STYLE.md point 1); async lives in :mod:`sciportal.web.uws`.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import Any, BinaryIO, cast

from twisted.internet import reactor as _reactor
from twisted.internet import threads
from twisted.web.resource import IResource, Resource
from twisted.web.server import NOT_DONE_YET, Request

from sciportal.errors import SciportalError, ServiceUnavailable
from sciportal.services import examples, vosi
from sciportal.web.app import App
from sciportal.web.auth import owner_of
from sciportal.web.errors import render_error
from sciportal.web.streaming import ClientGone, ThreadedResponse
from sciportal.web.uws import parse_form

log = logging.getLogger(__name__)
reactor: Any = _reactor


def base_url(app: App, request: Request, path: str = "") -> str:
    """Absolute URL of ``path`` on this server (configured base URL or Host header)."""
    configured = app.config["server.base_url"].rstrip("/")
    if configured:
        return configured + path
    header = request.getHeader(b"host")
    host = (
        header.decode("latin-1")
        if header
        else f"{app.config['server.host']}:{app.config['server.port']}"
    )
    scheme = "https" if request.isSecure() else "http"
    return f"{scheme}://{host}{path}"


def request_args(request: Request) -> dict[str, list[Any]]:
    """All parameters of a GET or POST (urlencoded or multipart), names upper-cased.

    File parts come as bytes, under their part name, for ``param:NAME`` uploads.
    """
    query = request.uri.split(b"?", 1)[1] if b"?" in request.uri else b""
    ctype = request.getHeader(b"content-type")
    body = b""
    if request.method == b"POST" and request.content is not None:
        request.content.seek(0)
        body = request.content.read()
    values, files = parse_form(query, ctype.decode("latin-1") if ctype else None, body)
    args: dict[str, list[Any]] = {k.upper(): list(v) for k, v in values.items()}
    for name, data in files.items():
        args.setdefault(name.upper(), []).append(data)
    return args


def _fail_in_reactor(request: Request, exc: BaseException) -> None:
    if request.finished or getattr(request, "_disconnected", False):
        return
    body = render_error(request, exc)
    request.write(body)
    request.finish()


class SyncResource(Resource):
    """``/tap/sync``: run a query and stream the result."""

    isLeaf = True

    def __init__(self, app: App) -> None:
        super().__init__()
        self.app = app

    def render_GET(self, request: Request) -> Any:  # noqa: N802 (Twisted API)
        return self.render_POST(request)

    def render_POST(self, request: Request) -> Any:  # noqa: N802
        try:
            args = request_args(request)
        except Exception as exc:
            return render_error(request, exc)
        user = owner_of(request)
        d = threads.deferToThread(self._run, request, args, user)
        d.addErrback(lambda f: log.error("sync query crashed: %s", f.getTraceback()))
        return NOT_DONE_YET

    def _run(self, request: Request, args: dict[str, list[Any]], user: str | None) -> None:
        tap = self.app.tap
        if not tap.sync_slots.acquire(timeout=30):
            threads.blockingCallFromThread(
                reactor, _fail_in_reactor, request, ServiceUnavailable("too many queries running")
            )
            return
        try:
            # query.sync_timeout bounds silence, not length: the engine may go
            # that long without a batch, the client that long without reading;
            # a result that keeps flowing is never cut
            limit = self.app.config["query.sync_timeout"]
            try:
                req = tap.parse_request(args)
                prepared = tap.prepare(req, user)
                result = tap.start(prepared, None, idle_timeout=limit)
            except Exception as exc:  # every failure becomes a DALI error document
                threads.blockingCallFromThread(reactor, _fail_in_reactor, request, exc)
                return
            stream = threads.blockingCallFromThread(reactor, self._open, request, req.writer, limit)
            try:
                tap.write(prepared, result, cast(BinaryIO, stream))
            except ClientGone:
                result.cancel()
                stream.close()
            except Exception as exc:
                result.cancel()
                self._fail_streaming(request, stream, req.writer, exc)
            else:
                stream.close()
        finally:
            tap.sync_slots.release()

    @staticmethod
    def _fail_streaming(
        request: Request, stream: ThreadedResponse, writer: Any, exc: Exception
    ) -> None:
        """End a response whose rows failed part-way (headers may be out already)."""
        if isinstance(exc, SciportalError):
            log.info("result cut short: %s", exc.message)
        else:
            log.error("error while streaming a result", exc_info=exc)
        if stream.abandon():  # nothing reached the client: a real DALI error response
            threads.blockingCallFromThread(reactor, _fail_late, request, exc)
        elif writer.reports_errors:
            stream.close()  # the document itself ends with QUERY_STATUS=ERROR
        else:
            stream.abort()  # no error convention (CSV, FITS...): a visibly broken body

    @staticmethod
    def _open(request: Request, writer: Any, stall_timeout: float) -> ThreadedResponse:
        request.setHeader(b"content-type", writer.mime.encode())
        request.setHeader(
            b"content-disposition", f'inline; filename="result.{writer.extension}"'.encode()
        )
        return ThreadedResponse(request, stall_timeout)


def _fail_late(request: Request, exc: BaseException) -> None:
    """Replace a result response that never started by an error document."""
    request.responseHeaders.removeHeader(b"content-disposition")
    _fail_in_reactor(request, exc)


class _Static(Resource):
    """A document computed per request (cheap: metadata only)."""

    isLeaf = True

    def __init__(self, app: App, content_type: str, render: Any) -> None:
        super().__init__()
        self.app = app
        self.content_type = content_type.encode()
        self._render = render

    def render_GET(self, request: Request) -> bytes:  # noqa: N802
        try:
            body = self._render(self.app, request)
        except Exception as exc:
            return render_error(request, exc)
        request.setHeader(b"content-type", self.content_type)
        return bytes(body)

    def render_HEAD(self, request: Request) -> bytes:  # noqa: N802
        return self.render_GET(request)


_started = datetime.now(UTC)


def _capabilities(app: App, request: Request) -> bytes:
    return vosi.tap_capabilities(base_url(app, request, "/tap"), app.config)


def _availability(app: App, request: Request) -> bytes:
    return vosi.availability(_started)


def _grouped(app: App, user: str | None) -> list[tuple[str, str, list[Any]]]:
    tables = app.tables_for(user)
    schemas: dict[str, list[Any]] = {}
    for t in tables:
        schemas.setdefault(t.schema, []).append(t)
    descriptions = {s.name.lower(): s.description for s in app.metadata.list_schemas()}
    descriptions.setdefault("tap_schema", "Metadata of the tables published by this service.")
    return [(name, descriptions.get(name.lower(), ""), ts) for name, ts in sorted(schemas.items())]


class TablesResource(Resource):
    """``/tap/tables`` (VOSI tables, ``detail=min`` honoured) and ``/tap/tables/NAME``."""

    def __init__(self, app: App) -> None:
        super().__init__()
        self.app = app

    def getChild(self, path: bytes, request: Request) -> Resource:  # noqa: N802
        if not path:
            return self
        return _Static(self.app, "text/xml", lambda app, req: self._one(path.decode(), req))

    def _one(self, name: str, request: Request) -> bytes:
        from sciportal.errors import NotFoundError

        for t in self.app.tables_for(owner_of(request)):
            if t.name.lower() == name.lower():
                return vosi.single_table(t)
        raise NotFoundError(f"no table {name!r} here")

    def render_GET(self, request: Request) -> bytes:  # noqa: N802
        detail = (request.args or {}).get(b"detail", [b"max"])[0] != b"min"
        request.setHeader(b"content-type", b"text/xml")
        return vosi.tableset(
            _grouped(self.app, owner_of(request)), detail=detail, esa=is_tapplus(request)
        )


def is_tapplus(request: Request) -> bool:
    """Whether a GET comes from astroquery's TapPlus, which needs its ``esatapplus`` flags.

    TapPlus sends its GETs through ``http.client`` with no headers at all, so
    they carry only ``Host`` and ``Accept-Encoding: identity`` (its POSTs say
    ``astroquery/...``). Anything else, including a client that merely omits
    User-Agent, gets the schema-valid document.
    """
    agent = request.getHeader(b"user-agent")
    if agent is not None:
        return agent.startswith(b"astroquery/")
    names = {name.lower() for name, _ in request.requestHeaders.getAllRawHeaders()}
    return names <= {b"host", b"accept-encoding"} and (
        request.getHeader(b"accept-encoding") == b"identity"
    )


class TapRoot(Resource):
    """``/tap``: the TAP service root."""

    def __init__(self, app: App, async_resource: Resource) -> None:
        super().__init__()
        self.app = app
        self.putChild(b"sync", cast(IResource, SyncResource(app)))
        self.putChild(b"async", cast(IResource, async_resource))
        self.putChild(b"capabilities", cast(IResource, _Static(app, "text/xml", _capabilities)))
        self.putChild(b"availability", cast(IResource, _Static(app, "text/xml", _availability)))
        self.putChild(b"tables", cast(IResource, TablesResource(app)))
        examples_doc = _Static(
            app, "application/xhtml+xml", lambda a, r: examples.render(base_url(a, r))
        )
        self.putChild(b"examples", cast(IResource, examples_doc))

    def getChild(self, path: bytes, request: Request) -> Resource:  # noqa: N802
        if path == b"":
            return self
        return super().getChild(path, request)

    def render_GET(self, request: Request) -> bytes:  # noqa: N802
        from sciportal.web.landing import tap_page

        request.setHeader(b"content-type", b"text/html; charset=utf-8")
        return tap_page(self.app, base_url(self.app, request))

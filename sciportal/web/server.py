"""The Twisted web server: routing, graceful shutdown, start-up banner."""

from __future__ import annotations

import logging
import shlex
import sys
from collections.abc import Sequence
from typing import Any, cast

import twisted
from twisted.internet import defer, task, threads
from twisted.internet import reactor as _reactor
from twisted.web.resource import IResource, Resource
from twisted.web.server import Request, Site

from sciportal import __version__
from sciportal.web.app import App
from sciportal.web.landing import example_query, home_page
from sciportal.web.tap import TapRoot, base_url

log = logging.getLogger(__name__)

#: seconds between sweeps for retired table versions to delete
RETIRED_SWEEP_S = 600.0
reactor: Any = _reactor  # the global reactor; its interfaces are not visible to mypy

SERVER_HEADER = f"sciportal/{__version__} TwistedWeb/{twisted.__version__}".encode()


class Root(Resource):
    """``/``: the services home page and the service roots below it."""

    def __init__(self, app: App, children: dict[bytes, Resource]) -> None:
        super().__init__()
        self.app = app
        for name, child in children.items():
            self.putChild(name, cast(IResource, child))

    def getChild(self, path: bytes, request: Request) -> Resource:  # noqa: N802
        if path == b"":
            return self
        return super().getChild(path, request)

    def render_GET(self, request: Request) -> bytes:  # noqa: N802
        request.setHeader(b"content-type", b"text/html; charset=utf-8")
        return home_page(self.app, base_url(self.app, request))


class Health(Resource):
    """``/health``: 200 while the server accepts work (for load balancers)."""

    isLeaf = True

    def render_GET(self, request: Request) -> bytes:  # noqa: N802
        request.setHeader(b"content-type", b"text/plain")
        return b"ok\n"


class SciportalRequest(Request):
    """A request whose multipart bodies we parse ourselves.

    Twisted's built-in multipart parsing answers 400 on bodies that real
    clients send (STILTS quotes its boundary); resources read the body with
    :func:`sciportal.web.uws.parse_form` instead.
    """

    _multipart_type: Sequence[bytes] | None = None

    def requestReceived(self, command: bytes, path: bytes, version: bytes) -> None:  # noqa: N802
        ctype = self.requestHeaders.getRawHeaders(b"content-type")
        if ctype and ctype[0].lower().lstrip().startswith(b"multipart/"):
            self._multipart_type = ctype
            self.requestHeaders.setRawHeaders(b"content-type", [b"application/octet-stream"])
        super().requestReceived(command, path, version)

    def process(self) -> None:
        if self._multipart_type is not None:
            self.requestHeaders.setRawHeaders(b"content-type", self._multipart_type)
        super().process()

    def render(self, resrc: Resource) -> None:
        # IVOA SoftID: name the VO software, not only the HTTP library
        self.setHeader(b"server", SERVER_HEADER)
        super().render(resrc)


class TrackingSite(Site):
    """A Site that knows how many responses are in flight, for graceful shutdown."""

    def __init__(self, resource: Resource, **kwargs: Any) -> None:
        super().__init__(resource, **kwargs)
        self.in_flight = 0
        self._idle: list[defer.Deferred[None]] = []
        self._transports: list[Any] = []

    def buildProtocol(self, addr: Any) -> Any:  # noqa: N802
        channel = super().buildProtocol(addr)
        self._transports = [t for t in self._transports if t.connected]
        original = channel.makeConnection

        def make_connection(transport: Any) -> None:
            self._transports.append(transport)
            original(transport)

        channel.makeConnection = make_connection
        return channel

    def unsent_bytes(self) -> int:
        """Bytes finished responses still hold in socket buffers (slow clients)."""
        total = 0
        for t in self._transports:
            if getattr(t, "connected", False):
                total += len(getattr(t, "dataBuffer", b"")) + getattr(t, "_tempDataLen", 0)
        return total

    def getResourceFor(self, request: Request) -> Any:  # noqa: N802
        self.in_flight += 1
        request.notifyFinish().addBoth(self._done)
        return super().getResourceFor(request)

    def _done(self, _: Any) -> None:
        self.in_flight -= 1
        if self.in_flight == 0:
            waiting, self._idle = self._idle, []
            for d in waiting:
                d.callback(None)

    def drained(self) -> defer.Deferred[None]:
        """Fires when no response is in flight."""
        d: defer.Deferred[None] = defer.Deferred()
        if self.in_flight == 0:
            d.callback(None)
        else:
            self._idle.append(d)
        return d


def build_site(app: App) -> TrackingSite:
    """The resource tree of the whole server."""
    from sciportal.web.auth import owner_of
    from sciportal.web.errors import render_error
    from sciportal.web.uws import JobListResource

    async_jobs = JobListResource(
        app.jobs,
        "tap",
        owner_of=owner_of,
        render_error=render_error,
        base_url=app.config["server.base_url"] or None,
    )
    tap = TapRoot(app, async_jobs)
    root = Root(app, {b"tap": tap, b"health": Health()})
    site = TrackingSite(root, requestFactory=SciportalRequest)
    site.displayTracebacks = False
    return site


def serve(app: App, quiet: bool = False) -> int:
    """Run the server until SIGTERM/SIGINT; in-flight responses get a grace period."""
    site = build_site(app)
    reactor.suggestThreadPoolSize(32)
    port = reactor.listenTCP(app.config["server.port"], site, interface=app.config["server.host"])
    host = port.getHost()
    url = f"http://{host.host}:{host.port}"
    grace = app.config["server.shutdown_grace"]

    # old versions of re-published tables go once no query of ours reads them
    def sweep() -> defer.Deferred[Any]:
        d = threads.deferToThread(app.cleanup_retired)
        return d.addErrback(lambda f: log.error("retired-version sweep: %s", f.getErrorMessage()))

    task.LoopingCall(sweep).start(RETIRED_SWEEP_S, now=True)

    def drain() -> defer.Deferred[Any]:
        log.info("shutting down: no new connections, waiting for %d responses", site.in_flight)
        stopped = defer.maybeDeferred(port.stopListening)
        d = site.drained()

        def expire() -> None:
            if not d.called:
                d.callback(None)

        timeout = reactor.callLater(grace, expire)

        def done(_: Any) -> None:
            if timeout.active():
                timeout.cancel()

        d.addBoth(done)

        def flushed(_: Any) -> defer.Deferred[None]:
            # finished responses may still sit in socket buffers of slow clients
            waiting: defer.Deferred[None] = defer.Deferred()
            deadline = reactor.seconds() + grace

            def poll() -> None:
                if site.unsent_bytes() == 0 or reactor.seconds() > deadline:
                    waiting.callback(None)
                else:
                    reactor.callLater(0.05, poll)

            poll()
            return waiting

        d.addCallback(flushed)
        # running jobs end now (ERROR, "server shut down"), which also wakes WAITs
        jobs_stopped = threads.deferToThread(app.jobs.shutdown)
        return defer.gatherResults([stopped, jobs_stopped, d])

    reactor.addSystemEventTrigger("before", "shutdown", drain)
    print(f"sciportal listening on {url}/", flush=True)
    if not quiet:
        names = [t.name for t in app.tables_for(None) if t.schema.lower() != "tap_schema"]
        first = "demo.coadd" if "demo.coadd" in names else (names or ["TAP_SCHEMA.tables"])[0]
        print(
            f"  TAP service: {url}/tap\n"
            f"  pyvo:   {shlex.quote(sys.executable)} -c \"import pyvo; print(pyvo.dal.TAPService('{url}/tap')"
            f".run_sync('{example_query(first)}').to_table())\"\n"
            f"  TOPCAT: VO > Table Access Protocol (TAP) Query, TAP URL {url}/tap\n"
            "  Stop with Ctrl-C.",
            flush=True,
        )
    reactor.run()
    sys.stdout.flush()
    return 0

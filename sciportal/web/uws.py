"""Twisted resources of a UWS 1.1 job list (e.g. ``/tap/async``) and its jobs.

Thin web layer (STYLE.md point 1): each handler reads the request in the
reactor, does one :class:`~sciportal.jobs.scheduler.JobManager` call in a
worker thread (``deferToThread``; SQLite and file I/O never run on the
reactor), and renders the answer.  Blocking ``WAIT`` requests do not hold a
thread at all: they subscribe to the job's changes and a reactor timer.

Parameters and uploads
----------------------
Job parameters come from the query string and from the body, either
``application/x-www-form-urlencoded`` or ``multipart/form-data``; names are
case-insensitive and handed over lower-cased.  In a multipart body, a part
with a file name (or a Content-Type other than text/plain) is an *inline
upload*: its bytes are stored in the job's upload folder under the part name
and reach the runner as ``ctx.uploads[name]`` (a Path), which is what a
``param:NAME`` URI (UWS 1.1 2.2.3.1.1, TAP UPLOAD) refers to.  All other
values go to the ``parse_params`` hook as ``dict[str, list[str]]``; it
validates them and returns the job's ``dict[str, str]`` parameters (or raises
a :class:`~sciportal.errors.UsageError`).  UWS control parameters are taken
out first: PHASE (RUN starts the job at creation), EXECUTIONDURATION and
DESTRUCTION.  RUNID is kept as a parameter and also becomes the job's runId.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from email.message import Message
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, quote

from twisted.internet import defer, threads
from twisted.internet import reactor as _reactor
from twisted.python.failure import Failure
from twisted.web.iweb import IRequest
from twisted.web.resource import Resource
from twisted.web.server import NOT_DONE_YET
from twisted.web.static import File

from sciportal.errors import NotFoundError, SciportalError, UsageError
from sciportal.jobs.model import Job, Phase
from sciportal.jobs.scheduler import JobManager
from sciportal.web import uws_xml

log = logging.getLogger(__name__)
#: The global reactor, untyped: its zope interfaces confuse mypy.
reactor: Any = _reactor

ParamParser = Callable[[dict[str, list[str]]], dict[str, str]]
OwnerOf = Callable[[IRequest], str | None]
ErrorRenderer = Callable[[IRequest, Exception], bytes]

XML_TYPE = "text/xml; charset=UTF-8"
TEXT_TYPE = "text/plain; charset=UTF-8"
#: Names the UWS layer consumes itself; never passed to ``parse_params``.
CONTROL_PARAMS = ("phase", "executionduration", "destruction", "action")


class MethodNotAllowed(UsageError):
    """This resource does not accept that HTTP method."""

    http_status = 405


# -- request parsing -----------------------------------------------------------


def _header_params(value: str) -> Message:
    msg = Message()
    msg["content-type"] = value
    return msg


def parse_form(
    query: bytes, content_type: str | None, body: bytes
) -> tuple[dict[str, list[str]], dict[str, bytes]]:
    """Values (lower-cased names) and inline uploads (names as sent) of a request.

    ``query`` is the URL's query string; the body is read for urlencoded and
    multipart content types and ignored otherwise.
    """
    values: dict[str, list[str]] = {}
    files: dict[str, bytes] = {}

    def add(name: str, value: str) -> None:
        values.setdefault(name.lower(), []).append(value)

    for name, value in parse_qsl(query.decode("latin-1"), keep_blank_values=True):
        add(name, value)
    ctype = (content_type or "").split(";", 1)[0].strip().lower()
    if ctype == "application/x-www-form-urlencoded":
        for name, value in parse_qsl(body.decode("latin-1"), keep_blank_values=True):
            add(name, value)
    elif ctype == "multipart/form-data":
        boundary = _header_params(content_type or "").get_param("boundary")
        if not isinstance(boundary, str) or not boundary:
            raise UsageError("multipart/form-data without a boundary")
        for name, filename, part_type, data in _multipart_parts(body, boundary.encode("latin-1")):
            is_text = part_type is None or part_type.split(";")[0].strip().lower() == "text/plain"
            if filename is not None or not is_text:
                files[name] = data
            else:
                add(name, data.decode("utf-8", errors="replace"))
    return values, files


def _multipart_parts(
    body: bytes, boundary: bytes
) -> list[tuple[str, str | None, str | None, bytes]]:
    """(name, filename, content type, bytes) of each part of a multipart body."""
    delimiter = b"\r\n--" + boundary
    chunks = (b"\r\n" + body).split(delimiter)
    parts = []
    for chunk in chunks[1:]:
        if chunk.startswith(b"--"):
            break
        head, sep, data = chunk.partition(b"\r\n\r\n")
        if not sep:
            raise UsageError("malformed multipart/form-data body")
        headers: dict[str, str] = {}
        for line in head.split(b"\r\n"):
            key, colon, value = line.decode("utf-8", errors="replace").partition(":")
            if colon:
                headers[key.strip().lower()] = value.strip()
        disposition = Message()
        disposition["content-disposition"] = headers.get("content-disposition", "")
        name = disposition.get_param("name", header="content-disposition")
        filename = disposition.get_param("filename", header="content-disposition")
        if not isinstance(name, str):
            raise UsageError("a multipart/form-data part has no name")
        parts.append(
            (
                name,
                filename if isinstance(filename, str) else None,
                headers.get("content-type"),
                data,
            )
        )
    return parts


def default_parse_params(values: dict[str, list[str]]) -> dict[str, str]:
    """The last value of each name; repeated UPLOAD values are joined with ';' (TAP syntax)."""
    params = {}
    for name, vals in values.items():
        if not vals:
            continue
        params[name] = ";".join(vals) if name == "upload" else vals[-1]
    return params


def default_render_error(request: Any, exc: Exception) -> bytes:
    """A DALI error document with the error's HTTP status (used when no hook is given)."""
    if isinstance(exc, SciportalError):
        status, message = exc.http_status, exc.message
    else:
        log.error("internal error in UWS resource", exc_info=exc)
        status, message = 500, f"internal error: {exc}"
    request.setResponseCode(status)
    request.setHeader(b"content-type", b"application/x-votable+xml")
    return uws_xml.error_votable(message)


def _single(values: Mapping[str, list[str]], name: str) -> str | None:
    vals = values.get(name)
    return vals[-1] if vals else None


def _parse_phase_action(text: str) -> str:
    action = text.strip().upper()
    if action not in ("RUN", "ABORT"):
        raise UsageError(f"PHASE must be RUN or ABORT, not {text!r}")
    return action


def _parse_duration(text: str) -> int:
    try:
        return int(text.strip())
    except ValueError:
        raise UsageError(f"EXECUTIONDURATION must be an integer (seconds), not {text!r}") from None


def _parse_time(text: str, name: str) -> Any:
    try:
        return uws_xml.parse_uws_time(text)
    except ValueError:
        raise UsageError(
            f"{name} must be an ISO 8601 time like 2030-01-01T00:00:00Z, not {text!r}"
        ) from None


# -- responses ------------------------------------------------------------------


@dataclass
class Reply:
    """What a worker-thread handler hands back to the reactor to write."""

    body: bytes = b""
    content_type: str = TEXT_TYPE
    status: int = 200
    location: str | None = None
    file: Path | None = None


def _redirect(url: str) -> Reply:
    return Reply(body=f"See {url}\n".encode(), status=303, location=url)


def _gone(request: Any) -> bool:
    return bool(request.finished or getattr(request, "_disconnected", False))


@dataclass(frozen=True)
class _Urls:
    """Absolute URLs of one request's job list and job, computed in the reactor."""

    job_list: str
    job_id: str | None = None

    def job(self, job_id: str | None = None) -> str:
        return f"{self.job_list}/{quote(job_id or self.job_id or '', safe='')}"

    def result(self, job_id: str, result_id: str) -> str:
        return f"{self.job(job_id)}/results/{quote(result_id, safe='')}"

    def upload(self, job_id: str, name: str) -> str:
        return f"{self.job(job_id)}/parameters/{quote(name, safe='')}"


class JobListResource(Resource):
    """A UWS 1.1 job list for one job type, with its jobs as children.

    Parameters
    ----------
    manager
        The job manager (it must have a runner for ``job_type``).
    job_type
        Jobs created here get this type; jobs of other types are not found here.
    parse_params
        Validates posted values (see module docstring); default: last value wins.
    owner_of
        The authenticated user of a request, None for anonymous.
    render_error
        Sets status and content type on the request, returns the error body.
    base_url
        Public URL of the server root (behind proxies); default: from the Host header.
    """

    def __init__(
        self,
        manager: JobManager,
        job_type: str,
        parse_params: ParamParser | None = None,
        owner_of: OwnerOf | None = None,
        render_error: ErrorRenderer | None = None,
        base_url: str | None = None,
    ) -> None:
        super().__init__()
        self.manager = manager
        self.job_type = job_type
        self.parse_params = parse_params or default_parse_params
        self.owner_of: OwnerOf = owner_of or (lambda request: None)
        self.render_error: ErrorRenderer = render_error or default_render_error
        self.base_url = base_url.rstrip("/") if base_url else None

    # -- plumbing shared with the job resources ---------------------------

    def root_url(self, request: Any) -> str:
        """Scheme, host and any configured prefix of this server."""
        if self.base_url:
            return self.base_url
        raw_host = request.getHeader(b"host")
        host = raw_host.decode("latin-1") if isinstance(raw_host, bytes) else raw_host
        if not host:
            addr = request.getHost()
            host = f"{addr.host}:{addr.port}"
        scheme = "https" if request.isSecure() else "http"
        return f"{scheme}://{host}"

    def urls(self, request: Any, segments: Sequence[bytes], job_id: str | None = None) -> _Urls:
        path = "/".join(quote(s.decode("utf-8", errors="replace")) for s in segments if s)
        return _Urls(job_list=f"{self.root_url(request)}/{path}", job_id=job_id)

    def respond(self, request: Any, work: Callable[[], Reply]) -> Any:
        """Run ``work`` in a thread and write its reply (or error) from the reactor."""
        d = threads.deferToThread(work)
        d.addCallbacks(
            lambda reply: self.write_reply(request, reply), lambda f: self.fail(request, f)
        )
        d.addErrback(lambda f: log.error("UWS response failed: %s", f.getTraceback()))
        return NOT_DONE_YET

    def write_reply(self, request: Any, reply: Reply) -> None:
        if _gone(request):
            return
        if reply.file is not None:
            resource = File(str(reply.file))
            resource.type = reply.content_type
            resource.encoding = None
            body = resource.render(request)
            if body is not NOT_DONE_YET:
                request.write(body)
                request.finish()
            return
        request.setResponseCode(reply.status)
        request.setHeader(b"content-type", reply.content_type.encode())
        request.setHeader(b"cache-control", b"no-cache")
        if reply.location is not None:
            request.setHeader(b"location", reply.location.encode())
        if request.method != b"HEAD":
            request.write(reply.body)
        request.finish()

    def fail(self, request: Any, failure: Failure) -> None:
        if _gone(request):
            return
        exc = failure.value
        if not isinstance(exc, SciportalError):
            log.error("UWS request failed: %s", failure.getTraceback())
        body = self.render_error(request, exc if isinstance(exc, Exception) else Exception(exc))
        request.write(body)
        request.finish()

    def read_form(
        self, request: Any
    ) -> Callable[[], tuple[dict[str, list[str]], dict[str, bytes]]]:
        """Capture what the form parser needs in the reactor; parse later in a thread."""
        uri: bytes = request.uri
        query = uri.split(b"?", 1)[1] if b"?" in uri else b""
        raw_type = request.getHeader(b"content-type")
        ctype = raw_type.decode("latin-1") if isinstance(raw_type, bytes) else raw_type
        content = request.content

        def parse() -> tuple[dict[str, list[str]], dict[str, bytes]]:
            body = b""
            if content is not None and request.method in (b"POST", b"PUT"):
                content.seek(0)
                body = content.read()
            return parse_form(query, ctype, body)

        return parse

    # -- Twisted API -------------------------------------------------------

    def getChild(self, path: bytes, request: Any) -> Resource:  # noqa: N802 (Twisted API)
        if path == b"":
            return self
        return JobResource(self, path.decode("utf-8", errors="replace"))

    def render_GET(self, request: Any) -> Any:  # noqa: N802
        """The job list, filtered by PHASE (repeatable), AFTER and LAST."""
        owner = self.owner_of(request)
        urls = self.urls(request, request.prepath)
        parse = self.read_form(request)

        def work() -> Reply:
            values, _ = parse()
            phases = None
            if values.get("phase"):
                try:
                    phases = [Phase(v.strip().upper()) for v in values["phase"]]
                except ValueError:
                    raise UsageError(
                        f"PHASE must be one of {', '.join(p.value for p in Phase)}"
                    ) from None
            after_text = _single(values, "after")
            after = _parse_time(after_text, "AFTER") if after_text else None
            last_text = _single(values, "last")
            last = None
            if last_text is not None:
                try:
                    last = int(last_text)
                except ValueError:
                    raise UsageError(
                        f"LAST must be a positive integer, not {last_text!r}"
                    ) from None
            jobs = self.manager.list(owner, phases, after, last, job_type=self.job_type)
            return Reply(uws_xml.job_list_xml(jobs, lambda j: urls.job(j.job_id)), XML_TYPE)

        return self.respond(request, work)

    def render_POST(self, request: Any) -> Any:  # noqa: N802
        """Create a job from the posted parameters; 303 to it (PHASE=RUN also starts it)."""
        owner = self.owner_of(request)
        urls = self.urls(request, request.prepath)
        parse = self.read_form(request)

        def work() -> Reply:
            values, files = parse()
            phase = _single(values, "phase")
            action = _parse_phase_action(phase) if phase else None
            duration = _single(values, "executionduration")
            destruction = _single(values, "destruction")
            seconds = _parse_duration(duration) if duration is not None else None
            when = _parse_time(destruction, "DESTRUCTION") if destruction else None
            for name in CONTROL_PARAMS:
                values.pop(name, None)
            params = self.parse_params(values)
            job = self.manager.create(
                self.job_type, owner, params, run_id=params.get("runid"), uploads=files
            )
            if seconds is not None:
                self.manager.set_execution_duration(job.job_id, owner, seconds)
            if when is not None:
                self.manager.set_destruction(job.job_id, owner, when)
            if action == "RUN":
                self.manager.run(job.job_id, owner)
            elif action == "ABORT":
                self.manager.abort(job.job_id, owner)
            return _redirect(urls.job(job.job_id))

        return self.respond(request, work)


class JobResource(Resource):
    """One job, ``/{jobs}/{job-id}``, and its children (handled from ``postpath``)."""

    isLeaf = True

    def __init__(self, jobs: JobListResource, job_id: str) -> None:
        super().__init__()
        self.jobs = jobs
        self.job_id = job_id

    @property
    def manager(self) -> JobManager:
        return self.jobs.manager

    def _context(self, request: Any) -> tuple[str | None, _Urls, list[str]]:
        owner = self.jobs.owner_of(request)
        urls = self.jobs.urls(request, request.prepath[:-1], self.job_id)
        child = [p.decode("utf-8", errors="replace") for p in request.postpath]
        while child and child[-1] == "":
            child.pop()
        return owner, urls, child

    def _job(self, owner: str | None) -> Job:
        return self.manager.get(self.job_id, owner, job_type=self.jobs.job_type)

    def _upload_urls(self, job: Job, urls: _Urls) -> dict[str, str]:
        return {n: urls.upload(job.job_id, n) for n in self.manager.upload_names(job.job_id)}

    def _job_reply(self, owner: str | None, urls: _Urls) -> Reply:
        job = self._job(owner)
        body = uws_xml.job_xml(
            job, lambda r: urls.result(job.job_id, r.id), self._upload_urls(job, urls)
        )
        return Reply(body, XML_TYPE)

    # -- GET ------------------------------------------------------------------

    def render_GET(self, request: Any) -> Any:  # noqa: N802
        owner, urls, child = self._context(request)
        if not child:
            return self._render_job(request, owner, urls)
        name = child[0].lower()
        rest = child[1:]

        def work() -> Reply:
            job = self._job(owner)
            if name == "phase" and not rest:
                return Reply(job.phase.value.encode())
            if name == "quote" and not rest:
                text = uws_xml.format_uws_time(job.quote) if job.quote else ""
                return Reply(text.encode())
            if name == "executionduration" and not rest:
                return Reply(str(job.execution_duration).encode())
            if name == "destruction" and not rest:
                return Reply(uws_xml.format_uws_time(job.destruction).encode())
            if name == "owner" and not rest:
                return Reply((job.owner or "").encode())
            if name == "runid" and not rest:
                return Reply((job.run_id or "").encode())
            if name in ("creationtime", "starttime", "endtime") and not rest:
                value = {
                    "creationtime": job.creation_time,
                    "starttime": job.start_time,
                    "endtime": job.end_time,
                }[name]
                return Reply((uws_xml.format_uws_time(value) if value else "").encode())
            if name == "error" and not rest:
                if job.error is None:
                    raise NotFoundError(f"job {job.job_id} has no error")
                return Reply(uws_xml.error_votable(job.error.message), "application/x-votable+xml")
            if name == "parameters" and not rest:
                body = uws_xml.parameters_xml(job, self._upload_urls(job, urls))
                return Reply(body, XML_TYPE)
            if name == "parameters" and len(rest) == 1:
                if rest[0].lower() in job.parameters:
                    return Reply(job.parameters[rest[0].lower()].encode())
                path = self.manager.upload_file(job.job_id, owner, rest[0])
                return Reply(file=path, content_type="application/octet-stream")
            if name == "results" and not rest:
                body = uws_xml.results_xml(job, lambda r: urls.result(job.job_id, r.id))
                return Reply(body, XML_TYPE)
            if name == "results" and len(rest) == 1:
                res, path = self.manager.result_file(job.job_id, owner, rest[0])
                return Reply(file=path, content_type=res.mime)
            raise NotFoundError(f"no resource {'/'.join(child)} in a UWS job")

        return self.jobs.respond(request, work)

    def _render_job(self, request: Any, owner: str | None, urls: _Urls) -> Any:
        parse = self.jobs.read_form(request)
        values, _ = parse()  # query string only: cheap, fine in the reactor
        wait_text = _single(values, "wait")
        if wait_text is None:
            return self.jobs.respond(request, lambda: self._job_reply(owner, urls))
        try:
            timeout = float(wait_text)
        except ValueError:
            return self.jobs.render_error(
                request, UsageError(f"WAIT must be a number of seconds, not {wait_text!r}")
            )
        phase_text = _single(values, "phase")
        try:
            phase = Phase(phase_text.strip().upper()) if phase_text else None
        except ValueError:
            return self.jobs.render_error(request, UsageError(f"unknown PHASE {phase_text!r}"))
        self._wait(request, owner, urls, timeout, phase)
        return NOT_DONE_YET

    def _wait(
        self, request: Any, owner: str | None, urls: _Urls, timeout: float, phase: Phase | None
    ) -> None:
        """UWS 1.1 blocking GET without holding a thread: a subscription and a timer."""
        woken: defer.Deferred[None] = defer.Deferred()

        def wake(_: object = None) -> None:
            if not woken.called:
                woken.callback(None)

        unsubscribe = self.manager.subscribe(
            self.job_id,
            lambda job: reactor.callFromThread(wake),
        )
        timer = reactor.callLater(self.manager.wait_timeout(timeout), wake)
        request.notifyFinish().addErrback(wake)
        state = {"failed": False}

        def check() -> bool:
            job = self._job(owner)
            return self.manager.should_block(job, phase)

        def checked(block: bool) -> None:
            if not block:
                wake()

        def check_failed(failure: Failure) -> None:
            state["failed"] = True
            wake()
            self.jobs.fail(request, failure)

        def done(_: object) -> None:
            unsubscribe()
            if timer.active():
                timer.cancel()
            if not state["failed"] and not _gone(request):
                self.jobs.respond(request, lambda: self._job_reply(owner, urls))

        woken.addCallback(done)
        threads.deferToThread(check).addCallbacks(checked, check_failed)

    # -- POST / DELETE --------------------------------------------------------

    def render_POST(self, request: Any) -> Any:  # noqa: N802
        owner, urls, child = self._context(request)
        parse = self.jobs.read_form(request)
        name = child[0].lower() if child else ""
        if len(child) > 1 or name not in (
            "",
            "phase",
            "executionduration",
            "destruction",
            "parameters",
        ):
            return self.jobs.render_error(
                request, MethodNotAllowed(f"POST is not allowed on {'/'.join(child)}")
            )

        def work() -> Reply:
            values, files = parse()
            self._job(owner)
            if name == "" and (_single(values, "action") or "").upper() == "DELETE":
                self.manager.delete(self.job_id, owner)
                return _redirect(urls.job_list)
            phase = _single(values, "phase") if name in ("", "phase") else None
            action = _parse_phase_action(phase) if phase else None
            if name == "phase" and action is None:
                raise UsageError("POST to phase needs PHASE=RUN or PHASE=ABORT")
            if name in ("", "executionduration") and "executionduration" in values:
                seconds = _parse_duration(_single(values, "executionduration") or "")
                self.manager.set_execution_duration(self.job_id, owner, seconds)
            elif name == "executionduration":
                raise UsageError("POST to executionduration needs EXECUTIONDURATION=seconds")
            if name in ("", "destruction") and "destruction" in values:
                text = _single(values, "destruction") or ""
                self.manager.set_destruction(self.job_id, owner, _parse_time(text, "DESTRUCTION"))
            elif name == "destruction":
                raise UsageError("POST to destruction needs DESTRUCTION=ISO 8601 time")
            if name in ("", "parameters"):
                for control in CONTROL_PARAMS:
                    values.pop(control, None)
                if values or files:
                    self._update_parameters(owner, values, files)
            if action == "RUN":
                self.manager.run(self.job_id, owner)
            elif action == "ABORT":
                self.manager.abort(self.job_id, owner)
            return _redirect(urls.job())

        return self.jobs.respond(request, work)

    def _update_parameters(
        self, owner: str | None, values: dict[str, list[str]], files: dict[str, bytes]
    ) -> None:
        """Merge posted values into the job's parameters and re-validate the whole set."""
        job = self._job(owner)
        merged = {name: [value] for name, value in job.parameters.items()}
        merged.update(values)
        params = self.jobs.parse_params(merged)
        self.manager.set_parameters(self.job_id, owner, params, uploads=files)

    def render_DELETE(self, request: Any) -> Any:  # noqa: N802
        owner, urls, child = self._context(request)
        if child:
            return self.jobs.render_error(
                request, MethodNotAllowed("only the job itself can be deleted")
            )

        def work() -> Reply:
            self.manager.delete(self.job_id, owner)
            return _redirect(urls.job_list)

        return self.jobs.respond(request, work)

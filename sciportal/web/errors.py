"""One renderer for every error a client sees: the DALI VOTable error document."""

from __future__ import annotations

import io
import logging

from twisted.web.server import Request

from sciportal.errors import SciportalError
from sciportal.formats import write_votable_error

log = logging.getLogger(__name__)


def error_status_and_message(exc: BaseException) -> tuple[int, str]:
    """HTTP status and user-facing message for any exception."""
    if isinstance(exc, SciportalError):
        return exc.http_status, exc.message
    log.exception("internal error", exc_info=exc)
    return 500, f"internal error: {type(exc).__name__}: {exc}"


def render_error(request: Request, exc: BaseException) -> bytes:
    """Set status and content type on ``request`` and return the error document."""
    status, message = error_status_and_message(exc)
    log.info(
        "%s %s -> %d: %s",
        request.method.decode(),
        request.uri.decode("latin-1")[:200],
        status,
        message,
    )
    buf = io.BytesIO()
    write_votable_error(buf, message)
    request.setResponseCode(status)
    request.setHeader(b"content-type", b"application/x-votable+xml")
    return buf.getvalue()

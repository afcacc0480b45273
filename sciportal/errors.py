"""Errors that know their protocol meaning.

Every error a client can see is one of these; the web layer renders any of
them as a DALI/VOTable error document (or a UWS error summary) with the
HTTP status given here, so no handler invents its own error format.
"""

from __future__ import annotations


class SciportalError(Exception):
    """Base class: a message meant for the person who sent the request."""

    http_status = 500
    #: UWS errorSummary type: "transient" (try again) or "fatal".
    uws_type = "fatal"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class UsageError(SciportalError):
    """The request itself is wrong: bad parameter, bad value, bad ADQL."""

    http_status = 400


class QueryError(UsageError):
    """The ADQL is not valid or refers to things that do not exist.

    ``line``/``column`` point at the offending place in the query when known.
    """

    def __init__(self, message: str, line: int | None = None, column: int | None = None) -> None:
        if line is not None and column is not None:
            message = f"{message} (line {line}, column {column})"
        super().__init__(message)
        self.line = line
        self.column = column


class UnsupportedError(UsageError):
    """Valid ADQL that this server (or the chosen engine) cannot run."""


class NotFoundError(SciportalError):
    """A job, table or resource that does not exist (or is not yours)."""

    http_status = 404


class AuthenticationError(SciportalError):
    """Credentials are missing or wrong."""

    http_status = 401


class PermissionDenied(SciportalError):
    """The user is known but may not do this."""

    http_status = 403


class LimitExceeded(UsageError):
    """A configured limit (upload size, quota, rows) was exceeded."""

    http_status = 413


class ExecutionTimeout(SciportalError):
    """A query or job ran past its allowed execution time."""

    http_status = 500
    uws_type = "transient"


class ServiceUnavailable(SciportalError):
    """The service is overloaded or shutting down; try again later."""

    http_status = 503
    uws_type = "transient"


class ConfigError(SciportalError):
    """Invalid configuration: start-up stops with this message."""


class DescriptorError(SciportalError):
    """A resource descriptor is malformed; the message names file, line and field."""


class IngestError(SciportalError):
    """A source file cannot be ingested; the message names the file and row/column."""

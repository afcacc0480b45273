"""Stream bytes produced in a worker thread to a Twisted response.

Formats write to a file-like object from a thread (off the reactor); this
object hands chunks to the reactor and blocks the worker while the client
is slow (an IPushProducer), so memory stays bounded for any result size.

A response ends in one of three ways: :meth:`ThreadedResponse.close` (a
complete body), :meth:`ThreadedResponse.abandon` (nothing was sent yet, so
the caller can still answer with an error status and document), or
:meth:`ThreadedResponse.abort` (the body is known to be truncated: the
connection is dropped without the final empty chunk, so HTTP/1.1 clients
report an incomplete read instead of a short but "successful" file; an
HTTP/1.0 client, which has no chunked encoding, cannot tell).
"""

from __future__ import annotations

import threading
import time
from typing import Any

from twisted.internet import reactor as _reactor
from twisted.internet.interfaces import IPushProducer
from twisted.web.server import Request
from zope.interface import implementer

CHUNK = 256 * 1024
reactor: Any = _reactor


class ClientGone(Exception):
    """The client closed the connection; stop producing."""


@implementer(IPushProducer)
class ThreadedResponse:
    """A writable binary stream whose bytes go to a Twisted request."""

    def __init__(self, request: Request, stall_timeout: float | None = None) -> None:
        self._request = request
        #: give up on a client that reads nothing for this long (seconds)
        self.stall_timeout = stall_timeout
        self._buffer = bytearray()
        self._writable = threading.Event()
        self._writable.set()
        self.gone = False
        self.closed = False
        self.bytes_sent = 0
        request.registerProducer(self, True)
        request.notifyFinish().addBoth(self._on_finish)

    # IPushProducer, called in the reactor thread
    def pauseProducing(self) -> None:  # noqa: N802 (Twisted interface)
        self._writable.clear()

    def resumeProducing(self) -> None:  # noqa: N802
        self._writable.set()

    def stopProducing(self) -> None:  # noqa: N802
        self.gone = True
        self._writable.set()

    def _on_finish(self, result: Any) -> None:
        if not getattr(self._request, "finished", False) or result is not None:
            self.gone = True
        self._writable.set()

    # file-like API, called in the worker thread
    def write(self, data: bytes | bytearray | memoryview) -> int:
        """Buffer ``data``; send full chunks, waiting while the client is slow."""
        if self.gone:
            raise ClientGone()
        self._buffer += data
        if len(self._buffer) >= CHUNK:
            self._send()
        return len(data)

    def flush(self) -> None:
        """Send what is buffered."""
        if self._buffer:
            self._send()

    def _send(self) -> None:
        started = time.monotonic()
        while not self._writable.wait(1.0):
            if self.gone:
                break
            if self.stall_timeout is not None and time.monotonic() - started > self.stall_timeout:
                # a client that stopped reading holds a query slot: drop it
                self.gone = True
                reactor.callFromThread(self._drop_in_reactor)
                break
        if self.gone:
            raise ClientGone()
        chunk = bytes(self._buffer)
        self._buffer.clear()
        self.bytes_sent += len(chunk)
        reactor.callFromThread(self._write_in_reactor, chunk)

    def _write_in_reactor(self, chunk: bytes) -> None:
        if not self.gone:
            self._request.write(chunk)

    def close(self) -> None:
        """Flush and finish the response (from the worker thread); idempotent."""
        if self.closed:
            return
        self.closed = True
        if not self.gone:
            self.flush()
        reactor.callFromThread(self._finish_in_reactor)

    def _unregister(self) -> None:
        if getattr(self._request, "channel", None) is not None:  # None once disconnected
            self._request.unregisterProducer()

    def _finish_in_reactor(self) -> None:
        self._unregister()
        if not self.gone and not self._request.finished:
            self._request.finish()

    def abandon(self) -> bool:
        """Drop the response if no byte has gone to the client yet (worker thread).

        Returns True when nothing was sent: the producer is unregistered, the
        buffer discarded and the request is free for an error response.
        """
        if self.closed or self.bytes_sent:
            return False
        self.closed = True
        self._buffer.clear()
        reactor.callFromThread(self._unregister)  # runs before any later reactor call
        return True

    def abort(self) -> None:
        """End a truncated response visibly: drop the connection (worker thread)."""
        if self.closed:
            return
        self.closed = True
        self._buffer.clear()
        reactor.callFromThread(self._drop_in_reactor)

    def _drop_in_reactor(self) -> None:
        """Close the connection at once, without finishing the response.

        No terminating chunk is sent and unsent data is discarded: the body is
        broken anyway. (``loseConnection`` would wait for a flush that a
        paused channel never completes.)
        """
        channel = getattr(self._request, "channel", None)
        transport = getattr(channel, "transport", None)
        self._unregister()
        if transport is not None and not self._request.finished:
            transport.abortConnection()

    def readable(self) -> bool:
        """File-like protocol: a response cannot be read."""
        return False

    def writable(self) -> bool:
        """File-like protocol."""
        return True

    def seekable(self) -> bool:
        """File-like protocol: a response cannot seek."""
        return False

    def tell(self) -> int:
        """Bytes written so far (some writers ask)."""
        return self.bytes_sent + len(self._buffer)

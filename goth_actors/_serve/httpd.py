"""A strict, small HTTP/1.1 server on asyncio's protocols, bounded in every dimension.

Why not ``http.server`` (a thread per connection) or a framework: a metadata server answers
GETs without bodies, and on asyncio's own protocols, with a parser that accepts exactly that and
nothing else, one core answers tens of thousands of them a second: about 2.5 times what
``ThreadingHTTPServer`` does with a fixed answer, with a p99 in milliseconds where it has
hundreds (``benchmarks/serve.py`` measures both), every limit in one place, no dependency.

Accepted: ``GET`` and ``HEAD``; origin-form targets (``/path?query``); HTTP/1.0 and 1.1;
keep-alive and pipelining (answers leave in request order); no request body. Refused, each
with an answer and then the connection closed (after `LINGER`, reading and discarding,
so that the client reads the answer rather than a reset); the grammar and its limits are in
`request`:

- a request head (request line and headers) over 8 KiB, or with more than 64 headers: 431;
- a target over 4 KiB: 414;
- a malformed request line or header line, a control character, a bare CR or LF, a folded
  header, a space before a colon, a second ``Host`` or ``Content-Length``, no ``Host`` in
  HTTP/1.1, an absolute-form or ``*`` target: 400;
- a body (``Content-Length`` above 0): 413; ``Transfer-Encoding``: 501;
- a version other than 1.0 and 1.1: 505;
- a connection over ``max_connections``: 503 at once.

Another method gets 405 with ``Allow: GET, HEAD`` (the connection stays open). A request head
must arrive within ``header_timeout`` of its first byte, and an idle keep-alive connection is
closed after ``keepalive_timeout``; one timer sweeps them all every ``sweep`` seconds (never a
timer per request). A client that does not read its answers stops being read from, and is cut
off at its deadline.

`HttpServer.shutdown` is graceful: it stops accepting, closes idle connections, lets every
answer in flight finish (each then closes its connection); after ``grace`` seconds an answer
still awaited is given up and answered 503 ``Shutting down``, and what is left after `LINGER`
more seconds is cut.
"""

from __future__ import annotations

import asyncio
import logging
from collections import Counter
from dataclasses import dataclass
from email.utils import formatdate
from functools import partial

from goth_actors._serve.request import (
    MAX_HEAD,
    REASONS,
    Answer,
    Handler,
    Malformed,
    Request,
    parse,
)

__all__ = ["LINGER", "HttpServer", "Limits"]

logger = logging.getLogger("goth_actors.serve")

LINGER = 2.0
"""Seconds a refused connection is still read from (and discarded) before it is closed."""


@dataclass(frozen=True, slots=True)
class Limits:
    """The server's bounds (see the module).

    Attributes:
        max_connections: Open connections at once; one more is answered 503 and closed.
        header_timeout: Seconds a request head may take to arrive, from its first byte.
        keepalive_timeout: Seconds an idle keep-alive connection stays open.
        sweep: Seconds between two sweeps of the timeouts (their precision).
    """

    max_connections: int = 512
    header_timeout: float = 10.0
    keepalive_timeout: float = 60.0
    sweep: float = 1.0


_METHOD_NOT_ALLOWED = Answer(
    405, b"Method not allowed\n", headers=(("Allow", "GET, HEAD"),), refused="method"
)


class HttpServer:
    """Serves ``handler`` over HTTP/1.1 (see the module).

    Args:
        handler: Answers each request (see `Handler`).
        limits: The bounds.
        headers: Headers sent with every answer, as ``(name, value)`` pairs.
    """

    def __init__(
        self,
        handler: Handler,
        *,
        limits: Limits,
        headers: tuple[tuple[str, str], ...] = (),
    ) -> None:
        self.handler = handler
        self.limits = limits
        self.connections: set[_Connection] = set()
        self.lingering: set[_Connection] = set()
        """Refused connections, read from and discarded until closed (see `linger`)."""
        self.counts: Counter[str] = Counter()
        """Answers given (``"answered"``) and refusals, by reason."""
        self.closing = False
        self.now = 0.0
        self._common = "".join(f"{name}: {value}\r\n" for name, value in headers).encode()
        self._date = b""
        self._listener: asyncio.Server | None = None
        self._sweeper: asyncio.TimerHandle | None = None
        self._drained: asyncio.Event | None = None
        self._tasks: set[asyncio.Task[Answer]] = set()

    async def start(self, host: str, port: int) -> tuple[str, int]:
        """Listens on ``host:port``; returns the address bound (``port`` 0 picks one).

        Raises:
            OSError: The address cannot be bound.
        """
        loop = asyncio.get_running_loop()
        self._drained = asyncio.Event()
        self._listener = await loop.create_server(
            partial(_Connection, self), host, port, backlog=1024, reuse_address=True
        )
        self._sweep()
        address = self._listener.sockets[0].getsockname()
        return str(address[0]), int(address[1])

    async def shutdown(self, grace: float) -> None:
        """Stops gracefully.

        Answers in flight finish (within ``grace`` seconds; those still awaited then are
        answered 503), idle connections close at once, nothing new is accepted.
        """
        self.closing = True
        if self._listener is not None:
            self._listener.close()
        for connection in list(self.connections):
            if not connection.busy:
                connection.close()
        if not await self._drain(grace) and self._tasks:
            unfinished = list(self._tasks)
            logger.warning("%d answer(s) still unfinished: answered 503", len(unfinished))
            for task in unfinished:
                task.cancel()  # each connection's callback answers 503 and closes
            await asyncio.wait(unfinished, timeout=LINGER)
            await self._drain(LINGER)  # the 503s leave
        for connection in [*self.connections, *self.lingering]:
            connection.abort()
        if self._sweeper is not None:
            self._sweeper.cancel()
        if self._listener is not None:
            await self._listener.wait_closed()

    async def _drain(self, seconds: float) -> bool:
        """Waits up to ``seconds`` for every connection to close; whether they all did."""
        if not self.connections or self._drained is None:
            return True
        try:
            await asyncio.wait_for(self._drained.wait(), seconds)
        except TimeoutError:
            return False
        return True

    def _sweep(self) -> None:
        loop = asyncio.get_running_loop()
        self.now = loop.time()
        self._date = formatdate(usegmt=True).encode()
        for connection in [*self.connections, *self.lingering]:
            if connection.busy or connection.deadline > self.now:
                continue
            if connection.closed or connection.writing_paused:
                connection.abort()  # a client that reads nothing keeps nothing open
            else:
                connection.close()
        self._sweeper = loop.call_later(self.limits.sweep, self._sweep)

    def linger(self, connection: _Connection) -> None:
        """Keeps a refused connection open a little longer, reading and discarding.

        So its client reads the refusal instead of a reset; closes it at once when too many
        linger already.
        """
        self.connections.discard(connection)
        if len(self.lingering) >= self.limits.max_connections:
            connection.close()
            return
        self.lingering.add(connection)
        connection.deadline = self.now + LINGER  # then cut

    def forget(self, connection: _Connection) -> None:
        """Called by a connection when it is lost."""
        self.lingering.discard(connection)
        self.connections.discard(connection)
        if self.closing and not self.connections and self._drained is not None:
            self._drained.set()

    def run(self, request: Request) -> Answer | asyncio.Task[Answer]:
        """The handler's answer to ``request``, or the task that will give it."""
        try:
            answer = self.handler(request)
        except Exception:
            logger.exception("internal error answering %s %s", request.method, request.path)
            return Answer(500, b"Internal Server Error\n", refused="internal")
        if isinstance(answer, Answer):
            return answer
        task = asyncio.ensure_future(answer)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    def encode(self, answer: Answer, *, head_only: bool, close: bool) -> bytes:
        """The bytes of ``answer``; counts it."""
        self.counts[answer.refused or "answered"] += 1
        status = answer.status
        parts = [
            f"HTTP/1.1 {status} {REASONS.get(status, 'Unknown')}\r\n".encode(),
            self._common,
            b"Date: ",
            self._date,
            f"\r\nContent-Type: {answer.content_type}\r\n".encode(),
            b"Content-Length: %d\r\n" % len(answer.body),
        ]
        parts.extend(f"{name}: {value}\r\n".encode() for name, value in answer.headers)
        parts.append(b"Connection: close\r\n\r\n" if close else b"\r\n")
        if not head_only:
            parts.append(answer.body)
        return b"".join(parts)


class _Connection(asyncio.Protocol):
    """One client connection: reads heads, answers in order, enforces the limits."""

    def __init__(self, server: HttpServer) -> None:
        self.server = server
        self.transport: asyncio.Transport | None = None
        self.buffer = bytearray()
        self.busy = False  # an answer is being awaited; later requests wait in the buffer
        self.closed = False
        self.writing_paused = False
        self.deadline = 0.0

    # --- asyncio's callbacks ------------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        server = self.server
        if server.closing or len(server.connections) >= server.limits.max_connections:
            self._refuse(503, "connections")
            return
        server.connections.add(self)
        self.deadline = server.now + server.limits.header_timeout

    def connection_lost(self, exc: Exception | None) -> None:  # noqa: ARG002
        self.closed = True
        self.server.forget(self)

    def data_received(self, data: bytes) -> None:
        if self.closed:
            return
        if not self.buffer:
            self.deadline = self.server.now + self.server.limits.header_timeout
        self.buffer += data
        if self.busy or self.writing_paused:
            if len(self.buffer) > MAX_HEAD and self.transport is not None:
                self.transport.pause_reading()  # resumed when the answer leaves
            return
        self._process()

    def pause_writing(self) -> None:
        self.writing_paused = True
        if self.transport is not None:
            self.transport.pause_reading()

    def resume_writing(self) -> None:
        self.writing_paused = False
        if self.transport is not None and not self.closed:
            self.transport.resume_reading()
            self._process()

    # --- requests -----------------------------------------------------------------------------

    def _process(self) -> None:
        buffer = self.buffer
        while buffer and not (self.busy or self.writing_paused or self.closed):
            while buffer.startswith(b"\r\n"):  # stray line ends between requests
                del buffer[:2]
            end = buffer.find(b"\r\n\r\n")
            if end < 0:
                if len(buffer) > MAX_HEAD:
                    self._refuse(431, "too_large")
                return
            if end > MAX_HEAD:
                self._refuse(431, "too_large")
                return
            head = bytes(buffer[:end])
            del buffer[: end + 4]
            try:
                request = parse(head)
            except Malformed as malformed:
                self._refuse(malformed.status, malformed.reason)
                return
            except Exception:  # a bug in the parser is still the client's 400, not a crash
                logger.debug("unexpected error parsing a request head", exc_info=True)
                self._refuse(400, "malformed")
                return
            if request.method not in ("GET", "HEAD"):
                self._answer(request, _METHOD_NOT_ALLOWED)
                continue
            outcome = self.server.run(request)
            if isinstance(outcome, Answer):
                self._answer(request, outcome)
            else:
                self.busy = True
                outcome.add_done_callback(partial(self._answered, request))
        if not buffer and not self.busy:
            self.deadline = self.server.now + self.server.limits.keepalive_timeout

    def _answered(self, request: Request, task: asyncio.Task[Answer]) -> None:
        self.busy = False
        if self.closed:
            return
        if task.cancelled():
            answer = Answer(503, b"Shutting down\n", refused="shutdown")
        elif task.exception() is not None:
            error = task.exception()
            logger.error("internal error answering %s: %s", request.path, type(error).__name__)
            answer = Answer(500, b"Internal Server Error\n", refused="internal")
        else:
            answer = task.result()
        self._answer(request, answer)
        if self.transport is not None and not (self.closed or self.writing_paused):
            self.transport.resume_reading()
            self._process()

    def _answer(self, request: Request, answer: Answer) -> None:
        close = not request.keep_alive or self.server.closing
        self._send(answer, head_only=request.method == "HEAD", close=close)

    def _refuse(self, status: int, reason: str) -> None:
        """Answers ``status``, then lingers.

        Reads and discards what the client still sends, until it closes or `LINGER` seconds
        pass (closing at once with unread data would reset the connection, and the client could
        lose the answer).
        """
        assert self.transport is not None
        text = REASONS.get(status, "Bad Request")
        answer = Answer(status, f"{text}\n".encode(), refused=reason)
        self.transport.write(self.server.encode(answer, head_only=False, close=True))
        self.closed = True
        self.buffer.clear()
        if not self.transport.can_write_eof():
            self.close()
            return
        self.transport.write_eof()
        self.transport.resume_reading()
        self.server.linger(self)

    def _send(self, answer: Answer, *, head_only: bool, close: bool) -> None:
        assert self.transport is not None
        self.transport.write(self.server.encode(answer, head_only=head_only, close=close))
        if close:
            self.close()

    def close(self) -> None:
        """Closes the connection once what was written has been sent.

        It is cut after `LINGER` seconds if the client does not read it.
        """
        self.closed = True
        self.deadline = self.server.now + LINGER
        if self.transport is not None:
            self.transport.close()

    def abort(self) -> None:
        """Cuts the connection at once."""
        self.closed = True
        if self.transport is not None:
            self.transport.abort()

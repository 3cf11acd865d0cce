"""Server plumbing for the Google emulator: sockets, threads and HTTP framing, nothing Google.

An `HttpServer` owns one listening socket, one accept thread and one daemon thread per
connection. Every request is parsed into a `RecordedRequest` and handed to a ``respond``
callable, whose `Response` is written back with ``Connection: close`` (one request per
connection, so a server that is `down` really refuses every new request; clients that keep
connections alive, as google-auth's and the tests' do, open another).

- A connection has one deadline for its request (TLS handshake, head and body):
  `REQUEST_DEADLINE` seconds from its accept, however the client spreads its bytes; each read
  waits only for the time left. Writing the answer has a deadline of its own.
- At most `MAX_CONNECTIONS` connections are served at once (a thread each); one more is
  answered 503 and closed by the accept thread.

- `HttpServer.down` closes the listening socket; `HttpServer.up` listens again on
  the same port (``SO_REUSEADDR``). Connections already accepted are left alone.
- `HttpServer.wait` sleeps for a delay but returns at once when the server closes, so a
  slow answer never holds up `HttpServer.close`.
- `HttpServer.close` stops accepting, wakes every wait, shuts down every open connection
  (both ways, so a thread blocked reading a request or writing to a client that never reads
  is unblocked at once) and joins the threads it started, all within one short deadline.
"""

from __future__ import annotations

import contextlib
import io
import selectors
import socket
import ssl
import struct
import threading
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from goth_actors.testing._emulator_messages import RecordedRequest, Response, parse_form

__all__ = [
    "MAX_CONNECTIONS",
    "MAX_REQUEST_BYTES",
    "REQUEST_DEADLINE",
    "Classifier",
    "HttpServer",
    "Responder",
]

MAX_REQUEST_BYTES = 1024 * 1024
"""Request bodies larger than this (1 MiB) are answered 413 without being read."""

MAX_CONNECTIONS = 256
"""Connections served at once (each on a thread); one more is answered 503 and closed."""

REQUEST_DEADLINE = 10.0
"""Seconds from a connection's accept by which its whole request must have arrived."""

_WRITE_TIMEOUT = 5.0
"""Seconds an answer may take to be written (to a client that reads slowly or not at all)."""

_BUSY_TEXT = b"The emulator has too many clients.\n"
_BUSY = (
    b"HTTP/1.1 503 Service Unavailable\r\nContent-Type: text/plain\r\n"
    b"Content-Length: %d\r\nConnection: close\r\n\r\n%s" % (len(_BUSY_TEXT), _BUSY_TEXT)
)

_CLOSE_TIMEOUT = 1.0
"""Seconds `HttpServer.close` waits, in all, for the connection threads to end."""

Responder = Callable[[RecordedRequest], Response]
Classifier = Callable[[str], str]


class HttpServer:
    """A threaded HTTP/1.1 server that answers each request with ``respond``.

    Args:
        host: The address to listen on.
        port: The port to listen on; ``0`` picks a free one at `start`.
        respond: Called on a connection thread for every request; must be thread-safe.
        classify: Maps a request path to the ``endpoint`` it is recorded under.
        tls: A server-side TLS context: every connection is TLS (mutual, if the context asks
            for client certificates), with a handshake bounded like a request's read.
    """

    def __init__(
        self,
        host: str,
        port: int,
        respond: Responder,
        classify: Classifier,
        tls: ssl.SSLContext | None = None,
    ) -> None:
        self._tls = tls
        self._host = host
        self._port = port
        self._respond = respond
        self._classify = classify
        self._family = socket.AF_INET6 if ":" in host else socket.AF_INET
        self._switch = threading.Lock()  # serialises start / down / up / close
        self._lock = threading.Lock()  # guards _connections
        self._connections: dict[threading.Thread, socket.socket] = {}
        self._closing = threading.Event()
        self._started = False
        self._accepting: tuple[socket.socket, socket.socket, threading.Thread] | None = None

    @property
    def port(self) -> int:
        """The port in use; raises ``RuntimeError`` before `start`."""
        if not self._started:
            raise RuntimeError("the emulator has not been started")
        return self._port

    @property
    def is_started(self) -> bool:
        """Whether `start` has been called."""
        return self._started

    @property
    def is_up(self) -> bool:
        """Whether the server is accepting connections."""
        return self._accepting is not None

    def start(self) -> None:
        """Binds the port and starts accepting connections."""
        with self._switch:
            if self._started or self._closing.is_set():
                raise RuntimeError("an emulator can be started only once")
            self._listen()
            self._started = True

    def down(self) -> None:
        """Stops accepting: new connections are refused until `up`."""
        with self._switch:
            self._stop_accepting()

    def up(self) -> None:
        """Accepts connections again, on the same port."""
        with self._switch:
            if not self._started or self._closing.is_set():
                raise RuntimeError("the emulator is not running")
            if self._accepting is None:
                self._listen()

    def wait(self, seconds: float) -> None:
        """Sleeps ``seconds``, or less if the server is closed meanwhile."""
        self._closing.wait(seconds)

    def close(self) -> None:
        """Stops the server promptly; idempotent.

        Stops accepting (the accept thread is joined), wakes every `wait`, and shuts
        down every open connection both ways: a handler reading a request, or writing an
        answer to a client that never reads, fails at once, and an answer not yet fully sent
        is cut off. It then waits for the connection threads, at most one second in all;
        they are daemon threads, so one still inside ``respond`` after that (a responder
        that blocks) cannot keep the process alive, and ends when ``respond`` returns.
        """
        with self._switch:
            self._closing.set()
            self._stop_accepting()
        with self._lock:
            connections = dict(self._connections)
        for connection in connections.values():
            with contextlib.suppress(OSError):
                connection.shutdown(socket.SHUT_RDWR)
        deadline = time.monotonic() + _CLOSE_TIMEOUT
        for thread in connections:
            thread.join(max(0.0, deadline - time.monotonic()))

    def _listen(self) -> None:
        listener = socket.socket(self._family, socket.SOCK_STREAM)
        try:
            listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            listener.bind((self._host, self._port))
            listener.listen(socket.SOMAXCONN)  # a herd of clients connects at once
            listener.setblocking(False)
        except BaseException:
            listener.close()
            raise
        self._port = listener.getsockname()[1]
        wake_reader, wake_writer = socket.socketpair()
        thread = threading.Thread(
            target=self._accept_loop,
            args=(listener, wake_reader),
            name=f"goth-emulator-{self._port}-accept",
            daemon=True,
        )
        self._accepting = (listener, wake_writer, thread)
        thread.start()

    def _stop_accepting(self) -> None:
        if self._accepting is None:
            return
        listener, wake_writer, thread = self._accepting
        self._accepting = None
        with contextlib.suppress(OSError):
            wake_writer.send(b"x")
        thread.join()
        wake_writer.close()
        listener.close()

    def _accept_loop(self, listener: socket.socket, wake_reader: socket.socket) -> None:
        with wake_reader, selectors.DefaultSelector() as selector:
            selector.register(listener, selectors.EVENT_READ)
            selector.register(wake_reader, selectors.EVENT_READ)
            while True:
                for key, _ in selector.select():
                    if key.fileobj is wake_reader:
                        return
                    try:
                        connection, _address = listener.accept()
                    except OSError:  # the client gave up before we got to it
                        continue
                    self._serve_in_thread(connection)

    def _serve_in_thread(self, connection: socket.socket) -> None:
        deadline = time.monotonic() + REQUEST_DEADLINE
        thread = threading.Thread(
            target=self._serve,
            args=(connection, deadline),
            name=f"goth-emulator-{self._port}-conn",
        )
        thread.daemon = True
        with self._lock:
            if len(self._connections) >= MAX_CONNECTIONS:
                busy = True
            else:
                busy = False
                self._connections[thread] = connection
        if busy:
            _refuse(connection)
            return
        thread.start()

    def _serve(self, connection: socket.socket, deadline: float) -> None:
        try:
            connection.setblocking(True)
            peer: bytes | None = None
            if self._tls is not None:
                connection.settimeout(_time_left(deadline))
                connection = self._tls.wrap_socket(connection, server_side=True)
                with self._lock:  # close() must shut down the TLS socket now
                    self._connections[threading.current_thread()] = connection
                peer = connection.getpeercert(binary_form=True)
            _Handler(connection, self._respond, self._classify, deadline, peer)
        except OSError:  # the client went away, or close() cut it off (ssl errors too)
            pass
        finally:
            with contextlib.suppress(OSError):
                connection.shutdown(socket.SHUT_WR)
            connection.close()
            with self._lock:
                self._connections.pop(threading.current_thread(), None)


def _refuse(connection: socket.socket) -> None:
    """Answers 503 without blocking the accept thread, and closes."""
    with connection, contextlib.suppress(OSError):
        connection.setblocking(False)
        connection.send(_BUSY)
        connection.shutdown(socket.SHUT_WR)
        for _ in range(16):  # what the client already sent: closing on it would reset
            if not connection.recv(65536):
                break


def _time_left(deadline: float) -> float:
    """Seconds until ``deadline``; raises ``TimeoutError`` once it has passed."""
    left = deadline - time.monotonic()
    if left <= 0:
        raise TimeoutError("the request did not arrive in time")
    return left


class _DeadlineReader(io.RawIOBase):
    """A socket's reading side where every read waits at most until one deadline."""

    def __init__(self, connection: socket.socket, deadline: float) -> None:
        self._connection = connection
        self._deadline = deadline

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        self._connection.settimeout(_time_left(self._deadline))
        return self._connection.recv_into(buffer)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "goth-actors-emulator"
    sys_version = ""

    def __init__(
        self,
        connection: socket.socket,
        respond: Responder,
        classify: Classifier,
        deadline: float,
        client_cert: bytes | None = None,
    ) -> None:
        self._respond = respond
        self._classify = classify
        self._deadline = deadline
        self._client_cert = client_cert
        # BaseHTTPRequestHandler never uses its server argument.
        super().__init__(connection, ("", 0), None)  # type: ignore[arg-type]

    def setup(self) -> None:
        super().setup()
        self.rfile.close()  # the socket's own reader: replaced by one that keeps the deadline
        self.rfile = io.BufferedReader(_DeadlineReader(self.connection, self._deadline))

    def handle(self) -> None:
        # One request per connection: the answer always says ``Connection: close``.
        self.handle_one_request()

    def do_GET(self) -> None:
        self._answer()

    do_POST = do_GET
    do_PUT = do_GET
    do_PATCH = do_GET
    do_DELETE = do_GET

    def log_message(self, format: str, *args: Any) -> None:  # noqa: ARG002
        # Request lines can carry tokens in their query strings: log nothing.
        return

    def _answer(self) -> None:
        self.close_connection = True
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            self._write(Response.text(411, "Content-Length required.\n"))
            return
        try:
            length = int(self.headers.get("Content-Length") or 0)
        except ValueError:
            length = -1
        if length < 0:
            self._write(Response.text(400, "Bad Content-Length.\n"))
            return
        if length > MAX_REQUEST_BYTES:
            self._write(Response.text(413, "Request body too large.\n"))
            return
        url = urlsplit(self.path)
        path = url.path or "/"
        body = self.rfile.read(length)
        request = RecordedRequest(
            method=self.command,
            path=path,
            endpoint=self._classify(path),
            query=dict(parse_qsl(url.query, keep_blank_values=True)),
            form=parse_form(self.headers.get("Content-Type", ""), body),
            headers={name.lower(): value for name, value in self.headers.items()},
            time=time.time(),
            body=body,
            client_cert=self._client_cert,
        )
        try:
            response = self._respond(request)
        except Exception:  # the responder's own bug: answer rather than kill the thread
            response = Response.text(500, "The emulator failed to answer.\n")
        self._write(response)

    def _write(self, response: Response) -> None:
        self.connection.settimeout(_WRITE_TIMEOUT)
        self.send_response(response.status)
        for name, value in response.headers:
            self.send_header(name, value)
        if response.header("Content-Length") is None:
            self.send_header("Content-Length", str(len(response.body)))
        self.send_header("Connection", "close")
        self.end_headers()
        if response.cut_after is None:
            self.wfile.write(response.body)
            return
        self.wfile.write(response.body[: response.cut_after])
        self.wfile.flush()
        # SO_LINGER with a zero timeout: close() sends RST instead of FIN.
        self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        self.close_connection = True
        self.connection.close()

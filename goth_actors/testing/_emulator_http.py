"""Server plumbing for the Google emulator: sockets, threads and HTTP framing, nothing Google.

An :class:`HttpServer` owns one listening socket, one accept thread and one daemon thread per
connection. Every request is parsed into a :class:`RecordedRequest` and handed to a ``respond``
callable, whose :class:`Response` is written back with ``Connection: close`` (one request per
connection, so a server that is :meth:`~HttpServer.down` really refuses every new request).

- :meth:`HttpServer.down` closes the listening socket; :meth:`HttpServer.up` listens again on
  the same port (``SO_REUSEADDR``). Connections already accepted are left alone.
- :meth:`HttpServer.wait` sleeps for a delay but returns at once when the server closes, so a
  slow answer never holds up :meth:`HttpServer.close`.
- :meth:`HttpServer.close` stops accepting, wakes every wait, shuts down every open connection
  (both ways, so a thread blocked reading a request or writing to a client that never reads
  is unblocked at once) and joins the threads it started, all within one short deadline.
"""

from __future__ import annotations

import contextlib
import json
import re
import selectors
import socket
import ssl
import struct
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from http.server import BaseHTTPRequestHandler
from typing import Any
from urllib.parse import parse_qsl, urlsplit

__all__ = [
    "MAX_REQUEST_BYTES",
    "RECORDED_BODY_BYTES",
    "Classifier",
    "HttpServer",
    "RecordedRequest",
    "Responder",
    "Response",
]

MAX_REQUEST_BYTES = 1024 * 1024
"""Request bodies larger than this (1 MiB) are answered 413 without being read."""

_READ_TIMEOUT = 5.0
"""Seconds a client may take to send its request before its connection is dropped."""

RECORDED_BODY_BYTES = 64 * 1024
"""How much of a request body is kept once it is recorded (64 KiB); see :func:`for_record`."""

_CLOSE_TIMEOUT = 1.0
"""Seconds :meth:`HttpServer.close` waits, in all, for the connection threads to end."""

_SECRET_FRAGMENTS = (
    "token",
    "secret",
    "assertion",
    "authorization",
    "password",
    "passwd",
    "cookie",
    "credential",
    "apikey",
)
"""A parameter or header whose name contains one of these is redacted in a ``repr``."""

_SECRET_WORDS = frozenset(("code", "key", "pwd", "verifier", "signature", "sig", "rapt"))
"""... and so is one with one of these as a word of its name (``code``, ``x-api-key``)."""

_WORD = re.compile(r"[a-z0-9]+")


@dataclass(frozen=True, slots=True, repr=False)
class RecordedRequest:
    """One request the emulator received, recorded on arrival.

    Attributes:
        method: ``"GET"``, ``"POST"``, ...
        path: The path without its query string, e.g. ``"/token"``.
        endpoint: What was asked: ``"token"`` (the token endpoint), ``"metadata"``
            (``/computeMetadata/...`` and the ``GET /`` ping), ``"tokeninfo"``, ``"certs"``,
            ``"sts"`` (the Security Token Service), ``"iam"`` (IAM Credentials),
            ``"subject"`` (the subject-token URL of workload identity) or ``"other"``.
        query: Query parameters (the last of repeated names wins).
        form: The parameters of a form-encoded (or JSON object) body; empty otherwise.
            JSON values that are not strings are kept JSON-encoded.
        headers: Request headers, names in lower case.
        time: Arrival time, as ``time.time()``.
        body: The raw request body (``json.loads(request.body)`` for an IAM request).
        client_cert: The DER certificate the client presented over mutual TLS (the mTLS
            listener only), or ``None``.

    The attributes hold what was sent, secrets included, except that a recorded ``body``
    keeps only its first 64 KiB; the full length is in ``headers["content-length"]``, and a
    longer body is recorded with an empty ``form``.

    The ``repr`` hides the raw body and the value of every query parameter, form field and
    header whose name looks secret: any name containing ``token``, ``secret``,
    ``assertion``, ``authorization``, ``password``, ``cookie`` or ``credential``
    (``actor_token``, ``client_assertion``, ``proxy-authorization``), or with ``code``,
    ``key``, ``verifier`` or ``signature`` as a word of it (``code``, ``x-api-key``). Token
    *types* (``subject_token_type``) are shown.

    Example:
        ```python
        [r.form["grant_type"] for r in emu.requests_to("token")]
        ```
        ['refresh_token']
    """

    method: str
    path: str
    endpoint: str
    query: dict[str, str]
    form: dict[str, str]
    headers: dict[str, str]
    time: float
    body: bytes = b""
    client_cert: bytes | None = None

    def __repr__(self) -> str:
        return (
            f"RecordedRequest(method={self.method!r}, path={self.path!r}, "
            f"endpoint={self.endpoint!r}, query={_redacted(self.query)!r}, "
            f"form={_redacted(self.form)!r}, headers={_redacted(self.headers)!r}, "
            f"time={self.time!r})"
        )


def for_record(request: RecordedRequest) -> RecordedRequest:
    """``request`` as it is kept: its body cut to :data:`RECORDED_BODY_BYTES`.

    A body that is cut loses its ``form`` too, rather than keep a half-parsed last value.
    """
    if len(request.body) <= RECORDED_BODY_BYTES:
        return request
    return replace(request, form={}, body=request.body[:RECORDED_BODY_BYTES])


def is_secret_name(name: str) -> bool:
    """Whether a parameter or header called ``name`` may carry a secret (any case)."""
    lowered = name.lower()
    if lowered.endswith("token_type"):  # a URN such as ...:token-type:jwt, not a token
        return False
    if any(fragment in lowered for fragment in _SECRET_FRAGMENTS):
        return True
    return not _SECRET_WORDS.isdisjoint(_WORD.findall(lowered))


def _redacted(values: Mapping[str, str]) -> dict[str, str]:
    return {k: "<redacted>" if is_secret_name(k) else v for k, v in values.items()}


def _form(content_type: str, body: bytes) -> dict[str, str]:
    media_type = content_type.partition(";")[0].strip().lower()
    text = body.decode("utf-8", "replace")
    if media_type == "application/x-www-form-urlencoded":
        return dict(parse_qsl(text, keep_blank_values=True))
    if media_type == "application/json":
        try:
            decoded = json.loads(text)
        except ValueError:
            return {}
        if isinstance(decoded, dict):
            return {str(k): v if isinstance(v, str) else json.dumps(v) for k, v in decoded.items()}
    return {}


@dataclass(frozen=True, slots=True)
class Response:
    """One HTTP answer. ``Content-Length`` is added unless ``headers`` already has one.

    ``cut_after`` set: only that many bytes of the body are sent, then the connection is
    reset (TCP RST), as a peer or middlebox that dies mid-response.
    """

    status: int
    body: bytes = b""
    headers: tuple[tuple[str, str], ...] = ()
    cut_after: int | None = None

    @classmethod
    def json(
        cls, status: int, payload: object, headers: Mapping[str, str] | None = None
    ) -> Response:
        """A JSON answer (``application/json; charset=utf-8``)."""
        extra = tuple((headers or {}).items())
        return cls(
            status,
            json.dumps(payload).encode(),
            (("Content-Type", "application/json; charset=utf-8"), *extra),
        )

    @classmethod
    def text(cls, status: int, text: str, headers: Mapping[str, str] | None = None) -> Response:
        """A plain-text answer (``text/plain; charset=utf-8``)."""
        extra = tuple((headers or {}).items())
        return cls(status, text.encode(), (("Content-Type", "text/plain; charset=utf-8"), *extra))

    def header(self, name: str) -> str | None:
        """The first header called ``name`` (any case), or ``None``."""
        wanted = name.lower()
        return next((v for k, v in self.headers if k.lower() == wanted), None)

    def with_headers(self, headers: Mapping[str, str]) -> Response:
        """A copy with ``headers`` set, replacing any of the same names."""
        names = {name.lower() for name in headers}
        kept = tuple((k, v) for k, v in self.headers if k.lower() not in names)
        return replace(self, headers=(*kept, *headers.items()))


Responder = Callable[[RecordedRequest], Response]
Classifier = Callable[[str], str]


class HttpServer:
    """A threaded HTTP/1.1 server that answers each request with ``respond``.

    Args:
        host: The address to listen on.
        port: The port to listen on; ``0`` picks a free one at :meth:`start`.
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
        """The port in use; raises ``RuntimeError`` before :meth:`start`."""
        if not self._started:
            raise RuntimeError("the emulator has not been started")
        return self._port

    @property
    def is_started(self) -> bool:
        """Whether :meth:`start` has been called."""
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
        """Stops accepting: new connections are refused until :meth:`up`."""
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

        Stops accepting (the accept thread is joined), wakes every :meth:`wait`, and shuts
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
        thread = threading.Thread(
            target=self._serve, args=(connection,), name=f"goth-emulator-{self._port}-conn"
        )
        thread.daemon = True
        with self._lock:
            self._connections[thread] = connection
        thread.start()

    def _serve(self, connection: socket.socket) -> None:
        try:
            connection.setblocking(True)
            peer: bytes | None = None
            if self._tls is not None:
                connection.settimeout(_READ_TIMEOUT)
                connection = self._tls.wrap_socket(connection, server_side=True)
                with self._lock:  # close() must shut down the TLS socket now
                    self._connections[threading.current_thread()] = connection
                peer = connection.getpeercert(binary_form=True)
            _Handler(connection, self._respond, self._classify, peer)
        except OSError:  # the client went away, or close() cut it off (ssl errors too)
            pass
        finally:
            with contextlib.suppress(OSError):
                connection.shutdown(socket.SHUT_WR)
            connection.close()
            with self._lock:
                self._connections.pop(threading.current_thread(), None)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "goth-actors-emulator"
    sys_version = ""
    timeout = _READ_TIMEOUT

    def __init__(
        self,
        connection: socket.socket,
        respond: Responder,
        classify: Classifier,
        client_cert: bytes | None = None,
    ) -> None:
        self._respond = respond
        self._classify = classify
        self._client_cert = client_cert
        # BaseHTTPRequestHandler never uses its server argument.
        super().__init__(connection, ("", 0), None)  # type: ignore[arg-type]

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
            form=_form(self.headers.get("Content-Type", ""), body),
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

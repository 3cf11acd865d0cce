"""A Google-like API on 127.0.0.1 for the integration tests: 200 to a bearer token the
emulator vouches for, 401 otherwise. The ``api`` fixture in conftest.py gives a fresh one."""

from __future__ import annotations

import http.server
import json
import threading
from collections.abc import Callable
from dataclasses import dataclass

from goth_actors import ServiceAccount, fetch, start_link
from goth_actors.testing import GoogleEmulator

WAIT = 5.0


@dataclass(frozen=True)
class Seen:
    """One request the API received."""

    path: str
    token: str | None
    status: int
    body: bytes


class _HttpServer(http.server.ThreadingHTTPServer):
    request_queue_size = 256  # a hundred concurrent connects must not wait for SYN retries


class ApiServer:
    """A Google-like API on 127.0.0.1: 200 to a bearer token the emulator vouches for, else 401.

    It can also be told to refuse chosen tokens (as if revoked), to hold its refusals until
    several have arrived (so concurrent requests are refused together), to run a callback
    before refusing, and to redirect.
    """

    def __init__(self, emulator: GoogleEmulator) -> None:
        self.emulator = emulator
        self._lock = threading.Condition()
        self._seen: list[Seen] = []
        self._refused: dict[str, int | None] = {}  # token -> refusals left (None: forever)
        self._refuse_all = False
        self._hold = 0
        self._refusals = 0
        self.before_refusing: Callable[[str | None], None] | None = None
        self.redirect_to: str | None = None
        api = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                api._handle(self)

            do_POST = do_PUT = do_GET

            def log_message(self, format: str, *args: object) -> None:
                pass

        self._server = _HttpServer(("127.0.0.1", 0), Handler)
        self._thread = threading.Thread(
            target=self._server.serve_forever, args=(0.01,), name="api-server"
        )

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}/v1/things"

    def start(self) -> ApiServer:
        self._thread.start()
        return self

    def __enter__(self) -> ApiServer:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def close(self) -> None:
        with self._lock:
            self._hold = 0
            self._lock.notify_all()
        self._server.shutdown()
        self._server.server_close()  # joins the request threads
        self._thread.join(WAIT)

    # --- controls -----------------------------------------------------------------------------

    def refuse(self, token: str, times: int | None = None) -> None:
        """401 to this token, ``times`` times or forever."""
        with self._lock:
            self._refused[token] = times

    def refuse_everything(self) -> None:
        with self._lock:
            self._refuse_all = True

    def hold_refusals(self, count: int) -> None:
        """Refusals wait until ``count`` requests have been refused, then all are answered."""
        with self._lock:
            self._hold = count

    @property
    def seen(self) -> list[Seen]:
        with self._lock:
            return list(self._seen)

    @property
    def tokens(self) -> list[str | None]:
        return [seen.token for seen in self.seen]

    # --- answering ----------------------------------------------------------------------------

    def _handle(self, handler: http.server.BaseHTTPRequestHandler) -> None:
        body = _read_body(handler)
        authorization = handler.headers.get("Authorization")
        if self.redirect_to is not None:
            self._record(handler.path, _bearer(authorization), 307, body)
            handler.send_response(307)
            handler.send_header("Location", self.redirect_to)
            handler.send_header("Content-Length", "0")
            handler.end_headers()
            return
        info = self.check(handler.path, authorization, body)
        if info is None:
            error = {
                "code": 401,
                "message": "Request had invalid authentication credentials.",
                "status": "UNAUTHENTICATED",
            }
            self._send(
                handler,
                401,
                {"error": error},
                {"WWW-Authenticate": 'Bearer error="invalid_token"'},
            )
            return
        self._send(handler, 200, {"email": info["email"], "body_bytes": len(body)})

    def check(self, path: str, authorization: str | None, body: bytes) -> dict[str, str] | None:
        """Decides on and records one request, whatever the protocol: the token's info when
        accepted, ``None`` when refused (after holding and ``before_refusing``, as told)."""
        bearer = _bearer(authorization)
        info = self.emulator.token_info(bearer) if bearer else None
        if info is None or self._refused_now(bearer):
            self._refuse(bearer)
            self._record(path, bearer, 401, body)
            return None
        self._record(path, bearer, 200, body)
        return info

    def _refused_now(self, token: str | None) -> bool:
        with self._lock:
            if self._refuse_all:
                return True
            if token not in self._refused:
                return False
            left = self._refused[token]
            if left is not None:
                if left <= 0:
                    return False
                self._refused[token] = left - 1
            return True

    def _refuse(self, token: str | None) -> None:
        with self._lock:
            self._refusals += 1
            self._lock.notify_all()
            self._lock.wait_for(lambda: self._refusals >= self._hold, timeout=WAIT)
        if self.before_refusing is not None:
            self.before_refusing(token)

    def _record(self, path: str, token: str | None, status: int, body: bytes) -> None:
        with self._lock:
            self._seen.append(Seen(path, token, status, body))

    @staticmethod
    def _send(
        handler: http.server.BaseHTTPRequestHandler,
        status: int,
        payload: object,
        headers: dict[str, str] | None = None,
    ) -> None:
        data = json.dumps(payload).encode()
        handler.send_response(status)
        handler.send_header("Content-Type", "application/json")
        handler.send_header("Content-Length", str(len(data)))
        for name, value in (headers or {}).items():
            handler.send_header(name, value)
        handler.end_headers()
        handler.wfile.write(data)


def _bearer(authorization: str | None) -> str | None:
    scheme, _, token = (authorization or "").partition(" ")
    return token if scheme == "Bearer" and token else None


def _read_body(handler: http.server.BaseHTTPRequestHandler) -> bytes:
    if handler.headers.get("Transfer-Encoding", "").lower() == "chunked":
        chunks = []
        while size := int(handler.rfile.readline().split(b";")[0], 16):
            chunks.append(handler.rfile.read(size))
            handler.rfile.readline()
        handler.rfile.readline()
        return b"".join(chunks)
    length = int(handler.headers.get("Content-Length") or 0)
    return handler.rfile.read(length) if length else b""


def start_app(emulator: GoogleEmulator, name: str = "app") -> str:
    """Starts a token server with its first token in hand; returns that token."""
    start_link(name=name, source=ServiceAccount(emulator.service_account()), prefetch="sync")
    return fetch(name).token


def token_requests(emulator: GoogleEmulator) -> int:
    return len(emulator.requests_to("token"))

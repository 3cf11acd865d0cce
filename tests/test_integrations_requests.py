"""requests' GothAuth over real HTTP: a local API that checks bearer tokens with the emulator.

``ApiServer`` and the ``api`` fixture live here and are imported by the httpx and google-auth
integration tests.
"""

from __future__ import annotations

import http.server
import io
import json
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import pytest
import requests

import goth_actors
from goth_actors import (
    ConfigError,
    Refresh,
    ServerNotFound,
    ServiceAccount,
    TokenEndpointError,
    fetch,
    start_link,
    whereis,
)
from goth_actors.integrations import refresh_rejected
from goth_actors.integrations.requests import GothAuth
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
        scheme, _, token = (authorization or "").partition(" ")
        bearer = token if scheme == "Bearer" and token else None
        if self.redirect_to is not None:
            self._record(handler.path, bearer, 307, body)
            handler.send_response(307)
            handler.send_header("Location", self.redirect_to)
            handler.send_header("Content-Length", "0")
            handler.end_headers()
            return
        info = self.emulator.token_info(bearer) if bearer else None
        if info is None or self._refused_now(bearer):
            self._refuse(handler, bearer, body)
            return
        self._record(handler.path, bearer, 200, body)
        self._send(handler, 200, {"email": info["email"], "body_bytes": len(body)})

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

    def _refuse(
        self, handler: http.server.BaseHTTPRequestHandler, token: str | None, body: bytes
    ) -> None:
        with self._lock:
            self._refusals += 1
            self._lock.notify_all()
            self._lock.wait_for(lambda: self._refusals >= self._hold, timeout=WAIT)
        if self.before_refusing is not None:
            self.before_refusing(token)
        self._record(handler.path, token, 401, body)
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


@pytest.fixture
def api(emulator: GoogleEmulator) -> Iterator[ApiServer]:
    """A fresh local API for one test, closed (threads joined) at its end."""
    with ApiServer(emulator) as server:
        yield server


@pytest.fixture(autouse=True)
def _shutdown_servers() -> Iterator[None]:
    yield
    goth_actors.shutdown()


def start_app(emulator: GoogleEmulator, name: str = "app") -> str:
    """Starts a token server with its first token in hand; returns that token."""
    start_link(name=name, source=ServiceAccount(emulator.service_account()), prefetch="sync")
    return fetch(name).token


def token_requests(emulator: GoogleEmulator) -> int:
    return len(emulator.requests_to("token"))


# ------------------------------------------------------------------------------------ header


def test_the_authorization_header_carries_the_servers_token(
    emulator: GoogleEmulator, api: ApiServer
) -> None:
    token = start_app(emulator)
    response = requests.get(api.url, auth=GothAuth("app"), timeout=WAIT)
    assert response.status_code == 200
    assert response.json()["email"].startswith("emulator-sa-")
    assert api.tokens == [token]
    assert response.history == []


def test_a_session_wide_auth_serves_every_request_without_a_token_request(
    emulator: GoogleEmulator, api: ApiServer
) -> None:
    token = start_app(emulator)
    with requests.Session() as session:
        session.auth = GothAuth("app")
        statuses = [session.get(api.url, timeout=WAIT).status_code for _ in range(5)]
    assert statuses == [200] * 5
    assert api.tokens == [token] * 5
    assert token_requests(emulator) == 1


def test_an_unknown_server_name_raises_server_not_found(api: ApiServer) -> None:
    with pytest.raises(ServerNotFound):
        requests.get(api.url, auth=GothAuth("nobody"), timeout=WAIT)
    assert api.seen == []


@pytest.mark.parametrize("timeout", [0, -1.0, float("nan"), float("inf"), "5", True])
def test_a_bad_timeout_is_a_config_error(timeout: object) -> None:
    with pytest.raises(ConfigError, match="timeout"):
        GothAuth("app", timeout=timeout)  # type: ignore[arg-type]


def test_the_auth_is_comparable_and_its_repr_names_the_server() -> None:
    assert GothAuth("app") == GothAuth("app", timeout=5)
    assert GothAuth("app") != GothAuth("other")
    assert repr(GothAuth("app")) == "GothAuth('app', timeout=5.0)"


# -------------------------------------------------------------------------------------- 401s


def test_a_401_causes_one_forced_refresh_and_one_retry_that_succeeds_with_a_new_token(
    emulator: GoogleEmulator, api: ApiServer
) -> None:
    first = start_app(emulator)
    api.refuse(first)
    response = requests.get(api.url, auth=GothAuth("app"), timeout=WAIT)
    assert response.status_code == 200
    assert [r.status_code for r in response.history] == [401]
    second = fetch("app").token
    assert second != first
    assert api.tokens == [first, second]
    assert token_requests(emulator) == 2  # the prefetch and the one forced refresh
    assert response.request.headers["Authorization"] == f"Bearer {second}"
    assert response.history[0].request.headers["Authorization"] == f"Bearer {first}"


def test_a_401_to_the_retry_is_returned_as_is(emulator: GoogleEmulator, api: ApiServer) -> None:
    start_app(emulator)
    api.refuse_everything()
    response = requests.get(api.url, auth=GothAuth("app"), timeout=WAIT)
    assert response.status_code == 401
    assert [r.status_code for r in response.history] == [401]
    assert len(api.seen) == 2
    assert token_requests(emulator) == 2


def test_a_hundred_concurrent_401s_for_one_token_cause_one_token_request(
    emulator: GoogleEmulator, api: ApiServer
) -> None:
    first = start_app(emulator)
    api.refuse(first)
    api.hold_refusals(100)  # every request is refused before any of them can refresh
    auth = GothAuth("app")
    with ThreadPoolExecutor(max_workers=100) as pool:
        responses = list(
            pool.map(lambda _: requests.get(api.url, auth=auth, timeout=WAIT), range(100))
        )
    assert [r.status_code for r in responses] == [200] * 100
    assert all([h.status_code for h in r.history] == [401] for r in responses)
    assert token_requests(emulator) == 2  # the prefetch and ONE forced refresh
    second = fetch("app").token
    assert sorted(api.tokens, key=str) == sorted([first] * 100 + [second] * 100, key=str)


def test_a_token_someone_else_refreshed_meanwhile_is_not_refreshed_again(
    emulator: GoogleEmulator, api: ApiServer
) -> None:
    first = start_app(emulator)
    api.refuse(first)
    ref = whereis("app")
    assert ref is not None
    # Between the request's send and its 401, another caller forces a refresh.
    api.before_refusing = lambda _token: ref.ask(Refresh(), timeout=WAIT)
    response = requests.get(api.url, auth=GothAuth("app"), timeout=WAIT)
    assert response.status_code == 200
    assert token_requests(emulator) == 2  # the prefetch and the other caller's refresh only
    assert api.tokens == [first, fetch("app").token]


def test_refresh_rejected_skips_the_exchange_when_the_token_already_changed(
    emulator: GoogleEmulator,
) -> None:
    first = start_app(emulator)
    second = refresh_rejected("app", first)
    assert second.token != first
    assert refresh_rejected("app", first) == second  # first is old news: no exchange
    assert token_requests(emulator) == 2


def test_a_failed_refresh_after_a_401_reaches_the_caller(
    emulator: GoogleEmulator, api: ApiServer
) -> None:
    first = start_app(emulator)
    api.refuse(first)
    emulator.fail_next(1, 400, error="invalid_grant", endpoint="token")
    with pytest.raises(TokenEndpointError, match="invalid_grant"):
        requests.get(api.url, auth=GothAuth("app"), timeout=WAIT)
    assert api.tokens == [first]


def test_a_401_after_a_redirect_that_dropped_the_token_causes_no_refresh(
    emulator: GoogleEmulator, api: ApiServer
) -> None:
    start_app(emulator)
    with ApiServer(emulator) as other:  # another port: requests strips the header
        api.redirect_to = other.url
        response = requests.get(api.url, auth=GothAuth("app"), timeout=WAIT)
    assert response.status_code == 401
    assert other.tokens == [None]  # the token never went to the other host
    assert token_requests(emulator) == 1


# ------------------------------------------------------------------------------------ bodies


def test_a_retried_post_sends_its_body_again(emulator: GoogleEmulator, api: ApiServer) -> None:
    first = start_app(emulator)
    api.refuse(first)
    response = requests.post(api.url, json={"n": 1}, auth=GothAuth("app"), timeout=WAIT)
    assert response.status_code == 200
    assert [seen.body for seen in api.seen] == [b'{"n": 1}'] * 2


def test_a_file_body_is_rewound_for_the_retry(emulator: GoogleEmulator, api: ApiServer) -> None:
    first = start_app(emulator)
    api.refuse(first)
    body = io.BytesIO(b"header-to-skip;payload")
    body.seek(len(b"header-to-skip;"))
    response = requests.put(api.url, data=body, auth=GothAuth("app"), timeout=WAIT)
    assert response.status_code == 200
    assert [seen.body for seen in api.seen] == [b"payload"] * 2


def test_a_generator_body_is_not_retried_but_the_next_request_has_a_new_token(
    emulator: GoogleEmulator, api: ApiServer
) -> None:
    first = start_app(emulator)
    api.refuse(first)
    chunks = (chunk for chunk in [b"one", b"two"])
    response = requests.post(api.url, data=chunks, auth=GothAuth("app"), timeout=WAIT)
    assert response.status_code == 401
    assert response.history == []
    second = fetch("app").token
    assert second != first
    assert requests.get(api.url, auth=GothAuth("app"), timeout=WAIT).status_code == 200
    assert api.tokens == [first, second]

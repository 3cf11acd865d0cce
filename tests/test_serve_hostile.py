"""goth-actors serve against hostile requests: each refusal, and none costs an upstream call."""

from __future__ import annotations

import contextlib
import json
import logging
from collections.abc import Iterator

import pytest
from _helpers import wait_for
from _serve_helpers import (
    ACCOUNT,
    TOKEN,
    V1,
    closed_by_peer,
    connect,
    exchange,
    get,
    read_answer,
    serving,
)

from goth_actors import RefreshToken, ServiceAccount
from goth_actors._serve import InThread, httpd
from goth_actors._serve.request import Request
from goth_actors.testing import GoogleEmulator

IDENTITY = ACCOUNT + "identity"
LONG_PATH = "/" + "a" * 5000

REFUSALS = [
    ("no Metadata-Flavor", get(TOKEN, **{"Metadata-Flavor": ""}), 403, "flavor"),
    ("a wrong Metadata-Flavor", get(TOKEN, **{"Metadata-Flavor": "google"}), 403, "flavor"),
    ("Metadata-Flavor twice", get(TOKEN, **{"metadata-flavor": "Google"}), 403, "flavor"),
    ("X-Forwarded-For", get(TOKEN, **{"X-Forwarded-For": "10.0.0.1"}), 403, "forwarded"),
    ("X-Forwarded-For on the ping", get("/", **{"X-Forwarded-For": "x"}), 403, "forwarded"),
    ("a DNS-rebinding Host", get(TOKEN, host="evil.example:8090"), 403, "host"),
    ("a Host with a bad port", get(TOKEN, host="127.0.0.1:x"), 403, "host"),
    ("a POST", b"POST " + TOKEN.encode() + b" HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n", 405, "method"),
    ("a body", get(TOKEN, **{"Content-Length": "5"}) + b"hello", 413, "body"),
    ("a Latin-1 digit as length", get(TOKEN)[:-2] + b"Content-Length: \xb2\r\n\r\n", 400, "body"),
    ("chunked", get(TOKEN, **{"Transfer-Encoding": "chunked"}) + b"0\r\n\r\n", 501, "body"),
    ("a head over 8 KiB", get(TOKEN, **{"X-Big": "a" * 9000}), 431, "too_large"),
    ("too many headers", get(TOKEN, **{f"X-{i}": "1" for i in range(70)}), 431, "too_large"),
    ("a target over 4 KiB", get(LONG_PATH), 414, "too_large"),
    ("HTTP/2", b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", 400, "malformed"),
    ("HTTP/1.2", b"GET / HTTP/1.2\r\nHost: 127.0.0.1\r\n\r\n", 505, "version"),
    (
        "an absolute URL (a proxy request)",
        b"GET http://x/ HTTP/1.1\r\nHost: x\r\n\r\n",
        400,
        "malformed",
    ),
    ("no Host in HTTP/1.1", b"GET / HTTP/1.1\r\n\r\n", 400, "malformed"),
    ("two Hosts", get(TOKEN, HOST="127.0.0.1"), 400, "malformed"),
    ("a bare LF", b"GET / HTTP/1.1\nHost: 127.0.0.1\r\n\r\n", 400, "malformed"),
    ("a folded header", get(TOKEN)[:-2] + b" folded\r\n\r\n", 400, "malformed"),
    ("a space before a colon", get(TOKEN)[:-2] + b"X-A : 1\r\n\r\n", 400, "malformed"),
    ("a NUL byte", get(TOKEN, **{"X-A": "a\x00b"}), 400, "malformed"),
    ("a non-ASCII target", "GET /é HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n".encode(), 400, "malformed"),
    ("an unknown account", get(V1 + "instance/service-accounts/x@y/token"), 404, "not_found"),
    ("bad scopes", get(TOKEN + '?scopes="a"'), 400, "invalid"),
    ("empty scopes", get(TOKEN + "?scopes=,"), 400, "invalid"),
    ("too many scopes", get(TOKEN + "?scopes=" + ",".join(map(str, range(65)))), 400, "invalid"),
    ("no audience", get(IDENTITY), 400, "invalid"),
    ("a bad audience", get(IDENTITY + "?audience=a%20b"), 400, "invalid"),
    ("wait_for_change", get(TOKEN + "?wait_for_change=true"), 400, "unsupported"),
    (
        "too many parameters",
        get(TOKEN + "?" + "&".join(f"p{i}=1" for i in range(20))),
        400,
        "invalid",
    ),
    ("a new scope set over --max-servers", get(TOKEN + "?scopes=new"), 503, "servers"),
]


@pytest.fixture
def serve(emulator: GoogleEmulator) -> Iterator[InThread]:
    with serving(
        ServiceAccount(emulator.service_account()),
        max_servers=1,
        max_connections=4,
        header_timeout=0.2,
        keepalive_timeout=0.3,
    ) as serve:
        emulator.wait_for_requests(1, "token")
        yield serve


@pytest.mark.parametrize(
    ("data", "status", "reason"),
    [pytest.param(data, status, reason, id=name) for name, data, status, reason in REFUSALS],
)
def test_a_hostile_request_is_refused_and_costs_no_upstream_call(
    serve: InThread, emulator: GoogleEmulator, data: bytes, status: int, reason: str
) -> None:
    before = emulator.request_count()
    [answer] = exchange(serve, data)
    assert answer.status == status, answer.body
    assert answer.headers["metadata-flavor"] == "Google"
    assert serve.server.http.counts[reason] == 1
    assert serve.server.http.counts["answered"] == 0
    assert emulator.request_count() == before


def test_an_unexpected_error_in_the_parser_is_answered_400_not_raised(
    serve: InThread, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(head: bytes) -> Request:
        raise ValueError(head)

    monkeypatch.setattr(httpd, "parse", broken)
    [answer] = exchange(serve, get("/"))
    assert answer.status == 400
    assert serve.server.http.counts["malformed"] == 1


def test_a_connection_over_the_limit_is_answered_503_and_closed(serve: InThread) -> None:
    held = [connect(serve) for _ in range(4)]
    try:
        [answer] = exchange(serve, get(TOKEN))
        assert answer.status == 503
        assert answer.headers["connection"] == "close"
    finally:
        for sock in held:
            sock.close()


def test_a_request_head_that_dribbles_in_is_cut_off(serve: InThread) -> None:
    with connect(serve) as sock:
        sock.sendall(b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n")  # and never the end
        assert closed_by_peer(sock)


def test_an_idle_keep_alive_connection_is_closed(serve: InThread) -> None:
    with connect(serve) as sock:
        sock.sendall(get("/"))
        assert read_answer(sock, bytearray()).status == 200
        assert closed_by_peer(sock)


@pytest.mark.slow  # waits out the write deadline
def test_a_client_that_never_reads_its_answers_is_cut_off(serve: InThread) -> None:
    with connect(serve) as sock:
        sock.setblocking(False)
        flood = get(TOKEN) * 1000
        with contextlib.suppress(BlockingIOError):
            while True:  # until the server stops reading: its answers fill both buffers
                sock.send(flood)
        wait_for(lambda: not serve.server.http.connections)
    assert exchange(serve, get("/"))[0].status == 200


def test_pipelined_requests_are_answered_in_order_and_head_has_no_body(serve: InThread) -> None:
    data = get(TOKEN) + get(ACCOUNT + "email").replace(b"GET", b"HEAD", 1) + get("/")
    with connect(serve) as sock:
        sock.sendall(data)
        buffer = bytearray()
        token = read_answer(sock, buffer)
        email = read_answer(sock, buffer, head=True)
        root = read_answer(sock, buffer)
    assert token.status == email.status == root.status == 200
    assert token.body.startswith(b'{"access_token":')
    assert int(email.headers["content-length"]) > 0
    assert root.body == b"computeMetadata/\n"


def test_a_host_name_allowed_by_the_operator_is_accepted(emulator: GoogleEmulator) -> None:
    with serving(ServiceAccount(emulator.service_account()), allowed_hosts=("Sidecar",)) as serve:
        assert exchange(serve, get("/", host="sidecar:8090"))[0].status == 200
        assert exchange(serve, get("/", host="[::1]:80"))[0].status == 200
        assert exchange(serve, get("/", host="metadata.google.internal"))[0].status == 200
        assert exchange(serve, get("/", host="other"))[0].status == 403


def test_no_token_or_secret_reaches_any_log_line(
    emulator: GoogleEmulator, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    key = emulator.service_account()
    user = emulator.authorized_user()
    secrets = [key["private_key"].splitlines()[1], user["refresh_token"], user["client_secret"]]
    for source in (ServiceAccount(key), RefreshToken(user)):
        with serving(source, fetch_timeout=1.0) as serve:
            for path in (TOKEN, IDENTITY + "?audience=x", TOKEN + "?scopes=s"):
                answer = exchange(serve, get(path))[0]
                if answer.status == 200:  # the token itself, not the answer around it
                    text = answer.body.decode()
                    identity = path.startswith(IDENTITY)
                    secrets.append(text if identity else json.loads(text)["access_token"])
            emulator.fail_next(50, 400, error="invalid_grant", endpoint="token")
            failed = exchange(serve, get(TOKEN + "?scopes=failing"))[0]
            exchange(serve, get(TOKEN, Authorization="Bearer " + secrets[-1]))
            emulator.reset()
        if isinstance(source, ServiceAccount):
            assert failed.status == 500
            assert b"invalid_grant" in failed.body
    assert len(secrets) == 3 + 3 + 2  # the keys', and tokens: a key's three, a user's two
    lines = [record.getMessage() for record in caplog.records]
    assert any("started the token server" in line for line in lines)
    assert any("invalid_grant" in line for line in lines)  # the failure was logged
    for secret in secrets:
        for line in lines:
            assert secret not in line

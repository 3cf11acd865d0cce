"""``http_timeout`` is a deadline: connect to last byte, whatever the server does.

An endpoint that drips its status line, its headers or its body a byte at a time used to keep
an exchange alive for hours (each read came within the per-read timeout). Now the whole
exchange ends by its deadline, and a multi-step source shares one deadline across its steps.
The drip tests run in a subprocess with a timeout: a hang is the failure.
"""

from __future__ import annotations

import socket
import subprocess
import sys
import textwrap
import time
from typing import Any

import pytest

from goth_actors import (
    HttpResponse,
    Metadata,
    Token,
    TransportError,
    WorkloadIdentity,
)
from goth_actors._protocol import default_http_client
from goth_actors.testing import GoogleEmulator

DRIPPING = textwrap.dedent(
    """
    import json, socket, sys, threading, time
    import goth_actors

    mode = sys.argv[1]
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(8)
    url = f"http://127.0.0.1:{listener.getsockname()[1]}"
    PAYLOADS = {
        "status line": b"HTTP/1.1 200 OK" + b" " * 60000,
        "headers": b"HTTP/1.1 200 OK\\r\\nMetadata-Flavor: Google\\r\\nX-Pad: " + b"a" * 60000,
        "body": b"HTTP/1.1 200 OK\\r\\nContent-Length: 60000\\r\\n\\r\\n" + b" " * 60000,
    }

    def drip(connection):
        try:
            connection.recv(65536)
            for byte in PAYLOADS[mode]:
                connection.send(bytes([byte]))
                time.sleep(0.01)
        except OSError:
            pass

    def serve():
        while True:
            connection, _ = listener.accept()
            threading.Thread(target=drip, args=(connection,), daemon=True).start()

    threading.Thread(target=serve, daemon=True).start()
    source = goth_actors.Metadata(url=url)
    started = time.monotonic()
    try:
        goth_actors.Token.fetch(source, timeout=0.5)
    except goth_actors.TransportError as error:
        outcome = {"error": type(error).__name__, "retryable": error.retryable}
    outcome["one_shot"] = time.monotonic() - started

    # A token server with the same endpoint: its attempt ends by http_timeout too.
    started = time.monotonic()
    goth_actors.start_link(name="drip", source=source, http_timeout=0.5, prefetch="sync")
    outcome["server"] = time.monotonic() - started
    outcome["last_error"] = type(goth_actors.status("drip").last_error).__name__
    goth_actors.shutdown()
    print(json.dumps(outcome), flush=True)
    """
)


@pytest.mark.slow
@pytest.mark.parametrize("mode", ["status line", "headers", "body"])
def test_an_endpoint_dripping_its_answer_cannot_stretch_the_exchange_past_its_deadline(
    mode: str,
) -> None:
    result = subprocess.run(
        [sys.executable, "-c", DRIPPING, mode],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    import json

    outcome = json.loads(result.stdout.strip().splitlines()[-1])
    assert outcome["error"] == "TransportError"
    assert outcome["retryable"] is True
    assert outcome["one_shot"] < 2.0, outcome  # 0.5 s deadline; it used to run for ~10 min
    assert outcome["server"] < 2.0, outcome
    assert outcome["last_error"] == "TransportError"


def _recording(calls: list[float]) -> Any:
    def client(**request: Any) -> HttpResponse:
        calls.append(request["timeout"])
        return default_http_client(**request)

    return client


def test_a_multi_step_source_shares_one_deadline_and_each_step_gets_the_time_left(
    emulator: GoogleEmulator,
) -> None:
    source = WorkloadIdentity(
        emulator.workload_identity(service_account="target@p.iam.gserviceaccount.com")
    )
    calls: list[float] = []

    Token.fetch(source, http_client=_recording(calls), timeout=5.0)

    assert len(calls) == 3  # subject token, STS, IAM
    assert calls == sorted(calls, reverse=True)
    assert all(0 < left <= 5.0 for left in calls)
    assert calls[0] > calls[-1]


def test_slow_steps_use_up_the_deadline_and_the_last_one_is_never_sent(
    emulator: GoogleEmulator,
) -> None:
    source = WorkloadIdentity(emulator.workload_identity())  # subject URL, then STS
    emulator.delay(0.15)
    started = time.monotonic()

    with pytest.raises(TransportError) as info:
        Token.fetch(source, timeout=0.25)

    # The subject token took 0.15 s; STS got the 0.1 s left, not another 0.25 s (in which its
    # 0.15 s answer would have come): the error is the proof, the bound only says "not hours".
    assert time.monotonic() - started < 5.0
    assert info.value.retryable is True


def test_a_step_that_finds_no_time_left_is_a_transport_error_before_any_request() -> None:
    def slow_client(**request: Any) -> HttpResponse:
        time.sleep(0.06)  # the first step uses the whole deadline
        return HttpResponse(200, {"Metadata-Flavor": "Google"}, "subject-token")

    source = WorkloadIdentity(
        {
            "type": "external_account",
            "audience": "//iam.googleapis.com/projects/1/locations/global/workloadIdentityPools/"
            "p/providers/q",
            "subject_token_type": "urn:ietf:params:oauth:token-type:jwt",
            "token_url": "http://127.0.0.1:9/v1/token",
            "credential_source": {"url": "http://127.0.0.1:9/subject"},
        }
    )
    with pytest.raises(TransportError, match="no time left") as info:
        Token.fetch(source, http_client=slow_client, timeout=0.05)
    assert info.value.url == "http://127.0.0.1:9/v1/token"


def test_the_default_client_answers_normally_within_its_deadline(
    emulator: GoogleEmulator,
) -> None:
    # Pooled connections carry the deadline reader; back-to-back exchanges still work.
    for _ in range(3):
        token = Token.fetch(Metadata(url=emulator.metadata_url), timeout=2.0)
        assert emulator.token_info(token.token) is not None


def _listeners_that_never_accept(count: int) -> tuple[list[tuple[str, int]], list[socket.socket]]:
    """Addresses of listening sockets whose accept queues are full, and every socket to close.

    A connect to one of them hangs: the kernel drops its SYN, as a blackholed address would.
    """
    addresses: list[tuple[str, int]] = []
    sockets: list[socket.socket] = []
    for _ in range(count):
        listener = socket.socket()
        sockets.append(listener)
        listener.bind(("127.0.0.1", 0))
        listener.listen(0)
        addresses.append(listener.getsockname())
        for _ in range(8):  # fill its queue: the first connect that hangs shows it is full
            filler = socket.socket()
            sockets.append(filler)
            filler.settimeout(0.05)
            try:
                filler.connect(listener.getsockname())
            except TimeoutError:
                break
    return addresses, sockets


def test_connecting_to_a_name_with_several_dead_addresses_ends_by_the_deadline(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # urllib3 gives each address of a name the whole connect timeout: five addresses that
    # never answer took five times http_timeout (2.5 s here).
    addresses, sockets = _listeners_that_never_accept(5)
    real = socket.getaddrinfo

    def resolve(host: str, port: object, *args: Any, **kwargs: Any) -> Any:
        if host != "five-dead-addresses.test":
            return real(host, port, *args, **kwargs)
        return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", address) for address in addresses]

    monkeypatch.setattr(socket, "getaddrinfo", resolve)
    for name in ("HTTP_PROXY", "http_proxy", "ALL_PROXY", "all_proxy"):
        monkeypatch.delenv(name, raising=False)
    started = time.monotonic()
    try:
        with pytest.raises(TransportError, match="ConnectTimeout"):
            Token.fetch(Metadata(url="http://five-dead-addresses.test"), timeout=0.5)
        elapsed = time.monotonic() - started
    finally:
        for each in sockets:
            each.close()
    assert elapsed < 1.5  # 0.5 s for all five, not 0.5 s each: wide of both on a loaded machine

"""The fault matrix: every way Google's endpoints misbehave, for every source.

For each fault and source: the error class and its ``retryable`` flag from a one-shot
``Token.fetch``; then a running server that already holds a token meets the same fault on a
refresh: callers keep the token, the server retries (every failure is retried) and recovers,
or, with ``max_retries=0``, crashes and is restarted with the token kept. Nothing leaks: no
thread (the autouse fixture), no socket.
"""

from __future__ import annotations

import contextlib
import email.utils
import logging
import os
import time
from collections.abc import Callable
from dataclasses import dataclass

import pytest
from _helpers import wait_for as _wait_for

from goth_actors import (
    Metadata,
    Refresh,
    RefreshToken,
    ServiceAccount,
    Source,
    Token,
    TokenEndpointError,
    TokenError,
    TransportError,
    fetch,
    start_link,
    status,
    whereis,
)
from goth_actors.otp import FakeTime
from goth_actors.testing import GoogleEmulator

WAIT = 5.0
TIMEOUT = 0.3  # the client timeout in these tests; the "slow" fault answers after 1 s


@dataclass(frozen=True)
class Fault:
    name: str
    arm: Callable[[GoogleEmulator, str, Callable[[], float]], None]
    """Arms the fault on the endpoint; the clock is the wall clock of whoever will read it."""
    error: type[TokenError]
    retryable: bool
    retry_after: float | None = None
    metadata_only: bool = False
    heal: Callable[[GoogleEmulator], None] = lambda emulator: None


def _status(code: int, error: str | None = None, retry_after: object = None) -> Callable[..., None]:
    def arm(emulator: GoogleEmulator, endpoint: str, clock: Callable[[], float]) -> None:
        emulator.fail_next(1, code, error=error, retry_after=retry_after, endpoint=endpoint)  # type: ignore[arg-type]

    return arm


def _body(body: bytes, status_code: int = 200, **headers: str) -> Callable[..., None]:
    def arm(emulator: GoogleEmulator, endpoint: str, clock: Callable[[], float]) -> None:
        emulator.respond_next(1, status_code, body, headers or None, endpoint=endpoint)

    return arm


def _retry_after_date_in(seconds: float) -> Callable[..., None]:
    """A 429 whose Retry-After is an HTTP date ``seconds`` from now on the reader's clock."""

    def arm(emulator: GoogleEmulator, endpoint: str, clock: Callable[[], float]) -> None:
        date = email.utils.formatdate(clock() + seconds, usegmt=True)
        _status(429, None, date)(emulator, endpoint, clock)

    return arm


SLOW_FAULT = "slower than the client timeout"


def _slow(emulator: GoogleEmulator, endpoint: str, clock: Callable[[], float]) -> None:
    emulator.delay(1.0)


FAULTS = [
    Fault("400 invalid_grant", _status(400, "invalid_grant"), TokenEndpointError, False),
    Fault("400 invalid_scope", _status(400, "invalid_scope"), TokenEndpointError, False),
    Fault("401", _status(401), TokenEndpointError, False),
    Fault("403", _status(403), TokenEndpointError, False),
    Fault("404", _status(404), TokenEndpointError, False),
    Fault("408", _status(408), TokenEndpointError, True),
    Fault("429", _status(429), TokenEndpointError, True),
    Fault("429 Retry-After seconds", _status(429, None, 7), TokenEndpointError, True, 7.0),
    Fault("429 Retry-After date", _retry_after_date_in(30), TokenEndpointError, True, 30.0),
    Fault("500", _status(500), TokenEndpointError, True),
    Fault("502", _status(502), TokenEndpointError, True),
    Fault("503", _status(503), TokenEndpointError, True),
    Fault("504", _status(504), TokenEndpointError, True),
    Fault(
        "connection refused",
        lambda e, ep, clock: e.down(),
        TransportError,
        True,
        heal=lambda e: e.up(),
    ),
    Fault(
        "reset mid-response",
        lambda e, ep, clock: e.reset_next(1, endpoint=ep),
        TransportError,
        True,
    ),
    Fault(
        SLOW_FAULT,
        _slow,
        TransportError,
        True,
        heal=lambda e: e.delay(0),
    ),
    Fault("200 HTML", _body(b"<html><body>Hi</body></html>"), TokenEndpointError, False),
    Fault("200 non-JSON", _body(b"access_token=x"), TokenEndpointError, False),
    Fault("200 JSON without token", _body(b'{"expires_in": 3599}'), TokenEndpointError, False),
    Fault(
        "expires_in negative",
        _body(b'{"access_token": "ya29.x", "expires_in": -1}'),
        TokenEndpointError,
        False,
    ),
    Fault(
        "expires_in zero",
        _body(b'{"access_token": "ya29.x", "expires_in": 0}'),
        TokenEndpointError,
        False,
    ),
    Fault(
        "expires_in a string",
        _body(b'{"access_token": "ya29.x", "expires_in": "an hour"}'),
        TokenEndpointError,
        False,
    ),
    Fault(
        "expires_in absurd",
        _body(b'{"access_token": "ya29.x", "expires_in": 1e300}'),
        TokenEndpointError,
        False,
    ),
    Fault("a 10 MB body", _body(b"x" * 10_000_000), TokenEndpointError, False),
    Fault(
        "a redirect",
        _body(b"", 302, Location="http://127.0.0.1:9/elsewhere"),
        TokenEndpointError,
        False,
    ),
    # Hostile answers (issue 11): deep JSON is an endpoint error, never a RecursionError...
    Fault(
        "200 JSON nested 100,000 deep",
        _body(b"[" * 100_000, **{"Metadata-Flavor": "Google"}),
        TokenEndpointError,
        False,
    ),
    Fault(
        "503 JSON nested 100,000 deep",
        _body(b'{"error": ' + b"[" * 100_000, 503),
        TokenEndpointError,
        True,
    ),
    # ... and a token that could fold, forge or split a header, or drive a terminal, is refused.
    *(
        Fault(
            f"a token with {what}",
            _body(
                b'{"access_token": "ya29.a' + raw + b'b", "expires_in": 3599}',
                **{"Metadata-Flavor": "Google"},
            ),
            TokenEndpointError,
            False,
        )
        for what, raw in [
            ("CR LF", b"\\r\\nX-Injected: 1"),
            ("an obs-fold", b"\\r\\n folded"),
            ("a NUL", b"\\u0000"),
            ("an ESC", b"\\u001b[2J"),
            ("a space", b" "),
            ("invalid UTF-8", b"\xff"),
        ]
    ),
    Fault(
        "a token_type with CR LF",
        _body(
            b'{"access_token": "ya29.a", "expires_in": 3599, "token_type": "Bearer\\r\\nX: 1"}',
            **{"Metadata-Flavor": "Google"},
        ),
        TokenEndpointError,
        False,
    ),
    Fault(
        "metadata without Metadata-Flavor",
        _body(b'{"access_token": "ya29.x", "expires_in": 3599, "token_type": "Bearer"}'),
        TokenEndpointError,
        False,
        metadata_only=True,
    ),
]

SOURCES = ["service account", "refresh token", "metadata"]


def _source(kind: str, emulator: GoogleEmulator) -> tuple[Source, str]:
    source, endpoint, _ = _source_and_secrets(kind, emulator)
    return source, endpoint


def _source_and_secrets(kind: str, emulator: GoogleEmulator) -> tuple[Source, str, list[str]]:
    """The source, the endpoint it talks to, and the secrets it holds."""
    if kind == "service account":
        key = emulator.service_account()
        fragments = key["private_key"].splitlines()[1:-1]
        return ServiceAccount(key), "token", fragments
    if kind == "refresh token":
        user = emulator.authorized_user()
        return RefreshToken(user), "token", [user["client_secret"], user["refresh_token"]]
    return Metadata(url=emulator.metadata_url), "metadata", []


def _assert_no_secret(text: str, secrets: list[str]) -> None:
    leaked = [f"{secret[:4]}... ({len(secret)} chars)" for secret in secrets if secret in text]
    assert not leaked, f"secrets in logs, reprs or errors: {leaked}"


def _cases(sources: list[str], *, slow: frozenset[str] = frozenset()) -> list[object]:
    """One case per fault and source; the faults named in ``slow`` are marked ``slow``."""
    return [
        pytest.param(
            fault,
            kind,
            id=f"{kind}: {fault.name}",
            marks=[pytest.mark.slow] if fault.name in slow else [],
        )
        for fault in FAULTS
        for kind in sources
        if not fault.metadata_only or kind == "metadata"
    ]


def _open_sockets() -> int:
    count = 0
    for fd in os.listdir("/proc/self/fd"):
        with contextlib.suppress(OSError):
            count += os.readlink(f"/proc/self/fd/{fd}").startswith("socket:")
    return count


@pytest.mark.skipif(not os.path.isdir("/proc/self/fd"), reason="counts sockets in /proc")
# Each "slow" case waits the whole second for the emulator's delayed answer to close its socket.
@pytest.mark.parametrize(("fault", "kind"), _cases(SOURCES, slow=frozenset({SLOW_FAULT})))
def test_a_one_shot_fetch_raises_the_right_error_and_flag(
    emulator: GoogleEmulator, fault: Fault, kind: str
) -> None:
    source, endpoint = _source(kind, emulator)
    sockets = _open_sockets()
    fault.arm(emulator, endpoint, time.time)
    with pytest.raises(fault.error) as info:
        Token.fetch(source, timeout=TIMEOUT)
    assert info.value.retryable is fault.retryable
    if fault.retry_after is not None:
        assert info.value.retry_after == pytest.approx(fault.retry_after, abs=2.0)
    fault.heal(emulator)
    assert Token.fetch(source, timeout=WAIT).token  # the endpoint works again
    _wait_for(lambda: _open_sockets() <= sockets)  # the emulator may still be answering


@pytest.mark.parametrize(("fault", "kind"), _cases(SOURCES))
def test_a_server_holding_a_token_rides_out_the_fault_and_recovers(
    emulator: GoogleEmulator,
    fake_time: FakeTime,
    caplog: pytest.LogCaptureFixture,
    fault: Fault,
    kind: str,
) -> None:
    caplog.set_level(logging.DEBUG)  # secret hygiene: everything, at every level
    source, endpoint, secrets = _source_and_secrets(kind, emulator)
    start_link(
        name="app",
        source=source,
        prefetch="sync",
        http_timeout=TIMEOUT,
        retry_delay=lambda attempt: 1.0,
        max_retries=None,
        time=fake_time,
    )
    held = fetch("app")
    fault.arm(emulator, endpoint, fake_time.time)
    ref = whereis("app")
    assert ref is not None
    with pytest.raises(fault.error) as info:  # whoever forces a refresh hears why it failed
        ref.ask(Refresh(), timeout=WAIT)
    assert info.value.retryable is fault.retryable
    assert fetch("app") == held  # callers holding a valid token see no error
    current = status("app")
    assert (current.state, current.consecutive_failures, current.restarts) == ("retrying", 1, 0)
    assert current.next_attempt is not None
    expected_delay = max(1.0, fault.retry_after or 0.0)
    assert current.next_attempt - fake_time.time() == pytest.approx(expected_delay, abs=2.0)
    fault.heal(emulator)
    fake_time.advance(expected_delay)  # the retry: every failure is retried
    _wait_for(lambda: status("app").state == "ok")
    fresh = fetch("app")
    assert fresh != held
    assert status("app").restarts == 0
    seen = caplog.text + repr(info.value) + str(info.value) + repr(status("app"))
    _assert_no_secret(seen + repr(source) + repr(fresh), [*secrets, held.token, fresh.token])


@pytest.mark.parametrize(("fault", "kind"), _cases(["refresh token", "metadata"]))
def test_with_max_retries_zero_the_fault_crashes_the_server_and_it_restarts_with_its_token(
    emulator: GoogleEmulator,
    fake_time: FakeTime,
    fault: Fault,
    kind: str,
) -> None:
    source, endpoint = _source(kind, emulator)
    start_link(
        name="app",
        source=source,
        prefetch="sync",
        http_timeout=TIMEOUT,
        retry_delay=lambda attempt: 1.0,
        max_retries=0,
        time=fake_time,
    )
    held = fetch("app")
    old = whereis("app")
    assert old is not None
    fault.arm(emulator, endpoint, fake_time.time)
    with pytest.raises(fault.error):
        old.ask(Refresh(), timeout=WAIT)
    _wait_for(lambda: status("app").restarts == 1)
    assert whereis("app") not in (None, old)
    assert fetch("app") == held  # through the crash and the restart
    fault.heal(emulator)
    _wait_for(lambda: status("app").next_attempt is not None)
    fake_time.advance(max(1.0, fault.retry_after or 0.0))
    _wait_for(lambda: status("app").state == "ok")
    assert fetch("app") != held

"""The token server at its edges: each test pins down a way it once went wrong."""

from __future__ import annotations

import gc
import logging
import threading
import time
import weakref
from collections.abc import Mapping

import pytest
from _helpers import GatedClient
from _helpers import wait_for as _wait_for

import goth_actors
import goth_actors.otp
from goth_actors import (
    ConfigError,
    HttpResponse,
    Metadata,
    RefreshToken,
    ServiceAccount,
    Supervisor,
    Token,
    TokenEndpointError,
    TokenError,
    TransportError,
    child_spec,
    fetch,
    start_link,
    status,
    whereis,
)
from goth_actors._protocol import default_http_client
from goth_actors.otp import FakeTime
from goth_actors.testing import GoogleEmulator

pytestmark = pytest.mark.usefixtures("shutdown_servers")

WAIT = 5.0


def test_a_token_too_close_to_expiry_is_an_error_callers_can_catch(
    emulator: GoogleEmulator,
) -> None:
    emulator.token_lifetime = 5.0  # under the 10 s margin: never handed out
    start_link(
        name="app", source=Metadata(url=emulator.metadata_url), backoff_min=60, backoff_max=60
    )
    with pytest.raises(TokenError, match="under the 10 s margin") as info:
        fetch("app")
    assert info.value.retryable is True


def test_callers_waiting_on_a_server_about_to_crash_cause_no_more_requests(
    emulator: GoogleEmulator,
) -> None:
    emulator.delay(0.2)
    emulator.fail_next(50, 503, endpoint="token")
    start_link(
        name="app",
        source=RefreshToken(emulator.authorized_user()),
        max_retries=0,
        backoff_min=60.0,
        backoff_max=60.0,
    )
    errors: list[BaseException] = []

    def caller() -> None:
        try:
            fetch("app", timeout=WAIT)
        except goth_actors.GothError as exc:
            errors.append(exc)

    threads = [threading.Thread(target=caller) for _ in range(20)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(errors) == 20
    assert all(isinstance(e, TokenEndpointError) for e in errors)
    assert len(emulator.requests_to("token")) == 1


class _SecretLeakingClient:
    """An http_client whose exceptions quote the request body, secrets and all."""

    def __init__(self) -> None:
        self.fail = True

    def __call__(
        self, *, method: str, url: str, headers: Mapping[str, str], body: bytes, timeout: float
    ) -> HttpResponse:
        if self.fail:
            raise ConnectionError(f"could not send {body.decode()}")
        return default_http_client(
            method=method, url=url, headers=headers, body=body, timeout=timeout
        )


def test_no_secret_reaches_any_log_record_through_a_crash(
    emulator: GoogleEmulator, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    user = emulator.authorized_user()
    user["client_secret"] = "GOCSPX-Xy+9/kQ=Lm+2/pR7"  # characters that URL-encoding changes
    client = _SecretLeakingClient()
    start_link(
        name="app",
        source=RefreshToken(user),
        http_client=client,
        max_retries=0,
        retry_delay=lambda n: 60.0,
    )
    _wait_for(lambda: status("app").restarts == 1)
    with pytest.raises(TransportError) as info:
        fetch("app")
    text = caplog.text + str(info.value)
    for secret in (user["client_secret"], user["refresh_token"], "Xy%2B9%2FkQ%3DLm"):
        assert secret not in text


def test_failed_fetches_are_not_logged_by_pykka(
    emulator: GoogleEmulator, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="pykka")
    emulator.down()
    start_link(
        name="app",
        source=Metadata(url=emulator.metadata_url),
        prefetch="sync",
        backoff_min=60,
        backoff_max=60,
    )
    for _ in range(20):
        with pytest.raises(TransportError):
            fetch("app")
    assert not [r for r in caplog.records if r.name == "pykka" and r.exc_info]
    emulator.up()


def test_a_new_identity_under_an_old_name_does_not_inherit_its_token(
    emulator: GoogleEmulator,
) -> None:
    alice = ServiceAccount(emulator.service_account("alice@emulator.iam"))
    bob = ServiceAccount(emulator.service_account("bob@emulator.iam"))
    supervisor = Supervisor.start([child_spec(name="x", source=alice, prefetch="sync")])
    try:
        assert emulator.token_info(fetch("x").token)["email"] == "alice@emulator.iam"  # type: ignore[index]
        supervisor.ask(goth_actors.otp.TerminateChild("x"), timeout=WAIT)
        supervisor.ask(goth_actors.otp.DeleteChild("x"), timeout=WAIT)
        supervisor.ask(
            goth_actors.otp.StartChild(child_spec(name="x", source=bob, prefetch="sync")),
            timeout=WAIT,
        )
        assert emulator.token_info(fetch("x").token)["email"] == "bob@emulator.iam"  # type: ignore[index]
        assert status("x").restarts == 0
    finally:
        supervisor.stop()


def test_retry_after_paces_the_restart_after_a_crash(
    emulator: GoogleEmulator, fake_time: FakeTime
) -> None:
    emulator.fail_next(1, 429, retry_after=30, endpoint="token")
    start_link(
        name="app",
        source=RefreshToken(emulator.authorized_user()),
        max_retries=0,
        retry_delay=lambda n: 0.2,
        time=fake_time,
    )
    _wait_for(lambda: status("app").restarts == 1 and status("app").next_attempt is not None)
    next_attempt = status("app").next_attempt
    assert next_attempt is not None
    assert next_attempt - fake_time.time() == pytest.approx(30.0, abs=2.0)


def test_a_retry_delay_that_raises_does_not_make_a_crash_loop(emulator: GoogleEmulator) -> None:
    def broken(attempt: int) -> float:
        raise ZeroDivisionError("oops")

    emulator.fail_next(1, 503, endpoint="token")
    start_link(
        name="app",
        source=RefreshToken(emulator.authorized_user()),
        prefetch="sync",
        retry_delay=broken,
        backoff_max=60.0,
    )
    current = status("app")
    assert current.state == "retrying"
    assert current.next_attempt is not None
    assert current.next_attempt - time.time() == pytest.approx(60.0, abs=2.0)
    assert current.restarts == 0


def test_a_zero_backoff_max_is_refused(emulator: GoogleEmulator) -> None:
    with pytest.raises(ConfigError) as info:
        start_link(
            name="app",
            source=Metadata(url=emulator.metadata_url),
            backoff_min=0.0,
            backoff_max=0.0,
        )
    assert info.value.field == "backoff_max"


def test_stop_frees_the_name_even_while_the_server_is_busy(emulator: GoogleEmulator) -> None:
    source = Metadata(url=emulator.metadata_url)
    gate = GatedClient(open=True)
    start_link(name="app", source=source, http_client=gate, prefetch="sync")
    ref = whereis("app")
    assert ref is not None
    gate.open.clear()
    gate.entered.clear()
    ref.ask(goth_actors.Refresh(), block=False)  # the actor is now busy until the gate opens
    assert gate.entered.wait(WAIT)
    goth_actors.stop("app", timeout=0.05)  # no pykka.Timeout escapes
    assert not ref.is_alive()  # killed: it ends with its exchange, and arms no timer after
    with pytest.raises(goth_actors.ServerNotFound):
        status("app")
    gate.open.set()  # the exchange ends, and with it the killed actor's thread
    assert gate.thread is not None
    gate.thread.join(WAIT)
    assert not gate.thread.is_alive()
    with pytest.raises(goth_actors.ServerNotFound):
        status("app")  # its late answer was written nowhere
    start_link(name="app", source=source, prefetch="sync")
    assert status("app").restarts == 0


@pytest.mark.slow  # two real refreshes, at least MIN_REFRESH_INTERVAL (1 s) apart
def test_shutdown_leaves_the_timers_of_your_own_supervisors_running(
    emulator: GoogleEmulator,
) -> None:
    supervisor = Supervisor.start(
        [
            child_spec(
                name="mine",
                source=Metadata(url=emulator.metadata_url),
                refresh_after=0.05,
                prefetch="sync",
            )
        ]
    )
    try:
        start_link(name="library", source=Metadata(url=emulator.metadata_url), prefetch="sync")
        goth_actors.shutdown()
        before = len(emulator.requests_to("metadata"))
        emulator.wait_for_requests(before + 2, "metadata")  # "mine" keeps refreshing
    finally:
        supervisor.stop()


def test_a_body_that_drips_in_is_cut_off_at_the_timeout(emulator: GoogleEmulator) -> None:
    import socket

    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(1)
        stop = threading.Event()

        def drip() -> None:
            connection, _ = listener.accept()
            with connection:
                connection.recv(65536)
                connection.sendall(
                    b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                    b"Content-Length: 100000\r\nMetadata-Flavor: Google\r\n\r\n"
                )
                while not stop.wait(0.05):
                    try:
                        connection.sendall(b" ")
                    except OSError:
                        return

        server = threading.Thread(target=drip)
        server.start()
        started = time.monotonic()
        try:
            with pytest.raises(TransportError, match="ReadTimeout"):
                Token.fetch(
                    Metadata(url=f"http://127.0.0.1:{listener.getsockname()[1]}"), timeout=0.3
                )
        finally:
            stop.set()
            server.join(WAIT)
        assert time.monotonic() - started < 3.0


def test_forced_refreshes_during_an_outage_cost_one_request_per_backoff_step(
    emulator: GoogleEmulator,
) -> None:
    start_link(
        name="app",
        source=RefreshToken(emulator.authorized_user()),
        prefetch="sync",
        backoff_min=60.0,
        backoff_max=60.0,
    )
    held = fetch("app").token
    emulator.fail_next(1000, 503, endpoint="token")
    ref = whereis("app")
    assert ref is not None
    futures = [
        ref.ask(goth_actors.Refresh(unless_changed_from=held), block=False) for _ in range(50)
    ]
    for future in futures:
        with pytest.raises(TokenEndpointError):
            future.get(timeout=WAIT)
    assert len(emulator.requests_to("token")) == 2  # the prefetch, then one failed refresh
    assert fetch("app").token == held


def test_concurrent_rejections_of_a_token_the_metadata_server_hands_out_again_cost_one_refresh(
    emulator: GoogleEmulator,
) -> None:
    from goth_actors.integrations import refresh_rejected

    same = {"access_token": "ya29.same-cached-token", "expires_in": 3000, "token_type": "Bearer"}
    emulator.respond_next(100, 200, same, {"Metadata-Flavor": "Google"}, endpoint="metadata")
    start_link(name="app", source=Metadata(url=emulator.metadata_url), prefetch="sync")
    sent_at = time.monotonic()  # every request used the token from here on, then got a 401
    results: list[str] = []

    def rejected() -> None:
        results.append(refresh_rejected("app", same["access_token"], sent_at=sent_at).token)

    threads = [threading.Thread(target=rejected) for _ in range(20)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert results == [same["access_token"]] * 20
    assert len(emulator.requests_to("metadata")) == 2  # the prefetch, then one refresh


class _Held:
    """Something a caller's frame holds while its fetch fails."""


def test_a_failed_fetch_leaves_nothing_of_the_callers_frames_with_the_server(
    emulator: GoogleEmulator,
) -> None:
    emulator.down()
    goth_actors.start_link(
        name="app",
        source=RefreshToken(emulator.authorized_user()),
        backoff_min=60.0,
        backoff_max=60.0,
    )

    def call() -> weakref.ref[_Held]:
        held = _Held()
        with pytest.raises(TransportError):
            goth_actors.fetch("app", timeout=WAIT)
        return weakref.ref(held)

    gone = call()  # the server is now idle until its retry, a minute away
    gc.collect()
    assert gone() is None  # its last answer's traceback does not hold the caller's frame
    emulator.up()


def test_concurrent_starts_of_one_name_leave_one_server_that_stop_really_stops(
    emulator: GoogleEmulator,
) -> None:
    source = RefreshToken(emulator.authorized_user())
    for _ in range(5):
        gate = threading.Barrier(6)
        outcomes: list[str] = []

        def start(gate: threading.Barrier = gate, outcomes: list[str] = outcomes) -> None:
            gate.wait(5.0)
            try:
                goth_actors.start_link(name="app", source=source)
                outcomes.append("started")
            except goth_actors.AlreadyStarted:
                outcomes.append("already")

        threads = [threading.Thread(target=start) for _ in range(6)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(10.0)
        assert sorted(outcomes) == ["already"] * 5 + ["started"]
        goth_actors.stop("app")
        assert whereis("app") is None
        with pytest.raises(goth_actors.ServerNotFound):
            goth_actors.fetch("app", timeout=0.1)


def test_concurrent_forced_refreshes_share_one_exchange_and_a_later_one_makes_its_own(
    emulator: GoogleEmulator,
) -> None:
    goth_actors.start_link(
        name="app", source=RefreshToken(emulator.authorized_user()), prefetch="sync"
    )
    emulator.delay(0.2)  # the first forced exchange is in flight while the others queue
    gate = threading.Barrier(10)
    tokens: list[str] = []

    def force() -> None:
        gate.wait(5.0)
        tokens.append(goth_actors.refresh("app", timeout=WAIT).token)

    threads = [threading.Thread(target=force) for _ in range(10)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(10.0)
    emulator.delay(0)
    assert len(set(tokens)) == 1
    assert len(emulator.requests_to("token")) == 2  # the first token, then one refresh
    assert goth_actors.refresh("app", timeout=WAIT).token != tokens[0]
    assert len(emulator.requests_to("token")) == 3

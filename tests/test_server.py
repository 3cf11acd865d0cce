"""The token server: Goth's server as a supervised Pykka actor, against the emulator."""

from __future__ import annotations

import logging
import threading
import time
from typing import Any

import pykka
import pytest
from _helpers import wait_for as _wait_for

import goth_actors
from goth_actors import (
    AlreadyStarted,
    ConfigError,
    Event,
    Fetch,
    FetchTimeout,
    Metadata,
    RefreshToken,
    ServerNotFound,
    ServiceAccount,
    Supervisor,
    Token,
    TokenEndpointError,
    TransportError,
    child_spec,
    fetch,
    start_link,
    status,
    whereis,
)
from goth_actors.otp import FakeTime
from goth_actors.testing import GoogleEmulator

pytestmark = pytest.mark.usefixtures("shutdown_servers")

WAIT = 5.0


def _advance(fake_time: FakeTime, seconds: float, name: object = "app") -> None:
    """Moves time on once the server has armed its next timer (it does so on its own thread)."""
    _wait_for(lambda: status(name).next_attempt is not None)
    fake_time.advance(seconds)


def _events() -> tuple[list[Event], Any]:
    seen: list[Event] = []
    return seen, goth_actors.subscribe(seen.append)


# ------------------------------------------------------------------------------ 1. hot path


def test_a_cached_token_is_served_without_asking_the_busy_actor(
    emulator: GoogleEmulator,
) -> None:
    start_link(name="app", source=ServiceAccount(emulator.service_account()), prefetch="sync")
    first = fetch("app")
    emulator.delay(0.5)
    ref = whereis("app")
    assert ref is not None
    in_flight = ref.ask(goth_actors.Refresh(), block=False)  # the actor is now busy for 0.5 s
    emulator.wait_for_requests(2, "token")
    assert fetch("app", timeout=0.001) == first  # an ask would have timed out
    assert in_flight.get(timeout=WAIT) != first


def test_fetch_never_returns_a_token_within_ten_seconds_of_expiry(
    emulator: GoogleEmulator, fake_time: FakeTime
) -> None:
    source = RefreshToken(emulator.authorized_user())
    start_link(name="app", source=source, prefetch="sync", time=fake_time)
    first = fetch("app")
    fake_time.jump(first.expires - fake_time.time() - 9.0)  # 9 s left: not to be served
    second = fetch("app")
    assert second != first
    assert second.expires - fake_time.time() > 3000
    assert len(emulator.requests_to("token")) == 2


# ------------------------------------------------------------------------------- 2. prefetch


def test_async_prefetch_returns_at_once_and_fetches_in_the_background(
    emulator: GoogleEmulator,
) -> None:
    emulator.delay(0.3)
    start_link(name="app", source=ServiceAccount(emulator.service_account()))
    assert status("app").state in ("starting", "fetching")
    assert fetch("app").token
    assert status("app").state == "ok"


def test_sync_prefetch_returns_after_the_first_attempt(emulator: GoogleEmulator) -> None:
    start_link(name="app", source=RefreshToken(emulator.authorized_user()), prefetch="sync")
    assert status("app").state == "ok"
    assert len(emulator.requests_to("token")) == 1


def test_a_failed_sync_prefetch_does_not_fail_the_start(emulator: GoogleEmulator) -> None:
    emulator.fail_next(1, 503, endpoint="token")
    start_link(
        name="app",
        source=RefreshToken(emulator.authorized_user()),
        prefetch="sync",
        backoff_min=60.0,
        backoff_max=60.0,
    )
    current = status("app")
    assert current.state == "retrying"
    assert isinstance(current.last_error, TokenEndpointError)
    assert current.consecutive_failures == 1


# --------------------------------------------------------------------------- 3. single flight


def test_two_hundred_callers_on_a_cold_server_cause_one_request(
    emulator: GoogleEmulator,
) -> None:
    emulator.delay(0.2)
    start_link(name="app", source=ServiceAccount(emulator.service_account()))
    barrier = threading.Barrier(200)
    tokens: list[Token] = []

    def caller() -> None:
        barrier.wait()
        tokens.append(fetch("app", timeout=WAIT))

    threads = [threading.Thread(target=caller) for _ in range(200)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(tokens) == 200
    assert len({t.token for t in tokens}) == 1
    assert len(emulator.requests_to("token")) == 1


# --------------------------------------------------------------------------- 4. waiting callers


def test_waiting_callers_get_the_failed_attempts_error_at_once(emulator: GoogleEmulator) -> None:
    emulator.delay(0.2)
    emulator.fail_next(1, 503, endpoint="token")
    start_link(
        name="app",
        source=ServiceAccount(emulator.service_account()),
        backoff_min=60.0,
        backoff_max=60.0,
    )
    started = time.monotonic()
    with pytest.raises(TokenEndpointError) as info:
        fetch("app", timeout=30.0)
    assert info.value.status == 503
    assert time.monotonic() - started < 10.0  # the error, long before the 30 s timeout


def test_between_retries_callers_get_the_last_error_without_new_requests(
    emulator: GoogleEmulator,
) -> None:
    emulator.down()
    start_link(
        name="app",
        source=ServiceAccount(emulator.service_account()),
        prefetch="sync",
        backoff_min=60.0,
        backoff_max=60.0,
    )
    emulator.up()
    for _ in range(50):
        with pytest.raises(TransportError):
            fetch("app")
    assert emulator.requests_to("token") == []


def test_a_waiting_caller_is_bounded_by_its_own_timeout(emulator: GoogleEmulator) -> None:
    emulator.delay(2.0)
    start_link(name="app", source=ServiceAccount(emulator.service_account()))
    with pytest.raises(FetchTimeout):
        fetch("app", timeout=0.05)
    with pytest.raises(TimeoutError):  # FetchTimeout is a TimeoutError too
        fetch("app", timeout=0.01)
    emulator.delay(0)


# -------------------------------------------------------------------------------- 5. refresh


def test_the_next_refresh_is_at_refresh_after_brought_forward_by_jitter(
    emulator: GoogleEmulator, fake_time: FakeTime
) -> None:
    start_link(
        name="app",
        source=RefreshToken(emulator.authorized_user()),
        prefetch="sync",
        refresh_after=1000.0,
        time=fake_time,
    )
    current = status("app")
    assert current.last_refresh is not None
    assert current.next_attempt is not None
    delay = current.next_attempt - current.last_refresh
    assert 900.0 <= delay <= 1000.0


def test_the_next_refresh_is_refresh_before_its_expiry_brought_forward_by_jitter(
    emulator: GoogleEmulator, fake_time: FakeTime
) -> None:
    emulator.token_lifetime = 1000.0
    start_link(
        name="app",
        source=RefreshToken(emulator.authorized_user()),
        prefetch="sync",
        refresh_before=200.0,
        time=fake_time,
    )
    current = status("app")
    assert current.next_attempt is not None
    assert current.last_refresh is not None
    delay = current.next_attempt - current.last_refresh
    assert 0.9 * 800.0 - 1 <= delay <= 800.0 + 1


def test_a_lifetime_below_refresh_before_refreshes_at_half_of_it_not_in_a_loop(
    emulator: GoogleEmulator, fake_time: FakeTime
) -> None:
    emulator.token_lifetime = 100.0  # a metadata server's cached token with minutes left
    start_link(
        name="app",
        source=Metadata(url=emulator.metadata_url),
        prefetch="sync",
        refresh_before=225.0,
        time=fake_time,
    )
    current = status("app")
    assert current.next_attempt is not None
    assert current.last_refresh is not None
    delay = current.next_attempt - current.last_refresh
    assert 0.9 * 45.0 - 1 <= delay <= 45.0 + 1  # half of its usable (100 - 10 s) lifetime
    assert len(emulator.requests_to("metadata")) == 1


def test_a_lifetime_just_above_refresh_before_is_not_refreshed_every_second(
    emulator: GoogleEmulator, fake_time: FakeTime
) -> None:
    emulator.token_lifetime = 226.0  # 1 s more than refresh_before
    start_link(
        name="app",
        source=Metadata(url=emulator.metadata_url),
        prefetch="sync",
        time=fake_time,
    )
    current = status("app")
    assert current.next_attempt is not None
    assert current.last_refresh is not None
    assert current.next_attempt - current.last_refresh >= 0.9 * (226.0 - 10.0) / 2 - 1


def test_refresh_ticks_fetch_a_new_token_when_due(
    emulator: GoogleEmulator, fake_time: FakeTime
) -> None:
    start_link(
        name="app",
        source=RefreshToken(emulator.authorized_user()),
        prefetch="sync",
        refresh_after=100.0,
        time=fake_time,
    )
    first = fetch("app")
    _advance(fake_time, 100.0)
    emulator.wait_for_requests(2, "token")
    _wait_for(lambda: fetch("app") != first)
    assert status("app").state == "ok"


def test_refreshes_never_come_sooner_than_a_second_apart(
    emulator: GoogleEmulator, fake_time: FakeTime
) -> None:
    emulator.token_lifetime = 11.5  # just above the 10 s margin: half of it would be 0.75 s
    start_link(
        name="app",
        source=RefreshToken(emulator.authorized_user()),
        prefetch="sync",
        time=fake_time,
    )
    current = status("app")
    assert current.next_attempt is not None
    assert current.last_refresh is not None
    assert current.next_attempt - current.last_refresh >= 1.0


# ------------------------------------------------------------------------------- 6. serving


def test_callers_keep_the_current_token_while_refreshes_fail(
    emulator: GoogleEmulator, fake_time: FakeTime
) -> None:
    start_link(
        name="app",
        source=RefreshToken(emulator.authorized_user()),
        prefetch="sync",
        refresh_after=100.0,
        retry_delay=lambda n: 10.0,
        time=fake_time,
    )
    first = fetch("app")
    emulator.fail_next(3, 503, endpoint="token")
    for step in range(1, 4):
        _advance(fake_time, 100.0 if step == 1 else 10.0)
        emulator.wait_for_requests(1 + step, "token")
        assert fetch("app") == first
    assert status("app").consecutive_failures >= 2


# ------------------------------------------------------------------------------- 7. backoff


def test_failed_attempts_are_retried_with_the_backoff_and_it_resets_after_success(
    emulator: GoogleEmulator, fake_time: FakeTime
) -> None:
    seen, unsubscribe = _events()
    emulator.fail_next(3, 500, endpoint="token")
    start_link(
        name="app",
        source=RefreshToken(emulator.authorized_user()),
        prefetch="sync",
        backoff_type="exp",
        backoff_min=2.0,
        backoff_max=5.0,
        time=fake_time,
    )
    for attempt in (2, 3, 4):
        _advance(fake_time, 5.0)
        emulator.wait_for_requests(attempt, "token")
    _wait_for(lambda: status("app").state == "ok")
    unsubscribe()
    delays = [e.delay for e in seen if e.kind == "retry_scheduled"]
    assert delays == [2.0, 4.0, 5.0]
    assert status("app").consecutive_failures == 0


def test_retry_after_is_honoured_when_it_asks_for_longer(
    emulator: GoogleEmulator, fake_time: FakeTime
) -> None:
    emulator.fail_next(1, 429, retry_after=42, endpoint="token")
    start_link(
        name="app",
        source=RefreshToken(emulator.authorized_user()),
        prefetch="sync",
        backoff_min=1.0,
        backoff_max=2.0,
        time=fake_time,
    )
    current = status("app")
    assert current.next_attempt is not None
    assert current.next_attempt - fake_time.time() == pytest.approx(42.0, abs=0.5)


def test_non_retryable_errors_are_retried_too(
    emulator: GoogleEmulator, fake_time: FakeTime
) -> None:
    emulator.fail_next(1, 400, error="invalid_grant", endpoint="token")
    start_link(
        name="app",
        source=RefreshToken(emulator.authorized_user()),
        prefetch="sync",
        retry_delay=lambda n: 1.0,
        time=fake_time,
    )
    with pytest.raises(TokenEndpointError) as info:
        fetch("app")
    assert info.value.retryable is False
    _advance(fake_time, 1.0)
    _wait_for(lambda: status("app").state == "ok")


# ------------------------------------------------------------------------ 8. crash and restart


def test_a_crashed_server_is_restarted_with_its_token_kept(
    emulator: GoogleEmulator, fake_time: FakeTime
) -> None:
    seen, unsubscribe = _events()
    start_link(
        name="app",
        source=RefreshToken(emulator.authorized_user()),
        prefetch="sync",
        refresh_after=100.0,
        max_retries=1,
        retry_delay=lambda n: 1.0,
        time=fake_time,
    )
    first = fetch("app")
    old_ref = whereis("app")
    emulator.fail_next(2, 503, endpoint="token")
    _advance(fake_time, 100.0)  # the refresh fails
    emulator.wait_for_requests(2, "token")
    _advance(fake_time, 1.0)  # its one retry fails: the server crashes
    emulator.wait_for_requests(3, "token")
    _wait_for(lambda: status("app").restarts == 1)
    assert whereis("app") not in (None, old_ref)
    assert fetch("app") == first  # through the crash and the restart
    _advance(fake_time, 1.0)  # the restarted server's paced prefetch
    _wait_for(lambda: status("app").state == "ok" and fetch("app") != first)
    unsubscribe()
    kinds = [e.kind for e in seen]
    assert "crash" in kinds
    assert "restart" in kinds


def test_max_retries_zero_crashes_at_the_first_failure(
    emulator: GoogleEmulator, fake_time: FakeTime
) -> None:
    emulator.fail_next(1, 503, endpoint="token")
    start_link(
        name="app",
        source=RefreshToken(emulator.authorized_user()),
        max_retries=0,
        retry_delay=lambda n: 1.0,
        time=fake_time,
    )
    _wait_for(lambda: status("app").restarts == 1)
    _advance(fake_time, 1.0)
    _wait_for(lambda: status("app").state == "ok")


def test_max_retries_none_never_crashes(emulator: GoogleEmulator, fake_time: FakeTime) -> None:
    emulator.fail_next(30, 503, endpoint="token")
    start_link(
        name="app",
        source=RefreshToken(emulator.authorized_user()),
        prefetch="sync",
        max_retries=None,
        retry_delay=lambda n: 1.0,
        time=fake_time,
    )
    for attempt in range(2, 32):
        _advance(fake_time, 1.0)
        emulator.wait_for_requests(attempt, "token")
    _wait_for(lambda: status("app").state == "ok")
    assert status("app").restarts == 0


# --------------------------------------------------------------------------------- 9. clock


def test_a_wall_clock_jump_past_expiry_gets_a_fresh_token(
    emulator: GoogleEmulator, fake_time: FakeTime
) -> None:
    start_link(
        name="app",
        source=RefreshToken(emulator.authorized_user()),
        prefetch="sync",
        time=fake_time,
    )
    first = fetch("app")
    fake_time.jump(7200.0)  # laptop sleep: no timer has fired
    second = fetch("app")
    assert second != first
    assert second.expires > fake_time.time()


def test_a_wall_clock_jump_backward_breaks_nothing(
    emulator: GoogleEmulator, fake_time: FakeTime
) -> None:
    start_link(
        name="app",
        source=RefreshToken(emulator.authorized_user()),
        prefetch="sync",
        time=fake_time,
    )
    first = fetch("app")
    fake_time.jump(-7200.0)
    assert fetch("app") == first
    assert len(emulator.requests_to("token")) == 1


# -------------------------------------------------------------------------------- 10. secrets


def test_no_secret_reaches_a_log_record_at_any_level(
    emulator: GoogleEmulator, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    user = emulator.authorized_user()
    emulator.fail_next(1, 400, error="invalid_grant", endpoint="token")
    start_link(name="app", source=RefreshToken(user), prefetch="sync", retry_delay=lambda n: 0.01)
    _wait_for(lambda: status("app").state == "ok")
    token = fetch("app")
    text = "\n".join(caplog.text.splitlines()) + repr(status("app")) + repr(token)
    for secret in (token.token, user["client_secret"], user["refresh_token"]):
        assert secret not in text
    assert any(r.name.startswith("goth_actors") for r in caplog.records)


# --------------------------------------------------------------------------------- 11. events


def test_attempts_successes_and_schedules_are_published_as_events(
    emulator: GoogleEmulator,
) -> None:
    seen, unsubscribe = _events()
    start_link(name="app", source=ServiceAccount(emulator.service_account()), prefetch="sync")
    unsubscribe()
    assert [e.kind for e in seen] == ["attempt", "success", "refresh_scheduled"]
    success = seen[1]
    assert success.name == "app"
    assert success.expires is not None
    assert success.duration is not None


# ------------------------------------------------------------------------------------ the API


def test_a_second_server_with_a_running_name_is_already_started(
    emulator: GoogleEmulator,
) -> None:
    source = ServiceAccount(emulator.service_account())
    start_link(name="app", source=source)
    with pytest.raises(AlreadyStarted):
        start_link(name="app", source=source)


def test_fetch_of_an_unknown_name_is_server_not_found() -> None:
    with pytest.raises(ServerNotFound):
        fetch("nobody")
    with pytest.raises(LookupError):
        fetch("nobody")


def test_look_up_by_name_and_ask_with_a_timeout(emulator: GoogleEmulator) -> None:
    start_link(name=("tenant", 7), source=ServiceAccount(emulator.service_account()))
    ref = whereis(("tenant", 7))
    assert ref is not None
    token = ref.ask(Fetch(), timeout=WAIT)
    assert token == fetch(("tenant", 7))


def test_stop_forgets_the_server_and_its_name_can_be_reused(emulator: GoogleEmulator) -> None:
    source = ServiceAccount(emulator.service_account())
    start_link(name="app", source=source, prefetch="sync")
    goth_actors.stop("app")
    with pytest.raises(ServerNotFound):
        fetch("app")
    with pytest.raises(ServerNotFound):
        status("app")
    start_link(name="app", source=source, prefetch="sync")
    assert status("app").restarts == 0


def test_servers_fit_in_one_supervisor_by_name(emulator: GoogleEmulator) -> None:
    supervisor = Supervisor.start(
        [
            child_spec(name="one", source=ServiceAccount(emulator.service_account())),
            child_spec(name="two", source=RefreshToken(emulator.authorized_user())),
        ]
    )
    try:
        assert fetch("one") != fetch("two")
        ids = [child.id for child in supervisor.proxy().which_children().get(timeout=WAIT)]
        assert ids == ["one", "two"]
    finally:
        supervisor.stop()


def test_shutdown_stops_every_server_and_thread(emulator: GoogleEmulator) -> None:
    before = set(threading.enumerate())
    start_link(name="a", source=ServiceAccount(emulator.service_account()), prefetch="sync")
    start_link(name="b", source=Metadata(url=emulator.metadata_url), prefetch="sync")
    goth_actors.shutdown()
    assert pykka.ActorRegistry.get_all() == []
    with pytest.raises(ServerNotFound):
        fetch("a")
    for thread in set(threading.enumerate()) - before:
        thread.join(WAIT)
        assert not thread.is_alive(), thread.name


@pytest.mark.parametrize(
    ("option", "value"),
    [
        ("refresh_after", -1.0),
        ("refresh_after", 0),
        ("refresh_before", -5),
        ("refresh_before", "300"),
        ("backoff_min", -1.0),
        ("backoff_max", float("inf")),
        ("backoff_type", "linear"),
        ("prefetch", "lazy"),
        ("max_retries", -1),
        ("max_retries", 2.5),
        ("max_retries", True),
        ("retry_delay", 5),
        ("http_client", "requests"),
        ("source", {"type": "service_account"}),
        ("name", ["unhashable"]),
    ],
)
def test_every_option_is_validated_before_any_actor_starts(
    emulator: GoogleEmulator, option: str, value: object
) -> None:
    options: dict[str, Any] = {
        "name": "app",
        "source": ServiceAccount(emulator.service_account()),
    }
    options[option] = value
    with pytest.raises(ConfigError) as info:
        start_link(**options)
    assert info.value.field == option
    assert pykka.ActorRegistry.get_all() == []


def test_backoff_min_above_backoff_max_is_refused(emulator: GoogleEmulator) -> None:
    with pytest.raises(ConfigError, match="greater than backoff_max"):
        start_link(
            name="app",
            source=ServiceAccount(emulator.service_account()),
            backoff_min=10.0,
            backoff_max=1.0,
        )


def test_a_server_stopped_from_outside_is_restarted_and_callers_keep_its_token(
    emulator: GoogleEmulator,
) -> None:
    start_link(name="app", source=ServiceAccount(emulator.service_account()), prefetch="sync")
    first = fetch("app")
    old = whereis("app")
    assert old is not None
    old.stop()  # a normal stop, from anywhere: the permanent child is restarted
    assert fetch("app") == first
    _wait_for(lambda: status("app").restarts == 1)
    assert whereis("app") not in (None, old)
    assert fetch("app") == first

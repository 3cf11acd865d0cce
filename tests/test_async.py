"""fetch_async on real event loops, against the emulator over real HTTP on 127.0.0.1."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Coroutine
from typing import Any

import pytest
from _api_server import start_app, token_requests
from _helpers import WAIT, GatedClient, wait_for

import goth_actors
from goth_actors import (
    ConfigError,
    FetchTimeout,
    ServerNotFound,
    ServiceAccount,
    Token,
    TokenEndpointError,
    fetch,
    fetch_async,
    start_link,
)
from goth_actors.testing import FakeTime, GoogleEmulator

pytestmark = pytest.mark.usefixtures("shutdown_servers")


def _start_gated(emulator: GoogleEmulator, name: str = "app") -> GatedClient:
    """A cold server whose first exchange waits at the gate."""
    gate = GatedClient()
    start_link(name=name, source=ServiceAccount(emulator.service_account()), http_client=gate)
    assert gate.entered.wait(WAIT)
    return gate


async def _until(predicate: Any) -> None:
    """Lets the loop run until ``predicate()`` holds (what other tasks do), bounded."""
    for _ in range(100_000):
        if predicate():
            return
        await asyncio.sleep(0)
    raise AssertionError("condition not reached")


# ------------------------------------------------------------------------------------- hits


def test_a_cached_token_is_returned_without_ever_yielding_to_the_event_loop(
    emulator: GoogleEmulator,
) -> None:
    start_app(emulator)
    coroutine: Coroutine[Any, Any, Token] = fetch_async("app")
    with pytest.raises(StopIteration) as done:
        coroutine.send(None)  # one step, no event loop at all: it never awaited anything
    assert done.value.value == fetch("app")


def test_a_cached_token_starts_no_thread(emulator: GoogleEmulator) -> None:
    start_app(emulator)
    before = set(threading.enumerate())
    tokens = asyncio.run(_gather(100, lambda: fetch_async("app")))
    assert set(tokens) == {fetch("app")}
    assert set(threading.enumerate()) <= before


async def _gather(count: int, make: Any) -> list[Any]:
    return await asyncio.gather(*(make() for _ in range(count)))


# ----------------------------------------------------------------------------------- misses


def test_a_thousand_coroutines_and_a_thread_on_a_cold_server_cause_one_request(
    emulator: GoogleEmulator,
) -> None:
    gate = _start_gated(emulator)
    from_thread: list[Token] = []

    async def main() -> list[Token]:
        tasks = [asyncio.create_task(fetch_async("app")) for _ in range(1000)]
        await asyncio.sleep(0)  # every task is waiting now
        caller = threading.Thread(target=lambda: from_thread.append(fetch("app")))
        caller.start()
        inbox = goth_actors.whereis("app").actor_inbox  # type: ignore[union-attr]
        # The thread misses too: its ask queues behind the flight's, at the gate.
        await asyncio.to_thread(wait_for, lambda: inbox.qsize() >= 2)
        gate.open.set()
        tokens = await asyncio.gather(*tasks)
        await asyncio.to_thread(caller.join, WAIT)
        return tokens

    tokens = asyncio.run(main())
    assert len(tokens) == 1000
    assert set(tokens) == set(from_thread) == {fetch("app")}
    assert token_requests(emulator) == 1
    assert gate.calls == 1


def test_the_event_loop_runs_on_while_a_miss_waits(emulator: GoogleEmulator) -> None:
    gate = _start_gated(emulator)

    async def main() -> tuple[Token, int]:
        ticks = 0

        async def ticker() -> None:
            nonlocal ticks
            while True:
                ticks += 1
                await asyncio.sleep(0)

        ticking = asyncio.create_task(ticker())
        waiting = asyncio.create_task(fetch_async("app"))
        await _until(lambda: ticks >= 1000)  # the loop turned 1,000 times meanwhile
        assert not waiting.done()
        gate.open.set()  # only this coroutine can let the token through
        token = await waiting
        ticking.cancel()
        return token, ticks

    token, ticks = asyncio.run(main())
    assert token == fetch("app")
    assert ticks >= 1000


def test_cancelling_a_waiting_task_leaves_the_server_and_the_other_waiters_untouched(
    emulator: GoogleEmulator,
) -> None:
    gate = _start_gated(emulator)

    async def main() -> tuple[list[Token], asyncio.Task[Token]]:
        cancelled = asyncio.create_task(fetch_async("app"))
        others = [asyncio.create_task(fetch_async("app")) for _ in range(3)]
        await asyncio.sleep(0)
        cancelled.cancel()
        with pytest.raises(asyncio.CancelledError):
            await cancelled
        gate.open.set()
        return await asyncio.gather(*others), cancelled

    tokens, cancelled = asyncio.run(main())
    assert cancelled.cancelled()
    assert set(tokens) == {fetch("app")}
    assert goth_actors.status("app").state == "ok"
    assert token_requests(emulator) == 1


def test_a_waiter_that_times_out_raises_fetch_timeout_and_a_later_one_still_gets_the_token(
    emulator: GoogleEmulator,
) -> None:
    gate = _start_gated(emulator)

    async def main() -> Token:
        hasty = asyncio.create_task(fetch_async("app", timeout=0.01))  # it starts the flight
        await asyncio.sleep(0)
        patient = asyncio.create_task(fetch_async("app", timeout=WAIT))
        with pytest.raises(FetchTimeout, match=r"within 0\.01 s"):
            await hasty
        inbox = goth_actors.whereis("app").actor_inbox  # type: ignore[union-attr]
        # The flight's first ask ran out with the hasty waiter; it asks again for the patient
        # one (both asks queue behind the exchange at the gate).
        await asyncio.to_thread(wait_for, lambda: inbox.qsize() >= 2)
        assert not patient.done()
        gate.open.set()
        return await patient

    assert asyncio.run(main()) == fetch("app")
    assert token_requests(emulator) == 1


def test_a_failed_attempt_reaches_every_waiter_each_with_its_own_copy(
    emulator: GoogleEmulator,
) -> None:
    emulator.fail_next(1, 400, error="invalid_grant", endpoint="token")
    gate = _start_gated(emulator)

    async def main() -> list[BaseException]:
        tasks = [asyncio.create_task(fetch_async("app")) for _ in range(3)]
        await asyncio.sleep(0)
        gate.open.set()
        return await asyncio.gather(*tasks, return_exceptions=True)

    errors = asyncio.run(main())
    assert all(isinstance(error, TokenEndpointError) for error in errors)
    assert all(error.error == "invalid_grant" for error in errors)  # type: ignore[attr-defined]
    assert len({id(error) for error in errors}) == 3
    assert token_requests(emulator) == 1


def test_waiters_on_two_event_loops_in_two_threads_share_one_request(
    emulator: GoogleEmulator,
) -> None:
    gate = _start_gated(emulator)
    results: list[list[Token]] = []
    both_waiting = threading.Barrier(3)

    def loop_thread() -> None:
        async def main() -> list[Token]:
            tasks = [asyncio.create_task(fetch_async("app")) for _ in range(10)]
            await asyncio.sleep(0)
            await asyncio.to_thread(both_waiting.wait, WAIT)
            return await asyncio.gather(*tasks)

        results.append(asyncio.run(main()))

    threads = [threading.Thread(target=loop_thread) for _ in range(2)]
    for thread in threads:
        thread.start()
    both_waiting.wait(WAIT)
    gate.open.set()
    for thread in threads:
        thread.join(WAIT)
    assert len(results) == 2
    assert {token for tokens in results for token in tokens} == {fetch("app")}
    assert token_requests(emulator) == 1


def test_a_miss_after_a_flight_landed_starts_a_new_flight(fake_time: FakeTime) -> None:
    with GoogleEmulator(time=fake_time) as emulator:
        source = ServiceAccount(emulator.service_account())
        start_link(name="app", source=source, prefetch="sync", time=fake_time)

        async def main() -> tuple[Token, Token]:
            first = await fetch_async("app")
            fake_time.jump(7200.0)  # the token has expired: a miss
            return first, await fetch_async("app")

        first, second = asyncio.run(main())
        assert second != first
        assert second == fetch("app")
        assert token_requests(emulator) == 2


# ----------------------------------------------------------------------------------- errors


def test_an_unknown_name_raises_server_not_found() -> None:
    with pytest.raises(ServerNotFound, match="nobody"):
        asyncio.run(fetch_async("nobody"))


@pytest.mark.parametrize("timeout", [-1.0, float("nan"), float("inf"), "5"])
def test_a_bad_timeout_on_a_miss_is_a_config_error(
    emulator: GoogleEmulator, timeout: object
) -> None:
    gate = _start_gated(emulator)  # no token yet: a miss, where the timeout counts
    try:
        with pytest.raises(ConfigError, match="timeout"):
            asyncio.run(fetch_async("app", timeout=timeout))  # type: ignore[arg-type]
    finally:
        gate.open.set()

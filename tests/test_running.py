"""running(): a token server for the length of a with / async with block (app lifespans)."""

from __future__ import annotations

import asyncio

import pytest
from _api_server import token_requests
from _helpers import GatedClient

import goth_actors
from goth_actors import (
    AlreadyStarted,
    ConfigError,
    RefreshToken,
    ServerNotFound,
    ServiceAccount,
    fetch,
    fetch_async,
    running,
    status,
    stop,
    whereis,
)
from goth_actors.testing import GoogleEmulator

pytestmark = pytest.mark.usefixtures("shutdown_servers")


def _source(emulator: GoogleEmulator) -> ServiceAccount:
    return ServiceAccount(emulator.service_account())


# -------------------------------------------------------------------------------------- with


def test_with_running_starts_a_server_and_stops_it_on_leaving(emulator: GoogleEmulator) -> None:
    with running(name="app", source=_source(emulator), prefetch="sync") as ref:
        assert whereis("app") is ref
        assert fetch("app").token
    assert whereis("app") is None
    with pytest.raises(ServerNotFound):
        status("app")
    assert token_requests(emulator) == 1


def test_the_server_is_stopped_when_the_block_raises(emulator: GoogleEmulator) -> None:
    with pytest.raises(RuntimeError, match="boom"), running(name="app", source=_source(emulator)):
        raise RuntimeError("boom")
    assert whereis("app") is None


def test_leaving_after_the_server_was_stopped_meanwhile_is_quiet(
    emulator: GoogleEmulator,
) -> None:
    with running(name="app", source=_source(emulator)):
        stop("app")
    assert whereis("app") is None


def test_a_name_already_running_raises_already_started_on_entering(
    emulator: GoogleEmulator,
) -> None:
    lifespan = running(name="app", source=_source(emulator))
    with running(name="app", source=_source(emulator)), pytest.raises(AlreadyStarted):
        lifespan.__enter__()
    assert whereis("app") is None


def test_a_bad_option_is_a_config_error_before_anything_starts(emulator: GoogleEmulator) -> None:
    with pytest.raises(ConfigError, match="refresh_before"):
        running(name="app", source=_source(emulator), refresh_before=-1.0)
    assert whereis("app") is None


def test_the_same_lifespan_can_run_twice_in_a_row(emulator: GoogleEmulator) -> None:
    lifespan = running(name="app", source=_source(emulator), prefetch="sync")
    for _ in range(2):
        with lifespan:
            assert fetch("app").token
    assert whereis("app") is None
    assert repr(lifespan) == "running(name='app')"


# -------------------------------------------------------------------------------- async with


def test_async_with_running_starts_and_stops_a_server(emulator: GoogleEmulator) -> None:
    async def main() -> str:
        async with running(name="app", source=_source(emulator)) as ref:
            assert whereis("app") is ref
            return (await fetch_async("app")).token

    assert asyncio.run(main())
    assert whereis("app") is None


def test_async_with_a_sync_prefetch_keeps_the_event_loop_running_while_it_starts(
    emulator: GoogleEmulator,
) -> None:
    gate = GatedClient()

    async def main() -> None:
        lifespan = running(name="app", source=_source(emulator), http_client=gate, prefetch="sync")
        entering = asyncio.create_task(lifespan.__aenter__())
        assert await asyncio.to_thread(gate.entered.wait, 5.0)  # the first exchange waits
        assert not entering.done()  # and this coroutine runs meanwhile
        gate.open.set()  # only it can open the gate
        await entering
        assert goth_actors.cached("app") is not None  # prefetch="sync": the token is there
        await lifespan.__aexit__(None, None, None)

    asyncio.run(main())
    assert whereis("app") is None


def test_a_task_cancelled_while_its_server_starts_leaves_no_server_behind(
    emulator: GoogleEmulator,
) -> None:
    gate = GatedClient()

    async def main() -> None:
        async def serve() -> None:
            lifespan = running(
                name="app", source=_source(emulator), http_client=gate, prefetch="sync"
            )
            async with lifespan:
                pytest.fail("the block must not run: the task was cancelled while starting")

        task = asyncio.create_task(serve())
        assert await asyncio.to_thread(gate.entered.wait, 5.0)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        gate.open.set()  # the start finishes in its thread, and stops what it started

    asyncio.run(main())  # waits for the default executor's threads
    assert whereis("app") is None
    with pytest.raises(ServerNotFound):
        status("app")


def test_the_server_is_stopped_when_an_async_block_raises(emulator: GoogleEmulator) -> None:
    async def main() -> None:
        async with running(name="app", source=_source(emulator)):
            raise RuntimeError("boom")

    with pytest.raises(RuntimeError, match="boom"):
        asyncio.run(main())
    assert whereis("app") is None


def test_leaving_a_block_leaves_alone_a_server_someone_else_started_under_the_name(
    emulator: GoogleEmulator,
) -> None:
    source = RefreshToken(emulator.authorized_user())
    with goth_actors.running(name="app", source=source, prefetch="sync"):
        goth_actors.stop("app")
        goth_actors.start_link(name="app", source=source, prefetch="sync")
    assert goth_actors.status("app").state == "ok"  # not the block's: still running

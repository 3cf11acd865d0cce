"""aiohttp's GothAuth middleware: what only it does (origins, bodies, the loop). The 401
contract it shares with the other clients is in test_auth_contract.py."""

from __future__ import annotations

import asyncio
import importlib
import sys
from collections.abc import AsyncIterator

import aiohttp
import pytest
from _api_server import WAIT, ApiServer, start_app, token_requests
from _helpers import GatedClient

from goth_actors import ConfigError, ServiceAccount, fetch, start_link
from goth_actors.integrations.aiohttp import GothAuth
from goth_actors.testing import GoogleEmulator

pytestmark = pytest.mark.usefixtures("shutdown_servers")


async def _get(auth: GothAuth, url: str, **options: object) -> aiohttp.ClientResponse:
    async with (
        aiohttp.ClientSession(middlewares=(auth,)) as session,
        session.get(url, **options) as response,  # type: ignore[arg-type]
    ):
        await response.read()
        return response


# ------------------------------------------------------------------------------------ origins


def test_the_token_goes_only_to_the_origin_of_the_first_request(
    emulator: GoogleEmulator, api: ApiServer
) -> None:
    token = start_app(emulator)
    auth = GothAuth("app")
    with ApiServer(emulator) as other:  # another port: another origin

        async def main() -> tuple[int, int]:
            first = await _get(auth, api.url)
            elsewhere = await _get(auth, other.url)
            return first.status, elsewhere.status

        assert asyncio.run(main()) == (200, 401)
    assert api.tokens == [token]
    assert other.tokens == [None]  # never the token
    assert token_requests(emulator) == 1  # and a 401 from elsewhere forces no refresh


def test_a_redirect_to_another_origin_carries_no_token(
    emulator: GoogleEmulator, api: ApiServer
) -> None:
    token = start_app(emulator)
    with ApiServer(emulator) as other:
        api.redirect_to = other.url
        response = asyncio.run(_get(GothAuth("app"), api.url))
    assert response.status == 401
    assert api.tokens == [token]
    assert other.tokens == [None]
    assert token_requests(emulator) == 1


def test_origins_given_are_the_only_ones_that_get_the_token(
    emulator: GoogleEmulator, api: ApiServer
) -> None:
    token = start_app(emulator)
    with ApiServer(emulator) as other:
        auth = GothAuth("app", origins=[other.url.removesuffix("/v1/things")])

        async def main() -> tuple[int, int]:
            return (await _get(auth, api.url)).status, (await _get(auth, other.url)).status

        assert asyncio.run(main()) == (401, 200)
    assert api.tokens == [None]
    assert other.tokens == [token]


@pytest.mark.parametrize("origin", ["storage.googleapis.com", "ftp://example.com", "", 5])
def test_an_origin_that_is_not_an_http_url_is_a_config_error(origin: object) -> None:
    with pytest.raises(ConfigError, match="origins"):
        GothAuth("app", origins=[origin])  # type: ignore[list-item]


# ------------------------------------------------------------------------------------- bodies


def test_a_retried_post_sends_its_body_again(emulator: GoogleEmulator, api: ApiServer) -> None:
    first = start_app(emulator)
    api.refuse(first)
    response = asyncio.run(
        _post(GothAuth("app"), api.url, json={"n": 1}),
    )
    assert response.status == 200
    assert [seen.body for seen in api.seen] == [b'{"n": 1}'] * 2
    assert api.tokens == [first, fetch("app").token]


def test_a_streamed_body_is_not_retried_but_the_next_request_has_a_new_token(
    emulator: GoogleEmulator, api: ApiServer
) -> None:
    first = start_app(emulator)
    api.refuse(first)

    async def chunks() -> AsyncIterator[bytes]:
        yield b"one"
        yield b"two"

    async def main() -> tuple[int, int]:
        auth = GothAuth("app")
        streamed = await _post(auth, api.url, data=chunks())
        return streamed.status, (await _get(auth, api.url)).status

    assert asyncio.run(main()) == (401, 200)
    assert api.tokens == [first, fetch("app").token]
    assert token_requests(emulator) == 2


async def _post(auth: GothAuth, url: str, **options: object) -> aiohttp.ClientResponse:
    async with (
        aiohttp.ClientSession(middlewares=(auth,)) as session,
        session.post(url, **options) as response,  # type: ignore[arg-type]
    ):
        await response.read()
        return response


# --------------------------------------------------------------------------------- the loop


def test_waiting_for_a_first_token_does_not_block_the_event_loop(
    emulator: GoogleEmulator, api: ApiServer
) -> None:
    gate = GatedClient()
    start_link(name="app", source=ServiceAccount(emulator.service_account()), http_client=gate)

    async def main() -> int:
        request = asyncio.create_task(_get(GothAuth("app"), api.url))
        assert await asyncio.to_thread(gate.entered.wait, WAIT)
        assert not request.done()  # the request waits, and this coroutine runs
        gate.open.set()  # only it can let the token through
        return (await request).status

    assert asyncio.run(main()) == 200


# -------------------------------------------------------------------------------- the object


def test_a_bad_timeout_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="timeout"):
        GothAuth("app", timeout=0)


def test_the_repr_names_the_server() -> None:
    assert repr(GothAuth("app")) == "GothAuth('app', timeout=5.0)"


def test_importing_without_aiohttp_says_which_extra_to_install(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setitem(sys.modules, "aiohttp", None)
    monkeypatch.delitem(sys.modules, "goth_actors.integrations.aiohttp", raising=False)
    with pytest.raises(ImportError, match=r"pip install goth-actors\[aiohttp\]"):
        importlib.import_module("goth_actors.integrations.aiohttp")

"""httpx's GothAuth, sync and async, over real HTTP against the emulator and a local API."""

from __future__ import annotations

import asyncio
import importlib
import sys
import threading
from collections.abc import Mapping

import httpx
import pytest
from _api_server import (  # the local API that checks tokens with the emulator
    WAIT,
    ApiServer,
    start_app,
    token_requests,
)

from goth_actors import (
    ConfigError,
    HttpResponse,
    ServiceAccount,
    fetch,
    start_link,
)
from goth_actors._protocol import default_http_client
from goth_actors.integrations.httpx import GothAuth
from goth_actors.testing import GoogleEmulator

pytestmark = pytest.mark.usefixtures("shutdown_servers")


class GatedClient:
    """An http_client for the token server that waits for the test to open the gate."""

    def __init__(self) -> None:
        self.open = threading.Event()
        self.entered = threading.Event()

    def __call__(
        self, *, method: str, url: str, headers: Mapping[str, str], body: bytes, timeout: float
    ) -> HttpResponse:
        self.entered.set()
        if not self.open.wait(WAIT):
            raise TimeoutError("the test never opened the gate")
        return default_http_client(
            method=method, url=url, headers=headers, body=body, timeout=timeout
        )


# ------------------------------------------------------------------------------------- sync


def test_a_retried_post_sends_its_json_body_again_and_the_401_stays_in_the_history(
    emulator: GoogleEmulator, api: ApiServer
) -> None:
    first = start_app(emulator)  # the 401 contract itself: test_auth_contract.py
    api.refuse(first)
    with httpx.Client(auth=GothAuth("app")) as client:
        response = client.post(api.url, json={"n": 1})
    assert response.status_code == 200
    assert [r.status_code for r in response.history] == [401]
    second = fetch("app").token
    assert second != first
    assert api.tokens == [first, second]
    assert [seen.body for seen in api.seen] == [b'{"n":1}'] * 2
    assert token_requests(emulator) == 2


def test_a_streamed_body_is_not_retried_but_the_next_request_has_a_new_token(
    emulator: GoogleEmulator, api: ApiServer
) -> None:
    first = start_app(emulator)
    api.refuse(first)
    with httpx.Client(auth=GothAuth("app")) as client:
        response = client.post(api.url, content=iter([b"one", b"two"]))
        assert response.status_code == 401
        assert response.history == []
        assert client.get(api.url).status_code == 200
    assert api.tokens == [first, fetch("app").token]
    assert token_requests(emulator) == 2


def test_a_bad_timeout_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="timeout"):
        GothAuth("app", timeout=0)


def test_importing_without_httpx_says_which_extra_to_install(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setitem(sys.modules, "httpx", None)
    monkeypatch.delitem(sys.modules, "goth_actors.integrations.httpx")
    with pytest.raises(ImportError, match=r"pip install goth-actors\[httpx\]"):
        importlib.import_module("goth_actors.integrations.httpx")


# ------------------------------------------------------------------------------------ async


def test_async_waiting_for_a_first_token_does_not_block_the_event_loop(
    emulator: GoogleEmulator, api: ApiServer
) -> None:
    gate = GatedClient()
    source = ServiceAccount(emulator.service_account())
    start_link(name="app", source=source, http_client=gate)  # its first exchange waits

    async def main() -> httpx.Response:
        async with httpx.AsyncClient(auth=GothAuth("app")) as client:
            request = asyncio.create_task(client.get(api.url))
            await asyncio.sleep(0)  # the request starts, and must hand the loop back
            assert not request.done()
            gate.open.set()  # only this coroutine can let the token through
            return await request

    assert asyncio.run(main()).status_code == 200


def test_async_a_forced_refresh_does_not_block_the_event_loop(
    emulator: GoogleEmulator, api: ApiServer
) -> None:
    gate = GatedClient()
    gate.open.set()
    source = ServiceAccount(emulator.service_account())
    start_link(name="app", source=source, http_client=gate, prefetch="sync")
    first = fetch("app").token
    api.refuse(first)
    gate.open.clear()
    gate.entered.clear()

    async def main() -> httpx.Response:
        async with httpx.AsyncClient(auth=GothAuth("app")) as client:
            request = asyncio.create_task(client.get(api.url))
            assert await asyncio.to_thread(gate.entered.wait, WAIT)  # the refresh is in flight
            assert not request.done()
            gate.open.set()
            return await request

    response = asyncio.run(main())
    assert response.status_code == 200
    assert api.tokens == [first, fetch("app").token]

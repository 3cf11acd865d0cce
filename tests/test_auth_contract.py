"""The 401 contract, once, for every client: requests, httpx (sync and async), aiohttp, gRPC
(sync and aio).

Each client sends to the local API of ``_api_server.py`` (over HTTP, or over gRPC through
``_grpc_api.py``), which checks bearer tokens with the emulator and answers 401 (gRPC:
``UNAUTHENTICATED``) to a token it is told to refuse. What each client must do: send the
server's token, cost no token request while the token is cached, and after a refusal replace
the token once (one forced refresh shared by every concurrent refusal, none if someone already
refreshed) and send once more, returning a second refusal as is. What only one client does
(requests' response history, httpx's streamed bodies, aiohttp's origins) is tested in its own
file.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor

import aiohttp
import grpc
import grpc.aio
import httpx
import pytest
import requests
from _api_server import WAIT, ApiServer, start_app, token_requests
from _grpc_api import METHOD, GrpcApi, channel_credentials

from goth_actors import Refresh, ServerNotFound, TokenEndpointError, fetch, whereis
from goth_actors.integrations import aiohttp as goth_aiohttp
from goth_actors.integrations import grpc as goth_grpc
from goth_actors.integrations import httpx as goth_httpx
from goth_actors.integrations import requests as goth_requests
from goth_actors.testing import GoogleEmulator

pytestmark = pytest.mark.usefixtures("shutdown_servers")


@pytest.fixture(autouse=True)
def _collect_cycles() -> Iterator[None]:
    """After each test, before the leak check: an error raised out of ``asyncio.run`` sits in a
    reference cycle with the task that raised it, and holds a closed ``grpc.aio`` channel (and
    with it gRPC's poller thread) until the next garbage collection."""
    yield
    gc.collect()


Send = Callable[[int], list[int]]
"""Sends ``count`` requests (concurrently when more than one) as server "app"; their statuses,
200 or 401 (gRPC's OK and UNAUTHENTICATED)."""


@contextlib.contextmanager
def _requests(api: ApiServer, name: str) -> Iterator[Send]:
    auth = goth_requests.GothAuth(name)

    def one(_: int) -> int:
        return requests.get(api.url, auth=auth, timeout=WAIT).status_code

    yield lambda count: _in_threads(one, count)


@contextlib.contextmanager
def _httpx(api: ApiServer, name: str) -> Iterator[Send]:
    with httpx.Client(auth=goth_httpx.GothAuth(name), timeout=WAIT) as client:
        yield lambda count: _in_threads(lambda _: client.get(api.url).status_code, count)


@contextlib.contextmanager
def _httpx_async(api: ApiServer, name: str) -> Iterator[Send]:
    async def send(count: int) -> list[int]:
        limits = httpx.Limits(max_connections=200)
        auth = goth_httpx.GothAuth(name)
        async with httpx.AsyncClient(auth=auth, limits=limits, timeout=WAIT) as client:
            responses = await asyncio.gather(*(client.get(api.url) for _ in range(count)))
        return [response.status_code for response in responses]

    yield lambda count: asyncio.run(send(count))


@contextlib.contextmanager
def _aiohttp(api: ApiServer, name: str) -> Iterator[Send]:
    async def send(count: int) -> list[int]:
        connector = aiohttp.TCPConnector(limit=200)
        middlewares = (goth_aiohttp.GothAuth(name),)
        async with aiohttp.ClientSession(connector=connector, middlewares=middlewares) as session:

            async def one() -> int:
                async with session.get(api.url) as response:
                    await response.read()
                    return response.status

            return await asyncio.gather(*(one() for _ in range(count)))

    yield lambda count: asyncio.run(send(count))


@contextlib.contextmanager
def _grpc(api: ApiServer, name: str) -> Iterator[Send]:
    with (
        GrpcApi(api) as server,
        goth_grpc.secure_channel(server.target, name, credentials=channel_credentials()) as channel,
    ):
        get = channel.unary_unary(METHOD)

        def one(_: int) -> int:
            try:
                get(b"", timeout=WAIT)
            except grpc.RpcError as error:
                return _status(error.code())  # type: ignore[attr-defined]
            return 200

        yield lambda count: _in_threads(one, count)


@contextlib.contextmanager
def _grpc_aio(api: ApiServer, name: str) -> Iterator[Send]:
    async def send(target: str, count: int) -> list[int]:
        credentials = channel_credentials()
        async with goth_grpc.aio_secure_channel(target, name, credentials=credentials) as channel:
            get = channel.unary_unary(METHOD)

            async def one() -> int:
                try:
                    await get(b"", timeout=WAIT)
                except grpc.aio.AioRpcError as error:
                    return _status(error.code())
                return 200

            return await asyncio.gather(*(one() for _ in range(count)))

    with GrpcApi(api) as server:
        yield lambda count: asyncio.run(send(server.target, count))


def _status(code: grpc.StatusCode) -> int:
    if code == grpc.StatusCode.UNAUTHENTICATED:
        return 401
    raise AssertionError(f"unexpected gRPC status {code}")


def _in_threads(one: Callable[[int], int], count: int) -> list[int]:
    if count == 1:
        return [one(0)]
    with ThreadPoolExecutor(max_workers=count) as pool:
        return list(pool.map(one, range(count)))


CLIENTS = {
    "requests": _requests,
    "httpx": _httpx,
    "httpx-async": _httpx_async,
    "aiohttp": _aiohttp,
    "grpc": _grpc,
    "grpc-aio": _grpc_aio,
}


@pytest.fixture(params=list(CLIENTS))
def client(request: pytest.FixtureRequest, api: ApiServer) -> Iterator[Callable[[str], Send]]:
    """Opens the client under test against ``api``: ``client(name) -> send``."""
    with contextlib.ExitStack() as stack:
        yield lambda name: stack.enter_context(CLIENTS[request.param](api, name))


# -------------------------------------------------------------------------------- the contract


def test_every_request_carries_the_servers_token_and_a_cached_one_costs_no_token_request(
    emulator: GoogleEmulator, api: ApiServer, client: Callable[[str], Send]
) -> None:
    token = start_app(emulator)
    send = client("app")
    assert [send(1)[0] for _ in range(3)] == [200] * 3
    assert api.tokens == [token] * 3
    assert token_requests(emulator) == 1


def test_a_refusal_causes_one_forced_refresh_and_one_retry_with_the_new_token(
    emulator: GoogleEmulator, api: ApiServer, client: Callable[[str], Send]
) -> None:
    first = start_app(emulator)
    api.refuse(first)
    assert client("app")(1) == [200]
    second = fetch("app").token
    assert second != first
    assert api.tokens == [first, second]
    assert token_requests(emulator) == 2  # the prefetch and the one forced refresh


def test_a_refusal_of_the_retry_is_returned_as_is(
    emulator: GoogleEmulator, api: ApiServer, client: Callable[[str], Send]
) -> None:
    start_app(emulator)
    api.refuse_everything()
    assert client("app")(1) == [401]
    assert len(api.seen) == 2  # the request and its one retry
    assert token_requests(emulator) == 2


def test_a_hundred_concurrent_refusals_of_one_token_cause_one_token_request(
    emulator: GoogleEmulator, api: ApiServer, client: Callable[[str], Send]
) -> None:
    first = start_app(emulator)
    api.refuse(first)
    api.hold_refusals(100)  # every request is refused before any of them can refresh
    assert client("app")(100) == [200] * 100
    assert token_requests(emulator) == 2  # the prefetch and ONE forced refresh
    second = fetch("app").token
    assert sorted(api.tokens, key=str) == sorted([first] * 100 + [second] * 100, key=str)


def test_a_token_someone_else_refreshed_meanwhile_is_not_refreshed_again(
    emulator: GoogleEmulator, api: ApiServer, client: Callable[[str], Send]
) -> None:
    first = start_app(emulator)
    api.refuse(first)
    ref = whereis("app")
    assert ref is not None
    # Between the request's send and its refusal, another caller forces a refresh.
    api.before_refusing = lambda _token: ref.ask(Refresh(), timeout=WAIT)
    assert client("app")(1) == [200]
    assert token_requests(emulator) == 2  # the prefetch and the other caller's refresh only
    assert api.tokens == [first, fetch("app").token]


def test_a_failed_refresh_after_a_refusal_reaches_the_caller(
    emulator: GoogleEmulator, api: ApiServer, client: Callable[[str], Send]
) -> None:
    first = start_app(emulator)
    api.refuse(first)
    emulator.fail_next(1, 400, error="invalid_grant", endpoint="token")
    send = client("app")
    with pytest.raises(TokenEndpointError, match="invalid_grant"):
        send(1)
    assert api.tokens == [first]


def test_an_unknown_server_name_raises_server_not_found_and_sends_nothing(
    api: ApiServer, client: Callable[[str], Send]
) -> None:
    send = client("nobody")
    with pytest.raises(ServerNotFound):
        send(1)
    assert api.seen == []

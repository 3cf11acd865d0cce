"""gRPC call credentials and interceptors: what only they do, against a real gRPC server on
127.0.0.1. The 401 (UNAUTHENTICATED) contract shared with the other clients is in
test_auth_contract.py."""

from __future__ import annotations

import asyncio
import importlib
import sys
import threading

import grpc
import grpc.aio
import pytest
from _api_server import WAIT, ApiServer, start_app, token_requests
from _grpc_api import METHOD, GrpcApi, channel_credentials
from _helpers import GatedClient

import goth_actors
from goth_actors import ConfigError, RefreshToken, ServiceAccount, start_link
from goth_actors.integrations import grpc as goth_grpc
from goth_actors.testing import GoogleEmulator

pytestmark = pytest.mark.usefixtures("shutdown_servers")


def _plugin_only_channel(target: str, name: str) -> grpc.Channel:
    """Call credentials alone, without the retrying interceptor."""
    credentials = grpc.composite_channel_credentials(
        channel_credentials(), goth_grpc.call_credentials(name)
    )
    return grpc.secure_channel(target, credentials)


# ------------------------------------------------------------------------------- the plugin


def test_each_call_carries_the_token_and_no_quota_project_while_the_source_has_none(
    emulator: GoogleEmulator, api: ApiServer
) -> None:
    token = start_app(emulator)
    with GrpcApi(api) as server, _plugin_only_channel(server.target, "app") as channel:
        channel.unary_unary(METHOD)(b"", timeout=WAIT)
    [metadata] = server.metadata
    assert metadata["authorization"] == f"Bearer {token}"
    assert goth_grpc.QUOTA_PROJECT_KEY not in metadata
    assert token_requests(emulator) == 1


def test_each_call_carries_the_sources_quota_project(
    emulator: GoogleEmulator, api: ApiServer
) -> None:
    source = RefreshToken(emulator.authorized_user(quota_project="billing-project"))
    start_link(name="user", source=source, prefetch="sync")
    with GrpcApi(api) as server, _plugin_only_channel(server.target, "user") as channel:
        channel.unary_unary(METHOD)(b"", timeout=WAIT)
    [metadata] = server.metadata
    assert metadata[goth_grpc.QUOTA_PROJECT_KEY] == "billing-project"


def test_each_aio_call_carries_the_token_and_the_sources_quota_project(
    emulator: GoogleEmulator, api: ApiServer
) -> None:
    source = RefreshToken(emulator.authorized_user(quota_project="billing-project"))
    start_link(name="user", source=source, prefetch="sync")

    async def main(target: str) -> None:
        credentials = channel_credentials()
        async with goth_grpc.aio_secure_channel(target, "user", credentials=credentials) as ch:
            await ch.unary_unary(METHOD)(b"", timeout=WAIT)

    with GrpcApi(api) as server:
        asyncio.run(main(server.target))
    [metadata] = server.metadata
    assert metadata["authorization"] == f"Bearer {goth_actors.fetch('user').token}"
    assert metadata[goth_grpc.QUOTA_PROJECT_KEY] == "billing-project"


def test_the_plugin_fails_the_call_with_a_clear_message_when_there_is_no_token(
    api: ApiServer,
) -> None:
    with (
        GrpcApi(api) as server,
        _plugin_only_channel(server.target, "nobody") as channel,
        pytest.raises(grpc.RpcError) as raised,
    ):
        channel.unary_unary(METHOD)(b"", timeout=WAIT)
    details = raised.value.details()  # type: ignore[attr-defined]
    assert "no token server is named 'nobody'" in details
    assert server.metadata == []  # nothing was sent


def test_a_cold_server_is_waited_for_on_grpcs_plugin_thread(
    emulator: GoogleEmulator, api: ApiServer
) -> None:
    start_link(name="app", source=ServiceAccount(emulator.service_account()))
    with GrpcApi(api) as server, _plugin_only_channel(server.target, "app") as channel:
        channel.unary_unary(METHOD)(b"", timeout=WAIT)
    assert server.metadata[0]["authorization"].startswith("Bearer ")


# ------------------------------------------------------------------------- the interceptors


def test_a_future_call_carries_the_token_but_is_not_retried(
    emulator: GoogleEmulator, api: ApiServer
) -> None:
    first = start_app(emulator)
    api.refuse(first)
    # The refusal is held until .future() has returned: the interceptor then surely finds the
    # call still running (a refusal answered before it looked would be retried, as a blocking
    # call's is, and the test would depend on the machine's speed).
    returned = threading.Event()
    api.before_refusing = lambda _token: returned.wait(WAIT)
    with (
        GrpcApi(api) as server,
        goth_grpc.secure_channel(server.target, "app", credentials=channel_credentials()) as ch,
    ):
        future = ch.unary_unary(METHOD).future(b"", timeout=WAIT)
        assert not future.done()
        returned.set()
        assert future.exception(timeout=WAIT).code() == grpc.StatusCode.UNAUTHENTICATED
    assert api.tokens == [first]
    assert token_requests(emulator) == 1


def test_the_aio_interceptor_waits_for_a_first_token_without_blocking_the_event_loop(
    emulator: GoogleEmulator, api: ApiServer
) -> None:
    gate = GatedClient()
    start_link(name="app", source=ServiceAccount(emulator.service_account()), http_client=gate)

    async def main(target: str) -> bytes:
        credentials = channel_credentials()
        async with goth_grpc.aio_secure_channel(target, "app", credentials=credentials) as ch:
            call = asyncio.ensure_future(ch.unary_unary(METHOD)(b"", timeout=WAIT))
            assert await asyncio.to_thread(gate.entered.wait, WAIT)
            assert not call.done()  # the call waits for its token; this coroutine runs
            gate.open.set()
            response: bytes = await call
            return response

    with GrpcApi(api) as server:
        assert b"email" in asyncio.run(main(server.target))


# -------------------------------------------------------------------------------- the objects


@pytest.mark.parametrize(
    "make",
    [
        goth_grpc.GothMetadataPlugin,
        goth_grpc.RetryUnauthenticated,
        goth_grpc.AsyncRetryUnauthenticated,
    ],
)
def test_a_bad_timeout_is_a_config_error(make: type) -> None:
    with pytest.raises(ConfigError, match="timeout"):
        make("app", timeout=-1)
    assert repr(make("app")) == f"{make.__name__}('app', timeout=5.0)"


def test_importing_without_grpcio_says_which_extra_to_install(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setitem(sys.modules, "grpc", None)
    monkeypatch.delitem(sys.modules, "goth_actors.integrations.grpc", raising=False)
    with pytest.raises(ImportError, match=r"pip install goth-actors\[grpc\]"):
        importlib.import_module("goth_actors.integrations.grpc")

"""requests' GothAuth over real HTTP: a local API that checks bearer tokens with the emulator."""

from __future__ import annotations

import asyncio
import io

import pytest
import requests
from _api_server import WAIT, ApiServer, start_app, token_requests

from goth_actors import ConfigError, fetch, refresh
from goth_actors.integrations import refresh_rejected, refresh_rejected_async
from goth_actors.integrations.requests import GothAuth
from goth_actors.testing import GoogleEmulator

pytestmark = pytest.mark.usefixtures("shutdown_servers")

# ---------------------------------------------------------------------------- the auth object


@pytest.mark.parametrize("timeout", [0, -1.0, float("nan"), float("inf"), "5", True])
def test_a_bad_timeout_is_a_config_error(timeout: object) -> None:
    with pytest.raises(ConfigError, match="timeout"):
        GothAuth("app", timeout=timeout)  # type: ignore[arg-type]


def test_the_auth_is_comparable_and_its_repr_names_the_server() -> None:
    assert GothAuth("app") == GothAuth("app", timeout=5)
    assert GothAuth("app") != GothAuth("other")
    assert repr(GothAuth("app")) == "GothAuth('app', timeout=5.0)"


# -------------------------------------------------------------------------------------- 401s


def test_the_401_stays_in_the_history_and_the_retry_carries_the_new_header(
    emulator: GoogleEmulator, api: ApiServer
) -> None:
    first = start_app(emulator)  # the 401 contract itself: test_auth_contract.py
    api.refuse(first)
    with requests.Session() as session:
        session.auth = GothAuth("app")
        response = session.get(api.url, timeout=WAIT)
    assert response.status_code == 200
    assert [r.status_code for r in response.history] == [401]
    second = fetch("app").token
    assert response.request.headers["Authorization"] == f"Bearer {second}"
    assert response.history[0].request.headers["Authorization"] == f"Bearer {first}"


def test_refresh_rejected_skips_the_exchange_when_the_token_already_changed(
    emulator: GoogleEmulator,
) -> None:
    first = start_app(emulator)
    second = refresh_rejected("app", first)
    assert second.token != first
    assert refresh_rejected("app", first) == second  # first is old news: no exchange
    assert token_requests(emulator) == 2


def test_a_401_after_a_redirect_that_dropped_the_token_causes_no_refresh(
    emulator: GoogleEmulator, api: ApiServer
) -> None:
    start_app(emulator)
    with ApiServer(emulator) as other:  # another port: requests strips the header
        api.redirect_to = other.url
        response = requests.get(api.url, auth=GothAuth("app"), timeout=WAIT)
    assert response.status_code == 401
    assert other.tokens == [None]  # the token never went to the other host
    assert token_requests(emulator) == 1


# ------------------------------------------------------------------------------------ bodies


def test_a_retried_post_sends_its_body_again(emulator: GoogleEmulator, api: ApiServer) -> None:
    first = start_app(emulator)
    api.refuse(first)
    response = requests.post(api.url, json={"n": 1}, auth=GothAuth("app"), timeout=WAIT)
    assert response.status_code == 200
    assert [seen.body for seen in api.seen] == [b'{"n": 1}'] * 2


def test_a_file_body_is_rewound_for_the_retry(emulator: GoogleEmulator, api: ApiServer) -> None:
    first = start_app(emulator)
    api.refuse(first)
    body = io.BytesIO(b"header-to-skip;payload")
    body.seek(len(b"header-to-skip;"))
    response = requests.put(api.url, data=body, auth=GothAuth("app"), timeout=WAIT)
    assert response.status_code == 200
    assert [seen.body for seen in api.seen] == [b"payload"] * 2


def test_a_generator_body_is_not_retried_but_the_next_request_has_a_new_token(
    emulator: GoogleEmulator, api: ApiServer
) -> None:
    first = start_app(emulator)
    api.refuse(first)
    chunks = (chunk for chunk in [b"one", b"two"])
    response = requests.post(api.url, data=chunks, auth=GothAuth("app"), timeout=WAIT)
    assert response.status_code == 401
    assert response.history == []
    second = fetch("app").token
    assert second != first
    assert requests.get(api.url, auth=GothAuth("app"), timeout=WAIT).status_code == 200
    assert api.tokens == [first, second]


def test_the_rejected_token_may_be_given_as_the_token_itself(emulator: GoogleEmulator) -> None:
    start_app(emulator)
    rejected = fetch("app")
    replacement = refresh_rejected("app", rejected, timeout=WAIT)
    assert replacement.token != rejected.token
    assert token_requests(emulator) == 2
    again = asyncio.run(refresh_rejected_async("app", replacement, timeout=WAIT))
    assert again.token != replacement.token
    newest = refresh("app", unless_changed_from=again, timeout=WAIT)
    assert newest.token != again.token
    assert token_requests(emulator) == 4


def test_a_rejected_token_of_another_type_is_a_type_error(emulator: GoogleEmulator) -> None:
    start_app(emulator)
    with pytest.raises(TypeError, match="rejected Token or its token string"):
        refresh_rejected("app", 42)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="rejected Token or its token string"):
        refresh("app", unless_changed_from=b"bytes")  # type: ignore[arg-type]
    assert token_requests(emulator) == 1

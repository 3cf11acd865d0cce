"""requests' GothAuth over real HTTP: a local API that checks bearer tokens with the emulator."""

from __future__ import annotations

import io
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests
from _api_server import WAIT, ApiServer, start_app, token_requests

from goth_actors import ConfigError, Refresh, ServerNotFound, TokenEndpointError, fetch, whereis
from goth_actors.integrations import refresh_rejected
from goth_actors.integrations.requests import GothAuth
from goth_actors.testing import GoogleEmulator

pytestmark = pytest.mark.usefixtures("shutdown_servers")

# ------------------------------------------------------------------------------------ header


def test_the_authorization_header_carries_the_servers_token(
    emulator: GoogleEmulator, api: ApiServer
) -> None:
    token = start_app(emulator)
    response = requests.get(api.url, auth=GothAuth("app"), timeout=WAIT)
    assert response.status_code == 200
    assert response.json()["email"].startswith("emulator-sa-")
    assert api.tokens == [token]
    assert response.history == []


def test_a_session_wide_auth_serves_every_request_without_a_token_request(
    emulator: GoogleEmulator, api: ApiServer
) -> None:
    token = start_app(emulator)
    with requests.Session() as session:
        session.auth = GothAuth("app")
        statuses = [session.get(api.url, timeout=WAIT).status_code for _ in range(5)]
    assert statuses == [200] * 5
    assert api.tokens == [token] * 5
    assert token_requests(emulator) == 1


def test_an_unknown_server_name_raises_server_not_found(api: ApiServer) -> None:
    with pytest.raises(ServerNotFound):
        requests.get(api.url, auth=GothAuth("nobody"), timeout=WAIT)
    assert api.seen == []


@pytest.mark.parametrize("timeout", [0, -1.0, float("nan"), float("inf"), "5", True])
def test_a_bad_timeout_is_a_config_error(timeout: object) -> None:
    with pytest.raises(ConfigError, match="timeout"):
        GothAuth("app", timeout=timeout)  # type: ignore[arg-type]


def test_the_auth_is_comparable_and_its_repr_names_the_server() -> None:
    assert GothAuth("app") == GothAuth("app", timeout=5)
    assert GothAuth("app") != GothAuth("other")
    assert repr(GothAuth("app")) == "GothAuth('app', timeout=5.0)"


# -------------------------------------------------------------------------------------- 401s


def test_a_401_causes_one_forced_refresh_and_one_retry_that_succeeds_with_a_new_token(
    emulator: GoogleEmulator, api: ApiServer
) -> None:
    first = start_app(emulator)
    api.refuse(first)
    response = requests.get(api.url, auth=GothAuth("app"), timeout=WAIT)
    assert response.status_code == 200
    assert [r.status_code for r in response.history] == [401]
    second = fetch("app").token
    assert second != first
    assert api.tokens == [first, second]
    assert token_requests(emulator) == 2  # the prefetch and the one forced refresh
    assert response.request.headers["Authorization"] == f"Bearer {second}"
    assert response.history[0].request.headers["Authorization"] == f"Bearer {first}"


def test_a_401_to_the_retry_is_returned_as_is(emulator: GoogleEmulator, api: ApiServer) -> None:
    start_app(emulator)
    api.refuse_everything()
    response = requests.get(api.url, auth=GothAuth("app"), timeout=WAIT)
    assert response.status_code == 401
    assert [r.status_code for r in response.history] == [401]
    assert len(api.seen) == 2
    assert token_requests(emulator) == 2


def test_a_hundred_concurrent_401s_for_one_token_cause_one_token_request(
    emulator: GoogleEmulator, api: ApiServer
) -> None:
    first = start_app(emulator)
    api.refuse(first)
    api.hold_refusals(100)  # every request is refused before any of them can refresh
    auth = GothAuth("app")
    with ThreadPoolExecutor(max_workers=100) as pool:
        responses = list(
            pool.map(lambda _: requests.get(api.url, auth=auth, timeout=WAIT), range(100))
        )
    assert [r.status_code for r in responses] == [200] * 100
    assert all([h.status_code for h in r.history] == [401] for r in responses)
    assert token_requests(emulator) == 2  # the prefetch and ONE forced refresh
    second = fetch("app").token
    assert sorted(api.tokens, key=str) == sorted([first] * 100 + [second] * 100, key=str)


def test_a_token_someone_else_refreshed_meanwhile_is_not_refreshed_again(
    emulator: GoogleEmulator, api: ApiServer
) -> None:
    first = start_app(emulator)
    api.refuse(first)
    ref = whereis("app")
    assert ref is not None
    # Between the request's send and its 401, another caller forces a refresh.
    api.before_refusing = lambda _token: ref.ask(Refresh(), timeout=WAIT)
    response = requests.get(api.url, auth=GothAuth("app"), timeout=WAIT)
    assert response.status_code == 200
    assert token_requests(emulator) == 2  # the prefetch and the other caller's refresh only
    assert api.tokens == [first, fetch("app").token]


def test_refresh_rejected_skips_the_exchange_when_the_token_already_changed(
    emulator: GoogleEmulator,
) -> None:
    first = start_app(emulator)
    second = refresh_rejected("app", first)
    assert second.token != first
    assert refresh_rejected("app", first) == second  # first is old news: no exchange
    assert token_requests(emulator) == 2


def test_a_failed_refresh_after_a_401_reaches_the_caller(
    emulator: GoogleEmulator, api: ApiServer
) -> None:
    first = start_app(emulator)
    api.refuse(first)
    emulator.fail_next(1, 400, error="invalid_grant", endpoint="token")
    with pytest.raises(TokenEndpointError, match="invalid_grant"):
        requests.get(api.url, auth=GothAuth("app"), timeout=WAIT)
    assert api.tokens == [first]


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

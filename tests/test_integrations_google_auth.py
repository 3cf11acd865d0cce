"""google-auth Credentials from a token server: AuthorizedSession, token state, impersonation."""

from __future__ import annotations

import copy
import importlib
import pickle
import sys
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime

import pytest
from _api_server import (  # the local API that checks tokens with the emulator
    WAIT,
    ApiServer,
    start_app,
    token_requests,
)
from google.auth import credentials as google_credentials
from google.auth import exceptions as google_exceptions
from google.auth import impersonated_credentials
from google.auth.transport.requests import AuthorizedSession, Request

from goth_actors import (
    ConfigError,
    Refresh,
    RefreshToken,
    TokenEndpointError,
    fetch,
    start_link,
    whereis,
)
from goth_actors.integrations.google_auth import Credentials
from goth_actors.otp import FakeTime
from goth_actors.testing import GoogleEmulator

pytestmark = pytest.mark.usefixtures("shutdown_servers")

TokenState = google_credentials.TokenState


def _set_wall_clock(fake_time: FakeTime, when: float) -> None:
    """Sets the wall clock alone (no timer fires, so refreshes happen only on demand)."""
    fake_time.jump(when - fake_time.time())


def session_get(credentials: Credentials, url: str) -> Callable[[object], int]:
    def get(_: object) -> int:
        with AuthorizedSession(credentials) as session:
            return session.get(url, timeout=WAIT).status_code

    return get


# ------------------------------------------------------------------------ AuthorizedSession


def test_an_authorized_session_sends_the_servers_token(
    emulator: GoogleEmulator, api: ApiServer
) -> None:
    token = start_app(emulator)
    with AuthorizedSession(Credentials("app")) as session:
        responses = [session.get(api.url, timeout=WAIT) for _ in range(3)]
    assert [r.status_code for r in responses] == [200] * 3
    assert api.tokens == [token] * 3
    assert token_requests(emulator) == 1


def test_an_authorized_session_refreshes_once_after_a_401_and_succeeds(
    emulator: GoogleEmulator, api: ApiServer
) -> None:
    first = start_app(emulator)
    api.refuse(first)
    with AuthorizedSession(Credentials("app")) as session:
        response = session.get(api.url, timeout=WAIT)
    assert response.status_code == 200
    second = fetch("app").token
    assert second != first
    assert api.tokens == [first, second]
    assert token_requests(emulator) == 2


def test_an_authorized_session_gives_up_after_its_own_refresh_attempts(
    emulator: GoogleEmulator, api: ApiServer
) -> None:
    start_app(emulator)
    api.refuse_everything()
    with AuthorizedSession(Credentials("app")) as session:
        response = session.get(api.url, timeout=WAIT)
    assert response.status_code == 401
    # google-auth's max_refresh_attempts (2): each refusal of a new token forces one refresh.
    assert len(api.seen) == 3
    assert len(set(api.tokens)) == 3
    assert token_requests(emulator) == 3


def test_a_hundred_concurrent_401s_through_authorized_sessions_cause_one_token_request(
    emulator: GoogleEmulator, api: ApiServer
) -> None:
    first = start_app(emulator)
    api.refuse(first)
    api.hold_refusals(100)
    credentials = Credentials("app")  # shared, as google-cloud clients share theirs
    with ThreadPoolExecutor(max_workers=100) as pool:
        statuses = list(pool.map(session_get(credentials, api.url), range(100)))
    assert statuses == [200] * 100
    assert token_requests(emulator) == 2  # the prefetch and ONE forced refresh
    assert api.tokens.count(first) == 100
    assert api.tokens.count(fetch("app").token) == 100


def test_a_token_someone_else_refreshed_meanwhile_is_not_refreshed_again(
    emulator: GoogleEmulator, api: ApiServer
) -> None:
    first = start_app(emulator)
    api.refuse(first)
    ref = whereis("app")
    assert ref is not None
    api.before_refusing = lambda _token: ref.ask(Refresh(), timeout=WAIT)
    with AuthorizedSession(Credentials("app")) as session:
        response = session.get(api.url, timeout=WAIT)
    assert response.status_code == 200
    assert token_requests(emulator) == 2  # the prefetch and the other caller's refresh only
    assert api.tokens == [first, fetch("app").token]


def test_a_failed_refresh_after_a_401_is_a_refresh_error(
    emulator: GoogleEmulator, api: ApiServer
) -> None:
    first = start_app(emulator)
    api.refuse(first)
    emulator.fail_next(1, 400, error="invalid_grant", endpoint="token")
    with (
        AuthorizedSession(Credentials("app")) as session,
        pytest.raises(google_exceptions.RefreshError, match="invalid_grant") as caught,
    ):
        session.get(api.url, timeout=WAIT)
    assert isinstance(caught.value.__cause__, TokenEndpointError)
    assert caught.value.retryable is False


def test_an_unknown_server_is_a_refresh_error_before_any_request(api: ApiServer) -> None:
    with (
        AuthorizedSession(Credentials("nobody")) as session,
        pytest.raises(google_exceptions.RefreshError, match="nobody"),
    ):
        session.get(api.url, timeout=WAIT)
    assert api.seen == []


# ------------------------------------------------------------------------ token state machinery


def test_token_and_expiry_follow_the_server(emulator: GoogleEmulator, fake_time: FakeTime) -> None:
    credentials = Credentials("app")
    assert (credentials.token, credentials.expiry) == (None, None)
    source = RefreshToken(emulator.authorized_user())
    start_link(name="app", source=source, prefetch="sync", time=fake_time)
    token = fetch("app")
    assert credentials.token == token.token
    assert credentials.expiry == datetime.fromtimestamp(token.expires, UTC).replace(tzinfo=None)
    assert credentials.expiry.tzinfo is None  # naive UTC, as google-auth compares them
    assert credentials.valid
    assert not credentials.expired
    assert credentials.token_state is TokenState.FRESH
    # Within google-auth's 3 min 45 s threshold the server's token is still FRESH to us: the
    # server refreshes on its own schedule, and no google-auth refresh thread is needed.
    _set_wall_clock(fake_time, token.expires - 60)
    assert credentials.token_state is TokenState.FRESH
    _set_wall_clock(fake_time, token.expires - 5)  # inside fetch's 10 s margin: not handed out
    assert credentials.token is None
    assert not credentials.valid
    assert credentials.expired
    assert credentials.token_state is TokenState.INVALID
    assert credentials.expiry is not None


def test_a_server_without_a_token_yet_is_invalid_but_not_expired(emulator: GoogleEmulator) -> None:
    emulator.fail_next(1, 503, endpoint="token")
    source = RefreshToken(emulator.authorized_user())
    start_link(name="app", source=source, prefetch="sync", backoff_min=30.0, backoff_max=30.0)
    credentials = Credentials("app")
    assert credentials.token is None
    assert credentials.expiry is None
    assert not credentials.valid
    assert not credentials.expired
    assert credentials.token_state is TokenState.INVALID


@pytest.mark.parametrize("non_blocking", [False, True], ids=["blocking", "non_blocking"])
def test_google_auths_own_before_request_refreshes_an_invalid_token_through_the_server(
    emulator: GoogleEmulator, fake_time: FakeTime, non_blocking: bool
) -> None:
    source = RefreshToken(emulator.authorized_user())
    start_link(name="app", source=source, prefetch="sync", time=fake_time)
    credentials = Credentials("app")
    if non_blocking:
        credentials.with_non_blocking_refresh()
    first = credentials.token
    _set_wall_clock(fake_time, fetch("app").expires)  # expired: INVALID
    assert credentials.token_state is TokenState.INVALID
    headers: dict[str, str] = {}
    # The base class's path: token_state / valid, then refresh(), then apply().
    google_credentials.Credentials.before_request(credentials, Request(), "GET", "u", headers)
    second = fetch("app").token
    assert second != first
    assert headers["authorization"] == f"Bearer {second}"
    assert token_requests(emulator) == 2
    assert credentials.token_state is TokenState.FRESH


def test_refresh_forces_a_new_token_only_when_this_thread_already_had_the_current_one(
    emulator: GoogleEmulator,
) -> None:
    first = start_app(emulator)
    credentials = Credentials("app")
    credentials.refresh(Request())  # nothing seen yet: the current token, no exchange
    assert credentials.token == first
    assert token_requests(emulator) == 1
    credentials.refresh(Request())  # this thread had `first`: a forced refresh
    second = credentials.token
    assert second not in (None, first)
    assert token_requests(emulator) == 2
    with ThreadPoolExecutor(max_workers=1) as pool:  # another thread that had `first`...
        pool.submit(lambda: setattr(credentials._seen, "token", first)).result()
        pool.submit(credentials.refresh, Request()).result()  # ...gets `second` for free
    assert credentials.token == second
    assert token_requests(emulator) == 2


def test_impersonated_credentials_take_their_source_token_from_the_server(
    emulator: GoogleEmulator,
) -> None:
    token = start_app(emulator)
    target = emulator.service_account()["client_email"]
    impersonated = impersonated_credentials.Credentials(
        source_credentials=Credentials("app"),
        target_principal=target,
        target_scopes=["https://www.googleapis.com/auth/devstorage.read_only"],
        iam_endpoint_override=(
            f"{emulator.iam_url}/v1/projects/-/serviceAccounts/{target}:generateAccessToken"
        ),
    )
    impersonated.refresh(Request())
    info = emulator.token_info(impersonated.token)
    assert info is not None
    assert info["email"] == target
    [call] = emulator.requests_to("iam")
    assert call.headers["authorization"] == f"Bearer {token}"


# -------------------------------------------------------------------------------- the object


def test_the_quota_project_is_sent_and_copies_share_the_server(
    emulator: GoogleEmulator, api: ApiServer
) -> None:
    token = start_app(emulator)
    billed = Credentials("app").with_quota_project("billing-project")
    headers: dict[str, str] = {}
    billed.before_request(Request(), "GET", api.url, headers)
    assert headers == {"authorization": f"Bearer {token}", "x-goog-user-project": "billing-project"}
    for clone in (copy.copy(billed), copy.deepcopy(billed), pickle.loads(pickle.dumps(billed))):
        assert clone.token == token
        assert clone.quota_project_id == "billing-project"


def test_token_and_expiry_cannot_be_set() -> None:
    credentials = Credentials("app")
    with pytest.raises(AttributeError):
        credentials.token = "ya29.forged"
    with pytest.raises(AttributeError):
        credentials.expiry = datetime.now(UTC).replace(tzinfo=None)


def test_a_bad_timeout_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="timeout"):
        Credentials("app", timeout=-1)


def test_importing_without_google_auth_says_which_extra_to_install(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setitem(sys.modules, "google.auth", None)
    monkeypatch.delitem(sys.modules, "goth_actors.integrations.google_auth")
    with pytest.raises(ImportError, match=r"pip install goth-actors\[google-auth\]"):
        importlib.import_module("goth_actors.integrations.google_auth")

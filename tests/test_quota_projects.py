"""Quota projects and reauth: read from every file gcloud writes (and
``GOOGLE_CLOUD_QUOTA_PROJECT``, which wins), carried on the source, shown in ``status``, sent
as ``x-goog-user-project`` by the requests, httpx and google-auth integrations; and a user's
``rapt_token`` sent as ``rapt``. Against the emulator's API, which refuses a person's token
without a quota project, as such APIs do; side by side with google-auth."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import aiohttp
import google.auth
import httpx
import pytest
import requests
from _google_auth import auth_request
from google.auth.transport.requests import AuthorizedSession
from google.oauth2 import credentials as user_credentials

import goth_actors
from goth_actors import (
    Impersonated,
    RefreshToken,
    Token,
    TokenEndpointError,
    WorkloadIdentity,
    default_source,
    source_from_credentials,
)
from goth_actors.integrations.aiohttp import GothAuth as AiohttpAuth
from goth_actors.integrations.google_auth import Credentials
from goth_actors.integrations.httpx import GothAuth as HttpxAuth
from goth_actors.integrations.requests import GothAuth as RequestsAuth
from goth_actors.testing import GoogleEmulator

SA = "target@p.iam.gserviceaccount.com"


def _adc(tmp_path: Path, info: dict[str, Any], **environment: str) -> dict[str, str]:
    path = tmp_path / "adc.json"
    path.write_text(json.dumps(info))
    return {"GOOGLE_APPLICATION_CREDENTIALS": str(path), "HOME": str(tmp_path), **environment}


def test_every_kind_of_file_carries_its_quota_project(emulator: GoogleEmulator) -> None:
    user = emulator.authorized_user(quota_project="user-billing")
    assert source_from_credentials(user).quota_project_id == "user-billing"
    impersonated = emulator.impersonated_service_account(user, SA, quota_project="imp-billing")
    assert source_from_credentials(impersonated).quota_project_id == "imp-billing"
    external = {**emulator.workload_identity(), "quota_project_id": "wif-billing"}
    assert source_from_credentials(external).quota_project_id == "wif-billing"
    workforce = emulator.workforce_user(quota_project="wf-billing")
    assert source_from_credentials(workforce).quota_project_id == "wf-billing"


def test_google_cloud_quota_project_wins_over_the_file_and_an_option_over_both(
    emulator: GoogleEmulator, tmp_path: Path
) -> None:
    environ = _adc(
        tmp_path,
        emulator.authorized_user(quota_project="from-file"),
        GOOGLE_CLOUD_QUOTA_PROJECT="from-env",
    )
    assert default_source(environ=environ).quota_project_id == "from-env"
    chosen = default_source(environ=environ, quota_project_id="from-option")
    assert chosen.quota_project_id == "from-option"
    metadata_env = {"HOME": str(tmp_path), "GOOGLE_CLOUD_QUOTA_PROJECT": "from-env"}
    assert default_source(environ=metadata_env).quota_project_id == "from-env"


def test_google_auth_reads_the_same_quota_project(
    emulator: GoogleEmulator, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    environ = _adc(
        tmp_path,
        emulator.authorized_user(quota_project="from-file"),
        GOOGLE_CLOUD_QUOTA_PROJECT="from-env",
    )
    for name, value in environ.items():
        monkeypatch.setenv(name, value)
    theirs, _ = google.auth.default()
    assert theirs.quota_project_id == default_source(environ=environ).quota_project_id


def test_the_api_refuses_a_users_token_without_a_quota_project(emulator: GoogleEmulator) -> None:
    token = Token.fetch(RefreshToken(emulator.authorized_user()))
    headers = {"Authorization": f"Bearer {token.token}"}
    refused = requests.get(emulator.api_url, headers=headers, timeout=5)
    assert refused.status_code == 403
    assert "quota project" in refused.json()["error"]["message"]
    billed = requests.get(
        emulator.api_url, headers={**headers, "x-goog-user-project": "p"}, timeout=5
    )
    assert billed.json()["quota_project"] == "p"


def _requests_call(url: str) -> int:
    return requests.get(url, auth=RequestsAuth("user"), timeout=5).status_code


def _httpx_call(url: str) -> int:
    with httpx.Client(auth=HttpxAuth("user")) as client:
        return client.get(url).status_code


def _aiohttp_call(url: str) -> int:
    async def call() -> int:
        async with (
            aiohttp.ClientSession(middlewares=(AiohttpAuth("user"),)) as session,
            session.get(url) as response,
        ):
            return response.status

    return asyncio.run(call())


def _google_auth_call(url: str) -> int:
    with AuthorizedSession(Credentials("user")) as session:
        return session.get(url, timeout=5).status_code


@pytest.mark.usefixtures("shutdown_servers")
@pytest.mark.parametrize(
    "call",
    [_requests_call, _httpx_call, _aiohttp_call, _google_auth_call],
    ids=["requests", "httpx", "aiohttp", "google-auth"],
)
def test_each_integration_sends_the_sources_quota_project(
    emulator: GoogleEmulator, call: Callable[[str], int]
) -> None:
    source = RefreshToken(emulator.authorized_user(quota_project="billing-project"))
    goth_actors.start_link(name="user", source=source, prefetch="sync")
    assert goth_actors.status("user").quota_project_id == "billing-project"
    assert call(emulator.api_url) == 200
    assert emulator.requests_to("api")[-1].headers["x-goog-user-project"] == "billing-project"


@pytest.mark.usefixtures("shutdown_servers")
def test_without_a_quota_project_no_header_is_sent_and_the_api_says_why(
    emulator: GoogleEmulator,
) -> None:
    goth_actors.start_link(
        name="user", source=RefreshToken(emulator.authorized_user()), prefetch="sync"
    )
    assert _requests_call(emulator.api_url) == 403
    assert "x-goog-user-project" not in emulator.requests_to("api")[-1].headers


@pytest.mark.usefixtures("shutdown_servers")
def test_a_request_that_names_its_own_project_keeps_it(emulator: GoogleEmulator) -> None:
    source = RefreshToken(emulator.authorized_user(quota_project="billing-project"))
    goth_actors.start_link(name="user", source=source, prefetch="sync")
    requests.get(
        emulator.api_url,
        auth=RequestsAuth("user"),
        headers={"x-goog-user-project": "mine"},
        timeout=5,
    )
    assert emulator.requests_to("api")[-1].headers["x-goog-user-project"] == "mine"


@pytest.mark.usefixtures("shutdown_servers")
def test_the_google_auth_adapter_bills_another_project_when_told(
    emulator: GoogleEmulator,
) -> None:
    source = RefreshToken(emulator.authorized_user(quota_project="billing-project"))
    goth_actors.start_link(name="user", source=source, prefetch="sync")
    assert Credentials("user").quota_project_id == "billing-project"
    other = Credentials("user").with_quota_project("other")
    with AuthorizedSession(other) as session:
        assert session.get(emulator.api_url, timeout=5).json()["quota_project"] == "other"
    assert Credentials("user", quota_project_id=None).quota_project_id is None


# ----------------------------------------------------------------------------- reauth (rapt)


def test_a_users_rapt_token_is_sent_as_rapt(emulator: GoogleEmulator) -> None:
    user = emulator.authorized_user(rapt=True)
    token = Token.fetch(RefreshToken(user))
    assert emulator.token_info(token.token) is not None
    assert emulator.requests_to("token")[-1].form["rapt"] == user["rapt_token"]
    assert user["rapt_token"] not in repr(emulator.requests_to("token")[-1])


def test_without_its_rapt_token_a_reauth_users_refresh_is_invalid_grant(
    emulator: GoogleEmulator,
) -> None:
    user = emulator.authorized_user(rapt=True)
    del user["rapt_token"]
    with pytest.raises(TokenEndpointError, match="invalid_rapt") as info:
        Token.fetch(RefreshToken(user))
    assert info.value.retryable is False


def test_google_auth_sends_the_same_rapt_and_gets_the_same_user(emulator: GoogleEmulator) -> None:
    user = emulator.authorized_user(rapt=True)
    theirs = user_credentials.Credentials.from_authorized_user_info(user).with_token_uri(
        user["token_uri"]
    )
    with auth_request() as request:
        theirs.refresh(request)
    their_rapt = emulator.requests_to("token")[-1].form["rapt"]
    Token.fetch(RefreshToken(user))
    assert emulator.requests_to("token")[-1].form["rapt"] == their_rapt


# ---------------------------------------------------------------------- impersonated scopes


def test_an_impersonated_files_scopes_are_the_target_scopes(emulator: GoogleEmulator) -> None:
    pubsub = "https://www.googleapis.com/auth/pubsub"
    info = emulator.impersonated_service_account(emulator.authorized_user(), SA, scopes=[pubsub])
    source = source_from_credentials(info)
    assert isinstance(source, Impersonated)
    assert source.scopes == (pubsub,)
    token = Token.fetch(source)
    assert emulator.token_info(token.token)["scope"] == pubsub  # type: ignore[index]
    # The caller's scopes win, as in google-auth.
    mine = source_from_credentials(info, scopes=("https://www.googleapis.com/auth/cloud-platform",))
    assert isinstance(mine, Impersonated)
    assert mine.scopes == ("https://www.googleapis.com/auth/cloud-platform",)


def test_google_auth_uses_the_same_impersonated_scopes(emulator: GoogleEmulator) -> None:
    from google.auth import impersonated_credentials

    pubsub = "https://www.googleapis.com/auth/pubsub"
    user = emulator.authorized_user()
    info = emulator.impersonated_service_account(user, SA, scopes=[pubsub])
    theirs = impersonated_credentials.Credentials.from_impersonated_service_account_info(info)
    # google-auth always calls Google's IAM (it drops the URL's host): point it at the emulator.
    theirs._source_credentials = theirs._source_credentials.with_token_uri(user["token_uri"])
    theirs._iam_endpoint_override = info["service_account_impersonation_url"]
    assert theirs._target_scopes == [pubsub]
    with auth_request() as request:
        theirs.refresh(request)
    ours = Token.fetch(source_from_credentials(info))
    assert emulator.token_info(theirs.token) == {
        **emulator.token_info(ours.token),  # type: ignore[dict-item]
        **{k: emulator.token_info(theirs.token)[k] for k in ("exp", "expires_in")},  # type: ignore[index]
    }


def test_a_workload_identity_quota_project_reaches_status_too(emulator: GoogleEmulator) -> None:
    external = {**emulator.workload_identity(), "quota_project_id": "wif-billing"}
    assert WorkloadIdentity(external).quota_project_id == "wif-billing"

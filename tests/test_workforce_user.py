"""``WorkforceUser``: workforce identity federation users (``external_account_authorized_user``)
refresh at STS's ``oauthtoken`` with client authentication; side by side with google-auth."""

from __future__ import annotations

import base64
from typing import Any

import pytest
from _google_auth import auth_request, identity
from google.auth import external_account_authorized_user

from goth_actors import (
    ConfigError,
    Token,
    TokenEndpointError,
    WorkforceUser,
    source_from_credentials,
)
from goth_actors.testing import GoogleEmulator


def test_a_workforce_user_refreshes_at_sts_with_http_basic_client_authentication(
    emulator: GoogleEmulator,
) -> None:
    info = emulator.workforce_user(email="ada@example.com")
    token = Token.fetch(source_from_credentials(info))
    assert identity(emulator, token.token)["email"] == (
        "principal://iam.googleapis.com/locations/global/workforcePools/emulator-workforce-1/"
        "subject/ada@example.com"
    )
    request = emulator.requests_to("sts")[-1]
    assert request.path == "/v1/oauthtoken"
    assert request.form == {"grant_type": "refresh_token", "refresh_token": info["refresh_token"]}
    basic = base64.b64encode(f"{info['client_id']}:{info['client_secret']}".encode()).decode()
    assert request.headers["authorization"] == f"Basic {basic}"


def test_a_revoked_workforce_user_is_invalid_grant(emulator: GoogleEmulator) -> None:
    info = emulator.workforce_user()
    emulator.revoke(info["refresh_token"])
    with pytest.raises(TokenEndpointError) as error:
        Token.fetch(WorkforceUser(info))
    assert (error.value.error, error.value.retryable) == ("invalid_grant", False)
    assert info["refresh_token"] not in str(error.value)
    assert info["client_secret"] not in str(error.value)


def test_a_rotated_refresh_token_is_used_from_then_on(emulator: GoogleEmulator) -> None:
    info = emulator.workforce_user()
    source = WorkforceUser(info)
    emulator.respond_next(
        1,
        200,
        {"access_token": "ya29.rotated", "expires_in": 3599, "refresh_token": "1//rotated"},
        endpoint="sts",
    )
    Token.fetch(source)
    emulator.respond_next(1, 200, {"access_token": "ya29.x", "expires_in": 3599}, endpoint="sts")
    Token.fetch(source)
    assert emulator.requests_to("sts")[-1].form["refresh_token"] == "1//rotated"
    assert "1//rotated" not in repr(source)


def test_the_token_url_defaults_to_the_universes_oauthtoken(emulator: GoogleEmulator) -> None:
    info = emulator.workforce_user()
    del info["token_url"]
    assert WorkforceUser(info).token_url == "https://sts.googleapis.com/v1/oauthtoken"


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"refresh_token": None}, "credentials.refresh_token"),
        ({"client_id": None}, "credentials.client_id"),
        ({"client_secret": None}, "credentials.client_secret"),
        ({"token_url": "https://attacker.example/v1/oauthtoken"}, "credentials.token_url"),
        (
            {"token_info_url": "http://sts.googleapis.com/v1/introspect"},
            "credentials.token_info_url",
        ),
        ({"revoke_url": "https://attacker.example/revoke"}, "credentials.revoke_url"),
        ({"quota_project_id": "has spaces"}, "credentials.quota_project_id"),
    ],
)
def test_malformed_or_hostile_workforce_credentials_are_named(
    emulator: GoogleEmulator, change: dict[str, Any], field: str
) -> None:
    info: dict[str, Any] = {**emulator.workforce_user(), **change}
    info = {k: v for k, v in info.items() if v is not None}
    with pytest.raises(ConfigError) as error:
        WorkforceUser(info)
    assert error.value.field == field


def test_the_quota_project_comes_from_the_file(emulator: GoogleEmulator) -> None:
    source = WorkforceUser(emulator.workforce_user(quota_project="billing-project"))
    assert source.quota_project_id == "billing-project"
    assert WorkforceUser(emulator.workforce_user(), quota_project_id="x").quota_project_id == "x"


def test_google_auth_accepts_the_emulator_and_gets_the_same_identity(
    emulator: GoogleEmulator,
) -> None:
    info = emulator.workforce_user()
    theirs = external_account_authorized_user.Credentials.from_info(info)
    with auth_request() as request:
        theirs.refresh(request)
    ours = Token.fetch(source_from_credentials(info))
    assert identity(emulator, theirs.token) == identity(emulator, ours.token)

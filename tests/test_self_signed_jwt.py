"""Self-signed JWT access for service accounts: no token endpoint, refreshed locally by the same
server with the same rules; the emulator (as Google) accepts the JWT as a bearer token; and
google-auth's ``always_use_jwt_access`` makes the same claims."""

from __future__ import annotations

from typing import Any

import jwt
import pytest
import requests
from _google_auth import auth_request, identity
from _helpers import wait_for
from google.oauth2 import service_account

import goth_actors
from goth_actors import ConfigError, ServiceAccount, Token
from goth_actors.integrations.requests import GothAuth
from goth_actors.otp import FakeTime
from goth_actors.testing import GoogleEmulator

PUBSUB = "https://www.googleapis.com/auth/pubsub"


def _claims(token: str) -> dict[str, Any]:
    return jwt.decode(token, options={"verify_signature": False})


def test_the_token_is_a_jwt_signed_by_the_key_and_no_request_is_made(
    emulator: GoogleEmulator,
) -> None:
    key = emulator.service_account()
    token = Token.fetch(
        ServiceAccount(key, scopes=(PUBSUB,), self_signed_jwt=True), clock=lambda: 1e9
    )
    claims = _claims(token.token)
    assert claims == {
        "iss": key["client_email"],
        "sub": key["client_email"],
        "iat": 1_000_000_000,
        "exp": 1_000_003_600,
        "scope": PUBSUB,
    }
    assert jwt.get_unverified_header(token.token)["kid"] == key["private_key_id"]
    assert (token.expires, token.scope, token.type) == (1_000_003_600.0, PUBSUB, "Bearer")
    assert emulator.requests == []


def test_an_audience_replaces_the_scope_claim(emulator: GoogleEmulator) -> None:
    source = ServiceAccount(
        emulator.service_account(), self_signed_jwt=True, audience="https://pubsub.googleapis.com/"
    )
    claims = _claims(Token.fetch(source).token)
    assert claims["aud"] == "https://pubsub.googleapis.com/"
    assert "scope" not in claims


def test_the_emulator_accepts_it_as_google_does_and_an_api_call_works(
    emulator: GoogleEmulator,
) -> None:
    key = emulator.service_account()
    token = Token.fetch(ServiceAccount(key, scopes=(PUBSUB,), self_signed_jwt=True))
    info = emulator.token_info(token.token)
    assert info is not None
    assert (info["email"], info["scope"], info["self_signed"]) == (
        key["client_email"],
        PUBSUB,
        "true",
    )
    answer = requests.get(
        emulator.api_url, headers={"Authorization": f"Bearer {token.token}"}, timeout=5
    )
    assert answer.status_code == 200
    emulator.revoke(key["private_key_id"])
    assert emulator.token_info(token.token) is None


@pytest.mark.usefixtures("shutdown_servers")
def test_a_server_refreshes_it_locally_before_it_expires(fake_time: FakeTime) -> None:
    with GoogleEmulator(time=fake_time) as emulator:
        source = ServiceAccount(emulator.service_account(), self_signed_jwt=True)
        goth_actors.start_link(name="jwt", source=source, prefetch="sync", time=fake_time)
        first = goth_actors.fetch("jwt")
        assert first.expires - fake_time.time() == pytest.approx(3600, abs=1)
        fake_time.advance(3500)  # past refresh_after (3300 s), within the JWT's hour
        wait_for(lambda: goth_actors.fetch("jwt") != first)
        assert emulator.requests == []
        answer = requests.get(emulator.api_url, auth=GothAuth("jwt"), timeout=5)
        assert answer.status_code == 200


@pytest.mark.parametrize(
    ("options", "field"),
    [
        ({"sub": "user@example.com"}, "sub"),
        ({"target_audience": "https://run.app"}, "target_audience"),
        ({"url": "http://127.0.0.1:9/token"}, "url"),
        ({"self_signed_jwt": "yes"}, "self_signed_jwt"),
    ],
)
def test_what_needs_a_token_endpoint_is_refused_with_a_self_signed_jwt(
    emulator: GoogleEmulator, options: dict[str, Any], field: str
) -> None:
    with pytest.raises(ConfigError) as info:
        ServiceAccount(emulator.service_account(), **{"self_signed_jwt": True, **options})
    assert info.value.field == field


def test_an_audience_without_a_self_signed_jwt_is_refused(emulator: GoogleEmulator) -> None:
    with pytest.raises(ConfigError, match="self_signed_jwt=True") as info:
        ServiceAccount(emulator.service_account(), audience="https://pubsub.googleapis.com/")
    assert info.value.field == "audience"


def test_a_self_signed_jwt_never_checks_or_uses_the_token_uri(emulator: GoogleEmulator) -> None:
    key = {**emulator.service_account(), "token_uri": "https://attacker.example/token"}
    source = ServiceAccount(key, self_signed_jwt=True)  # nothing is sent there
    assert source.token_url is None
    with pytest.raises(ConfigError):
        ServiceAccount(key)  # the JWT-bearer grant would send the assertion there


def test_google_auth_makes_the_same_claims_and_the_emulator_takes_both(
    emulator: GoogleEmulator,
) -> None:
    key = emulator.service_account()
    theirs = service_account.Credentials.from_service_account_info(
        key, scopes=[PUBSUB], always_use_jwt_access=True
    )
    with auth_request() as request:
        theirs.refresh(request)
    ours = Token.fetch(ServiceAccount(key, scopes=(PUBSUB,), self_signed_jwt=True))
    their_claims, our_claims = _claims(theirs.token), _claims(ours.token)
    assert set(their_claims) == set(our_claims)
    assert {k: v for k, v in their_claims.items() if k not in ("iat", "exp")} == {
        k: v for k, v in our_claims.items() if k not in ("iat", "exp")
    }
    assert identity(emulator, theirs.token) == identity(emulator, ours.token)
    assert emulator.requests == []  # neither asked the token endpoint

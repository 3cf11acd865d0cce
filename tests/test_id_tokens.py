"""ID tokens for IAP and Cloud Run, three ways; and the examples, run as programs."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import jwt
import pytest
import requests

from goth_actors import (
    ConfigError,
    Impersonated,
    Metadata,
    RefreshToken,
    ServiceAccount,
    Source,
    Token,
    TokenEndpointError,
    default_source,
)
from goth_actors.testing import GoogleEmulator

AUDIENCE = "https://hello-abc123-ew.a.run.app"
INVOKER = "invoker@emulator-project.iam.gserviceaccount.com"
EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


def verified_claims(emulator: GoogleEmulator, token: str) -> dict[str, Any]:
    """The ID token's claims, its signature checked with the emulator's published keys."""
    keys = jwt.PyJWKSet.from_dict(requests.get(emulator.certs_url, timeout=5).json())
    key = keys[jwt.get_unverified_header(token)["kid"]]
    claims: dict[str, Any] = jwt.decode(
        token,
        key.key,
        algorithms=["RS256"],
        audience=AUDIENCE,
        issuer="https://accounts.google.com",
    )
    return claims


def some_jwt(claims: dict[str, Any]) -> str:
    """A JWT with these claims, signed by nobody in particular."""
    return jwt.encode(claims, "not-a-google-key-but-long-enough!", algorithm="HS256")


def three_ways(emulator: GoogleEmulator) -> dict[str, Source]:
    key = emulator.service_account(INVOKER)
    user = RefreshToken(emulator.authorized_user(email="alice@example.com"))
    return {
        "service_account": ServiceAccount(key, target_audience=AUDIENCE),
        "metadata": Metadata(url=emulator.metadata_url, audience=AUDIENCE),
        "impersonated": Impersonated(user, INVOKER, audience=AUDIENCE, url=emulator.iam_url),
    }


@pytest.mark.parametrize("way", ["service_account", "metadata", "impersonated"])
def test_each_way_gives_an_id_token_that_expires_at_its_exp_and_scopes_its_aud(
    emulator: GoogleEmulator, way: str
) -> None:
    token = Token.fetch(three_ways(emulator)[way])

    claims = verified_claims(emulator, token.token)
    assert token.type == "Bearer"
    assert token.expires == claims["exp"]
    assert token.scope == claims["aud"] == AUDIENCE
    assert token.sub == claims["sub"]
    expected = INVOKER if way != "metadata" else emulator.metadata_email
    assert claims["email"] == expected


def test_target_audience_as_a_keyword_is_the_same_as_the_claim(emulator: GoogleEmulator) -> None:
    key = emulator.service_account()
    by_keyword = ServiceAccount(key, target_audience=AUDIENCE)
    by_claim = ServiceAccount(key, claims={"target_audience": AUDIENCE})

    assert by_keyword.assertion_claims(1000.0) == by_claim.assertion_claims(1000.0)
    assert "scope" not in by_keyword.assertion_claims(1000.0)
    assert f"target_audience={AUDIENCE!r}" in repr(by_keyword)


def test_target_audience_and_a_different_claim_are_refused(rsa_private_key_pem: str) -> None:
    key = {"client_email": "robot@p.iam.gserviceaccount.com", "private_key": rsa_private_key_pem}
    assert ServiceAccount(key, target_audience="a", claims={"target_audience": "a"})
    with pytest.raises(ConfigError, match="differs") as raised:
        ServiceAccount(key, target_audience="a", claims={"target_audience": "b"})
    assert raised.value.field == "target_audience"
    with pytest.raises(ConfigError) as raised:
        ServiceAccount(key, target_audience="")
    assert raised.value.field == "target_audience"


def test_an_impersonated_id_token_asks_iam_for_the_email(emulator: GoogleEmulator) -> None:
    Token.fetch(three_ways(emulator)["impersonated"])

    (iam,) = emulator.requests_to("iam")
    assert iam.path == f"/v1/projects/-/serviceAccounts/{INVOKER}:generateIdToken"
    assert json.loads(iam.body) == {"audience": AUDIENCE, "includeEmail": True}


def test_an_impersonated_id_token_through_delegates_names_them(emulator: GoogleEmulator) -> None:
    builder = emulator.service_account()["client_email"]
    source = three_ways(emulator)["impersonated"]
    assert isinstance(source, Impersonated)

    with_delegate = Impersonated(
        source.source, INVOKER, audience=AUDIENCE, delegates=(builder,), url=emulator.iam_url
    )

    Token.fetch(with_delegate)

    delegates = json.loads(emulator.requests_to("iam")[0].body)["delegates"]
    assert delegates == [f"projects/-/serviceAccounts/{builder}"]


@pytest.mark.parametrize(
    ("body", "problem"),
    [
        ({}, "without a token"),
        ({"token": "not-a-jwt"}, "not a JWT"),
        ({"token": some_jwt({"aud": AUDIENCE})}, "numeric exp"),
    ],
)
def test_a_generate_id_token_200_that_is_not_an_id_token_is_not_retryable(
    emulator: GoogleEmulator, body: dict[str, str], problem: str
) -> None:
    source = three_ways(emulator)["impersonated"]
    emulator.respond_next(1, 200, body, endpoint="iam")

    with pytest.raises(TokenEndpointError, match=problem) as raised:
        Token.fetch(source)

    assert (raised.value.status, raised.value.retryable) == (200, False)


def test_an_id_token_with_a_list_audience_reports_them_space_joined(
    emulator: GoogleEmulator,
) -> None:
    source = three_ways(emulator)["impersonated"]
    listed = some_jwt({"aud": ["a", "b"], "exp": 2_000_000_000})
    emulator.respond_next(1, 200, {"token": listed}, endpoint="iam")

    token = Token.fetch(source)

    assert (token.scope, token.expires) == ("a b", 2_000_000_000.0)


# --------------------------------------------------------- ID tokens from ADC, whatever it finds


def _adc(tmp_path: Path, info: dict[str, Any]) -> dict[str, str]:
    path = tmp_path / "adc.json"
    path.write_text(json.dumps(info))
    return {"GOOGLE_APPLICATION_CREDENTIALS": str(path), "HOME": str(tmp_path)}


def _adc_cases(emulator: GoogleEmulator) -> dict[str, tuple[dict[str, Any], str]]:
    """Each kind of ADC that can give an ID token, and the email the token carries."""
    key = emulator.service_account()
    user = emulator.authorized_user()
    target = "id-target@emulator-project.iam.gserviceaccount.com"
    federated = emulator.workload_identity(service_account=target)
    return {
        "service account key": (key, key["client_email"]),
        "impersonated": (emulator.impersonated_service_account(user, target), target),
        "workload identity with impersonation": (federated, target),
    }


@pytest.mark.parametrize(
    "kind", ["service account key", "impersonated", "workload identity with impersonation"]
)
def test_default_source_with_an_audience_gives_an_id_token_for_each_kind_of_adc(
    emulator: GoogleEmulator, tmp_path: Path, kind: str
) -> None:
    info, email = _adc_cases(emulator)[kind]
    source = default_source(environ=_adc(tmp_path, info), audience=AUDIENCE)
    token = Token.fetch(source)
    claims = verified_claims(emulator, token.token)
    assert (token.scope, claims["email"]) == (AUDIENCE, email)


def test_default_source_with_an_audience_on_the_metadata_server_gives_an_id_token(
    emulator: GoogleEmulator, tmp_path: Path
) -> None:
    environ = {"HOME": str(tmp_path), "GCE_METADATA_HOST": emulator.metadata_host}
    token = Token.fetch(default_source(environ=environ, audience=AUDIENCE), environ=environ)
    assert verified_claims(emulator, token.token)["email"] == emulator.metadata_email


@pytest.mark.parametrize("kind", ["authorized_user", "external_account_authorized_user"])
def test_user_credentials_say_clearly_why_they_give_no_id_token(
    emulator: GoogleEmulator, tmp_path: Path, kind: str
) -> None:
    info = emulator.authorized_user() if kind == "authorized_user" else emulator.workforce_user()
    with pytest.raises(ConfigError, match="impersonate-service-account") as error:
        default_source(environ=_adc(tmp_path, info), audience=AUDIENCE)
    assert error.value.field == "audience"


def test_workload_identity_without_impersonation_says_why_it_gives_no_id_token(
    emulator: GoogleEmulator, tmp_path: Path
) -> None:
    with pytest.raises(ConfigError, match="service_account_impersonation_url") as error:
        default_source(environ=_adc(tmp_path, emulator.workload_identity()), audience=AUDIENCE)
    assert error.value.field == "audience"


def test_google_auth_fetches_an_id_token_for_the_same_key(
    emulator: GoogleEmulator, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from _google_auth import auth_request
    from google.oauth2 import id_token

    key = emulator.service_account()
    environ = _adc(tmp_path, key)
    monkeypatch.setenv("GOOGLE_APPLICATION_CREDENTIALS", environ["GOOGLE_APPLICATION_CREDENTIALS"])
    with auth_request() as request:
        theirs = id_token.fetch_id_token(request, AUDIENCE)
    ours = Token.fetch(default_source(environ=environ, audience=AUDIENCE))
    their_claims, our_claims = (
        verified_claims(emulator, theirs),
        verified_claims(emulator, ours.token),
    )
    assert {k: their_claims[k] for k in ("aud", "email", "sub", "iss")} == {
        k: our_claims[k] for k in ("aud", "email", "sub", "iss")
    }


def _same_identity(emulator: GoogleEmulator, theirs: str, ours: str) -> None:
    their_claims, our_claims = verified_claims(emulator, theirs), verified_claims(emulator, ours)
    fields = ("aud", "email", "sub", "iss")
    assert {k: their_claims[k] for k in fields} == {k: our_claims[k] for k in fields}


def test_google_auth_fetches_an_id_token_for_the_same_impersonated_file(
    emulator: GoogleEmulator, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from _google_auth import auth_request
    from google.auth import iam, impersonated_credentials

    target = "id-target@emulator-project.iam.gserviceaccount.com"
    user = emulator.authorized_user()
    info = emulator.impersonated_service_account(user, target)
    # What google-auth's fetch_id_token builds for this file, pointed at the emulator where
    # google-auth always calls Google (it drops the file's token and IAM hosts).
    their_target = impersonated_credentials.Credentials.from_impersonated_service_account_info(info)
    their_target._source_credentials = their_target._source_credentials.with_token_uri(
        user["token_uri"]
    )
    their_target._iam_endpoint_override = info["service_account_impersonation_url"]
    endpoint = f"{emulator.iam_url}/v1/projects/-/serviceAccounts/{{}}:generateIdToken"
    monkeypatch.setattr(iam, "_IAM_IDTOKEN_ENDPOINT", endpoint)
    theirs = impersonated_credentials.IDTokenCredentials(
        target_credentials=their_target, target_audience=AUDIENCE, include_email=True
    )
    with auth_request() as request:
        theirs.refresh(request)
    ours = Token.fetch(default_source(environ=_adc(tmp_path, info), audience=AUDIENCE))
    _same_identity(emulator, theirs.token, ours.token)
    assert verified_claims(emulator, ours.token)["email"] == target


def test_google_auth_fetches_an_id_token_from_the_same_metadata_server(
    emulator: GoogleEmulator, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from _google_auth import auth_request
    from google.auth.compute_engine import _metadata
    from google.oauth2 import id_token

    monkeypatch.delenv("GOOGLE_APPLICATION_CREDENTIALS", raising=False)
    host = emulator.metadata_host  # google-auth read GCE_METADATA_HOST at import: set it here
    monkeypatch.setattr(_metadata, "_GCE_METADATA_HOST", host)
    monkeypatch.setenv("GCE_METADATA_IP", host)  # its ping
    with auth_request() as request:
        theirs = id_token.fetch_id_token(request, AUDIENCE)
    environ = {"HOME": str(tmp_path), "GCE_METADATA_HOST": host}
    ours = Token.fetch(default_source(environ=environ, audience=AUDIENCE), environ=environ)
    _same_identity(emulator, theirs, ours.token)
    assert verified_claims(emulator, ours.token)["email"] == emulator.metadata_email

"""Service-account impersonation through IAM Credentials, against the emulator."""

from __future__ import annotations

import json
import time
from collections.abc import Mapping
from datetime import timedelta
from typing import Any

import pytest

from goth_actors import (
    ConfigError,
    Impersonated,
    Metadata,
    RefreshToken,
    ServiceAccount,
    Source,
    Token,
    TokenEndpointError,
    WorkloadIdentity,
)
from goth_actors import source_from_credentials as from_credentials
from goth_actors._protocol import Exchanger
from goth_actors._protocol.iam import parse_rfc3339
from goth_actors.testing import GoogleEmulator

CLOUD = "https://www.googleapis.com/auth/cloud-platform"
PUBSUB = "https://www.googleapis.com/auth/pubsub"
DEPLOYER = "deployer@emulator-project.iam.gserviceaccount.com"
BUILDER = "builder@emulator-project.iam.gserviceaccount.com"


@pytest.fixture
def deployer(emulator: GoogleEmulator) -> str:
    return emulator.service_account(DEPLOYER)["client_email"]


def as_user(emulator: GoogleEmulator, **options: Any) -> Impersonated:
    user = RefreshToken(emulator.authorized_user(email="alice@example.com"))
    return Impersonated(user, DEPLOYER, url=emulator.iam_url, **options)


def iam_body(emulator: GoogleEmulator) -> Mapping[str, Any]:
    (request,) = emulator.requests_to("iam")
    decoded: Mapping[str, Any] = json.loads(request.body)
    return decoded


class _Fixed(Source):
    """A source that gives a token the emulator never issued."""

    __slots__ = ()

    def fetch_token(self, exchanger: Exchanger) -> Token:
        return Token("ya29.never-issued-by-google", "Bearer", None, None, time.time() + 60)


# ------------------------------------------------------------------------------ happy paths


def test_a_users_token_impersonates_a_service_account(
    emulator: GoogleEmulator, deployer: str
) -> None:
    before = time.time()

    token = Token.fetch(as_user(emulator))

    assert (token.type, token.scope, token.sub) == ("Bearer", CLOUD, None)
    assert before + 3598 <= token.expires <= time.time() + 3600
    info = emulator.token_info(token.token)
    assert info is not None
    assert (info["email"], info["scope"]) == (deployer, CLOUD)
    assert [r.endpoint for r in emulator.requests] == ["token", "iam"]
    iam = emulator.requests_to("iam")[0]
    assert iam.path == f"/v1/projects/-/serviceAccounts/{deployer}:generateAccessToken"
    assert iam.headers["content-type"] == "application/json"
    assert iam_body(emulator) == {"scope": [CLOUD], "lifetime": "3600s"}
    scheme, caller = iam.headers["authorization"].split(" ")
    assert scheme == "Bearer"
    assert emulator.token_info(caller)["email"] == "alice@example.com"  # type: ignore[index]


@pytest.mark.parametrize("kind", ["service_account", "metadata", "workload_identity"])
def test_any_source_of_access_tokens_can_impersonate(
    emulator: GoogleEmulator, deployer: str, kind: str
) -> None:
    sources: dict[str, Source] = {
        "service_account": ServiceAccount(emulator.service_account()),
        "metadata": Metadata(url=emulator.metadata_url),
        "workload_identity": WorkloadIdentity(emulator.workload_identity()),
    }

    token = Token.fetch(Impersonated(sources[kind], deployer, url=emulator.iam_url))

    assert emulator.token_info(token.token)["email"] == deployer  # type: ignore[index]


def test_scopes_delegates_and_lifetime_are_sent_as_google_wants_them(
    emulator: GoogleEmulator, deployer: str
) -> None:
    builder = emulator.service_account(BUILDER)["client_email"]
    emulator.iam_max_lifetime = 7200
    emulator.token_lifetime = 7200
    source = as_user(
        emulator,
        scopes=(PUBSUB, CLOUD),
        delegates=(builder, f"projects/-/serviceAccounts/{deployer}"),
        lifetime=7200,
    )

    token = Token.fetch(source)

    assert iam_body(emulator) == {
        "scope": [PUBSUB, CLOUD],
        "lifetime": "7200s",
        "delegates": [
            f"projects/-/serviceAccounts/{builder}",
            f"projects/-/serviceAccounts/{deployer}",
        ],
    }
    assert source.delegates == (builder, deployer)
    assert token.scope == f"{PUBSUB} {CLOUD}"
    assert token.expires_in() == pytest.approx(7200, abs=2)


def test_a_fractional_lifetime_is_a_fractional_duration(
    emulator: GoogleEmulator, deployer: str
) -> None:
    Token.fetch(as_user(emulator, lifetime=90.5))

    assert iam_body(emulator)["lifetime"] == "90.5s"


@pytest.mark.parametrize(
    ("offset", "digits"),
    [
        pytest.param(timedelta(hours=2), 0, id="plus-two-hours"),
        pytest.param(timedelta(hours=2), 9, id="plus-two-hours-nanoseconds"),
        pytest.param(timedelta(hours=-8), 6, id="minus-eight-hours-microseconds"),
    ],
)
def test_an_expire_time_with_an_offset_is_parsed(
    emulator: GoogleEmulator, deployer: str, offset: timedelta, digits: int
) -> None:
    emulator.expire_time_offset = offset
    emulator.expire_time_digits = digits

    token = Token.fetch(as_user(emulator))

    info = emulator.token_info(token.token)
    assert info is not None
    assert int(token.expires) == int(info["exp"])
    assert token.expires_in() == pytest.approx(3599, abs=2)


def test_gclouds_impersonated_service_account_file_becomes_an_impersonated_source(
    emulator: GoogleEmulator, deployer: str
) -> None:
    builder = emulator.service_account(BUILDER)["client_email"]
    user = emulator.authorized_user(email="alice@example.com")
    adc = {
        "type": "impersonated_service_account",
        "source_credentials": user,
        "service_account_impersonation_url": f"{emulator.url}/v1/projects/-/serviceAccounts/"
        f"{deployer.replace('@', '%40')}:generateAccessToken",
        "delegates": [builder],
        "quota_project_id": "billing",
    }

    source = from_credentials(adc, scopes=(PUBSUB,))

    assert isinstance(source, Impersonated)
    assert isinstance(source.source, RefreshToken)
    assert (source.target_principal, source.iam_url) == (deployer, emulator.url)
    assert (source.delegates, source.scopes) == ((builder,), (PUBSUB,))
    token = Token.fetch(source)
    assert emulator.token_info(token.token)["email"] == deployer  # type: ignore[index]
    assert iam_body(emulator)["delegates"] == [f"projects/-/serviceAccounts/{builder}"]


def test_a_chain_of_impersonations_works(emulator: GoogleEmulator, deployer: str) -> None:
    builder = emulator.service_account(BUILDER)["client_email"]
    first = Impersonated(ServiceAccount(emulator.service_account()), builder, url=emulator.url)

    token = Token.fetch(Impersonated(first, deployer, url=emulator.url))

    assert emulator.token_info(token.token)["email"] == deployer  # type: ignore[index]
    assert len(emulator.requests_to("iam")) == 2


# ----------------------------------------------------------------------------------- errors


@pytest.mark.parametrize(
    ("status", "google_status", "retryable"),
    [
        (400, "INVALID_ARGUMENT", False),
        (401, "UNAUTHENTICATED", False),
        (403, "PERMISSION_DENIED", False),
        (404, "NOT_FOUND", False),
        (429, "RESOURCE_EXHAUSTED", True),
        (500, "INTERNAL", True),
        (503, "UNAVAILABLE", True),
        (504, "DEADLINE_EXCEEDED", True),
    ],
)
def test_iam_errors_carry_googles_status_and_the_retryable_flag(
    emulator: GoogleEmulator, deployer: str, status: int, google_status: str, retryable: bool
) -> None:
    emulator.fail_next(1, status, endpoint="iam")

    with pytest.raises(TokenEndpointError) as raised:
        Token.fetch(as_user(emulator))

    error = raised.value
    assert (error.status, error.error, error.retryable) == (status, google_status, retryable)
    assert (
        error.url == f"{emulator.url}/v1/projects/-/serviceAccounts/{deployer}:generateAccessToken"
    )


def test_a_failing_source_stops_before_iam(emulator: GoogleEmulator, deployer: str) -> None:
    emulator.fail_next(1, 503, endpoint="token")

    with pytest.raises(TokenEndpointError) as raised:
        Token.fetch(as_user(emulator))

    assert raised.value.url == emulator.token_url
    assert raised.value.retryable is True
    assert emulator.requests_to("iam") == []


def test_a_token_google_never_issued_is_unauthenticated(
    emulator: GoogleEmulator, deployer: str
) -> None:
    with pytest.raises(TokenEndpointError) as raised:
        Token.fetch(Impersonated(_Fixed(), deployer, url=emulator.iam_url))

    error = raised.value
    assert (error.status, error.error, error.retryable) == (401, "UNAUTHENTICATED", False)
    assert "never-issued" not in str(error)


def test_an_unknown_or_revoked_target_is_not_found(emulator: GoogleEmulator) -> None:
    with pytest.raises(TokenEndpointError) as raised:
        Token.fetch(as_user(emulator))
    assert (raised.value.status, raised.value.error) == (404, "NOT_FOUND")

    emulator.service_account(DEPLOYER)
    emulator.revoke(DEPLOYER)
    with pytest.raises(TokenEndpointError) as raised:
        Token.fetch(as_user(emulator))
    assert (raised.value.status, raised.value.retryable) == (404, False)


def test_a_lifetime_over_googles_maximum_is_invalid_argument(
    emulator: GoogleEmulator, deployer: str
) -> None:
    with pytest.raises(TokenEndpointError, match="lifetime") as raised:
        Token.fetch(as_user(emulator, lifetime=3601))

    assert (raised.value.status, raised.value.error) == (400, "INVALID_ARGUMENT")
    emulator.iam_max_lifetime = 43200
    assert Token.fetch(as_user(emulator, lifetime=43200)).token


def test_the_callers_token_never_appears_in_an_iam_error(
    emulator: GoogleEmulator, deployer: str
) -> None:
    Token.fetch(as_user(emulator))
    caller = emulator.requests_to("iam")[0].headers["authorization"].split(" ")[1]
    body = {"error": {"code": 403, "message": f"denied for {caller}", "status": "DENIED"}}
    emulator.respond_next(1, 403, body, endpoint="iam")

    with pytest.raises(TokenEndpointError) as raised:
        Token.fetch(as_user(emulator))

    assert caller not in str(raised.value)
    assert caller not in raised.value.body
    assert caller not in (raised.value.error_description or "")


@pytest.mark.parametrize(
    ("body", "problem"),
    [
        ({"expireTime": "2099-01-01T00:00:00Z"}, "without an accessToken"),
        ({"accessToken": "", "expireTime": "2099-01-01T00:00:00Z"}, "without an accessToken"),
        ({"accessToken": "ya29.x", "expireTime": "2099-13-01T00:00:00Z"}, "RFC 3339"),
        ({"accessToken": "ya29.x", "expireTime": 4070908800}, "RFC 3339"),
        ({"accessToken": "ya29.x", "expireTime": "1999-01-01T00:00:00Z"}, "in the past"),
    ],
)
def test_an_iam_200_that_is_not_a_usable_token_is_not_retryable(
    emulator: GoogleEmulator, deployer: str, body: dict[str, Any], problem: str
) -> None:
    emulator.respond_next(1, 200, body, endpoint="iam")

    with pytest.raises(TokenEndpointError, match=problem) as raised:
        Token.fetch(as_user(emulator))

    assert (raised.value.status, raised.value.retryable) == (200, False)
    assert "ya29.x" not in str(raised.value)
    assert "ya29.x" not in raised.value.body


# ------------------------------------------------------------------------------ RFC 3339


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2024-01-01T00:00:00Z", 1704067200.0),
        ("2024-01-01t00:00:00z", 1704067200.0),
        ("2024-01-01T02:00:00+02:00", 1704067200.0),
        ("2023-12-31T18:30:00-05:30", 1704067200.0),
        ("2024-01-01T00:00:00.5Z", 1704067200.5),
        ("2024-01-01T02:00:00.123456789+02:00", 1704067200.123456789),
        ("2024-02-29T00:00:00Z", 1709164800.0),
    ],
)
def test_an_rfc3339_time_in_any_offset_is_parsed(text: str, expected: float) -> None:
    assert parse_rfc3339(text) == pytest.approx(expected, abs=1e-6)


def test_an_expire_time_with_a_plus_two_hours_offset_is_parsed() -> None:
    assert parse_rfc3339("2024-05-01T14:00:00+02:00") == parse_rfc3339("2024-05-01T12:00:00Z")


@pytest.mark.parametrize(
    "text",
    [
        "2024-01-01T00:00:00",
        "2024-01-01 00:00:00Z",
        "2024-01-01T00:00:00.1234567890Z",
        "2024-13-01T00:00:00Z",
        "2023-02-29T00:00:00Z",
        "2024-01-01T24:00:00Z",
        "2024-01-01T00:00:00+24:00",
        "20240101T000000Z",
        "tomorrow",
        "",
    ],
)
def test_a_time_that_is_not_rfc3339_is_refused(text: str) -> None:
    assert parse_rfc3339(text) is None


# ------------------------------------------------------------------------------- validation


@pytest.fixture
def user() -> RefreshToken:
    return RefreshToken(
        {"client_id": "id.apps.googleusercontent.com", "client_secret": "s", "refresh_token": "r"}
    )


@pytest.mark.parametrize(
    ("options", "field", "message"),
    [
        ({"target_principal": "not-an-email"}, "target_principal", "email"),
        ({"target_principal": 5}, "target_principal", "email"),
        ({"scopes": CLOUD}, "scopes", "did you mean"),
        ({"scopes": ()}, "scopes", "empty"),
        ({"delegates": BUILDER}, "delegates", "sequence"),
        ({"delegates": ("x/y",)}, "delegates", "email"),
        ({"lifetime": 0}, "lifetime", "between 1 and 43200"),
        ({"lifetime": 43201}, "lifetime", "between 1 and 43200"),
        ({"lifetime": float("nan")}, "lifetime", "between"),
        ({"lifetime": "3600s"}, "lifetime", "number"),
        ({"lifetime": True}, "lifetime", "number"),
        ({"audience": ""}, "audience", "must not be empty"),
        ({"audience": 5}, "audience", "must be a string"),
        ({"url": "ftp://iam"}, "url", "http"),
    ],
)
def test_bad_options_are_named(
    user: RefreshToken, options: dict[str, Any], field: str, message: str
) -> None:
    kwargs: dict[str, Any] = {"target_principal": DEPLOYER, **options}
    with pytest.raises(ConfigError, match=message) as raised:
        Impersonated(user, **kwargs)
    assert raised.value.field == field


def test_an_id_token_source_or_a_non_source_is_refused(rsa_private_key_pem: str) -> None:
    key = {"client_email": "robot@p.iam.gserviceaccount.com", "private_key": rsa_private_key_pem}
    for source in (
        ServiceAccount(key, target_audience="https://a"),
        ServiceAccount(key, claims={"target_audience": "https://a"}),
        Metadata(audience="https://a"),
    ):
        with pytest.raises(ConfigError, match="ID tokens") as raised:
            Impersonated(source, DEPLOYER)
        assert raised.value.field == "source"
    with pytest.raises(ConfigError, match="Source") as raised:
        Impersonated(key, DEPLOYER)  # type: ignore[arg-type]
    assert raised.value.field == "source"


def test_options_after_the_target_are_keyword_only(user: RefreshToken) -> None:
    with pytest.raises(TypeError):
        Impersonated(user, DEPLOYER, (CLOUD,))  # type: ignore[call-arg]


def test_the_repr_shows_the_chain_but_no_secret(user: RefreshToken) -> None:
    text = repr(Impersonated(user, DEPLOYER, delegates=(BUILDER,), audience="https://a"))

    assert "client_secret" not in text
    assert "'s'" not in text
    assert f"target_principal={DEPLOYER!r}" in text
    assert "RefreshToken(client_id='id.apps.googleusercontent.com'" in text
    assert "url='https://iamcredentials.googleapis.com'" in text


def _adc(**changes: Any) -> dict[str, Any]:
    adc: dict[str, Any] = {
        "type": "impersonated_service_account",
        "source_credentials": {
            "type": "authorized_user",
            "client_id": "id.apps.googleusercontent.com",
            "client_secret": "GOCSPX-s3cret",
            "refresh_token": "1//r",
        },
        "service_account_impersonation_url": "https://iamcredentials.googleapis.com/v1/projects/"
        f"-/serviceAccounts/{DEPLOYER}:generateAccessToken",
        "delegates": [],
    }
    adc.update(changes)
    return adc


def test_gclouds_file_defaults_to_googles_iam_url() -> None:
    source = from_credentials(_adc())

    assert isinstance(source, Impersonated)
    assert source.iam_url == "https://iamcredentials.googleapis.com"
    assert source.target_principal == DEPLOYER


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        (
            {"service_account_impersonation_url": None},
            "credentials.service_account_impersonation_url",
        ),
        (
            {"service_account_impersonation_url": "https://iam.example/v1/sa:generateIdToken"},
            "credentials.service_account_impersonation_url",
        ),
        ({"source_credentials": None}, "credentials.source_credentials"),
        (
            {"source_credentials": {"type": "authorized_user"}},
            "credentials.source_credentials.client_id",
        ),
        ({"source_credentials": {"type": "nope"}}, "credentials.source_credentials.type"),
        (
            {"source_credentials": {"type": "impersonated_service_account"}},
            "credentials.source_credentials.type",
        ),
        ({"delegates": "builder@p.iam.gserviceaccount.com"}, "credentials.delegates"),
    ],
)
def test_a_malformed_gcloud_file_names_the_field(changes: dict[str, Any], field: str) -> None:
    adc = {k: v for k, v in _adc(**changes).items() if v is not None}

    with pytest.raises(ConfigError) as raised:
        from_credentials(adc)

    assert raised.value.field == field
    assert "s3cret" not in str(raised.value)

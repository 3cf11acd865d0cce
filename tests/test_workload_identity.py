"""Workload identity federation: subject token, STS, impersonation, against the emulator."""

from __future__ import annotations

import base64
import json
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from goth_actors import (
    ConfigError,
    Token,
    TokenEndpointError,
    TokenError,
    TransportError,
    WorkloadIdentity,
    default_source,
    source_from_credentials,
)
from goth_actors.testing import GoogleEmulator

CLOUD = "https://www.googleapis.com/auth/cloud-platform"
PUBSUB = "https://www.googleapis.com/auth/pubsub"
STORAGE = "https://www.googleapis.com/auth/devstorage.read_only"
TOKEN_EXCHANGE = "urn:ietf:params:oauth:grant-type:token-exchange"
ACCESS_TOKEN_TYPE = "urn:ietf:params:oauth:token-type:access_token"
JWT_TYPE = "urn:ietf:params:oauth:token-type:jwt"


def a_deployer(emulator: GoogleEmulator) -> str:
    return emulator.service_account("deployer@emulator-project.iam.gserviceaccount.com")[
        "client_email"
    ]


# ------------------------------------------------------------------------------ happy paths


def test_a_text_subject_token_file_is_exchanged_at_sts_for_the_token(
    emulator: GoogleEmulator, tmp_path: Path
) -> None:
    token_file = tmp_path / "token"
    credentials = emulator.workload_identity(file=token_file)
    before = time.time()

    token = Token.fetch(WorkloadIdentity(credentials))

    assert (token.type, token.scope, token.sub) == ("Bearer", CLOUD, None)
    assert before + 3598 <= token.expires <= time.time() + 3599
    info = emulator.token_info(token.token)
    assert info is not None
    assert info["email"].startswith("principal://iam.googleapis.com/projects/")
    (request,) = emulator.requests
    assert (request.endpoint, request.method) == ("sts", "POST")
    assert request.headers["content-type"] == "application/x-www-form-urlencoded"
    assert list(request.form) == [
        "audience",
        "grant_type",
        "requested_token_type",
        "scope",
        "subject_token",
        "subject_token_type",
    ]
    assert request.form == {
        "audience": credentials["audience"],
        "grant_type": TOKEN_EXCHANGE,
        "requested_token_type": ACCESS_TOKEN_TYPE,
        "scope": CLOUD,
        "subject_token": token_file.read_text(),
        "subject_token_type": JWT_TYPE,
    }


def test_a_json_subject_token_file_is_read_from_its_field(
    emulator: GoogleEmulator, tmp_path: Path
) -> None:
    token_file = tmp_path / "token.json"
    credentials = emulator.workload_identity(file=token_file, format="json")
    assert credentials["credential_source"]["format"]["subject_token_field_name"] == "value"

    Token.fetch(WorkloadIdentity(credentials))

    sent = emulator.requests_to("sts")[0].form["subject_token"]
    assert sent == json.loads(token_file.read_text())["value"]


def test_the_subject_token_file_is_read_again_at_each_fetch(
    emulator: GoogleEmulator, tmp_path: Path
) -> None:
    token_file = tmp_path / "token"
    credentials = emulator.workload_identity(file=token_file)
    source = WorkloadIdentity(credentials)
    Token.fetch(source)
    rotated = emulator.subject_token(credentials["audience"])
    token_file.write_text(rotated + "\n")

    Token.fetch(source)

    first, second = emulator.requests_to("sts")
    assert first.form["subject_token"] != rotated
    assert second.form["subject_token"] == rotated


@pytest.mark.parametrize("format", ["text", "json"])
def test_a_url_credential_source_sends_its_headers_and_reads_text_or_json(
    emulator: GoogleEmulator, format: Any
) -> None:
    credentials = emulator.workload_identity(format=format)

    Token.fetch(WorkloadIdentity(credentials))

    subject, sts = emulator.requests
    assert (subject.endpoint, subject.method) == ("subject", "GET")
    headers = credentials["credential_source"]["headers"]
    assert subject.headers["authorization"] == headers["Authorization"]
    assert sts.form["subject_token"].startswith("eyJ")


def test_without_impersonation_scopes_go_to_sts_space_joined(emulator: GoogleEmulator) -> None:
    source = WorkloadIdentity(emulator.workload_identity(), scopes=(PUBSUB, STORAGE))

    token = Token.fetch(source)

    assert emulator.requests_to("sts")[0].form["scope"] == f"{PUBSUB} {STORAGE}"
    assert token.scope == f"{PUBSUB} {STORAGE}"
    assert emulator.token_info(token.token)["scope"] == f"{PUBSUB} {STORAGE}"  # type: ignore[index]


def test_with_impersonation_sts_gets_cloud_platform_and_iam_gets_the_scopes(
    emulator: GoogleEmulator,
) -> None:
    deployer = a_deployer(emulator)
    credentials = emulator.workload_identity(service_account=deployer)
    before = time.time()

    token = Token.fetch(WorkloadIdentity(credentials, scopes=(PUBSUB, STORAGE)))

    assert (token.type, token.scope, token.sub) == ("Bearer", f"{PUBSUB} {STORAGE}", None)
    assert before + 3598 <= token.expires <= time.time() + 3600
    info = emulator.token_info(token.token)
    assert info is not None
    assert info["email"] == deployer
    assert info["scope"] == f"{PUBSUB} {STORAGE}"
    assert [r.endpoint for r in emulator.requests] == ["subject", "sts", "iam"]
    assert emulator.requests_to("sts")[0].form["scope"] == CLOUD
    iam = emulator.requests_to("iam")[0]
    assert iam.path == f"/v1/projects/-/serviceAccounts/{deployer}:generateAccessToken"
    assert json.loads(iam.body) == {"scope": [PUBSUB, STORAGE], "lifetime": "3600s"}
    assert iam.headers["content-type"] == "application/json"
    scheme, sts_token = iam.headers["authorization"].split(" ")
    assert scheme == "Bearer"
    assert emulator.token_info(sts_token)["email"].startswith("principal://")  # type: ignore[index]


def test_token_lifetime_seconds_becomes_the_impersonation_lifetime(
    emulator: GoogleEmulator,
) -> None:
    credentials = emulator.workload_identity(service_account=a_deployer(emulator))
    credentials["service_account_impersonation"] = {"token_lifetime_seconds": 1200}

    token = Token.fetch(WorkloadIdentity(credentials))

    assert json.loads(emulator.requests_to("iam")[0].body)["lifetime"] == "1200s"
    assert token.expires_in() == pytest.approx(1200, abs=2)


@pytest.mark.parametrize(
    ("offset", "digits"),
    [
        pytest.param(timedelta(hours=2), 0, id="plus-two-hours"),
        pytest.param(timedelta(hours=-5, minutes=-30), 9, id="minus-five-thirty-nanoseconds"),
        pytest.param(timedelta(0), 3, id="z-milliseconds"),
    ],
)
def test_an_expire_time_in_any_offset_is_parsed(
    emulator: GoogleEmulator, offset: timedelta, digits: int
) -> None:
    emulator.expire_time_offset = offset
    emulator.expire_time_digits = digits
    credentials = emulator.workload_identity(service_account=a_deployer(emulator))

    token = Token.fetch(WorkloadIdentity(credentials))

    info = emulator.token_info(token.token)
    assert info is not None
    assert token.expires == pytest.approx(time.time() + int(info["expires_in"]), abs=2)
    assert int(token.expires) == int(info["exp"])


def test_client_credentials_authenticate_to_sts_with_basic_auth(emulator: GoogleEmulator) -> None:
    credentials = emulator.workload_identity()
    credentials |= {"client_id": "wif-client", "client_secret": "wif-secret"}

    Token.fetch(WorkloadIdentity(credentials))

    authorization = emulator.requests_to("sts")[0].headers["authorization"]
    assert authorization == "Basic " + base64.b64encode(b"wif-client:wif-secret").decode()


def test_a_workforce_pool_user_project_is_sent_as_sts_options(emulator: GoogleEmulator) -> None:
    credentials = emulator.workload_identity()
    credentials["audience"] = (
        "//iam.googleapis.com/locations/global/workforcePools/pool/providers/provider"
    )
    credentials["workforce_pool_user_project"] = "billing-project"

    with pytest.raises(TokenEndpointError, match="invalid_target"):
        Token.fetch(WorkloadIdentity(credentials))

    options = emulator.requests_to("sts")[0].form["options"]
    assert json.loads(options) == {"userProject": "billing-project"}


# ----------------------------------------------------------------------------------- errors


@pytest.mark.parametrize(("status", "retryable"), [(403, False), (404, False), (503, True)])
def test_a_subject_url_that_fails_gives_a_clean_token_endpoint_error(
    emulator: GoogleEmulator, status: int, retryable: bool
) -> None:
    credentials = emulator.workload_identity()
    emulator.fail_next(1, status, endpoint="subject")

    with pytest.raises(TokenEndpointError) as raised:
        Token.fetch(WorkloadIdentity(credentials))

    error = raised.value
    assert (error.status, error.retryable) == (status, retryable)
    assert error.url == credentials["credential_source"]["url"]
    assert emulator.requests_to("sts") == []


def test_a_subject_url_without_its_header_answers_401(emulator: GoogleEmulator) -> None:
    credentials = emulator.workload_identity()
    bearer = credentials["credential_source"]["headers"]["Authorization"]
    credentials["credential_source"]["headers"] = {"Authorization": "Bearer wrong-request-token"}

    with pytest.raises(TokenEndpointError) as raised:
        Token.fetch(WorkloadIdentity(credentials))

    assert (raised.value.status, raised.value.retryable) == (401, False)
    assert "wrong-request-token" not in str(raised.value)
    assert bearer not in str(raised.value)


@pytest.mark.parametrize(
    ("body", "problem"),
    [
        pytest.param({"count": 1}, "without a subject token string in 'value'", id="no-field"),
        pytest.param({"value": 12}, "without a subject token string in 'value'", id="not-str"),
        pytest.param(b"<html>", "not JSON", id="not-json"),
    ],
)
def test_a_json_subject_url_answer_without_the_token_is_not_retryable(
    emulator: GoogleEmulator, body: Any, problem: str
) -> None:
    credentials = emulator.workload_identity(format="json")
    emulator.respond_next(1, 200, body, endpoint="subject")

    with pytest.raises(TokenEndpointError, match=problem) as raised:
        Token.fetch(WorkloadIdentity(credentials))

    assert (raised.value.status, raised.value.retryable) == (200, False)


def test_an_empty_text_subject_url_answer_is_not_retryable(emulator: GoogleEmulator) -> None:
    credentials = emulator.workload_identity()
    emulator.respond_next(1, 200, "  \n", endpoint="subject")

    with pytest.raises(TokenEndpointError, match="empty subject token") as raised:
        Token.fetch(WorkloadIdentity(credentials))

    assert raised.value.retryable is False


def test_a_missing_subject_token_file_is_a_retryable_transport_error(
    emulator: GoogleEmulator, tmp_path: Path
) -> None:
    token_file = tmp_path / "token"
    source = WorkloadIdentity(emulator.workload_identity(file=token_file))
    token_file.unlink()

    with pytest.raises(TransportError, match="does not exist") as raised:
        Token.fetch(source)

    assert raised.value.retryable is True
    assert raised.value.url == token_file.as_uri()
    assert raised.value.__cause__ is None
    assert emulator.requests == []


@pytest.mark.parametrize(
    ("format", "content", "problem"),
    [
        pytest.param("text", " \n", "is empty", id="empty"),
        pytest.param("json", "eyJ-not-json", "is not JSON", id="not-json"),
        pytest.param("json", '{"other": "eyJ-secret"}', "no subject token string", id="no-field"),
        pytest.param("json", "[1]", "no subject token string", id="not-an-object"),
    ],
)
def test_an_unusable_subject_token_file_is_not_retryable_and_not_quoted(
    emulator: GoogleEmulator, tmp_path: Path, format: Any, content: str, problem: str
) -> None:
    token_file = tmp_path / "token"
    source = WorkloadIdentity(emulator.workload_identity(file=token_file, format=format))
    token_file.write_text(content)

    with pytest.raises(TokenError, match=problem) as raised:
        Token.fetch(source)

    assert raised.value.retryable is False
    assert "eyJ" not in str(raised.value)


def test_sts_refuses_a_subject_token_of_another_pool_as_invalid_grant(
    emulator: GoogleEmulator, tmp_path: Path
) -> None:
    token_file = tmp_path / "token"
    credentials = emulator.workload_identity(file=token_file)
    other = emulator.workload_identity()
    token_file.write_text(emulator.subject_token(other["audience"]))

    with pytest.raises(TokenEndpointError) as raised:
        Token.fetch(WorkloadIdentity(credentials))

    error = raised.value
    assert (error.status, error.error, error.retryable) == (400, "invalid_grant", False)


def test_sts_refuses_a_subject_token_type_the_pool_does_not_take(
    emulator: GoogleEmulator,
) -> None:
    credentials = emulator.workload_identity()
    credentials["subject_token_type"] = "urn:ietf:params:oauth:token-type:saml2"

    with pytest.raises(TokenEndpointError) as raised:
        Token.fetch(WorkloadIdentity(credentials))

    assert (raised.value.error, raised.value.retryable) == ("invalid_request", False)


def test_a_revoked_pool_is_invalid_grant_and_its_tokens_die(emulator: GoogleEmulator) -> None:
    credentials = emulator.workload_identity()
    token = Token.fetch(WorkloadIdentity(credentials))

    emulator.revoke(credentials["audience"])

    assert emulator.token_info(token.token) is None
    with pytest.raises(TokenEndpointError, match="disabled") as raised:
        Token.fetch(WorkloadIdentity(credentials))
    assert raised.value.error == "invalid_grant"


@pytest.mark.parametrize(("status", "retryable"), [(400, False), (429, True), (503, True)])
def test_an_sts_failure_has_its_retryable_flag_and_skips_impersonation(
    emulator: GoogleEmulator, status: int, retryable: bool
) -> None:
    credentials = emulator.workload_identity(service_account=a_deployer(emulator))
    emulator.fail_next(1, status, endpoint="sts")

    with pytest.raises(TokenEndpointError) as raised:
        Token.fetch(WorkloadIdentity(credentials))

    assert (raised.value.status, raised.value.retryable) == (status, retryable)
    assert raised.value.url == emulator.sts_url
    assert emulator.requests_to("iam") == []


@pytest.mark.parametrize(
    ("status", "google_status", "retryable"),
    [
        (403, "PERMISSION_DENIED", False),
        (429, "RESOURCE_EXHAUSTED", True),
        (503, "UNAVAILABLE", True),
    ],
)
def test_an_impersonation_failure_in_googles_api_shape_has_its_retryable_flag(
    emulator: GoogleEmulator, status: int, google_status: str, retryable: bool
) -> None:
    credentials = emulator.workload_identity(service_account=a_deployer(emulator))
    emulator.fail_next(1, status, endpoint="iam")

    with pytest.raises(TokenEndpointError) as raised:
        Token.fetch(WorkloadIdentity(credentials))

    error = raised.value
    assert (error.status, error.error, error.retryable) == (status, google_status, retryable)
    assert error.error_description == f"Emulated failure (HTTP {status})."


def test_impersonating_an_account_the_emulator_revoked_is_not_found(
    emulator: GoogleEmulator,
) -> None:
    deployer = a_deployer(emulator)
    credentials = emulator.workload_identity(service_account=deployer)
    emulator.revoke(deployer)

    with pytest.raises(TokenEndpointError) as raised:
        Token.fetch(WorkloadIdentity(credentials))

    assert (raised.value.status, raised.value.error) == (404, "NOT_FOUND")


@pytest.mark.parametrize(
    ("body", "problem"),
    [
        ({"expireTime": "2099-01-01T00:00:00Z"}, "without an accessToken"),
        ({"accessToken": "ya29.x", "expireTime": "tomorrow"}, "not an RFC 3339 time"),
        ({"accessToken": "ya29.x", "expireTime": "2099-01-01T00:00:00"}, "not an RFC 3339"),
        ({"accessToken": "ya29.x"}, r"not an RFC 3339 time \(missing\)"),
        ({"accessToken": "ya29.x", "expireTime": "2001-01-01T00:00:00Z"}, "in the past"),
    ],
)
def test_an_impersonation_200_that_is_not_a_usable_token_is_not_retryable(
    emulator: GoogleEmulator, body: dict[str, str], problem: str
) -> None:
    credentials = emulator.workload_identity(service_account=a_deployer(emulator))
    emulator.respond_next(1, 200, body, endpoint="iam")

    with pytest.raises(TokenEndpointError, match=problem) as raised:
        Token.fetch(WorkloadIdentity(credentials))

    assert (raised.value.status, raised.value.retryable) == (200, False)
    assert "ya29.x" not in str(raised.value)
    assert "ya29.x" not in raised.value.body


def test_an_sts_200_without_an_access_token_is_not_retryable(emulator: GoogleEmulator) -> None:
    credentials = emulator.workload_identity(service_account=a_deployer(emulator))
    emulator.respond_next(1, 200, {"token_type": "Bearer"}, endpoint="sts")

    with pytest.raises(TokenEndpointError, match="without an access_token") as raised:
        Token.fetch(WorkloadIdentity(credentials))

    assert raised.value.retryable is False


@pytest.mark.parametrize("impersonating", [False, True])
@pytest.mark.parametrize("expires_in", [None, "soon", 0])
def test_an_sts_200_without_a_sensible_expires_in_is_not_retryable_whatever_follows(
    emulator: GoogleEmulator, impersonating: bool, expires_in: object
) -> None:
    # The same reading for the STS token that is the token and for the one IAM is sent.
    account = a_deployer(emulator) if impersonating else None
    credentials = emulator.workload_identity(service_account=account)
    answer = {"access_token": "sts.Token-1/x", "token_type": "Bearer", "expires_in": expires_in}
    if expires_in is None:
        del answer["expires_in"]
    emulator.respond_next(1, 200, answer, endpoint="sts")

    with pytest.raises(TokenEndpointError, match="expires_in") as raised:
        Token.fetch(WorkloadIdentity(credentials))

    assert raised.value.retryable is False
    assert emulator.requests_to("iam") == []


def test_subject_and_sts_tokens_never_appear_in_errors(
    emulator: GoogleEmulator, tmp_path: Path
) -> None:
    token_file = tmp_path / "token"
    credentials = emulator.workload_identity(file=token_file, service_account=a_deployer(emulator))
    subject = token_file.read_text()
    echo = {"error": "invalid_grant", "error_description": f"cannot use {subject}"}
    emulator.respond_next(1, 400, echo, endpoint="sts")
    with pytest.raises(TokenEndpointError) as raised:
        Token.fetch(WorkloadIdentity(credentials))
    assert subject not in str(raised.value)
    assert subject not in raised.value.body
    assert "cannot use <redacted>" in str(raised.value)

    Token.fetch(WorkloadIdentity(credentials))  # learn the STS token the emulator gives
    sts_token = emulator.requests_to("iam")[-1].headers["authorization"].split(" ")[1]
    body = {"error": {"code": 403, "message": f"no for {sts_token}", "status": "DENIED"}}
    emulator.respond_next(1, 403, body, endpoint="iam")
    with pytest.raises(TokenEndpointError) as raised:
        Token.fetch(WorkloadIdentity(credentials))
    assert sts_token not in str(raised.value)
    assert sts_token not in raised.value.body


# ------------------------------------------------------------------------------- validation


def _wif(**changes: Any) -> dict[str, Any]:
    credentials: dict[str, Any] = {
        "type": "external_account",
        "audience": "//iam.googleapis.com/projects/1/locations/global/workloadIdentityPools/p/"
        "providers/q",
        "subject_token_type": JWT_TYPE,
        "token_url": "https://sts.googleapis.com/v1/token",
        "credential_source": {"file": "/var/run/token"},
    }
    for key, value in changes.items():
        if value is None:
            credentials.pop(key, None)
        else:
            credentials[key] = value
    return credentials


@pytest.mark.parametrize(
    ("changes", "field", "message"),
    [
        ({"type": "service_account"}, "credentials.type", "expected 'external_account'"),
        ({"audience": None}, "credentials.audience", "missing"),
        ({"subject_token_type": "jwt"}, "credentials.subject_token_type", "URN"),
        ({"token_url": "ftp://sts"}, "credentials.token_url", "http"),
        ({"credential_source": None}, "credentials.credential_source", "missing"),
        ({"credential_source": "/var/run/token"}, "credentials.credential_source", "mapping"),
        ({"credential_source": {}}, "credentials.credential_source", "exactly one"),
        (
            {"credential_source": {"file": "/t", "url": "https://x"}},
            "credentials.credential_source",
            "exactly one",
        ),
        (
            {"credential_source": {"fiel": "/t"}},
            "credentials.credential_source",
            "unknown key 'fiel'",
        ),
        ({"credential_source": {"file": ""}}, "credentials.credential_source.file", "path"),
        (
            {"credential_source": {"url": "file:///t"}},
            "credentials.credential_source.url",
            "http",
        ),
        (
            {"credential_source": {"file": "/t", "headers": {"A": "b"}}},
            "credentials.credential_source.headers",
            "only apply to a 'url'",
        ),
        (
            {"credential_source": {"url": "https://x", "headers": ["Authorization"]}},
            "credentials.credential_source.headers",
            "mapping",
        ),
        (
            {"credential_source": {"file": "/t", "format": {"type": "yaml"}}},
            "credentials.credential_source.format.type",
            "'text' or 'json'",
        ),
        (
            {"credential_source": {"file": "/t", "format": {"type": "json"}}},
            "credentials.credential_source.format.subject_token_field_name",
            "required",
        ),
        (
            {"credential_source": {"file": "/t", "format": {"type": "json", "field": "x"}}},
            "credentials.credential_source.format",
            "unknown keys",
        ),
        (
            {"credential_source": {"file": "/t", "format": "json"}},
            "credentials.credential_source.format",
            "mapping",
        ),
        (
            {"credential_source": {"environment_id": "aws1", "region_url": "http://x"}},
            "credentials.credential_source.regional_cred_verification_url",
            "missing",
        ),
        (
            {"credential_source": {"environment_id": "aws2", "region_url": "http://x"}},
            "credentials.credential_source.environment_id",
            "aws version '2' is not supported",
        ),
        (
            {"credential_source": {"executable": {"timeout_millis": 5000}}},
            "credentials.credential_source.executable.command",
            "non-empty command",
        ),
        (
            {"credential_source": {"executable": {"command": "x", "timeout_millis": 1}}},
            "credentials.credential_source.executable.timeout_millis",
            "between 5000 and 120000",
        ),
        (
            {"credential_source": {"file": "/t", "executable": {"command": "x"}}},
            "credentials.credential_source",
            "more than one kind",
        ),
        (
            {"credential_source": {"certificate": {}}},
            "credentials.credential_source.certificate",
            "use_default_certificate_config: true",
        ),
        (
            {"service_account_impersonation_url": "https://iamcredentials.googleapis.com/v1/sa"},
            "credentials.service_account_impersonation_url",
            "generateAccessToken",
        ),
        (
            {"service_account_impersonation": {"token_lifetime_seconds": 3600}},
            "credentials.service_account_impersonation.token_lifetime_seconds",
            "without a service_account_impersonation_url",
        ),
        (
            {"workforce_pool_user_project": "p"},
            "credentials.workforce_pool_user_project",
            "workforce pool",
        ),
        ({"client_secret": "s"}, "credentials.client_secret", "without a client_id"),
    ],
)
def test_bad_external_account_credentials_are_named(
    changes: dict[str, Any], field: str, message: str
) -> None:
    with pytest.raises(ConfigError, match=message) as raised:
        WorkloadIdentity(_wif(**changes))
    assert raised.value.field == field


def test_a_missing_token_url_is_the_universes_sts_as_in_google_auth() -> None:
    assert WorkloadIdentity(_wif(token_url=None)).token_url == "https://sts.googleapis.com/v1/token"
    other = _wif(token_url=None, universe_domain="example-universe.test")
    with pytest.raises(ConfigError, match=r"pass universe_domain='example-universe\.test'") as info:
        WorkloadIdentity(other)  # a universe only the file names is not trusted with a token
    assert info.value.field == "credentials.universe_domain"
    trusted = WorkloadIdentity(other, universe_domain="example-universe.test")
    assert trusted.token_url == "https://sts.example-universe.test/v1/token"


@pytest.mark.parametrize("seconds", [599, 43201, "3600", True])
def test_an_impersonation_lifetime_outside_googles_bounds_is_refused(seconds: object) -> None:
    credentials = _wif(
        service_account_impersonation_url="https://iamcredentials.googleapis.com/v1/projects/-/"
        "serviceAccounts/sa@p.iam.gserviceaccount.com:generateAccessToken",
        service_account_impersonation={"token_lifetime_seconds": seconds},
    )
    with pytest.raises(ConfigError) as raised:
        WorkloadIdentity(credentials)
    assert raised.value.field == "credentials.service_account_impersonation.token_lifetime_seconds"


def test_a_header_value_that_is_not_a_string_is_refused_without_echoing_it() -> None:
    source = {"url": "https://ci.example/token", "headers": {"Authorization": ["Bearer s3cret"]}}
    with pytest.raises(ConfigError) as raised:
        WorkloadIdentity(_wif(credential_source=source))
    assert raised.value.field == "credentials.credential_source.headers.Authorization"
    assert "s3cret" not in str(raised.value)


def test_scopes_must_be_a_sequence_and_are_keyword_only() -> None:
    with pytest.raises(ConfigError, match="did you mean") as raised:
        WorkloadIdentity(_wif(), scopes=CLOUD)
    assert raised.value.field == "scopes"
    with pytest.raises(ConfigError, match="empty"):
        WorkloadIdentity(_wif(), scopes=())
    with pytest.raises(TypeError):
        WorkloadIdentity(_wif(), (CLOUD,))  # type: ignore[call-arg]


def test_the_repr_says_where_the_subject_token_comes_from_but_shows_no_secret() -> None:
    source = {
        "url": "https://ci.example/token?audience=x&sig=s3cret",
        "headers": {"Authorization": "Bearer request-s3cret"},
        "format": {"type": "json", "subject_token_field_name": "value"},
    }
    credentials = _wif(
        credential_source=source,
        service_account_impersonation_url="https://iamcredentials.googleapis.com/v1/projects/-/"
        "serviceAccounts/sa%40p.iam.gserviceaccount.com:generateAccessToken",
        client_id="client",
        client_secret="client-s3cret",
    )

    text = repr(WorkloadIdentity(credentials))

    assert "s3cret" not in text
    assert "url 'https://ci.example/token' (json 'value')" in text
    assert "service_account_email='sa@p.iam.gserviceaccount.com'" in text


def test_source_from_credentials_and_default_source_pick_workload_identity(
    tmp_path: Path,
) -> None:
    source = source_from_credentials(_wif(), scopes=(PUBSUB,))
    assert isinstance(source, WorkloadIdentity)
    assert source.scopes == (PUBSUB,)
    key_file = tmp_path / "wif.json"
    key_file.write_text(json.dumps(_wif()))

    found = default_source(environ={"GOOGLE_APPLICATION_CREDENTIALS": str(key_file)})

    assert isinstance(found, WorkloadIdentity)
    assert found.service_account_email is None
    assert found.token_url == "https://sts.googleapis.com/v1/token"


# ------------------------------------------------------------------------------ secrets


def test_a_subject_url_echoing_just_the_bearer_credential_does_not_leak_it(
    emulator: GoogleEmulator,
) -> None:
    credentials = emulator.workload_identity()
    header = credentials["credential_source"]["headers"]["Authorization"]
    credential = header.partition(" ")[2]
    emulator.respond_next(1, 401, f"token {credential} is not valid", endpoint="subject")

    with pytest.raises(TokenEndpointError) as raised:
        Token.fetch(WorkloadIdentity(credentials))

    assert credential not in str(raised.value)
    assert credential not in raised.value.body


def test_a_transport_error_never_carries_the_urls_query(emulator: GoogleEmulator) -> None:
    credentials = emulator.workload_identity()
    credentials["credential_source"]["url"] = "http://127.0.0.1:9/subject?sig=SECRETSIG123"

    with pytest.raises(TransportError) as raised:
        Token.fetch(WorkloadIdentity(credentials), timeout=1.0)

    assert "SECRETSIG123" not in str(raised.value)


@pytest.mark.parametrize("headers", ["Authorization: Bearer secret-abc", [("Authorization", "x")]])
def test_headers_of_the_wrong_type_are_named_without_echoing_them(
    emulator: GoogleEmulator, headers: object
) -> None:
    credentials = emulator.workload_identity()
    credentials["credential_source"]["headers"] = headers

    with pytest.raises(ConfigError) as raised:
        WorkloadIdentity(credentials)

    assert raised.value.field == "credentials.credential_source.headers"
    assert "Bearer" not in str(raised.value)
    assert "Authorization" not in str(raised.value)


def test_the_subject_source_repr_never_shows_its_headers(emulator: GoogleEmulator) -> None:
    credentials = emulator.workload_identity()
    credential = credentials["credential_source"]["headers"]["Authorization"].partition(" ")[2]
    source = WorkloadIdentity(credentials)
    assert credential not in repr(source)
    assert credential not in repr(source._source)


def test_a_subject_token_path_that_is_not_a_regular_file_is_refused_without_blocking(
    emulator: GoogleEmulator, tmp_path: Path
) -> None:
    import os

    fifo = tmp_path / "token"
    credentials = emulator.workload_identity(file=tmp_path / "real-token")
    credentials["credential_source"]["file"] = str(fifo)
    os.mkfifo(fifo)  # no writer: opening it for reading would block for ever
    started = time.monotonic()

    with pytest.raises(TokenError, match="not a regular file"):
        Token.fetch(WorkloadIdentity(credentials))

    assert time.monotonic() - started < 2.0

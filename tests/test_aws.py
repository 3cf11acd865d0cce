"""AWS-sourced workload identity: an AWS workload's signed GetCallerIdentity request as its
subject token, end to end against the emulator's instance metadata service and STS check, and
side by side with google-auth."""

from __future__ import annotations

import json
import os
import time
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qsl, unquote

import pytest
import requests
from _google_auth import auth_request, identity
from google.auth import _helpers as google_helpers
from google.auth import aws

from goth_actors import (
    ConfigError,
    HttpResponse,
    Token,
    TokenEndpointError,
    TokenError,
    WorkloadIdentity,
    source_from_credentials,
)
from goth_actors.testing import GoogleEmulator


def _subject(emulator: GoogleEmulator) -> dict[str, Any]:
    """The last subject token STS received, decoded."""
    form = emulator.requests_to("sts")[-1].form
    assert form["subject_token_type"] == "urn:ietf:params:aws:token-type:aws4_request"
    return json.loads(unquote(form["subject_token"]))


def test_an_ec2_role_with_imdsv2_gets_a_token_for_its_aws_identity(
    emulator: GoogleEmulator,
) -> None:
    source = WorkloadIdentity(emulator.aws_workload_identity())
    token = Token.fetch(source, environ={})
    email = identity(emulator, token.token)["email"]
    assert email.endswith(
        "/subject/arn:aws:sts::123456789012:assumed-role/emulator-role/i-0emulator"
    )
    aws_requests = emulator.requests_to("aws")
    assert [r.method for r in aws_requests] == ["PUT", "GET", "GET", "GET"]
    assert aws_requests[0].headers["x-aws-ec2-metadata-token-ttl-seconds"] == "300"
    assert all("x-aws-ec2-metadata-token" in r.headers for r in aws_requests[1:])


def test_the_subject_token_is_the_signed_request_serialised_as_google_auth_does(
    emulator: GoogleEmulator,
) -> None:
    credentials = emulator.aws_workload_identity()
    Token.fetch(WorkloadIdentity(credentials), environ={})
    request = _subject(emulator)
    assert sorted(request) == ["headers", "method", "url"]
    assert request["method"] == "POST"
    assert request["url"] == (
        "https://sts.us-east-2.amazonaws.com?Action=GetCallerIdentity&Version=2011-06-15"
    )
    keys = [header["key"] for header in request["headers"]]
    assert keys == [
        "Authorization",
        "host",
        "x-amz-date",
        "x-amz-security-token",
        "x-goog-cloud-target-resource",
    ]
    headers = {h["key"]: h["value"] for h in request["headers"]}
    assert headers["x-goog-cloud-target-resource"] == credentials["audience"]
    assert "SignedHeaders=host;x-amz-date;x-amz-security-token," in headers["Authorization"]


def test_imdsv1_works_when_the_file_names_no_session_token_url(emulator: GoogleEmulator) -> None:
    emulator.aws_imdsv2_required = False
    source = WorkloadIdentity(emulator.aws_workload_identity(imdsv2=False))
    assert Token.fetch(source, environ={}).token
    assert all("x-aws-ec2-metadata-token" not in r.headers for r in emulator.requests_to("aws"))


def test_keys_and_region_from_the_environment_need_no_metadata_service(
    emulator: GoogleEmulator,
) -> None:
    source = WorkloadIdentity(emulator.aws_workload_identity())
    token = Token.fetch(source, environ=emulator.aws_access_key())
    assert identity(emulator, token.token)["email"].endswith(
        "/subject/arn:aws:iam::123456789012:user/emulator-user"
    )
    assert emulator.requests_to("aws") == []
    assert "x-amz-security-token" not in {h["key"] for h in _subject(emulator)["headers"]}


def test_the_region_comes_from_aws_default_region_too(emulator: GoogleEmulator) -> None:
    environment = emulator.aws_access_key()
    environment["AWS_DEFAULT_REGION"] = environment.pop("AWS_REGION")
    Token.fetch(WorkloadIdentity(emulator.aws_workload_identity()), environ=environment)
    assert emulator.requests_to("aws") == []


def test_the_metadata_service_refuses_reads_without_a_session_token_when_imdsv2_is_required(
    emulator: GoogleEmulator,
) -> None:
    source = WorkloadIdentity(emulator.aws_workload_identity(imdsv2=False))
    with pytest.raises(TokenEndpointError) as info:
        Token.fetch(source, environ={})
    assert info.value.status == 401


def test_sts_refuses_a_signature_made_with_the_wrong_secret(emulator: GoogleEmulator) -> None:
    environment = emulator.aws_access_key()
    environment["AWS_SECRET_ACCESS_KEY"] = "not-the-secret"
    with pytest.raises(TokenEndpointError) as info:
        Token.fetch(WorkloadIdentity(emulator.aws_workload_identity()), environ=environment)
    assert info.value.error == "invalid_grant"
    assert "not-the-secret" not in str(info.value)


def test_sts_refuses_a_signed_request_replayed_for_another_pool(
    emulator: GoogleEmulator,
) -> None:
    first = emulator.aws_workload_identity()
    second = emulator.aws_workload_identity()
    Token.fetch(WorkloadIdentity(first), environ={})
    signed_for_first = emulator.requests_to("sts")[-1].form["subject_token"]
    answer = requests.post(
        emulator.sts_url,
        data={
            "audience": second["audience"],
            "grant_type": "urn:ietf:params:oauth:grant-type:token-exchange",
            "requested_token_type": "urn:ietf:params:oauth:token-type:access_token",
            "subject_token_type": "urn:ietf:params:aws:token-type:aws4_request",
            "subject_token": signed_for_first,
        },
        timeout=5,
    )
    assert answer.status_code == 400
    assert answer.json()["error"] == "invalid_grant"
    assert "another audience" in answer.json()["error_description"]


def test_without_a_region_anywhere_the_error_says_so(emulator: GoogleEmulator) -> None:
    credentials = emulator.aws_workload_identity()
    del credentials["credential_source"]["region_url"]
    with pytest.raises(TokenError, match="AWS_REGION") as info:
        Token.fetch(WorkloadIdentity(credentials), environ={})
    assert info.value.retryable is False


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"environment_id": "aws2"}, "credentials.credential_source.environment_id"),
        ({"environment_id": "azure1"}, "credentials.credential_source.environment_id"),
        (
            {"regional_cred_verification_url": None},
            "credentials.credential_source.regional_cred_verification_url",
        ),
        (
            {"regional_cred_verification_url": "http://sts.amazonaws.com"},
            "credentials.credential_source.regional_cred_verification_url",
        ),
        ({"region_url": 3}, "credentials.credential_source.region_url"),
        ({"colour": "blue"}, "credentials.credential_source"),
    ],
)
def test_a_malformed_aws_source_is_named(
    emulator: GoogleEmulator, change: dict[str, Any], field: str
) -> None:
    credentials = emulator.aws_workload_identity()
    source = {**credentials["credential_source"], **change}
    credentials["credential_source"] = {k: v for k, v in source.items() if v is not None}
    with pytest.raises(ConfigError) as info:
        WorkloadIdentity(credentials)
    assert info.value.field == field


# Temporary credentials' session token, with slashes as AWS's have: no pattern finds it.
SESSION_TOKEN = "IQoJb3/JpZ2lu+X2Vj/EJr/wEaCXVz"


def test_the_aws_keys_never_reach_a_repr_or_an_error_even_when_sts_echoes_the_form(
    emulator: GoogleEmulator,
) -> None:
    environment = {**emulator.aws_access_key(), "AWS_SESSION_TOKEN": SESSION_TOKEN}
    source = WorkloadIdentity(emulator.aws_workload_identity())

    def echoing_sts(**request: Any) -> HttpResponse:
        # STS refuses the subject token, quoting the signed request's AWS headers from it.
        form = dict(parse_qsl(request["body"].decode()))
        signed = json.loads(unquote(form["subject_token"]))
        quoted = [f"{h['key']}: {h['value']}" for h in signed["headers"] if "amz" in h["key"]]
        echoed = f"refused {'; '.join(quoted)}"
        return HttpResponse(400, {}, {"error": "invalid_grant", "error_description": echoed})

    with pytest.raises(TokenEndpointError) as info:
        Token.fetch(source, environ=environment, http_client=echoing_sts)
    shown = repr(source) + str(info.value) + info.value.body
    shown += info.value.error_description or ""
    for secret in (environment["AWS_SECRET_ACCESS_KEY"], SESSION_TOKEN):
        assert secret not in shown
    assert SESSION_TOKEN.split("/")[1] not in shown


def test_google_auth_accepts_the_emulator_and_gets_the_same_identity(
    emulator: GoogleEmulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_REGION", "AWS_DEFAULT_REGION"):
        monkeypatch.delenv(name, raising=False)
    credentials = emulator.aws_workload_identity(service_account="aws-sa@p.iam.gserviceaccount.com")
    theirs = aws.Credentials.from_info(
        credentials, scopes=["https://www.googleapis.com/auth/cloud-platform"]
    )
    with auth_request() as request:
        theirs.refresh(request)
    ours = Token.fetch(source_from_credentials(credentials), environ=dict(os.environ))
    assert identity(emulator, theirs.token) == identity(emulator, ours.token)
    assert identity(emulator, ours.token)["email"] == "aws-sa@p.iam.gserviceaccount.com"


@pytest.mark.parametrize("keys_from", ["environment", "ec2 metadata with imdsv2"])
def test_the_subject_token_is_byte_for_byte_the_one_google_auth_makes(
    emulator: GoogleEmulator, monkeypatch: pytest.MonkeyPatch, keys_from: str
) -> None:
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    for name in ("AWS_REGION", "AWS_DEFAULT_REGION"):
        monkeypatch.delenv(name, raising=False)
    environ = emulator.aws_access_key() if keys_from == "environment" else {}
    for name, value in environ.items():
        monkeypatch.setenv(name, value)
    credentials = emulator.aws_workload_identity()
    now = float(int(time.time()))  # both sign at the same second: SigV4 is deterministic
    Token.fetch(WorkloadIdentity(credentials), clock=lambda: now, environ=environ)
    ours = _subject(emulator)
    frozen = datetime.fromtimestamp(now, UTC).replace(tzinfo=None)
    monkeypatch.setattr(google_helpers, "utcnow", lambda: frozen)
    theirs = aws.Credentials.from_info(credentials)
    with auth_request() as request:
        subject = theirs.retrieve_subject_token(request)
    assert json.loads(unquote(subject)) == ours

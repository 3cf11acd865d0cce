"""X.509 certificate-sourced workload identity: the workload proves itself with mutual TLS to
the emulator's mTLS STS, with certificates generated per emulator; side by side with
google-auth."""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

import pytest
from _google_auth import auth_request, identity
from cryptography import x509
from google.auth import identity_pool

from goth_actors import (
    ConfigError,
    HttpResponse,
    Token,
    TokenEndpointError,
    TokenError,
    TransportError,
    WorkloadIdentity,
)
from goth_actors._protocol import default_http_client
from goth_actors.testing import GoogleEmulator


@pytest.fixture
def trusting(emulator: GoogleEmulator, monkeypatch: pytest.MonkeyPatch) -> GoogleEmulator:
    """The emulator, its mTLS listener started, its authority trusted by requests."""
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", emulator.ca_file)
    return emulator


def _der(path: Path) -> str:
    certificate = x509.load_pem_x509_certificate(path.read_bytes())
    from cryptography.hazmat.primitives.serialization import Encoding

    return base64.b64encode(certificate.public_bytes(Encoding.DER)).decode()


def test_the_workload_presents_its_certificate_and_sends_it_as_the_subject_token(
    trusting: GoogleEmulator, tmp_path: Path
) -> None:
    credentials = trusting.x509_workload_identity(tmp_path)
    token = Token.fetch(WorkloadIdentity(credentials))
    assert identity(trusting, token.token)["email"].endswith("/subject/workload-1.emulator.test")
    request = trusting.requests_to("sts")[-1]
    assert request.client_cert is not None
    assert json.loads(request.form["subject_token"]) == [_der(tmp_path / "workload.pem")]
    assert request.form["subject_token_type"] == "urn:ietf:params:oauth:token-type:mtls"


def test_the_trust_chain_follows_the_leaf(trusting: GoogleEmulator, tmp_path: Path) -> None:
    credentials = trusting.x509_workload_identity(tmp_path, trust_chain=True)
    Token.fetch(WorkloadIdentity(credentials))
    chain = json.loads(trusting.requests_to("sts")[-1].form["subject_token"])
    assert chain == [_der(tmp_path / "workload.pem"), _der(tmp_path / "trust_chain.pem")]


def test_a_leaf_repeated_inside_the_trust_chain_is_refused(
    trusting: GoogleEmulator, tmp_path: Path
) -> None:
    credentials = trusting.x509_workload_identity(tmp_path, trust_chain=True)
    chain = tmp_path / "trust_chain.pem"
    chain.write_bytes(chain.read_bytes() + (tmp_path / "workload.pem").read_bytes())
    with pytest.raises(TokenError, match="top of the trust chain"):
        Token.fetch(WorkloadIdentity(credentials))


def test_impersonation_goes_through_mutual_tls_too(
    trusting: GoogleEmulator, tmp_path: Path
) -> None:
    sa = "x509-sa@p.iam.gserviceaccount.com"
    credentials = trusting.x509_workload_identity(tmp_path, service_account=sa)
    token = Token.fetch(WorkloadIdentity(credentials))
    assert identity(trusting, token.token)["email"] == sa
    assert trusting.requests_to("iam")[-1].client_cert is not None


def test_the_certificate_configuration_is_read_at_each_fetch(
    trusting: GoogleEmulator, tmp_path: Path
) -> None:
    source = WorkloadIdentity(trusting.x509_workload_identity(tmp_path))
    (tmp_path / "certificate_config.json").unlink()
    with pytest.raises(TokenError, match="does not exist") as info:
        Token.fetch(source)
    assert info.value.retryable is True  # it may be rotated in


def test_the_default_certificate_configuration_comes_from_google_api_certificate_config(
    trusting: GoogleEmulator, tmp_path: Path
) -> None:
    credentials = trusting.x509_workload_identity(tmp_path)
    credentials["credential_source"] = {"certificate": {"use_default_certificate_config": True}}
    environ = {"GOOGLE_API_CERTIFICATE_CONFIG": str(tmp_path / "certificate_config.json")}
    assert Token.fetch(WorkloadIdentity(credentials), environ=environ).token


def test_the_mtls_sts_refuses_a_client_without_the_certificate(
    trusting: GoogleEmulator, tmp_path: Path
) -> None:
    credentials = trusting.x509_workload_identity(tmp_path)

    def no_certificate(**request: Any) -> HttpResponse:
        request.pop("client_cert", None)
        return default_http_client(**request)

    with pytest.raises(TransportError):  # the TLS handshake fails
        Token.fetch(WorkloadIdentity(credentials), http_client=no_certificate)


def test_a_client_that_takes_no_client_cert_fails_clearly(
    trusting: GoogleEmulator, tmp_path: Path
) -> None:
    credentials = trusting.x509_workload_identity(tmp_path)

    def old_client(*, method: str, url: str, headers: Any, body: bytes, timeout: float) -> Any:
        raise AssertionError("never called: the keyword is refused first")

    with pytest.raises(TransportError, match="client_cert"):
        Token.fetch(WorkloadIdentity(credentials), http_client=old_client)


def test_the_plain_sts_refuses_an_mtls_subject_token(
    trusting: GoogleEmulator, tmp_path: Path
) -> None:
    credentials = trusting.x509_workload_identity(tmp_path)
    credentials["token_url"] = trusting.sts_url  # not the mTLS listener
    with pytest.raises(TokenEndpointError, match="mTLS endpoint"):
        Token.fetch(WorkloadIdentity(credentials))


@pytest.mark.parametrize(
    ("certificate", "field"),
    [
        ({}, "credentials.credential_source.certificate"),
        (
            {"certificate_config_location": "/c.json", "use_default_certificate_config": True},
            "credentials.credential_source.certificate.certificate_config_location",
        ),
        (
            {"use_default_certificate_config": "yes"},
            "credentials.credential_source.certificate.use_default_certificate_config",
        ),
        (
            {"use_default_certificate_config": True, "trust_chain_path": 7},
            "credentials.credential_source.certificate.trust_chain_path",
        ),
    ],
)
def test_a_malformed_certificate_source_is_named(certificate: dict[str, Any], field: str) -> None:
    credentials = {
        "type": "external_account",
        "audience": "//iam.googleapis.com/projects/1/locations/global/workloadIdentityPools/p/"
        "providers/q",
        "subject_token_type": "urn:ietf:params:oauth:token-type:mtls",
        "token_url": "https://sts.mtls.googleapis.com/v1/token",
        "credential_source": {"certificate": certificate},
    }
    with pytest.raises(ConfigError) as info:
        WorkloadIdentity(credentials)
    assert info.value.field == field


def test_google_auth_accepts_the_emulator_and_gets_the_same_identity(
    trusting: GoogleEmulator, tmp_path: Path
) -> None:
    credentials = trusting.x509_workload_identity(tmp_path, trust_chain=True)
    theirs = identity_pool.Credentials.from_info(
        credentials, scopes=["https://www.googleapis.com/auth/cloud-platform"]
    )
    with auth_request() as request:
        theirs.refresh(request)
    their_chain = trusting.requests_to("sts")[-1].form["subject_token"]
    ours = Token.fetch(WorkloadIdentity(credentials))
    assert identity(trusting, theirs.token) == identity(trusting, ours.token)
    assert trusting.requests_to("sts")[-1].form["subject_token"] == their_chain

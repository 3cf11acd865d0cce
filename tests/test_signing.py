"""Signing: a service-account key signs locally, any other source as a named service account
through IAM Credentials' ``signBlob`` (the emulator's, which signs with the account's
Google-managed key); and google-auth's ``Signing`` from the google-auth adapter, which is what
google-cloud-storage's ``generate_signed_url`` needs."""

from __future__ import annotations

import json

import google.auth.credentials
import pytest
from _google_auth import auth_request
from google.auth import impersonated_credentials

import goth_actors
from goth_actors import (
    ConfigError,
    Impersonated,
    Metadata,
    RefreshToken,
    ServiceAccount,
    TokenEndpointError,
    WorkloadIdentity,
    signer,
)
from goth_actors.integrations.google_auth import Credentials
from goth_actors.testing import GoogleEmulator

DATA = b"GOOG4-RSA-SHA256\n20240101T000000Z\nstring to sign"
TARGET = "signer@emulator-project.iam.gserviceaccount.com"


def test_a_service_account_key_signs_locally(emulator: GoogleEmulator) -> None:
    key = emulator.service_account()
    chosen = signer(ServiceAccount(key))
    assert (chosen.local, chosen.signer_email()) == (True, key["client_email"])
    assert emulator.verify_signed_blob(key["client_email"], DATA, chosen.sign(DATA))
    assert emulator.requests == []
    assert not emulator.verify_signed_blob(key["client_email"], DATA + b"!", chosen.sign(DATA))


def test_an_impersonated_source_signs_as_its_target_with_its_callers_token(
    emulator: GoogleEmulator,
) -> None:
    emulator.service_account(TARGET)
    delegate = "delegate@emulator-project.iam.gserviceaccount.com"
    emulator.service_account(delegate)
    user = emulator.authorized_user()
    source = Impersonated(RefreshToken(user), TARGET, delegates=(delegate,), url=emulator.iam_url)
    signature = signer(source).sign(DATA)
    assert emulator.verify_signed_blob(TARGET, DATA, signature)
    request = emulator.requests_to("iam")[-1]
    assert request.path.endswith(f"{TARGET}:signBlob")
    assert json.loads(request.body)["delegates"] == [f"projects/-/serviceAccounts/{delegate}"]
    caller = request.headers["authorization"].partition(" ")[2]
    assert emulator.token_info(caller)["email"] == "user-1@example.com"  # type: ignore[index]


def test_the_metadata_server_signs_as_its_own_account(emulator: GoogleEmulator) -> None:
    emulator.service_account(emulator.metadata_email)
    chosen = signer(Metadata(url=emulator.metadata_url), iam_url=emulator.iam_url)
    assert chosen.signer_email() == emulator.metadata_email
    assert emulator.verify_signed_blob(emulator.metadata_email, DATA, chosen.sign(DATA))


def test_workload_identity_signs_as_the_account_it_impersonates_with_the_sts_token(
    emulator: GoogleEmulator,
) -> None:
    emulator.service_account(TARGET)
    source = WorkloadIdentity(emulator.workload_identity(service_account=TARGET))
    signature = signer(source).sign(DATA)
    assert emulator.verify_signed_blob(TARGET, DATA, signature)
    caller = emulator.requests_to("iam")[-1].headers["authorization"].partition(" ")[2]
    assert emulator.token_info(caller)["email"].startswith("principal://")  # type: ignore[index]


def test_workload_identity_signs_at_the_iam_base_of_its_impersonation_url(
    emulator: GoogleEmulator,
) -> None:
    # A proxy whose own path has a /v1/ in it: IAM's base is all before /v1/projects/-/...
    credentials = emulator.workload_identity(service_account=TARGET)
    proxy = "https://proxy.example/v1/iam"
    credentials["service_account_impersonation_url"] = (
        f"{proxy}/v1/projects/-/serviceAccounts/{TARGET}:generateAccessToken"
    )
    source = WorkloadIdentity(credentials, allow_custom_endpoints=True)
    assert signer(source).iam_url == proxy


def test_other_sources_sign_only_as_an_account_they_name(emulator: GoogleEmulator) -> None:
    source = RefreshToken(emulator.authorized_user())
    with pytest.raises(ConfigError) as info:
        signer(source)
    assert info.value.field == "email"
    emulator.service_account(TARGET)
    signature = signer(source, email=TARGET, iam_url=emulator.iam_url).sign(DATA)
    assert emulator.verify_signed_blob(TARGET, DATA, signature)


def test_a_caller_token_is_reused_across_signatures(emulator: GoogleEmulator) -> None:
    emulator.service_account(TARGET)
    chosen = signer(
        Impersonated(RefreshToken(emulator.authorized_user()), TARGET, url=emulator.iam_url)
    )
    for _ in range(3):
        chosen.sign(DATA)
    assert emulator.request_count("token") == 1
    assert emulator.request_count("iam") == 3


def test_a_refused_signature_is_an_endpoint_error(emulator: GoogleEmulator) -> None:
    emulator.service_account(TARGET)
    emulator.revoke(TARGET)
    chosen = signer(
        RefreshToken(emulator.authorized_user()), email=TARGET, iam_url=emulator.iam_url
    )
    with pytest.raises(TokenEndpointError) as info:
        chosen.sign(DATA)
    assert info.value.status == 404


@pytest.mark.usefixtures("shutdown_servers")
def test_the_google_auth_adapter_is_google_auths_signing_for_a_key(
    emulator: GoogleEmulator,
) -> None:
    key = emulator.service_account()
    goth_actors.start_link(name="sa", source=ServiceAccount(key), prefetch="sync")
    credentials = Credentials("sa")
    assert isinstance(credentials, google.auth.credentials.Signing)
    assert credentials.signer_email == key["client_email"]
    assert emulator.verify_signed_blob(key["client_email"], DATA, credentials.sign_bytes(DATA))
    assert credentials.signer.key_id is None
    assert emulator.verify_signed_blob(key["client_email"], DATA, credentials.signer.sign(DATA))


@pytest.mark.usefixtures("shutdown_servers")
def test_the_adapter_signs_through_signblob_with_the_servers_own_token(
    emulator: GoogleEmulator,
) -> None:
    emulator.service_account(emulator.metadata_email)
    source = Metadata(url=emulator.metadata_url)
    goth_actors.start_link(name="md", source=source, prefetch="sync")
    credentials = Credentials("md", signer=signer(source, iam_url=emulator.iam_url))
    signature = credentials.sign_bytes(DATA.decode())
    assert emulator.verify_signed_blob(emulator.metadata_email, DATA, signature)
    sent = emulator.requests_to("iam")[-1].headers["authorization"]
    assert sent == f"Bearer {goth_actors.fetch('md').token}"  # no exchange of its own


@pytest.mark.usefixtures("shutdown_servers")
def test_the_adapter_signs_as_the_account_of_the_server_now_under_its_name(
    emulator: GoogleEmulator,
) -> None:
    first = emulator.service_account("first@emulator-project.iam.gserviceaccount.com")
    second = emulator.service_account("second@emulator-project.iam.gserviceaccount.com")
    goth_actors.start_link(name="tenant", source=ServiceAccount(first), prefetch="sync")
    credentials = Credentials("tenant")
    assert emulator.verify_signed_blob(first["client_email"], DATA, credentials.sign_bytes(DATA))
    goth_actors.stop("tenant")
    goth_actors.start_link(name="tenant", source=ServiceAccount(second), prefetch="sync")
    assert credentials.signer_email == second["client_email"]
    assert emulator.verify_signed_blob(second["client_email"], DATA, credentials.sign_bytes(DATA))


@pytest.mark.usefixtures("shutdown_servers")
def test_a_source_that_cannot_sign_makes_sign_bytes_a_transport_error(
    emulator: GoogleEmulator,
) -> None:
    goth_actors.start_link(
        name="user", source=RefreshToken(emulator.authorized_user()), prefetch="sync"
    )
    with pytest.raises(google.auth.exceptions.TransportError, match="cannot sign"):
        Credentials("user").sign_bytes(DATA)


def test_google_auths_impersonated_credentials_sign_through_the_emulator_too(
    emulator: GoogleEmulator,
) -> None:
    from google.oauth2 import credentials as user_credentials

    emulator.service_account(TARGET)
    user = emulator.authorized_user()
    source = user_credentials.Credentials.from_authorized_user_info(user).with_token_uri(
        user["token_uri"]
    )
    theirs = impersonated_credentials.Credentials(
        source_credentials=source,
        target_principal=TARGET,
        target_scopes=["https://www.googleapis.com/auth/cloud-platform"],
    )
    theirs._iam_endpoint_override = (
        f"{emulator.iam_url}/v1/projects/-/serviceAccounts/{TARGET}:generateAccessToken"
    )
    from google.auth import iam

    # google-auth's signBlob URL is a module constant of Google's: point it at the emulator.
    with auth_request() as request, pytest.MonkeyPatch.context() as patch:
        patch.setattr(
            iam,
            "_IAM_SIGN_ENDPOINT",
            f"{emulator.iam_url}/v1/projects/-/serviceAccounts/{{}}:signBlob",
        )
        theirs.refresh(request)
        their_signature = theirs.sign_bytes(DATA)
    ours = signer(Impersonated(RefreshToken(user), TARGET, url=emulator.iam_url)).sign(DATA)
    assert emulator.verify_signed_blob(TARGET, DATA, their_signature)
    assert their_signature == ours  # PKCS#1 v1.5 is deterministic: the same key, the same bytes

"""The emulator's new pieces checked on their own: AWS's instance metadata service and the
STS check of a signed request, the mutual-TLS listener, workforce users' ``oauthtoken``,
``signBlob``, and the API that wants a quota project with a person's token."""

from __future__ import annotations

import base64
import time
from pathlib import Path

import pytest
import requests

from goth_actors import ServiceAccount, Token, TokenEndpointError, WorkloadIdentity
from goth_actors.otp import FakeTime
from goth_actors.testing import GoogleEmulator


def test_the_instance_metadata_service_plays_imdsv2(emulator: GoogleEmulator) -> None:
    base = f"{emulator.url}/latest"
    assert (
        requests.get(f"{base}/meta-data/placement/availability-zone", timeout=5).status_code == 401
    )
    assert requests.put(f"{base}/api/token", timeout=5).status_code == 400  # no TTL
    session = requests.put(
        f"{base}/api/token", headers={"X-aws-ec2-metadata-token-ttl-seconds": "60"}, timeout=5
    ).text
    headers = {"X-aws-ec2-metadata-token": session}
    zone = requests.get(f"{base}/meta-data/placement/availability-zone", headers=headers, timeout=5)
    assert zone.text == "us-east-2b"
    roles = f"{base}/meta-data/iam/security-credentials"
    role = requests.get(roles, headers=headers, timeout=5).text
    keys = requests.get(f"{roles}/{role}", headers=headers, timeout=5).json()
    assert keys["AccessKeyId"].startswith("ASIA")
    assert keys["Token"]
    assert requests.get(f"{base}/meta-data/nothing", headers=headers, timeout=5).status_code == 404
    bad = {"X-aws-ec2-metadata-token": "forged"}
    assert requests.get(roles, headers=bad, timeout=5).status_code == 401


def test_a_signature_older_than_fifteen_minutes_is_refused(fake_time: FakeTime) -> None:
    with GoogleEmulator(time=fake_time) as emulator:
        credentials = emulator.aws_workload_identity()
        clock = [fake_time.time() - 16 * 60]  # the workload's clock is 16 minutes behind
        with pytest.raises(TokenEndpointError, match="expired") as info:
            Token.fetch(WorkloadIdentity(credentials), environ={}, clock=lambda: clock[0])
        assert info.value.error == "invalid_grant"


def test_the_mtls_listener_refuses_a_client_without_a_certificate(
    emulator: GoogleEmulator, tmp_path: Path
) -> None:
    emulator.x509_workload_identity(tmp_path)
    with pytest.raises(requests.exceptions.SSLError):
        requests.post(f"{emulator.mtls_url}/v1/token", verify=emulator.ca_file, timeout=5)
    answer = requests.post(
        f"{emulator.mtls_url}/v1/token",
        verify=emulator.ca_file,
        cert=(str(tmp_path / "workload.pem"), str(tmp_path / "workload-key.pem")),
        timeout=5,
    )
    assert answer.status_code == 400  # in: TLS accepted the certificate, STS wants a form
    assert emulator.requests_to("sts")[-1].client_cert is not None


def test_workforce_oauthtoken_checks_the_client(emulator: GoogleEmulator) -> None:
    user = emulator.workforce_user()
    form = {"grant_type": "refresh_token", "refresh_token": user["refresh_token"]}
    no_client = requests.post(user["token_url"], data=form, timeout=5)
    assert (no_client.status_code, no_client.json()["error"]) == (401, "invalid_client")
    wrong = requests.post(user["token_url"], data=form, auth=(user["client_id"], "x"), timeout=5)
    assert wrong.status_code == 401
    good = requests.post(
        user["token_url"], data=form, auth=(user["client_id"], user["client_secret"]), timeout=5
    )
    token = good.json()["access_token"]
    introspection = requests.post(user["token_info_url"], data={"token": token}, timeout=5).json()
    assert introspection["active"] is True
    assert introspection["username"].endswith("/subject/worker-1@example.com")


def test_sign_blob_checks_its_caller_and_its_payload(emulator: GoogleEmulator) -> None:
    key = emulator.service_account()
    url = f"{emulator.iam_url}/v1/projects/-/serviceAccounts/{key['client_email']}:signBlob"
    payload = {"payload": base64.b64encode(b"data").decode()}
    assert requests.post(url, json=payload, timeout=5).status_code == 401
    caller = Token.fetch(ServiceAccount(key)).token
    headers = {"Authorization": f"Bearer {caller}"}
    assert requests.post(url, json={"payload": "!"}, headers=headers, timeout=5).status_code == 400
    answer = requests.post(url, json=payload, headers=headers, timeout=5).json()
    signature = base64.b64decode(answer["signedBlob"])
    assert answer["keyId"]
    assert emulator.verify_signed_blob(key["client_email"], b"data", signature)


def test_the_api_vouches_for_good_tokens_only(emulator: GoogleEmulator) -> None:
    assert requests.get(emulator.api_url, timeout=5).status_code == 401
    forged = {"Authorization": "Bearer ya29.forged"}
    assert requests.get(emulator.api_url, headers=forged, timeout=5).status_code == 401
    emulator.require_quota_project = False
    user = emulator.authorized_user()
    token = requests.post(
        emulator.token_url, data={"grant_type": "refresh_token", **user}, timeout=5
    ).json()["access_token"]
    answer = requests.get(emulator.api_url, headers={"Authorization": f"Bearer {token}"}, timeout=5)
    assert answer.json() == {"email": "user-1@example.com", "quota_project": None}


def test_settings_are_checked(emulator: GoogleEmulator) -> None:
    with pytest.raises(ValueError, match="universe_domain"):
        emulator.universe_domain = "not a domain"
    with pytest.raises(ValueError, match="aws_region"):
        emulator.aws_region = "mars"
    emulator.aws_region = "eu-west-1"
    assert emulator.aws_access_key()["AWS_REGION"] == "eu-west-1"


def test_closing_the_emulator_closes_the_mtls_listener_and_removes_its_files(
    tmp_path: Path,
) -> None:
    emulator = GoogleEmulator().start()
    emulator.x509_workload_identity(tmp_path)
    ca_file = Path(emulator.ca_file)
    url = emulator.mtls_url
    emulator.close()
    assert not ca_file.exists()
    started = time.monotonic()
    with pytest.raises(requests.exceptions.ConnectionError):
        requests.get(url, verify=False, timeout=2)
    assert time.monotonic() - started < 2

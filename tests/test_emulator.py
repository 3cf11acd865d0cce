"""GoogleEmulator: google-auth accepts it, it checks what Google checks, and its controls work."""

from __future__ import annotations

import email.utils
import json
import re
import select
import socket
import threading
import time
from collections.abc import Iterator
from datetime import datetime, timedelta
from typing import Any

import google.auth.transport.requests
import jwt
import pytest
import requests
from _helpers import wait_for
from google.auth import compute_engine
from google.auth.compute_engine import _metadata
from google.oauth2 import credentials as user_credentials
from google.oauth2 import id_token, service_account

import goth_actors
from goth_actors.testing import FakeTime, GoogleEmulator, RecordedRequest, _emulator_http
from goth_actors.testing._emulator_store import Expiring

PUBSUB = "https://www.googleapis.com/auth/pubsub"
CLOUD_PLATFORM = "https://www.googleapis.com/auth/cloud-platform"
GOOGLE_TOKEN_URL = "https://oauth2.googleapis.com/token"
GOTH_TOKEN_URL = "https://www.googleapis.com/oauth2/v4/token"
JWT_BEARER = "urn:ietf:params:oauth:grant-type:jwt-bearer"
AUDIENCE = "https://service.example.com"
FLAVOR = {"Metadata-Flavor": "Google"}


@pytest.fixture
def emu() -> Iterator[GoogleEmulator]:
    with GoogleEmulator() as emulator:
        yield emulator


@pytest.fixture
def gce(emu: GoogleEmulator, monkeypatch: pytest.MonkeyPatch) -> GoogleEmulator:
    """Points google-auth's metadata client at the emulator."""
    monkeypatch.setenv("GCE_METADATA_HOST", emu.metadata_host)
    monkeypatch.setenv("GCE_METADATA_IP", emu.metadata_host)  # read at call time (ping)
    # _metadata reads GCE_METADATA_HOST once, at import, into this module global.
    monkeypatch.setattr(_metadata, "_GCE_METADATA_HOST", emu.metadata_host)
    return emu


@pytest.fixture
def auth_request() -> Iterator[google.auth.transport.requests.Request]:
    session = requests.Session()
    yield google.auth.transport.requests.Request(session)
    session.close()


def assertion(key: dict[str, str], *, headers: dict[str, Any] | None = None, **claims: Any) -> str:
    """A JWT-bearer assertion signed with ``key``; a claim given as None is left out."""
    now = int(time.time())
    payload = {
        "iss": key["client_email"],
        "aud": GOOGLE_TOKEN_URL,
        "iat": now,
        "exp": now + 3600,
        "scope": PUBSUB,
        **claims,
    }
    payload = {name: value for name, value in payload.items() if value is not None}
    header = {"kid": key["private_key_id"]} if headers is None else headers
    return jwt.encode(payload, key["private_key"], algorithm="RS256", headers=header)


def post_token(url: str, **form: str) -> requests.Response:
    return requests.post(url, data=form, timeout=5)


def jwt_grant(emu: GoogleEmulator, signed: str) -> requests.Response:
    return post_token(emu.token_url, grant_type=JWT_BEARER, assertion=signed)


def refresh(emu: GoogleEmulator, user: dict[str, str], **overrides: str) -> requests.Response:
    form = {
        "grant_type": "refresh_token",
        "client_id": user["client_id"],
        "client_secret": user["client_secret"],
        "refresh_token": user["refresh_token"],
        **overrides,
    }
    return post_token(emu.token_url, **{k: v for k, v in form.items() if v})


def metadata_get(emu: GoogleEmulator, path: str, **params: str) -> requests.Response:
    url = f"{emu.metadata_url}/computeMetadata/v1/{path}"
    return requests.get(url, params=params, headers=FLAVOR, timeout=5)


def assert_oauth_error(response: requests.Response, status: int, error: str) -> str:
    assert response.status_code == status, response.text
    body = response.json()
    assert body["error"] == error
    return str(body["error_description"])


# --- google-auth interop --------------------------------------------------------------------


def test_google_auth_service_account_credentials_refresh_against_the_emulator(
    emu: GoogleEmulator, auth_request: google.auth.transport.requests.Request
) -> None:
    key = emu.service_account()
    creds = service_account.Credentials.from_service_account_info(key, scopes=[PUBSUB])

    creds.refresh(auth_request)

    assert creds.token.startswith("ya29.emu-")
    info = emu.token_info(creds.token)
    assert info is not None
    assert info["email"] == key["client_email"]
    assert info["azp"] == info["aud"] == info["sub"] == key["client_id"]
    assert info["scope"] == PUBSUB
    assert 3590 <= int(info["expires_in"]) <= 3599
    assert abs(int(info["exp"]) - (time.time() + 3599)) < 10
    assert creds.expiry is not None


def test_google_auth_service_account_credentials_with_a_subject_get_a_delegated_token(
    emu: GoogleEmulator, auth_request: google.auth.transport.requests.Request
) -> None:
    key = emu.service_account()
    creds = service_account.Credentials.from_service_account_info(key, scopes=[PUBSUB])

    delegated = creds.with_subject("alice@example.com")
    delegated.refresh(auth_request)

    info = emu.token_info(delegated.token)
    assert info is not None
    assert info["email"] == info["sub"] == "alice@example.com"
    assert info["azp"] == key["client_id"]


def test_google_auth_authorized_user_credentials_refresh_against_the_emulator(
    emu: GoogleEmulator, auth_request: google.auth.transport.requests.Request
) -> None:
    user = emu.authorized_user(email="bob@example.com")
    # google-auth 2.63's from_authorized_user_info ignores the info's token_uri, always
    # using Google's: point it back at the emulator.
    creds = user_credentials.Credentials.from_authorized_user_info(user).with_token_uri(
        user["token_uri"]
    )

    creds.refresh(auth_request)

    info = emu.token_info(creds.token)
    assert info is not None
    assert info["email"] == "bob@example.com"
    assert info["azp"] == user["client_id"]
    assert set(info["scope"].split()) >= {"openid", CLOUD_PLATFORM}
    assert 3590 <= int(info["expires_in"]) <= 3599


def test_google_auth_authorized_user_credentials_may_ask_for_fewer_scopes(
    emu: GoogleEmulator, auth_request: google.auth.transport.requests.Request
) -> None:
    user = emu.authorized_user()
    creds = user_credentials.Credentials.from_authorized_user_info(
        user, scopes=[CLOUD_PLATFORM]
    ).with_token_uri(user["token_uri"])

    creds.refresh(auth_request)

    info = emu.token_info(creds.token)
    assert info is not None
    assert info["scope"] == CLOUD_PLATFORM


def test_google_auth_compute_engine_credentials_refresh_against_the_metadata_server(
    gce: GoogleEmulator, auth_request: google.auth.transport.requests.Request
) -> None:
    assert _metadata.ping(auth_request)
    assert _metadata.get_project_id(auth_request) == "emulator-project"
    creds = compute_engine.Credentials()

    creds.refresh(auth_request)

    assert creds.service_account_email == gce.metadata_email
    assert creds.universe_domain == "googleapis.com"
    info = gce.token_info(creds.token)
    assert info is not None
    assert info["email"] == gce.metadata_email
    assert info["scope"] == CLOUD_PLATFORM
    assert 3590 <= int(info["expires_in"]) <= 3599
    assert all(r.headers["metadata-flavor"] == "Google" for r in gce.requests_to("metadata"))


def test_google_auth_compute_engine_credentials_send_their_scopes_to_the_metadata_server(
    gce: GoogleEmulator, auth_request: google.auth.transport.requests.Request
) -> None:
    gce.metadata_email = "runner@emulator-project.iam.gserviceaccount.com"
    creds = compute_engine.Credentials(scopes=[PUBSUB, CLOUD_PLATFORM])

    creds.refresh(auth_request)

    info = gce.token_info(creds.token)
    assert info is not None
    assert info["scope"] == f"{PUBSUB} {CLOUD_PLATFORM}"
    assert info["email"] == "runner@emulator-project.iam.gserviceaccount.com"
    token_request = gce.requests_to("/computeMetadata/v1/instance/service-accounts/default/token")
    assert token_request[0].query["scopes"] == f"{PUBSUB},{CLOUD_PLATFORM}"


def test_google_auth_id_token_credentials_get_an_id_token_that_verifies_with_the_certs(
    emu: GoogleEmulator, auth_request: google.auth.transport.requests.Request
) -> None:
    key = emu.service_account()
    creds = service_account.IDTokenCredentials.from_service_account_info(
        key, target_audience=AUDIENCE
    )

    creds.refresh(auth_request)

    claims = id_token.verify_token(
        creds.token, auth_request, audience=AUDIENCE, certs_url=emu.certs_url
    )
    assert claims["iss"] == "https://accounts.google.com"
    assert claims["aud"] == AUDIENCE
    assert claims["email"] == claims["azp"] == key["client_email"]
    assert claims["sub"] == key["client_id"]
    assert claims["exp"] - claims["iat"] == 3599
    info = emu.token_info(creds.token)
    assert info is not None
    assert info["aud"] == AUDIENCE


def test_fetch_id_token_uses_a_key_file_named_by_google_application_credentials(
    emu: GoogleEmulator,
    auth_request: google.auth.transport.requests.Request,
    tmp_path: Any,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    key_file = tmp_path / "key.json"
    key_file.write_text(json.dumps(emu.service_account()))
    monkeypatch.setenv("GOOGLE_APPLICATION_CREDENTIALS", str(key_file))

    token = id_token.fetch_id_token(auth_request, AUDIENCE)

    claims = id_token.verify_token(token, auth_request, audience=AUDIENCE, certs_url=emu.certs_url)
    assert claims["aud"] == AUDIENCE


def test_fetch_id_token_on_gce_uses_the_metadata_identity_endpoint(
    gce: GoogleEmulator,
    auth_request: google.auth.transport.requests.Request,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("GOOGLE_APPLICATION_CREDENTIALS", raising=False)

    token = id_token.fetch_id_token(auth_request, AUDIENCE)

    claims = id_token.verify_token(token, auth_request, audience=AUDIENCE, certs_url=gce.certs_url)
    assert claims["email"] == gce.metadata_email
    assert claims["google"]["compute_engine"]["project_id"] == "emulator-project"
    identity = gce.requests_to("/computeMetadata/v1/instance/service-accounts/default/identity")
    assert identity[0].query == {"audience": AUDIENCE, "format": "full"}


# --- the JWT-bearer grant -------------------------------------------------------------------


def test_a_goth_style_assertion_without_kid_is_accepted_at_the_v4_path(
    emu: GoogleEmulator,
) -> None:
    key = emu.service_account()
    signed = assertion(key, headers={}, aud=GOTH_TOKEN_URL, scope=f"{PUBSUB} {CLOUD_PLATFORM}")

    response = post_token(f"{emu.url}/oauth2/v4/token", grant_type=JWT_BEARER, assertion=signed)

    assert response.status_code == 200, response.text
    body = response.json()
    assert body["token_type"] == "Bearer"
    assert body["expires_in"] == 3599
    assert body["scope"] == f"{PUBSUB} {CLOUD_PLATFORM}"
    assert emu.requests_to("token")[0].path == "/oauth2/v4/token"


def test_an_assertion_with_the_emulators_own_token_url_as_audience_is_accepted(
    emu: GoogleEmulator,
) -> None:
    response = jwt_grant(emu, assertion(emu.service_account(), aud=emu.token_url))

    assert response.status_code == 200, response.text


def test_a_target_audience_claim_gets_an_id_token(emu: GoogleEmulator) -> None:
    key = emu.service_account()

    response = jwt_grant(emu, assertion(key, scope=None, target_audience=AUDIENCE))

    assert response.status_code == 200, response.text
    token = response.json()["id_token"]
    assert jwt.decode(token, options={"verify_signature": False})["aud"] == AUDIENCE
    info = requests.get(emu.tokeninfo_url, params={"id_token": token}, timeout=5).json()
    assert info["email"] == key["client_email"]
    assert info["aud"] == AUDIENCE


def test_a_tampered_signature_is_an_invalid_grant(emu: GoogleEmulator) -> None:
    key = emu.service_account()
    signed = assertion(key)
    other = assertion(key, scope=CLOUD_PLATFORM)
    forged = signed.rsplit(".", 1)[0] + "." + other.rsplit(".", 1)[1]

    response = jwt_grant(emu, forged)

    assert assert_oauth_error(response, 400, "invalid_grant") == "Invalid JWT Signature."
    assert forged not in response.text


def test_a_kid_that_is_not_the_accounts_key_is_an_invalid_grant(emu: GoogleEmulator) -> None:
    key = emu.service_account()

    response = jwt_grant(emu, assertion(key, headers={"kid": "0" * 40}))

    assert assert_oauth_error(response, 400, "invalid_grant") == "Invalid JWT Signature."


def test_an_unknown_issuer_is_an_invalid_grant(emu: GoogleEmulator) -> None:
    key = emu.service_account()

    response = jwt_grant(emu, assertion(key, iss="stranger@elsewhere.iam.gserviceaccount.com"))

    description = assert_oauth_error(response, 400, "invalid_grant")
    assert description == "Invalid grant: account not found"


def test_a_wrong_audience_is_an_invalid_grant(emu: GoogleEmulator) -> None:
    response = jwt_grant(emu, assertion(emu.service_account(), aud="https://example.com/token"))

    assert "audience" in assert_oauth_error(response, 400, "invalid_grant")


@pytest.mark.parametrize(
    ("iat_offset", "exp_offset"),
    [
        pytest.param(0, 3601, id="lives-longer-than-an-hour"),
        pytest.param(-4000, -10, id="expired"),
        pytest.param(600, 1200, id="issued-in-the-future"),
        pytest.param(0, 0, id="expires-when-issued"),
    ],
)
def test_assertion_times_outside_googles_limits_are_an_invalid_grant(
    emu: GoogleEmulator, iat_offset: int, exp_offset: int
) -> None:
    now = int(time.time())
    signed = assertion(emu.service_account(), iat=now + iat_offset, exp=now + exp_offset)

    response = jwt_grant(emu, signed)

    assert "short-lived token" in assert_oauth_error(response, 400, "invalid_grant")


def test_an_iat_slightly_in_the_future_is_forgiven_as_clock_skew(emu: GoogleEmulator) -> None:
    now = int(time.time())

    response = jwt_grant(emu, assertion(emu.service_account(), iat=now + 30, exp=now + 600))

    assert response.status_code == 200, response.text


def test_an_assertion_without_scope_or_target_audience_is_an_invalid_scope(
    emu: GoogleEmulator,
) -> None:
    key = emu.service_account()

    for signed in (assertion(key, scope=None), assertion(key, scope="  ")):
        assert_oauth_error(jwt_grant(emu, signed), 400, "invalid_scope")


def test_malformed_token_requests_are_invalid_requests_that_echo_no_secret(
    emu: GoogleEmulator,
) -> None:
    garbage = "not-a-jwt-but-a-secret"

    assert_oauth_error(post_token(emu.token_url, grant_type=JWT_BEARER), 400, "invalid_request")
    assert_oauth_error(post_token(emu.token_url, assertion=garbage), 400, "invalid_request")
    bad = jwt_grant(emu, garbage)
    assert_oauth_error(bad, 400, "invalid_grant")
    assert garbage not in bad.text
    unsupported = post_token(emu.token_url, grant_type="password", password=garbage)
    assert_oauth_error(unsupported, 400, "unsupported_grant_type")
    assert garbage not in unsupported.text
    assert_oauth_error(requests.get(emu.token_url, timeout=5), 405, "invalid_request")


def test_a_second_key_for_the_same_account_works_and_revoking_one_key_spares_the_other(
    emu: GoogleEmulator,
) -> None:
    first = emu.service_account("robot@emulator-project.iam.gserviceaccount.com")
    second = emu.service_account(first["client_email"])
    assert second["private_key_id"] != first["private_key_id"]
    assert second["client_id"] == first["client_id"]

    emu.revoke(first["private_key_id"])

    assert_oauth_error(jwt_grant(emu, assertion(first)), 400, "invalid_grant")
    assert jwt_grant(emu, assertion(second)).status_code == 200


# --- the refresh-token grant ----------------------------------------------------------------


def test_client_credentials_may_come_by_http_basic_auth(emu: GoogleEmulator) -> None:
    user = emu.authorized_user()
    form = {"grant_type": "refresh_token", "refresh_token": user["refresh_token"]}

    response = requests.post(
        emu.token_url,
        data=form,
        auth=(user["client_id"], user["client_secret"]),
        timeout=5,
    )

    assert response.status_code == 200, response.text
    assert response.json()["access_token"].startswith("ya29.emu-")


def test_refresh_grant_rejections_have_googles_errors(emu: GoogleEmulator) -> None:
    user = emu.authorized_user()
    wrong = "wrong-secret-value"

    bad_secret = refresh(emu, user, client_secret=wrong)
    assert_oauth_error(bad_secret, 401, "invalid_client")
    assert wrong not in bad_secret.text
    assert_oauth_error(refresh(emu, user, client_id="nobody"), 401, "invalid_client")
    assert_oauth_error(refresh(emu, user, client_secret=""), 400, "invalid_request")
    assert_oauth_error(refresh(emu, user, refresh_token=""), 400, "invalid_request")
    assert_oauth_error(refresh(emu, user, refresh_token="1//forged"), 400, "invalid_grant")
    assert_oauth_error(refresh(emu, user, scope="https://mail.google.com/"), 400, "invalid_scope")
    assert refresh(emu, user, scope="openid").json()["scope"] == "openid"


# --- the metadata server --------------------------------------------------------------------


def test_metadata_answers_the_paths_google_auth_and_goth_use(emu: GoogleEmulator) -> None:
    ping = requests.get(emu.metadata_url, headers=FLAVOR, timeout=5)
    assert ping.status_code == 200
    assert ping.headers["Metadata-Flavor"] == "Google"

    info = metadata_get(emu, "instance/service-accounts/default/", recursive="true")
    assert info.json() == {
        "aliases": ["default"],
        "email": emu.metadata_email,
        "scopes": [CLOUD_PLATFORM],
    }
    assert info.headers["Metadata-Flavor"] == "Google"
    by_email = f"instance/service-accounts/{emu.metadata_email}/email"
    assert metadata_get(emu, by_email).text == emu.metadata_email
    assert metadata_get(emu, "universe/universe-domain").text == "googleapis.com"
    assert metadata_get(emu, "project/project-id").text == "emulator-project"
    token = metadata_get(emu, "instance/service-accounts/default/token", scopes=PUBSUB).json()
    assert token["token_type"] == "Bearer"
    assert token["expires_in"] == 3599
    assert emu.token_info(token["access_token"])["scope"] == PUBSUB  # type: ignore[index]
    identity = metadata_get(emu, "instance/service-accounts/default/identity", audience=AUDIENCE)
    assert identity.headers["Content-Type"].startswith("text/plain")
    claims = jwt.decode(identity.text, options={"verify_signature": False})
    assert claims["aud"] == AUDIENCE
    assert "google" not in claims


def test_metadata_without_the_flavor_header_is_forbidden(emu: GoogleEmulator) -> None:
    url = f"{emu.metadata_url}/computeMetadata/v1/instance/service-accounts/default/token"

    response = requests.get(url, timeout=5)

    assert response.status_code == 403
    assert response.headers["Metadata-Flavor"] == "Google"


def test_metadata_for_an_unknown_account_or_path_is_not_found(emu: GoogleEmulator) -> None:
    unknown = metadata_get(emu, "instance/service-accounts/other@example.com/token")
    assert unknown.status_code == 404
    assert unknown.headers["Metadata-Flavor"] == "Google"
    assert metadata_get(emu, "instance/no-such-thing").status_code == 404


def test_metadata_identity_needs_an_audience(emu: GoogleEmulator) -> None:
    assert metadata_get(emu, "instance/service-accounts/default/identity").status_code == 400


# --- tokeninfo ------------------------------------------------------------------------------


def test_tokeninfo_describes_an_issued_access_token(emu: GoogleEmulator) -> None:
    token = jwt_grant(emu, assertion(emu.service_account())).json()["access_token"]

    response = requests.get(emu.tokeninfo_url, params={"access_token": token}, timeout=5)

    assert response.status_code == 200
    info = response.json()
    assert {"azp", "aud", "sub", "email", "scope", "exp", "expires_in"} <= info.keys()
    assert isinstance(info["exp"], str)
    assert isinstance(info["expires_in"], str)


def test_tokeninfo_rejects_unknown_and_expired_tokens(fake_time: FakeTime) -> None:
    with GoogleEmulator(time=fake_time, token_lifetime=10.0) as emu:
        token = jwt_grant(emu, assertion(emu.service_account())).json()["access_token"]
        fake_time.advance(20.0)  # the token has expired

        for unknown in ("ya29.emu-never-issued", token):
            response = requests.get(emu.tokeninfo_url, params={"access_token": unknown}, timeout=5)
            assert response.status_code == 400
            assert response.json() == {
                "error": "invalid_token",
                "error_description": "Invalid Value",
            }
            assert emu.token_info(unknown) is None


def test_a_fractional_token_lifetime_is_sent_as_a_fractional_expires_in(
    emu: GoogleEmulator,
) -> None:
    emu.token_lifetime = 0.5

    body = jwt_grant(emu, assertion(emu.service_account())).json()

    assert body["expires_in"] == 0.5


# --- revocation -----------------------------------------------------------------------------


def test_a_revoked_service_account_gets_invalid_grant_and_its_tokens_die(
    emu: GoogleEmulator,
) -> None:
    key = emu.service_account()
    token = jwt_grant(emu, assertion(key)).json()["access_token"]

    emu.revoke(key["client_email"])

    response = jwt_grant(emu, assertion(key))
    assert assert_oauth_error(response, 400, "invalid_grant") == "Invalid grant: account not found"
    assert emu.token_info(token) is None


@pytest.mark.parametrize("identity", ["refresh_token", "client_id"])
def test_a_revoked_refresh_token_or_client_gets_expired_or_revoked(
    emu: GoogleEmulator, identity: str
) -> None:
    user = emu.authorized_user()

    emu.revoke(user[identity])

    description = assert_oauth_error(refresh(emu, user), 400, "invalid_grant")
    assert description == "Token has been expired or revoked."


def test_revoking_something_never_issued_raises_without_echoing_it(emu: GoogleEmulator) -> None:
    with pytest.raises(ValueError, match="issued") as raised:
        emu.revoke("1//a-secret-refresh-token")
    assert "a-secret" not in str(raised.value)


# --- faults ---------------------------------------------------------------------------------


def test_fail_next_fails_n_token_requests_with_a_google_shaped_error_then_recovers(
    emu: GoogleEmulator,
) -> None:
    key = emu.service_account()
    emu.fail_next(2)

    first, second = jwt_grant(emu, assertion(key)), jwt_grant(emu, assertion(key))

    for failed in (first, second):
        assert_oauth_error(failed, 503, "temporarily_unavailable")
        assert "Retry-After" not in failed.headers
    assert jwt_grant(emu, assertion(key)).status_code == 200


@pytest.mark.parametrize(
    ("status", "error"),
    [(500, "internal_failure"), (429, "rate_limit_exceeded"), (502, "server_error")],
)
def test_fail_next_picks_an_error_code_from_the_status(
    emu: GoogleEmulator, status: int, error: str
) -> None:
    emu.fail_next(1, status)

    assert_oauth_error(jwt_grant(emu, assertion(emu.service_account())), status, error)


def test_fail_next_sets_retry_after_in_seconds_or_as_an_http_date(emu: GoogleEmulator) -> None:
    key = emu.service_account()
    http_date = email.utils.formatdate(time.time() + 30, usegmt=True)
    emu.fail_next(1, 429, retry_after=2)
    emu.fail_next(1, 503, retry_after=1.5)
    emu.fail_next(1, 503, retry_after=http_date, error="backend_error")

    answers = [jwt_grant(emu, assertion(key)) for _ in range(3)]

    assert [a.headers["Retry-After"] for a in answers] == ["2", "1.5", http_date]
    assert answers[2].json()["error"] == "backend_error"


def test_fail_next_can_send_a_raw_body_and_extra_headers(emu: GoogleEmulator) -> None:
    emu.fail_next(1, 502, body="<html>Bad Gateway</html>", headers={"Content-Type": "text/html"})

    response = jwt_grant(emu, assertion(emu.service_account()))

    assert response.status_code == 502
    assert response.text == "<html>Bad Gateway</html>"
    assert response.headers["Content-Type"] == "text/html"


def test_fail_next_by_default_spares_requests_that_ask_for_no_token(emu: GoogleEmulator) -> None:
    emu.fail_next(1)

    assert requests.get(emu.metadata_url, headers=FLAVOR, timeout=5).status_code == 200
    assert metadata_get(emu, "project/project-id").status_code == 200
    assert metadata_get(emu, "instance/service-accounts/default/token").status_code == 503
    assert metadata_get(emu, "instance/service-accounts/default/token").status_code == 200


def test_fail_next_for_metadata_spares_the_token_endpoint_and_keeps_the_flavor_header(
    emu: GoogleEmulator,
) -> None:
    emu.fail_next(1, 500, endpoint="metadata")

    assert jwt_grant(emu, assertion(emu.service_account())).status_code == 200
    failed = metadata_get(emu, "project/project-id")
    assert failed.status_code == 500
    assert failed.headers["Metadata-Flavor"] == "Google"


def test_respond_next_sends_exactly_the_given_answer(emu: GoogleEmulator) -> None:
    emu.respond_next(1, 200, {"access_token": "ya29.odd"}, endpoint="metadata")

    response = metadata_get(emu, "instance/service-accounts/default/token")

    assert response.json() == {"access_token": "ya29.odd"}
    assert "Metadata-Flavor" not in response.headers


def test_fault_arguments_are_checked_and_the_message_shows_the_bad_value(
    emu: GoogleEmulator,
) -> None:
    with pytest.raises(ValueError, match=r"^n must be an int >= 1, not 0$"):
        emu.fail_next(0)
    with pytest.raises(ValueError, match=r"^n must be an int >= 1, not 1\.5$"):
        emu.respond_next(1.5, 200)  # type: ignore[arg-type]
    with pytest.raises(
        ValueError, match=r"^status must be an HTTP error status, 400-599, not 200$"
    ):
        emu.fail_next(1, 200)
    with pytest.raises(ValueError, match=r"^endpoint must be .*, not 'tokens'$"):
        emu.fail_next(1, endpoint="tokens")
    with pytest.raises(ValueError, match=r"^where must be a path starting with '/', .*'tokens'$"):
        emu.requests_to("tokens")
    with pytest.raises(ValueError, match=r"^seconds must be .*, not -1$"):
        emu.delay(-1)
    with pytest.raises(ValueError, match=r"^token_lifetime must be .*, not 0$"):
        emu.token_lifetime = 0
    with pytest.raises(ValueError, match=r"^token_lifetime must be .*, not nan$"):
        emu.token_lifetime = float("nan")
    with pytest.raises(ValueError, match=r"^max_recorded must be an int >= 0, not -1$"):
        GoogleEmulator(max_recorded=-1)


def test_delay_holds_each_answer_back_until_cleared(emu: GoogleEmulator) -> None:
    emu.delay(0.05)
    started = time.monotonic()
    requests.get(emu.metadata_url, timeout=5)
    assert time.monotonic() - started >= 0.05

    emu.delay(30)
    emu.delay(0)
    assert requests.get(emu.metadata_url, timeout=2).status_code == 200


def test_close_is_prompt_and_leaves_no_thread_even_when_clients_never_read(
    emu: GoogleEmulator,
) -> None:
    # Each answer is far more than the socket buffers hold: its thread blocks writing it.
    emu.respond_next(3, 200, b"x" * 20_000_000, endpoint="other")
    port = int(emu.url.rsplit(":", 1)[1])
    clients = []
    try:
        for _ in range(3):
            client = socket.create_connection(("127.0.0.1", port))
            client.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
            client.sendall(b"GET /big HTTP/1.1\r\nHost: x\r\n\r\n")  # and never read
            clients.append(client)
        emu.wait_for_requests(3, "other")

        emu.close()  # waits 1 s at most: a thread it could not unblock would still be here

        prefix = f"goth-emulator-{port}-"
        assert [t.name for t in threading.enumerate() if t.name.startswith(prefix)] == []
    finally:
        for client in clients:
            client.close()


def test_close_cuts_a_long_delay_short(emu: GoogleEmulator) -> None:
    emu.delay(600)  # far longer than the test's timeout: only close() can end the wait
    outcome: list[object] = []

    def ask() -> None:
        try:
            outcome.append(requests.get(emu.metadata_url, timeout=300).status_code)
        except requests.RequestException as error:
            outcome.append(error)

    client = threading.Thread(target=ask)
    client.start()
    emu.wait_for_requests(1)
    emu.close()
    client.join(30)

    assert not client.is_alive()
    assert outcome


def test_a_client_that_dribbles_its_request_is_cut_off_at_one_deadline(
    emu: GoogleEmulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(_emulator_http, "REQUEST_DEADLINE", 0.5)
    port = int(emu.url.rsplit(":", 1)[1])
    with socket.create_connection(("127.0.0.1", port), timeout=5) as client:
        client.sendall(b"POST /token HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\n")
        cut = False
        for _ in range(500):  # a byte every 20 ms: no read ever waits long, the request does
            try:
                client.sendall(b"a")
                readable, _, _ = select.select([client], [], [], 0.02)
                cut = bool(readable) and client.recv(100) == b""
            except OSError:  # reset by the emulator
                cut = True
            if cut:
                break
        assert cut
    assert emu.request_count() == 0


def test_a_connection_over_the_limit_is_answered_503_and_the_others_are_served(
    emu: GoogleEmulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(_emulator_http, "MAX_CONNECTIONS", 3)
    port = int(emu.url.rsplit(":", 1)[1])
    held = [socket.create_connection(("127.0.0.1", port), timeout=5) for _ in range(3)]
    try:
        wait_for(lambda: _emulator_threads(port) == 3)
        answer = requests.get(emu.metadata_url, timeout=5)
        assert answer.status_code == 503
        assert answer.text == "The emulator has too many clients.\n"
    finally:
        for client in held:
            client.close()
    wait_for(lambda: _emulator_threads(port) == 0)
    assert requests.get(emu.metadata_url, timeout=5).status_code == 200


def _emulator_threads(port: int) -> int:
    prefix = f"goth-emulator-{port}-conn"
    return sum(thread.name == prefix for thread in threading.enumerate())


def test_down_refuses_connections_and_up_listens_again_on_the_same_port(
    emu: GoogleEmulator,
) -> None:
    url = emu.url

    emu.down()
    assert not emu.is_up
    with pytest.raises(requests.ConnectionError):
        requests.get(emu.metadata_url, timeout=5)

    emu.up()
    assert emu.is_up
    assert emu.url == url
    assert requests.get(emu.metadata_url, timeout=5).status_code == 200


def test_a_request_in_flight_is_answered_even_if_the_emulator_goes_down(
    emu: GoogleEmulator,
) -> None:
    emu.delay(0.05)
    statuses: list[int] = []
    client = threading.Thread(
        target=lambda: statuses.append(requests.get(emu.metadata_url, timeout=5).status_code)
    )
    client.start()
    emu.wait_for_requests(1)

    emu.down()
    client.join(5)

    assert statuses == [200]


def test_reset_clears_faults_delay_and_recorded_requests(emu: GoogleEmulator) -> None:
    requests.get(emu.metadata_url, timeout=5)
    emu.fail_next(5)
    emu.delay(10)

    emu.reset()

    assert emu.requests == []
    assert jwt_grant(emu, assertion(emu.service_account())).status_code == 200
    assert len(emu.requests) == 1


# --- recording and lifecycle ----------------------------------------------------------------


def test_requests_are_recorded_with_their_endpoint_form_and_headers(emu: GoogleEmulator) -> None:
    user = emu.authorized_user()
    refresh(emu, user)
    requests.get(emu.tokeninfo_url, params={"access_token": "x"}, timeout=5)
    requests.get(f"{emu.url}/elsewhere", timeout=5)

    recorded = emu.requests

    assert [r.endpoint for r in recorded] == ["token", "tokeninfo", "other"]
    token_request = emu.requests_to("token")[0]
    assert isinstance(token_request, RecordedRequest)
    assert token_request.method == "POST"
    assert token_request.form["refresh_token"] == user["refresh_token"]
    assert token_request.headers["content-type"] == "application/x-www-form-urlencoded"
    assert recorded[1].query == {"access_token": "x"}
    assert user["refresh_token"] not in repr(token_request)
    assert user["client_secret"] not in repr(recorded)
    recorded.clear()
    assert len(emu.requests) == 3
    emu.clear_requests()
    assert emu.requests == []


def test_the_recording_keeps_the_last_max_recorded_requests_and_counts_them_all() -> None:
    with GoogleEmulator(max_recorded=2) as emu:
        for n in range(4):
            requests.get(f"{emu.url}/elsewhere/{n}", timeout=5)
        requests.get(emu.metadata_url, timeout=5)

        assert [r.path for r in emu.requests] == ["/elsewhere/3", "/"]
        assert [r.path for r in emu.wait_for_requests(4, "other")] == ["/elsewhere/3"]
        assert (emu.request_count(), emu.request_count("other")) == (5, 4)
        assert emu.request_count("metadata") == len(emu.requests_to("metadata")) == 1
        assert emu.request_count("/elsewhere/") == 1  # a path prefix: only what is recorded
        with pytest.raises(TimeoutError, match="4 of 5 requests to 'other'"):
            emu.wait_for_requests(5, "other", timeout=0.01)

        emu.clear_requests()
        assert (emu.requests, emu.request_count()) == ([], 0)
        requests.get(emu.metadata_url, timeout=5)
        emu.reset()
        assert (emu.requests, emu.request_count("metadata")) == ([], 0)


def test_max_recorded_zero_records_nothing_but_still_counts() -> None:
    with GoogleEmulator(max_recorded=0) as emu:
        requests.get(emu.metadata_url, timeout=5)

        assert emu.wait_for_requests(1, "metadata") == []
        assert (emu.requests, emu.request_count()) == ([], 1)


def test_a_recorded_body_keeps_only_its_first_64_kib(emu: GoogleEmulator) -> None:
    big = b"a=" + b"x" * 100_000
    requests.post(f"{emu.url}/upload", data={"small": "form"}, timeout=5)
    requests.post(
        f"{emu.url}/upload",
        data=big,
        headers={"Content-Type": "application/x-www-form-urlencoded"},
        timeout=5,
    )

    small, cut = emu.requests

    assert small.form == {"small": "form"}
    assert cut.body == big[: 64 * 1024]
    assert cut.headers["content-length"] == str(len(big))
    assert cut.form == {}  # not a half-parsed value


def test_expired_tokens_are_forgotten_when_new_ones_are_issued(fake_time: FakeTime) -> None:
    with GoogleEmulator(time=fake_time) as emu:
        user = emu.authorized_user()
        first = refresh(emu, user).json()["access_token"]

        fake_time.advance(7200.0)  # the first has expired
        second = refresh(emu, user).json()["access_token"]

        assert emu.token_info(first) is None
        assert emu.token_info(second) is not None
        assert len(emu._google._tokens) == 1  # forgotten, not merely refused


def test_the_token_store_forgets_a_bounded_number_of_expired_entries_per_addition() -> None:
    store: Expiring[str] = Expiring()
    for n in range(20):
        store.add(f"old-{n}", "value", expires=float(n + 1), now=0.0)
    store.add("live", "value", expires=200.0, now=100.0)

    assert len(store) == 21 - 8
    assert store.get("old-0") is None
    assert store.get("old-19") == "value"  # expired, dropped by a later addition
    for n in range(2):
        store.add(f"new-{n}", "value", expires=200.0, now=100.0)
    assert len(store) == 3
    assert store.get("live") == "value"


@pytest.mark.parametrize(
    "name",
    [
        "actor_token",
        "client_assertion",
        "code",
        "code_verifier",
        "password",
        "client_secret",
        "api_key",
        "key",
        "Proxy-Authorization",
        "cookie",
        "x-goog-api-key",
        "x-goog-iam-authorization-token",
        "refresh_token",
    ],
)
def test_the_repr_of_a_recorded_request_hides_any_secret_looking_name(name: str) -> None:
    secret = "SECRET-VALUE"
    request = RecordedRequest(
        "POST", "/v1/token", "sts", {name: secret}, {name: secret}, {name: secret}, 0.0
    )

    assert secret not in repr(request)
    assert repr(request).count("<redacted>") == 3


def test_the_repr_of_a_recorded_request_shows_harmless_names() -> None:
    shown = {
        "grant_type": "refresh_token",
        "scope": PUBSUB,
        "subject_token_type": JWT_TYPE,
        "content-type": "application/json",
        "metadata-flavor": "Google",
        "audience": AUDIENCE,
    }
    request = RecordedRequest("POST", "/v1/token", "sts", {}, shown, shown, 0.0, b"raw")

    for value in shown.values():
        assert value in repr(request)
    assert "raw" not in repr(request)


def test_service_account_returns_a_complete_key_file(emu: GoogleEmulator) -> None:
    key = emu.service_account()

    assert key["type"] == "service_account"
    assert key["private_key"].startswith("-----BEGIN PRIVATE KEY-----")
    assert key["token_uri"] == emu.token_url
    assert key["universe_domain"] == "googleapis.com"
    assert {
        "project_id",
        "private_key_id",
        "client_email",
        "client_id",
        "auth_uri",
        "auth_provider_x509_cert_url",
        "client_x509_cert_url",
    } <= key.keys()
    assert emu.service_account()["client_email"] != key["client_email"]


def test_an_emulator_starts_once_and_closes_any_number_of_times() -> None:
    emu = GoogleEmulator()
    with pytest.raises(RuntimeError):
        _ = emu.url
    emu.start()
    assert emu.metadata_host == emu.url.removeprefix("http://")
    with pytest.raises(RuntimeError):
        emu.start()
    emu.close()
    emu.close()
    with pytest.raises(RuntimeError):
        emu.up()


# --- fake time ------------------------------------------------------------------------------


def test_a_jump_of_the_fake_wall_clock_expires_the_emulators_tokens(fake_time: FakeTime) -> None:
    with GoogleEmulator(time=fake_time) as emu:
        token = refresh(emu, emu.authorized_user()).json()["access_token"]
        fake_time.jump(3598.0)
        assert emu.token_info(token) is not None
        fake_time.jump(2.0)  # no timer moved: the wall clock alone decides expiry
        assert emu.token_info(token) is None
        fake_time.jump(-3600.0)  # an NTP step back makes it current again, as for Google
        assert emu.token_info(token) is not None


def test_the_emulator_judges_assertion_times_by_its_fake_time(fake_time: FakeTime) -> None:
    with GoogleEmulator(time=fake_time) as emu:
        key = emu.service_account()
        fake_time.jump(7200.0)
        real_now = assertion(key)  # stamped by the real clock: two hours old to the emulator
        assert "Invalid JWT" in assert_oauth_error(jwt_grant(emu, real_now), 400, "invalid_grant")
        now = int(fake_time.time())
        fake_now = assertion(key, iat=now, exp=now + 3600)
        body = jwt_grant(emu, fake_now).json()
        assert body["expires_in"] == 3599
        assert emu.token_info(body["access_token"]) is not None


def test_an_emulator_takes_a_fake_time_or_none() -> None:
    with pytest.raises(TypeError, match="FakeTime"):
        GoogleEmulator(time=time)  # type: ignore[arg-type]


def test_an_emulator_and_two_token_servers_can_share_one_fake_time(fake_time: FakeTime) -> None:
    with GoogleEmulator(time=fake_time) as emu:
        try:
            for name, source in [
                ("user", goth_actors.RefreshToken(emu.authorized_user())),
                ("robot", goth_actors.ServiceAccount(emu.service_account())),
            ]:
                goth_actors.start_link(name=name, source=source, prefetch="sync", time=fake_time)
            first = {name: goth_actors.fetch(name) for name in ("user", "robot")}
            for token in first.values():  # stamped by the emulator, read by the server
                assert token.expires == pytest.approx(fake_time.time() + 3599, abs=1)

            fake_time.advance(3300.0)  # refresh_after: both servers' timers fire on one advance
            for name, token in first.items():  # a Fetch is handled after the timer's refresh
                server = goth_actors.whereis(name)
                assert server is not None
                assert server.ask(goth_actors.Fetch(), timeout=5.0) != token
            assert len(emu.requests_to("token")) == 4

            fake_time.jump(86400.0)  # a day later by the wall clock alone: every token expired
            second = {name: goth_actors.fetch(name) for name in ("user", "robot")}
            for name, token in second.items():  # the robot's JWT was stamped by the fake clock
                assert token.expires == pytest.approx(fake_time.time() + 3599, abs=1)
                assert emu.token_info(token.token) is not None
                assert emu.token_info(first[name].token) is None
        finally:
            goth_actors.stop("user")
            goth_actors.stop("robot")


# --- workload identity: STS and the subject-token URL --------------------------------------

TOKEN_EXCHANGE = "urn:ietf:params:oauth:grant-type:token-exchange"
ACCESS_TOKEN_TYPE = "urn:ietf:params:oauth:token-type:access_token"
JWT_TYPE = "urn:ietf:params:oauth:token-type:jwt"


def sts_form(emu: GoogleEmulator, credentials: dict[str, Any], **overrides: str) -> dict[str, str]:
    form = {
        "audience": credentials["audience"],
        "grant_type": TOKEN_EXCHANGE,
        "requested_token_type": ACCESS_TOKEN_TYPE,
        "scope": CLOUD_PLATFORM,
        "subject_token": emu.subject_token(credentials["audience"]),
        "subject_token_type": credentials["subject_token_type"],
        **overrides,
    }
    return {k: v for k, v in form.items() if v}


def test_workload_identity_returns_external_account_credentials_for_the_emulator(
    emu: GoogleEmulator,
) -> None:
    credentials = emu.workload_identity(
        service_account="ci@emulator-project.iam.gserviceaccount.com"
    )

    assert credentials["type"] == "external_account"
    assert credentials["token_url"] == emu.sts_url == f"{emu.url}/v1/token"
    assert credentials["subject_token_type"] == JWT_TYPE
    assert credentials["audience"].startswith("//iam.googleapis.com/projects/")
    assert credentials["audience"].endswith("/providers/emulator-provider")
    source = credentials["credential_source"]
    assert source["url"].startswith(f"{emu.url}/subject-token/")
    assert source["headers"]["Authorization"].startswith("Bearer ")
    assert source["format"] == {"type": "text"}
    assert credentials["service_account_impersonation_url"] == (
        f"{emu.iam_url}/v1/projects/-/serviceAccounts/"
        "ci@emulator-project.iam.gserviceaccount.com:generateAccessToken"
    )
    assert emu.workload_identity()["audience"] != credentials["audience"]


def test_workload_identity_writes_a_subject_token_file(emu: GoogleEmulator, tmp_path: Any) -> None:
    text_file, json_file = tmp_path / "token", tmp_path / "token.json"

    text = emu.workload_identity(file=text_file, subject="repo:example/app:ref:main")
    as_json = emu.workload_identity(file=json_file, format="json")

    assert text["credential_source"] == {"file": str(text_file), "format": {"type": "text"}}
    claims = jwt.decode(text_file.read_text(), options={"verify_signature": False})
    assert claims["aud"] == text["audience"]
    assert claims["sub"] == "repo:example/app:ref:main"
    assert claims["exp"] - claims["iat"] == 3600
    assert set(json.loads(json_file.read_text())) == {"value"}
    assert as_json["credential_source"]["format"] == {
        "type": "json",
        "subject_token_field_name": "value",
    }


def test_sts_exchanges_a_subject_token_minted_for_its_pool(emu: GoogleEmulator) -> None:
    credentials = emu.workload_identity(subject="system:serviceaccount:prod:api")

    response = post_token(emu.sts_url, **sts_form(emu, credentials, scope=PUBSUB))

    assert response.status_code == 200, response.text
    body = response.json()
    assert body["issued_token_type"] == ACCESS_TOKEN_TYPE
    assert (body["token_type"], body["expires_in"]) == ("Bearer", 3599)
    info = emu.token_info(body["access_token"])
    assert info is not None
    assert info["scope"] == PUBSUB
    assert info["sub"] == "system:serviceaccount:prod:api"
    assert info["email"].startswith("principal://iam.googleapis.com/projects/")
    assert info["email"].endswith("/subject/system:serviceaccount:prod:api")
    assert emu.requests_to("sts")[0].endpoint == "sts"


@pytest.mark.parametrize(
    ("overrides", "status", "error"),
    [
        ({"grant_type": "client_credentials"}, 400, "unsupported_grant_type"),
        ({"requested_token_type": JWT_TYPE}, 400, "invalid_request"),
        ({"audience": "//iam.googleapis.com/projects/1/elsewhere"}, 400, "invalid_target"),
        (
            {"subject_token_type": "urn:ietf:params:oauth:token-type:id_token"},
            400,
            "invalid_request",
        ),
        ({"subject_token": "eyJ.never.minted"}, 400, "invalid_grant"),
    ],
)
def test_sts_checks_what_google_checks(
    emu: GoogleEmulator, overrides: dict[str, str], status: int, error: str
) -> None:
    credentials = emu.workload_identity()

    response = post_token(emu.sts_url, **sts_form(emu, credentials, **overrides))

    assert_oauth_error(response, status, error)
    assert "never.minted" not in response.text


def test_sts_refuses_a_subject_token_of_another_pool_or_a_disabled_pool(
    emu: GoogleEmulator,
) -> None:
    credentials, other = emu.workload_identity(), emu.workload_identity()
    foreign = emu.subject_token(other["audience"])

    response = post_token(emu.sts_url, **sts_form(emu, credentials, subject_token=foreign))
    assert assert_oauth_error(response, 400, "invalid_grant") == "The subject token is invalid."

    emu.revoke(credentials["audience"])
    response = post_token(emu.sts_url, **sts_form(emu, credentials))
    assert "disabled" in assert_oauth_error(response, 400, "invalid_grant")


def test_an_expired_subject_token_is_forgotten_yet_still_refused_as_expired(
    fake_time: FakeTime,
) -> None:
    with GoogleEmulator(time=fake_time) as emu:
        credentials = emu.workload_identity()
        old = emu.subject_token(credentials["audience"])

        fake_time.advance(7200.0)  # the old one has expired
        new = emu.subject_token(credentials["audience"])  # forgets the expired one

        assert len(emu._federation._subjects) == 1
        response = post_token(emu.sts_url, **sts_form(emu, credentials, subject_token=old))
        assert (
            assert_oauth_error(response, 400, "invalid_grant") == "The subject token has expired."
        )
        assert post_token(emu.sts_url, **sts_form(emu, credentials, subject_token=new)).ok


def test_the_subject_token_url_needs_its_header_and_serves_text_or_json(
    emu: GoogleEmulator,
) -> None:
    text, as_json = emu.workload_identity(), emu.workload_identity(format="json")

    for credentials in (text, as_json):
        url = credentials["credential_source"]["url"]
        assert requests.get(url, timeout=5).status_code == 401
        wrong = requests.get(url, headers={"Authorization": "Bearer nope"}, timeout=5)
        assert wrong.status_code == 401
    plain = requests.get(
        text["credential_source"]["url"], headers=text["credential_source"]["headers"], timeout=5
    )
    assert plain.headers["Content-Type"].startswith("text/plain")
    assert jwt.decode(plain.text, options={"verify_signature": False})["aud"] == text["audience"]
    answer = requests.get(
        as_json["credential_source"]["url"],
        headers=as_json["credential_source"]["headers"],
        timeout=5,
    ).json()
    assert answer["count"] == 1
    assert post_token(emu.sts_url, **sts_form(emu, as_json, subject_token=answer["value"])).ok
    assert requests.get(f"{emu.url}/subject-token/999", timeout=5).status_code == 404
    assert {r.endpoint for r in emu.requests} == {"subject", "sts"}


# --- IAM Credentials ------------------------------------------------------------------------


def iam_post(
    emu: GoogleEmulator, target: str, verb: str, bearer: str | None, body: object
) -> requests.Response:
    headers = {} if bearer is None else {"Authorization": f"Bearer {bearer}"}
    url = f"{emu.iam_url}/v1/projects/-/serviceAccounts/{target}:{verb}"
    return requests.post(url, json=body, headers=headers, timeout=5)


def a_caller_token(emu: GoogleEmulator) -> str:
    return str(refresh(emu, emu.authorized_user()).json()["access_token"])


def assert_api_error(response: requests.Response, code: int, status: str) -> str:
    assert response.status_code == code, response.text
    error = response.json()["error"]
    assert (error["code"], error["status"]) == (code, status)
    return str(error["message"])


def test_iam_generate_access_token_issues_a_token_of_the_target(emu: GoogleEmulator) -> None:
    target = emu.service_account()["client_email"]
    before = time.time()

    response = iam_post(
        emu, target, "generateAccessToken", a_caller_token(emu), {"scope": [PUBSUB]}
    )

    assert response.status_code == 200, response.text
    body = response.json()
    assert set(body) == {"accessToken", "expireTime"}
    assert body["expireTime"].endswith("Z")
    assert len(body["expireTime"]) == len("2024-01-01T00:00:00Z")
    info = emu.token_info(body["accessToken"])
    assert info is not None
    assert (info["email"], info["scope"]) == (target, PUBSUB)
    assert before + 3598 <= int(info["exp"]) <= time.time() + 3600
    assert emu.requests_to("iam")[0].endpoint == "iam"


def test_iam_honours_lifetime_up_to_its_maximum(emu: GoogleEmulator) -> None:
    target = emu.service_account()["client_email"]
    caller = a_caller_token(emu)

    short = iam_post(
        emu, target, "generateAccessToken", caller, {"scope": [PUBSUB], "lifetime": "600s"}
    )
    too_long = iam_post(
        emu, target, "generateAccessToken", caller, {"scope": [PUBSUB], "lifetime": "3601s"}
    )
    emu.iam_max_lifetime = 43200
    emu.token_lifetime = 43200
    long = iam_post(
        emu, target, "generateAccessToken", caller, {"scope": [PUBSUB], "lifetime": "43200s"}
    )

    short_info = emu.token_info(short.json()["accessToken"])
    assert short_info is not None
    assert 598 <= int(short_info["expires_in"]) <= 600
    assert "lifetime" in assert_api_error(too_long, 400, "INVALID_ARGUMENT")
    long_info = emu.token_info(long.json()["accessToken"])
    assert long_info is not None
    assert int(long_info["expires_in"]) > 43000


def test_iam_expire_time_can_carry_an_offset_and_nanoseconds(emu: GoogleEmulator) -> None:
    target = emu.service_account()["client_email"]
    emu.expire_time_offset = timedelta(hours=2)
    emu.expire_time_digits = 9

    body = iam_post(
        emu, target, "generateAccessToken", a_caller_token(emu), {"scope": [PUBSUB]}
    ).json()

    expire_time = body["expireTime"]
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{9}\+02:00", expire_time)
    moment = datetime.fromisoformat(expire_time)  # 3.11 reads, and truncates, nanoseconds
    info = emu.token_info(body["accessToken"])
    assert info is not None
    assert int(moment.timestamp()) == int(info["exp"])


def test_iam_generate_id_token_includes_the_email_only_when_asked(emu: GoogleEmulator) -> None:
    key = emu.service_account()
    caller = a_caller_token(emu)

    with_email = iam_post(
        emu,
        key["client_email"],
        "generateIdToken",
        caller,
        {"audience": AUDIENCE, "includeEmail": True},
    ).json()["token"]
    without = iam_post(emu, key["client_id"], "generateIdToken", caller, {"audience": AUDIENCE})

    claims = jwt.decode(with_email, options={"verify_signature": False})
    assert (claims["aud"], claims["email"], claims["sub"]) == (
        AUDIENCE,
        key["client_email"],
        key["client_id"],
    )
    assert "email" not in jwt.decode(without.json()["token"], options={"verify_signature": False})
    assert emu.token_info(with_email)["email"] == key["client_email"]  # type: ignore[index]


def test_iam_checks_the_callers_bearer_token(emu: GoogleEmulator) -> None:
    target = emu.service_account()["client_email"]
    body = {"scope": [PUBSUB]}
    user = emu.authorized_user()
    caller = str(refresh(emu, user).json()["access_token"])
    id_token_only = jwt_grant(
        emu, assertion(emu.service_account(), scope=None, target_audience=AUDIENCE)
    )

    for bearer in (None, "ya29.never-issued", id_token_only.json()["id_token"]):
        response = iam_post(emu, target, "generateAccessToken", bearer, body)
        assert_api_error(response, 401, "UNAUTHENTICATED")
        assert "never-issued" not in response.text
    emu.revoke(user["refresh_token"])
    assert_api_error(
        iam_post(emu, target, "generateAccessToken", caller, body), 401, "UNAUTHENTICATED"
    )


def test_iam_checks_the_target_the_delegates_and_the_body(emu: GoogleEmulator) -> None:
    target = emu.service_account()
    caller = a_caller_token(emu)
    good = {"scope": [PUBSUB]}

    def post(who: str, body: object, verb: str = "generateAccessToken") -> requests.Response:
        return iam_post(emu, who, verb, caller, body)

    assert_api_error(post("nobody@example.com", good), 404, "NOT_FOUND")
    assert_api_error(post(target["client_email"], {"scope": []}), 400, "INVALID_ARGUMENT")
    assert_api_error(
        post(target["client_email"], {**good, "lifetime": "1h"}), 400, "INVALID_ARGUMENT"
    )
    assert_api_error(
        post(target["client_email"], {**good, "delegates": ["x@y"]}), 400, "INVALID_ARGUMENT"
    )
    unknown = {**good, "delegates": ["projects/-/serviceAccounts/ghost@example.com"]}
    assert_api_error(post(target["client_email"], unknown), 404, "NOT_FOUND")
    assert_api_error(post(target["client_email"], {}, "generateIdToken"), 400, "INVALID_ARGUMENT")
    assert_api_error(post(target["client_email"], good, "signJwt"), 404, "NOT_FOUND")
    assert post(target["client_id"], good).status_code == 200
    emu.revoke(target["private_key_id"])  # a key, not the account: still impersonable
    assert post(target["client_email"], good).status_code == 200
    emu.revoke(target["client_email"])
    assert_api_error(post(target["client_email"], good), 404, "NOT_FOUND")
    wildcard = requests.post(
        f"{emu.url}/v1/projects/my-project/serviceAccounts/{target['client_email']}:generateAccessToken",
        json=good,
        headers={"Authorization": f"Bearer {caller}"},
        timeout=5,
    )
    assert_api_error(wildcard, 400, "INVALID_ARGUMENT")


def test_fail_next_for_iam_answers_in_googles_api_shape(emu: GoogleEmulator) -> None:
    target = emu.service_account()["client_email"]
    caller = a_caller_token(emu)
    emu.fail_next(1, 503, endpoint="iam", retry_after=2)
    emu.fail_next(1, 403, endpoint="iam", error="IAM_DENIED")

    first = iam_post(emu, target, "generateAccessToken", caller, {"scope": [PUBSUB]})
    second = iam_post(emu, target, "generateAccessToken", caller, {"scope": [PUBSUB]})

    assert first.json() == {
        "error": {"code": 503, "message": "Emulated failure (HTTP 503).", "status": "UNAVAILABLE"}
    }
    assert first.headers["Retry-After"] == "2"
    assert_api_error(second, 403, "IAM_DENIED")


def test_fail_next_by_default_also_fails_sts_and_iam(emu: GoogleEmulator) -> None:
    credentials = emu.workload_identity()
    target = emu.service_account()["client_email"]
    caller = a_caller_token(emu)
    emu.fail_next(2)

    assert_oauth_error(
        post_token(emu.sts_url, **sts_form(emu, credentials)), 503, "temporarily_unavailable"
    )
    assert_api_error(
        iam_post(emu, target, "generateAccessToken", caller, {"scope": [PUBSUB]}),
        503,
        "UNAVAILABLE",
    )
    assert post_token(emu.sts_url, **sts_form(emu, credentials)).ok


def test_iam_settings_are_checked(emu: GoogleEmulator) -> None:
    with pytest.raises(ValueError, match="iam_max_lifetime"):
        emu.iam_max_lifetime = 43201
    with pytest.raises(ValueError, match="whole minutes"):
        emu.expire_time_offset = timedelta(seconds=30)
    with pytest.raises(ValueError, match="under 24 hours"):
        emu.expire_time_offset = timedelta(hours=24)
    with pytest.raises(ValueError, match="0 to 9"):
        emu.expire_time_digits = 10
    with pytest.raises(ValueError, match="format"):
        emu.workload_identity(format="yaml")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="lifetime"):
        emu.subject_token("aud", lifetime=0)


def test_recorded_requests_keep_the_raw_body_and_hide_subject_tokens(emu: GoogleEmulator) -> None:
    credentials = emu.workload_identity()
    form = sts_form(emu, credentials)
    post_token(emu.sts_url, **form)
    requests.post(
        f"{emu.iam_url}/v1/projects/-/serviceAccounts/x@y:generateAccessToken",
        json={"scope": ["s"]},
        timeout=5,
    )

    sts, iam = emu.requests

    assert form["subject_token"] in sts.body.decode()
    assert form["subject_token"] not in repr(sts)
    assert json.loads(iam.body) == {"scope": ["s"]}
    assert iam.form == {"scope": '["s"]'}

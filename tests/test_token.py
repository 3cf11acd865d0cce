"""Token.fetch: exactly one exchange, against the emulator over real HTTP."""

from __future__ import annotations

import email.utils
import json
import time
from collections.abc import Mapping
from typing import Any

import jwt
import pytest

from goth_actors import (
    ConfigError,
    HttpResponse,
    Metadata,
    RefreshToken,
    ServiceAccount,
    Token,
    TokenEndpointError,
    TransportError,
)
from goth_actors._protocol import default_http_client
from goth_actors._protocol.errors import RedactedCause
from goth_actors.testing import GoogleEmulator

CLOUD = "https://www.googleapis.com/auth/cloud-platform"


def test_a_service_account_gets_an_access_token(emulator: GoogleEmulator) -> None:
    key = emulator.service_account()
    before = time.time()
    token = Token.fetch(ServiceAccount(key))
    assert token.type == "Bearer"
    assert token.scope == CLOUD
    assert token.sub is None
    assert before + 3599 - 1 <= token.expires <= time.time() + 3599 + 1
    info = emulator.token_info(token.token)
    assert info is not None
    assert info["email"] == key["client_email"]
    assert info["scope"] == CLOUD
    assert len(emulator.requests_to("token")) == 1


def test_scopes_and_sub_come_from_the_request(emulator: GoogleEmulator) -> None:
    source = ServiceAccount(
        emulator.service_account(), scopes=("scope-a", "scope-b"), sub="bob@example.com"
    )
    token = Token.fetch(source)
    assert (token.scope, token.sub) == ("scope-a scope-b", "bob@example.com")
    info = emulator.token_info(token.token)
    assert info is not None
    assert info["scope"] == "scope-a scope-b"
    assert info["sub"] == "bob@example.com"


def test_target_audience_gets_an_id_token(emulator: GoogleEmulator) -> None:
    source = ServiceAccount(
        emulator.service_account(), claims={"target_audience": "https://svc.example"}
    )
    token = Token.fetch(source)
    claims = jwt.decode(token.token, options={"verify_signature": False})
    assert token.expires == claims["exp"]
    assert token.scope == "https://svc.example"
    assert token.sub == claims["sub"]
    assert token.type == "Bearer"


def test_a_refresh_token_gets_an_access_token(emulator: GoogleEmulator) -> None:
    user = emulator.authorized_user()
    token = Token.fetch(RefreshToken(user))
    info = emulator.token_info(token.token)
    assert info is not None
    assert info["azp"] == user["client_id"]
    form = emulator.requests_to("token")[0].form
    assert form["grant_type"] == "refresh_token"
    assert form["client_secret"] == user["client_secret"]


def test_the_metadata_server_gives_an_access_token(emulator: GoogleEmulator) -> None:
    token = Token.fetch(Metadata(url=emulator.metadata_url))
    assert token.scope is None or isinstance(token.scope, str)
    assert emulator.token_info(token.token) is not None
    request = emulator.requests_to("metadata")[0]
    assert request.path == "/computeMetadata/v1/instance/service-accounts/default/token"
    assert request.headers["metadata-flavor"] == "Google"


def test_gce_metadata_host_is_read_when_fetching(
    emulator: GoogleEmulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    source = Metadata(scopes=("s1", "s2"))
    monkeypatch.setenv("GCE_METADATA_HOST", emulator.metadata_host)
    Token.fetch(source)
    assert emulator.requests_to("metadata")[0].query == {"scopes": "s1,s2"}


def test_the_metadata_server_gives_an_id_token_for_an_audience(emulator: GoogleEmulator) -> None:
    token = Token.fetch(Metadata(url=emulator.metadata_url, audience="https://x.run.app"))
    claims = jwt.decode(token.token, options={"verify_signature": False})
    assert token.scope == "https://x.run.app"
    assert token.expires == claims["exp"]
    assert emulator.requests_to("metadata")[0].query == {
        "audience": "https://x.run.app",
        "format": "full",
    }


def test_a_named_metadata_account_is_in_the_path(emulator: GoogleEmulator) -> None:
    Token.fetch(Metadata(url=emulator.metadata_url, account=emulator.metadata_email))
    path = emulator.requests_to("metadata")[0].path
    assert path.endswith(f"/service-accounts/{emulator.metadata_email}/token")


def test_repr_and_str_never_show_the_token(emulator: GoogleEmulator) -> None:
    token = Token.fetch(ServiceAccount(emulator.service_account()))
    assert token.token not in repr(token)
    assert token.token not in str(token)
    assert "chars hidden" in repr(token)


# ------------------------------------------------------------------------------------ errors

RETRYABLE = {400: False, 401: False, 403: False, 404: False, 408: True, 429: True}
RETRYABLE |= {500: True, 502: True, 503: True, 504: True}


@pytest.mark.parametrize(("status", "retryable"), sorted(RETRYABLE.items()))
def test_each_status_gives_a_token_endpoint_error_with_its_retryable_flag(
    emulator: GoogleEmulator, status: int, retryable: bool
) -> None:
    emulator.fail_next(1, status, error="some_error", endpoint="token")
    with pytest.raises(TokenEndpointError) as info:
        Token.fetch(ServiceAccount(emulator.service_account()))
    error = info.value
    assert error.status == status
    assert error.retryable is retryable
    assert error.error == "some_error"
    assert error.url == emulator.token_url


@pytest.mark.parametrize(
    "oauth_error", ["internal_failure", "server_error", "temporarily_unavailable"]
)
def test_transient_oauth_errors_are_retryable_whatever_the_status(
    emulator: GoogleEmulator, oauth_error: str
) -> None:
    emulator.fail_next(1, 400, error=oauth_error, endpoint="token")
    with pytest.raises(TokenEndpointError) as info:
        Token.fetch(RefreshToken(emulator.authorized_user()))
    assert info.value.retryable is True


@pytest.mark.parametrize("source", ["token", "sts"])
def test_a_400_whose_description_is_internal_failure_is_retryable_as_in_google_auth(
    emulator: GoogleEmulator, source: str
) -> None:
    # What Google's STS answers when it fails inside: 400 {"error_description": ...}.
    body = '{"error": "invalid_request", "error_description": "internal_failure"}'
    emulator.fail_next(1, 400, body=body, endpoint=source)
    chosen = RefreshToken(emulator.authorized_user())
    if source == "sts":
        from goth_actors import WorkloadIdentity

        chosen = WorkloadIdentity(emulator.workload_identity())  # type: ignore[assignment]
    with pytest.raises(TokenEndpointError) as info:
        Token.fetch(chosen)
    assert (info.value.status, info.value.retryable) == (400, True)


@pytest.mark.slow  # google-auth sleeps about a second before its retry
def test_google_auth_retries_the_same_internal_failure_answer_itself(
    emulator: GoogleEmulator,
) -> None:
    from _google_auth import auth_request
    from google.oauth2 import credentials as user_credentials

    user = emulator.authorized_user()
    body = '{"error": "invalid_request", "error_description": "internal_failure"}'
    emulator.fail_next(1, 400, body=body, endpoint="token")
    theirs = user_credentials.Credentials.from_authorized_user_info(user).with_token_uri(
        user["token_uri"]
    )
    with auth_request() as request:
        theirs.refresh(request)  # its own retry of a retryable answer: no error reaches us
    assert len(emulator.requests_to("token")) == 2  # the 400, then the token


def test_invalid_grant_is_never_retryable(emulator: GoogleEmulator) -> None:
    emulator.fail_next(1, 503, error="invalid_grant", endpoint="token")
    with pytest.raises(TokenEndpointError) as info:
        Token.fetch(RefreshToken(emulator.authorized_user()))
    assert info.value.retryable is False


def test_a_revoked_refresh_token_is_invalid_grant_without_echoing_secrets(
    emulator: GoogleEmulator,
) -> None:
    user = emulator.authorized_user()
    emulator.revoke(user["refresh_token"])
    with pytest.raises(TokenEndpointError) as info:
        Token.fetch(RefreshToken(user))
    error = info.value
    assert (error.status, error.error, error.retryable) == (400, "invalid_grant", False)
    assert error.error_description
    for secret in (user["refresh_token"], user["client_secret"]):
        assert secret not in str(error)
        assert secret not in error.body


def test_a_revoked_service_account_is_invalid_grant(emulator: GoogleEmulator) -> None:
    key = emulator.service_account()
    emulator.revoke(key["client_email"])
    with pytest.raises(TokenEndpointError) as info:
        Token.fetch(ServiceAccount(key))
    assert info.value.error == "invalid_grant"
    assert "eyJ" not in str(info.value)


def test_retry_after_in_seconds_is_read(emulator: GoogleEmulator) -> None:
    emulator.fail_next(1, 429, retry_after=7, endpoint="token")
    with pytest.raises(TokenEndpointError) as info:
        Token.fetch(ServiceAccount(emulator.service_account()))
    assert info.value.retry_after == 7.0
    assert info.value.retryable is True


def test_retry_after_as_an_http_date_is_read(emulator: GoogleEmulator) -> None:
    when = email.utils.formatdate(1_000_030.0, usegmt=True)
    emulator.fail_next(1, 503, retry_after=when, endpoint="token")
    with pytest.raises(TokenEndpointError) as info:
        Token.fetch(ServiceAccount(emulator.service_account()), clock=lambda: 1_000_000.0)
    assert info.value.retry_after == pytest.approx(30.0)


def test_a_refused_connection_is_a_retryable_transport_error(emulator: GoogleEmulator) -> None:
    source = ServiceAccount(emulator.service_account())
    emulator.down()
    with pytest.raises(TransportError) as info:
        Token.fetch(source)
    assert info.value.retryable is True
    assert info.value.__cause__ is not None
    emulator.up()
    assert Token.fetch(source).token


def test_a_response_slower_than_the_timeout_is_a_transport_error(
    emulator: GoogleEmulator,
) -> None:
    emulator.delay(1.0)
    with pytest.raises(TransportError, match="ReadTimeout"):  # a stalled test process still
        Token.fetch(Metadata(url=emulator.metadata_url), timeout=0.3)  # connects within 0.3 s


# Tokens that no redaction pattern recognises: only summing a 200 up as its keys and their
# types keeps them out of the error.
NEW_TOKEN = "tok.Short-123/abc"
ROTATED = "rot.Ated-456/def"


def _answer(**fields: object) -> bytes:
    return json.dumps(fields).encode()


@pytest.mark.parametrize(
    ("body", "problem"),
    [
        (b"<html>hello</html>", "not JSON"),
        (f"<html>{NEW_TOKEN}</html>".encode(), "not JSON"),
        (_answer(a=[NEW_TOKEN]), "without an access_token"),
        (f"[{NEW_TOKEN!r}, 2]".replace("'", '"').encode(), "not an object"),
        (_answer(token_type="Bearer", refresh_token=ROTATED), "without an access_token"),
        (_answer(access_token=NEW_TOKEN), r"expires_in \(missing\)"),
        (
            _answer(access_token=NEW_TOKEN, expires_in=0, refresh_token=ROTATED),
            "nonsensical expires_in",
        ),
        (_answer(access_token=NEW_TOKEN, expires_in=-5), "nonsensical expires_in"),
        (_answer(access_token=NEW_TOKEN, expires_in="soon"), "nonsensical expires_in"),
        (_answer(access_token=NEW_TOKEN, expires_in=1e12), "nonsensical expires_in"),
        (_answer(access_token=NEW_TOKEN, expires_in=10, token_type="a b"), "token_type"),
        (_answer(access_token=12, expires_in=10, refresh_token=ROTATED), "not a string"),
        (_answer(id_token=NEW_TOKEN), "not a JWT"),
    ],
)
def test_a_200_that_is_not_a_usable_token_is_not_retryable(
    emulator: GoogleEmulator, body: bytes, problem: str
) -> None:
    emulator.respond_next(1, 200, body, endpoint="token")
    with pytest.raises(TokenEndpointError, match=problem) as info:
        Token.fetch(ServiceAccount(emulator.service_account()))
    assert info.value.retryable is False
    assert info.value.status == 200
    for secret in (NEW_TOKEN, ROTATED):
        assert secret not in str(info.value)
        assert secret not in info.value.body
    if body.startswith(b"{"):  # a JSON object is summed up as its keys and their types
        assert info.value.body.startswith("{'")


def test_expires_in_may_be_a_numeric_string(emulator: GoogleEmulator) -> None:
    emulator.respond_next(1, 200, b'{"access_token": "ya29.x", "expires_in": "120"}')
    token = Token.fetch(ServiceAccount(emulator.service_account()), clock=lambda: 1000.0)
    assert token.expires == 1120.0


def test_a_body_over_one_mebibyte_is_refused(emulator: GoogleEmulator) -> None:
    emulator.respond_next(1, 200, b"x" * (2 * 1024 * 1024), endpoint="token")
    with pytest.raises(TokenEndpointError, match="larger than 1048576 bytes"):
        Token.fetch(ServiceAccount(emulator.service_account()))


def test_a_redirect_is_never_followed(emulator: GoogleEmulator) -> None:
    emulator.respond_next(
        1, 302, b"", headers={"Location": f"{emulator.url}/elsewhere?secret=1"}, endpoint="token"
    )
    with pytest.raises(TokenEndpointError, match="redirects are never followed") as info:
        Token.fetch(ServiceAccount(emulator.service_account()))
    assert info.value.status == 302
    assert info.value.retryable is False
    assert "secret" not in str(info.value)
    assert len(emulator.requests) == 1


def test_a_metadata_answer_without_the_flavor_header_is_refused(
    emulator: GoogleEmulator,
) -> None:
    emulator.respond_next(
        1, 200, b'{"access_token": "ya29.x", "expires_in": 100}', endpoint="metadata"
    )
    with pytest.raises(TokenEndpointError, match="Metadata-Flavor") as info:
        Token.fetch(Metadata(url=emulator.metadata_url))
    assert info.value.retryable is False


def test_an_error_body_excerpt_never_carries_a_token(emulator: GoogleEmulator) -> None:
    body = b'{"error": "invalid_request", "error_description": "bad ya29.a0secretsecret"}'
    emulator.respond_next(1, 400, body, endpoint="token")
    with pytest.raises(TokenEndpointError) as info:
        Token.fetch(ServiceAccount(emulator.service_account()))
    assert "a0secretsecret" not in str(info.value)
    assert "a0secretsecret" not in info.value.body
    assert "a0secretsecret" not in (info.value.error_description or "")


# ------------------------------------------------------------------------- the client contract


def test_a_custom_http_client_gets_the_contract_and_may_return_a_mapping(
    emulator: GoogleEmulator,
) -> None:
    calls: list[dict[str, Any]] = []

    def client(
        *, method: str, url: str, headers: Mapping[str, str], body: bytes, timeout: float
    ) -> HttpResponse:
        calls.append({"method": method, "url": url, "headers": headers, "timeout": timeout})
        real = default_http_client(
            method=method, url=url, headers=headers, body=body, timeout=timeout
        )
        import json

        assert isinstance(real.body, bytes)
        return HttpResponse(real.status, [("X-Test", "1")], json.loads(real.body))

    token = Token.fetch(RefreshToken(emulator.authorized_user()), http_client=client, timeout=3.0)
    assert emulator.token_info(token.token) is not None
    assert calls[0]["method"] == "POST"
    assert calls[0]["url"] == emulator.token_url
    assert 2.0 < calls[0]["timeout"] <= 3.0  # the time left of the exchange's deadline


def test_an_exception_from_the_http_client_becomes_a_transport_error() -> None:
    def broken(**_: Any) -> HttpResponse:
        raise ConnectionResetError("peer went away")

    with pytest.raises(TransportError, match="ConnectionResetError") as info:
        Token.fetch(Metadata(url="http://127.0.0.1:9"), http_client=broken)
    cause = info.value.__cause__
    assert isinstance(cause, RedactedCause)  # a stand-in: the original could quote a secret
    assert cause.type_name == "ConnectionResetError"
    assert "peer went away" in str(cause)
    assert info.value.__context__ is None


def _answering(status: int, body: bytes | str) -> Any:
    def client(**_: Any) -> HttpResponse:
        return HttpResponse(status, {}, body)

    return client


# A client secret no pattern recognises (slashes and dots break every long run): only its
# being one of the exchange's secrets redacts it.
PLAIN_SECRET = "Zq9/Wx7.Pk3/Lm5.Rt8/Vb2"


def test_a_secret_across_the_excerpts_cut_is_redacted_whole() -> None:
    source = RefreshToken({"client_id": "c", "client_secret": PLAIN_SECRET, "refresh_token": "r"})
    # The secret starts 10 characters before the 800th: a cut first would keep those 10.
    body = "x " * 395 + PLAIN_SECRET + " and then the end of the body"
    with pytest.raises(TokenEndpointError) as info:
        Token.fetch(source, http_client=_answering(400, body))
    assert PLAIN_SECRET[:8] not in info.value.body
    assert PLAIN_SECRET[:8] not in str(info.value)


def test_a_hostile_mebibyte_of_error_body_is_redacted_in_linear_time() -> None:
    source = RefreshToken({"client_id": "c", "client_secret": PLAIN_SECRET, "refresh_token": "r"})
    for body in ("eyJé" * 262144, "-----BEGIN x-----" + "-----END" * 131072, "a" * 31 + "/"):
        with pytest.raises(TokenEndpointError) as info:
            Token.fetch(
                source, http_client=_answering(400, body * (1 if len(body) > 99 else 32768))
            )
        assert len(info.value.body) <= 200


@pytest.mark.parametrize("timeout", [float("nan"), float("inf"), True, 0, -1.0, "5", 1e300])
def test_a_timeout_that_is_no_number_of_seconds_is_refused_before_any_request(
    timeout: Any,
) -> None:
    calls: list[object] = []

    def client(**request: Any) -> HttpResponse:
        calls.append(request)
        return HttpResponse(503)

    with pytest.raises(ConfigError) as info:
        Token.fetch(Metadata(url="http://127.0.0.1:9"), http_client=client, timeout=timeout)
    assert info.value.field == "timeout"
    assert calls == []

"""What goth_actors does not take, and says so: Google Distributed Cloud Hosted service
accounts, API keys and downscoped credentials (issue 13's "not in scope"). Each is a clear
refusal naming the type, never a silent wrong request; downscoping stays google-auth's, on top
of the google-auth adapter."""

from __future__ import annotations

import json
from pathlib import Path
from urllib.parse import unquote

import pytest
from _google_auth import auth_request
from google.auth import downscoped
from google.auth import exceptions as google_exceptions

import goth_actors
from goth_actors import ConfigError, ServiceAccount, default_source, source_from_credentials
from goth_actors.integrations.google_auth import Credentials
from goth_actors.testing import GoogleEmulator

GDCH = {
    "type": "gdch_service_account",
    "format_version": "1",
    "project": "p",
    "private_key_id": "k",
    "private_key": "-----BEGIN EC PRIVATE KEY-----\nSECRET-KEY\n-----END EC PRIVATE KEY-----",
    "name": "sa",
    "ca_cert_path": "/nonexistent/ca.pem",
    "token_uri": "https://service-identity.example/authenticate",
}
API_KEY = {"type": "api_key", "key": "AIzaSECRET-API-KEY"}


@pytest.mark.parametrize(
    ("info", "reason"),
    [(GDCH, "Google Distributed Cloud Hosted"), (API_KEY, "an API key is no OAuth credential")],
    ids=["gdch_service_account", "api_key"],
)
def test_gdch_and_api_key_files_are_refused_by_type_without_echoing_them(
    tmp_path: Path, info: dict[str, str], reason: str
) -> None:
    path = tmp_path / "adc.json"
    path.write_text(json.dumps(info))
    for attempt in (
        lambda: source_from_credentials(info),
        lambda: default_source(environ={"GOOGLE_APPLICATION_CREDENTIALS": str(path)}),
    ):
        with pytest.raises(ConfigError, match=f"is not supported \\({reason}\\)") as raised:
            attempt()
        assert raised.value.field == "credentials.type"
        assert "'service_account'" in str(raised.value)  # what is supported instead
        assert "SECRET" not in str(raised.value)


@pytest.mark.usefixtures("shutdown_servers")
def test_google_auths_downscoped_credentials_take_their_source_token_from_the_server(
    emulator: GoogleEmulator,
) -> None:
    # Downscoping is google-auth's: its downscoped credentials over the adapter send the
    # server's token to STS. (The emulator's STS does not downscope: it refuses the exchange.)
    key = emulator.service_account()
    goth_actors.start_link(name="sa", source=ServiceAccount(key), prefetch="sync")
    rule = downscoped.AccessBoundaryRule(
        available_resource="//storage.googleapis.com/projects/_/buckets/a-bucket",
        available_permissions=["inRole:roles/storage.objectViewer"],
    )
    theirs = downscoped.Credentials(
        source_credentials=Credentials("sa"),
        credential_access_boundary=downscoped.CredentialAccessBoundary(rules=[rule]),
    )
    theirs._sts_client._token_exchange_endpoint = emulator.sts_url  # Google's STS otherwise
    with auth_request() as request, pytest.raises(google_exceptions.OAuthError):
        theirs.refresh(request)
    form = emulator.requests_to("sts")[-1].form
    assert form["subject_token"] == goth_actors.fetch("sa").token
    assert "accessBoundary" in json.loads(unquote(form["options"]))  # quoted by google-auth

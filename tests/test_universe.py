"""Universe domains: sources carry them (key file, caller, ``GOOGLE_CLOUD_UNIVERSE_DOMAIN``,
the metadata server), default endpoints derive from them, a service account outside
``googleapis.com`` uses a self-signed JWT as google-auth does, and the google-auth adapter
reports it."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from google.auth import compute_engine
from google.oauth2 import service_account

import goth_actors
from goth_actors import (
    ConfigError,
    Impersonated,
    Metadata,
    RefreshToken,
    ServiceAccount,
    Token,
    TokenEndpointError,
    default_source,
    universe_domain,
)
from goth_actors.integrations.google_auth import Credentials
from goth_actors.testing import GoogleEmulator

OTHER = "example-universe.test"


def test_a_key_file_outside_googleapis_uses_a_self_signed_jwt_as_google_auth_does() -> None:
    with GoogleEmulator() as emulator:
        emulator.universe_domain = OTHER
        key = emulator.service_account()
        source = ServiceAccount(key)
        assert (universe_domain(source), source.self_signed_jwt, source.token_url) == (
            OTHER,
            True,
            None,
        )
        token = Token.fetch(source)
        assert emulator.token_info(token.token) is not None
        assert emulator.requests == []
        theirs = service_account.Credentials.from_service_account_info(key)
        assert (theirs.universe_domain, theirs._always_use_jwt_access) == (OTHER, True)
        with pytest.raises(ConfigError, match="must not be False") as info:
            ServiceAccount(key, self_signed_jwt=False)
        assert info.value.field == "self_signed_jwt"


def test_default_endpoints_derive_from_the_universe(emulator: GoogleEmulator) -> None:
    user = {k: v for k, v in emulator.authorized_user().items() if k != "token_uri"}
    source = RefreshToken({**user, "universe_domain": OTHER}, universe_domain=OTHER)
    assert source.token_url == f"https://oauth2.{OTHER}/token"
    impersonated = Impersonated(source, "sa@p.iam.gserviceaccount.com")
    assert universe_domain(impersonated) == OTHER
    assert impersonated.iam_url == f"https://iamcredentials.{OTHER}"


def test_google_cloud_universe_domain_is_read_by_default_source(
    emulator: GoogleEmulator, tmp_path: Path
) -> None:
    user = {**emulator.authorized_user(), "universe_domain": OTHER}
    del user["token_uri"]  # the universe's own token endpoint, then
    path = tmp_path / "adc.json"
    path.write_text(json.dumps(user))
    environ = {"GOOGLE_APPLICATION_CREDENTIALS": str(path), "HOME": str(tmp_path)}
    with pytest.raises(ConfigError, match="universe_domain"):
        default_source(environ=environ)  # a universe only the file names
    chosen = default_source(environ={**environ, "GOOGLE_CLOUD_UNIVERSE_DOMAIN": OTHER})
    assert isinstance(chosen, RefreshToken)
    assert (chosen.universe_domain, chosen.token_url) == (OTHER, f"https://oauth2.{OTHER}/token")
    with pytest.raises(ConfigError, match="credentials are for universe"):
        default_source(environ={**environ, "GOOGLE_CLOUD_UNIVERSE_DOMAIN": "googleapis.com"})


def test_the_metadata_server_is_asked_for_its_universe(emulator: GoogleEmulator) -> None:
    source = Metadata(url=emulator.metadata_url)
    assert source.universe_domain is None  # known only by asking
    assert universe_domain(source) == "googleapis.com"
    emulator.universe_domain = OTHER
    assert universe_domain(source) == OTHER
    assert (
        universe_domain(Metadata(url=emulator.metadata_url, universe_domain="x.test")) == "x.test"
    )


def test_a_metadata_server_without_the_universe_path_means_googleapis(
    emulator: GoogleEmulator,
) -> None:
    emulator.respond_next(1, 404, "Not Found", {"Metadata-Flavor": "Google"}, endpoint="metadata")
    assert universe_domain(Metadata(url=emulator.metadata_url)) == "googleapis.com"
    emulator.fail_next(1, 503, endpoint="metadata")
    with pytest.raises(TokenEndpointError):
        universe_domain(Metadata(url=emulator.metadata_url))


def test_google_auth_reads_the_same_universe_from_the_metadata_server(
    emulator: GoogleEmulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    from google.auth.compute_engine import _metadata

    emulator.universe_domain = OTHER
    monkeypatch.setenv("GCE_METADATA_HOST", emulator.metadata_host)
    monkeypatch.setattr(_metadata, "_GCE_METADATA_HOST", emulator.metadata_host)
    theirs = compute_engine.Credentials()
    assert theirs.universe_domain == universe_domain(Metadata(url=emulator.metadata_url))


@pytest.mark.usefixtures("shutdown_servers")
def test_the_google_auth_adapter_reports_the_universe_and_accepts_only_it(
    emulator: GoogleEmulator,
) -> None:
    emulator.universe_domain = OTHER
    goth_actors.start_link(name="md", source=Metadata(url=emulator.metadata_url), prefetch="sync")
    credentials = Credentials("md")
    assert credentials.universe_domain == OTHER
    assert credentials.with_universe_domain(OTHER) is credentials
    with pytest.raises(ValueError, match=r"not 'googleapis\.com'"):
        credentials.with_universe_domain("googleapis.com")
    assert credentials.requires_scopes is False
    assert credentials.with_scopes(["https://www.googleapis.com/auth/pubsub"]) is credentials


@pytest.mark.usefixtures("shutdown_servers")
def test_the_adapters_universe_read_before_its_server_starts_is_not_kept(
    emulator: GoogleEmulator,
) -> None:
    emulator.universe_domain = OTHER
    credentials = Credentials("later")  # built before the server, as in some app set-ups
    assert credentials.universe_domain == "googleapis.com"  # no server yet: the default
    goth_actors.start_link(
        name="later", source=ServiceAccount(emulator.service_account()), prefetch="sync"
    )
    assert credentials.universe_domain == OTHER


@pytest.mark.usefixtures("shutdown_servers")
def test_the_adapter_reports_the_universe_of_the_server_now_under_its_name(
    emulator: GoogleEmulator,
) -> None:
    goth_actors.start_link(
        name="tenant", source=ServiceAccount(emulator.service_account()), prefetch="sync"
    )
    credentials = Credentials("tenant")
    assert credentials.universe_domain == "googleapis.com"
    goth_actors.stop("tenant")
    emulator.universe_domain = OTHER
    goth_actors.start_link(
        name="tenant", source=ServiceAccount(emulator.service_account()), prefetch="sync"
    )
    assert credentials.universe_domain == OTHER

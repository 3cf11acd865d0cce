"""Where a credential may be sent: the endpoint policy for URLs from credential files.

A hostile ``external_account`` file used to have the VM's metadata token (or a local file)
posted as its subject token to any ``token_url``, over plain http:// too. Now every URL a
file names that a credential is *sent to* must be https:// (http:// only to loopback) and,
unless the caller opts out with ``allow_custom_endpoints=True``, one of Google's token
services in a universe the caller trusts, or loopback.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

import pytest

import goth_actors
from goth_actors import (
    ConfigError,
    Impersonated,
    Metadata,
    RefreshToken,
    ServiceAccount,
    WorkloadIdentity,
    default_source,
    source_from_credentials,
)
from goth_actors.testing import GoogleEmulator

AUDIENCE = "//iam.googleapis.com/projects/1/locations/global/workloadIdentityPools/pool/providers/p"
IMPERSONATE = "/v1/projects/-/serviceAccounts/sa@p.iam.gserviceaccount.com:generateAccessToken"


def _external(**changes: Any) -> dict[str, Any]:
    credentials: dict[str, Any] = {
        "type": "external_account",
        "audience": AUDIENCE,
        "subject_token_type": "urn:ietf:params:oauth:token-type:jwt",
        "token_url": "https://sts.googleapis.com/v1/token",
        "credential_source": {"file": "/var/run/token"},
    }
    credentials.update(changes)
    return credentials


def _user(**changes: Any) -> dict[str, Any]:
    return {
        "type": "authorized_user",
        "client_id": "id",
        "client_secret": "secret",
        "refresh_token": "1//refresh",
        **changes,
    }


def _impersonated_file(url: str) -> dict[str, Any]:
    return {
        "type": "impersonated_service_account",
        "service_account_impersonation_url": url,
        "source_credentials": _user(),
    }


HOSTILE = "https://attacker.example"


@pytest.mark.parametrize(
    ("credentials", "field"),
    [
        (_external(token_url=f"{HOSTILE}/v1/token"), "credentials.token_url"),
        (
            _external(service_account_impersonation_url=f"{HOSTILE}{IMPERSONATE}"),
            "credentials.service_account_impersonation_url",
        ),
        (_external(token_info_url=f"{HOSTILE}/v1/introspect"), "credentials.token_info_url"),
        (_user(token_uri=f"{HOSTILE}/token"), "credentials.token_uri"),
        (
            _impersonated_file(f"{HOSTILE}{IMPERSONATE}"),
            "credentials.service_account_impersonation_url",
        ),
    ],
    ids=["token_url", "impersonation", "token_info_url", "user token_uri", "impersonated file"],
)
def test_a_credential_file_cannot_send_a_credential_to_a_foreign_host(
    credentials: dict[str, Any], field: str
) -> None:
    with pytest.raises(ConfigError, match="allow_custom_endpoints=True") as info:
        source_from_credentials(credentials)
    assert info.value.field == field
    assert "attacker.example" in str(info.value)
    # The explicit opt-out, on the function and on the source, accepts the private endpoint.
    assert source_from_credentials(credentials, allow_custom_endpoints=True)


def test_a_service_accounts_token_uri_is_policed_too(rsa_private_key_pem: str) -> None:
    key = {
        "type": "service_account",
        "client_email": "sa@p.iam.gserviceaccount.com",
        "private_key": rsa_private_key_pem,
        "token_uri": "https://attacker.example/token",
    }
    with pytest.raises(ConfigError) as info:
        ServiceAccount(key)
    assert info.value.field == "credentials.token_uri"
    assert ServiceAccount(key, allow_custom_endpoints=True).token_url == key["token_uri"]


@pytest.mark.parametrize(
    "url",
    [
        "http://sts.googleapis.com/v1/token",  # Google's host, but in clear text
        "http://10.0.0.8/v1/token",
        "http://metadata.google.internal/v1/token",
    ],
)
def test_plain_http_is_refused_except_to_loopback_even_with_the_opt_out(url: str) -> None:
    for allow in (False, True):
        with pytest.raises(ConfigError, match="plain http://") as info:
            WorkloadIdentity(_external(token_url=url), allow_custom_endpoints=allow)
        assert info.value.field == "credentials.token_url"


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:8080/v1/token",
        "http://127.8.9.10/v1/token",
        "http://[::1]:8080/v1/token",
        "http://localhost:8080/v1/token",
        "https://sts.googleapis.com/v1/token",
        "https://sts.mtls.googleapis.com/v1/token",
        "https://us-east1-sts.googleapis.com/v1/token",
        "https://sts.us-east1.rep.googleapis.com/v1/token",
        "https://sts.europe-west4.googleapis.com/v1/token",
        "https://sts-xyz.p.googleapis.com/v1/token",
        "https://sts-xyz.p.mtls.googleapis.com/v1/token",
        "https://oauth2.googleapis.com/token",
        "https://www.googleapis.com/oauth2/v4/token",
        "https://www.googleapis.com/oauth2/v3/token",
        "https://accounts.google.com/o/oauth2/token",
    ],
)
def test_googles_token_services_and_loopback_are_accepted(url: str) -> None:
    assert WorkloadIdentity(_external(token_url=url)).token_url == url


@pytest.mark.parametrize(
    "url",
    [
        # www.googleapis.com also serves Cloud Storage's upload API: anyone's bucket.
        "https://www.googleapis.com/upload/storage/v1/b/attacker/o?uploadType=media&name=loot",
        "https://www.googleapis.com/storage/v1/b/attacker/o",
        "https://www.googleapis.com/oauth2/v4/token/../../../upload/storage/v1/b/attacker/o",
        "https://accounts.google.com/o/oauth2/auth",
        "https://oauth2.googleapis.com/upload/storage/v1/b/attacker/o",
        "https://sts.googleapis.com/v1/projects/attacker",
        "https://iamcredentials.googleapis.com/v1/projects/-/serviceAccounts/a@b:signBlob",
        # A bucket called "sts" is a host under storage.googleapis.com: not a region.
        "https://sts.storage.googleapis.com/v1/token",
        "https://oauth2.storage.googleapis.com/token",
    ],
)
def test_googles_hosts_receive_a_credential_only_at_their_token_paths(url: str) -> None:
    with pytest.raises(ConfigError, match="allow_custom_endpoints=True") as info:
        RefreshToken(_user(token_uri=url))
    assert info.value.field == "credentials.token_uri"
    with pytest.raises(ConfigError) as info:
        WorkloadIdentity(_external(token_url=url))
    assert info.value.field == "credentials.token_url"


@pytest.mark.parametrize(
    "url",
    [
        "https://storage.googleapis.com/a-bucket/token",  # Google's, but it serves anyone
        "https://sts.googleapis.com.attacker.example/v1/token",
        "https://sts.googleapis.com@attacker.example/v1/token",
        "https://attacker.example/sts.googleapis.com/v1/token",
        "https://sts.googleapis.com\n.attacker.example/v1/token",
        "ftp://sts.googleapis.com/v1/token",
    ],
)
def test_look_alike_hosts_are_refused(url: str) -> None:
    with pytest.raises(ConfigError) as info:
        WorkloadIdentity(_external(token_url=url))
    assert info.value.field == "credentials.token_url"


def test_a_universe_only_the_file_names_is_not_trusted_until_the_caller_names_it() -> None:
    credentials = _external(
        token_url="https://sts.example-universe.test/v1/token",
        universe_domain="example-universe.test",
    )
    with pytest.raises(ConfigError, match=r"universe_domain='example-universe\.test'"):
        WorkloadIdentity(credentials)
    source = WorkloadIdentity(credentials, universe_domain="example-universe.test")
    assert source.universe_domain == "example-universe.test"
    with pytest.raises(ConfigError, match="credentials are for universe") as info:
        WorkloadIdentity(credentials, universe_domain="googleapis.com")
    assert info.value.field == "universe_domain"


@pytest.mark.parametrize("value", ["yes", 1, None])
def test_the_opt_out_is_a_real_bool_never_a_truthy_value(value: object) -> None:
    with pytest.raises(ConfigError) as info:
        WorkloadIdentity(_external(), allow_custom_endpoints=value)  # type: ignore[arg-type]
    assert info.value.field == "allow_custom_endpoints"


def test_an_explicit_url_in_code_is_the_callers_choice_but_never_clear_text() -> None:
    user = _user()
    assert RefreshToken(user, url="https://proxy.internal.example/token").token_url
    with pytest.raises(ConfigError) as info:
        RefreshToken(user, url="http://proxy.internal.example/token")
    assert info.value.field == "url"
    source = RefreshToken(user)
    assert Impersonated(source, "sa@p.iam.gserviceaccount.com", url="https://iam.example").url
    with pytest.raises(ConfigError):
        Impersonated(source, "sa@p.iam.gserviceaccount.com", url="http://iam.example")


def test_where_a_subject_token_is_read_from_is_not_restricted() -> None:
    credentials = _external(
        credential_source={
            "url": "http://169.254.169.254/computeMetadata/v1/token",
            "headers": {"Metadata-Flavor": "Google"},
        }
    )
    assert WorkloadIdentity(credentials)


def test_a_hostile_adc_file_is_refused_before_anything_is_read_or_sent(
    emulator: GoogleEmulator, tmp_path: Path
) -> None:
    # The attack: read the VM's own metadata token, post it to the attacker as a subject token.
    hostile = _external(
        token_url=f"{HOSTILE}/v1/token",
        credential_source={
            "url": f"{emulator.metadata_url}/computeMetadata/v1/instance/service-accounts/"
            "default/token",
            "headers": {"Metadata-Flavor": "Google"},
            "format": {"type": "json", "subject_token_field_name": "access_token"},
        },
    )
    path = tmp_path / "adc.json"
    path.write_text(json.dumps(hostile))
    environ = {"GOOGLE_APPLICATION_CREDENTIALS": str(path), "HOME": str(tmp_path)}
    with pytest.raises(ConfigError, match=r"attacker\.example"):
        default_source(environ=environ)
    assert emulator.request_count() == 0
    # An environment variable cannot opt out; only the keyword in code does.
    environ["GOOGLE_EXTERNAL_ACCOUNT_ALLOW_CUSTOM_ENDPOINTS"] = "1"
    with pytest.raises(ConfigError):
        default_source(environ=environ)
    assert default_source(environ=environ, allow_custom_endpoints=True)


def test_no_endpoint_is_derived_from_a_universe_that_only_a_file_names(
    emulator: GoogleEmulator,
) -> None:
    # The user's token endpoint is loopback (fine), but the file also names a universe: IAM
    # in that universe must not receive the user's token because the file said so.
    hostile = {**emulator.authorized_user(), "universe_domain": "attacker.example"}
    source = RefreshToken(hostile)
    with pytest.raises(ConfigError, match=r"universe_domain='attacker\.example'") as info:
        Impersonated(source, "sa@p.iam.gserviceaccount.com")
    assert info.value.field == "url"
    with pytest.raises(ConfigError) as info:
        goth_actors.signer(source, email="sa@p.iam.gserviceaccount.com")
    assert info.value.field == "iam_url"
    trusted = RefreshToken(hostile, universe_domain="attacker.example")  # the caller's choice
    impersonated = Impersonated(trusted, "sa@p.iam.gserviceaccount.com")
    assert impersonated.iam_url == "https://iamcredentials.attacker.example"
    assert Impersonated(source, "sa@p.iam.gserviceaccount.com", url=emulator.iam_url).url


def test_a_google_universe_derives_endpoints_freely(emulator: GoogleEmulator) -> None:
    source = RefreshToken(emulator.authorized_user())
    assert Impersonated(source, "sa@p.iam.gserviceaccount.com").iam_url == (
        "https://iamcredentials.googleapis.com"
    )


EVIL = "evil.example"
LOOPBACK = "http://127.0.0.1:9"
TARGET = "sa@p.iam.gserviceaccount.com"


def _sources_of_a_file_naming_a_universe(pem: str) -> dict[str, goth_actors.Source]:
    """One source of each kind from credentials that name EVIL, endpoints on loopback."""
    user = _user(token_uri=f"{LOOPBACK}/token", universe_domain=EVIL)
    workforce = {
        **_user(token_url=f"{LOOPBACK}/v1/oauthtoken", universe_domain=EVIL),
        "type": "external_account_authorized_user",
    }
    external = _external(token_url=f"{LOOPBACK}/v1/token", universe_domain=EVIL)
    key = {
        "type": "service_account",
        "client_email": TARGET,
        "private_key": pem,
        "universe_domain": EVIL,
    }
    impersonated = {
        **_impersonated_file(f"{LOOPBACK}{IMPERSONATE}"),
        "source_credentials": user,
        "universe_domain": EVIL,
    }
    return {
        "authorized_user": RefreshToken(user),
        "workforce_user": source_from_credentials(workforce),
        "external_account": WorkloadIdentity(external),
        "service_account": ServiceAccount(key),
        "impersonated file": source_from_credentials(impersonated),
        "impersonated": Impersonated(RefreshToken(user), TARGET, url=LOOPBACK),
    }


def _derives_from_the_universe(source: goth_actors.Source) -> bool:
    try:
        Impersonated(source, TARGET)
    except ConfigError as error:
        return error.field != "url"
    return True


def test_a_copy_made_with_replace_trusts_no_more_than_the_original(
    rsa_private_key_pem: str,
) -> None:
    # replace() passes every field back to the constructor: a universe the source had filled
    # in from its file used to come back as if the caller had named it, and be trusted.
    sources = _sources_of_a_file_naming_a_universe(rsa_private_key_pem)
    for kind, source in sources.items():
        assert not _derives_from_the_universe(source), kind
        copy = dataclasses.replace(source, quota_project_id="other-project")
        assert copy.quota_project_id == "other-project", kind
        assert not _derives_from_the_universe(copy), kind
        assert goth_actors.universe_domain(copy) == EVIL, kind
        with pytest.raises(ConfigError):
            goth_actors.signer(copy, email="other@p.iam.gserviceaccount.com")
    trusted = RefreshToken(_user(universe_domain=EVIL), universe_domain=EVIL)
    copy = dataclasses.replace(trusted, quota_project_id="other-project")
    assert Impersonated(copy, TARGET).iam_url == f"https://iamcredentials.{EVIL}"


def test_replace_gives_the_constructor_back_what_the_caller_passed(
    rsa_private_key_pem: str,
) -> None:
    for kind, source in _sources_of_a_file_naming_a_universe(rsa_private_key_pem).items():
        if kind != "impersonated file":
            assert source.universe_domain is None, kind
        assert dataclasses.replace(source).universe_domain == source.universe_domain, kind
    metadata = Metadata(universe_domain=EVIL)  # the caller's: trusted, and kept by replace()
    assert dataclasses.replace(metadata, quota_project_id="p").universe_domain == EVIL
    assert goth_actors.universe_domain(dataclasses.replace(metadata)) == EVIL


def test_an_impersonated_file_and_its_source_credentials_name_one_universe() -> None:
    credentials = {**_impersonated_file(f"{LOOPBACK}{IMPERSONATE}"), "universe_domain": EVIL}
    with pytest.raises(ConfigError, match="source_credentials are for universe") as info:
        source_from_credentials(credentials)
    assert info.value.field == "credentials.universe_domain"

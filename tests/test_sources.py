"""Sources validate at construction, name the bad field, and never echo a secret."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from goth_actors import (
    ConfigError,
    Metadata,
    RefreshToken,
    ServiceAccount,
    default_source,
    source_from_credentials,
)

CLOUD = "https://www.googleapis.com/auth/cloud-platform"


@pytest.fixture
def key_file(rsa_private_key_pem: str) -> dict[str, Any]:
    return {
        "type": "service_account",
        "client_email": "robot@project.iam.gserviceaccount.com",
        "private_key": rsa_private_key_pem,
        "private_key_id": "abc123",
    }


@pytest.fixture
def user_file() -> dict[str, Any]:
    return {
        "type": "authorized_user",
        "client_id": "client-id.apps.googleusercontent.com",
        "client_secret": "GOCSPX-very-secret",
        "refresh_token": "1//refresh-secret",
    }


def _assertion(source: ServiceAccount, now: float = 1_700_000_000.0) -> tuple[dict[str, Any], Any]:
    exchange = source.prepare(now)
    form = dict(pair.split("=", 1) for pair in exchange.body.decode().split("&"))
    token = form["assertion"]
    return jwt.get_unverified_header(token), jwt.decode(token, options={"verify_signature": False})


def test_service_account_signs_a_jwt_with_googles_claims(key_file: dict[str, Any]) -> None:
    source = ServiceAccount(key_file)
    header, claims = _assertion(source)
    assert header == {"alg": "RS256", "typ": "JWT", "kid": "abc123"}
    assert claims == {
        "iss": "robot@project.iam.gserviceaccount.com",
        "scope": CLOUD,
        "aud": "https://oauth2.googleapis.com/token",
        "iat": 1_700_000_000,
        "exp": 1_700_003_600,
    }


def test_the_jwt_verifies_with_the_service_accounts_public_key(key_file: dict[str, Any]) -> None:
    exchange = ServiceAccount(key_file).prepare(0.0)
    assertion = exchange.body.decode().split("assertion=")[1]
    private = serialization.load_pem_private_key(key_file["private_key"].encode(), None)
    assert isinstance(private, rsa.RSAPrivateKey)
    claims = jwt.decode(
        assertion,
        private.public_key(),
        algorithms=["RS256"],
        audience="https://oauth2.googleapis.com/token",
        options={"verify_exp": False, "verify_iat": False},
    )
    assert claims["iss"] == key_file["client_email"]


def test_the_request_is_a_form_encoded_jwt_bearer_grant(key_file: dict[str, Any]) -> None:
    exchange = ServiceAccount(key_file).prepare(0.0)
    assert exchange.method == "POST"
    assert exchange.headers["Content-Type"] == "application/x-www-form-urlencoded"
    assert exchange.body.startswith(
        b"grant_type=urn%3Aietf%3Aparams%3Aoauth%3Agrant-type%3Ajwt-bearer&assertion=ey"
    )


def test_no_kid_header_without_a_private_key_id(key_file: dict[str, Any]) -> None:
    del key_file["private_key_id"]
    header, _ = _assertion(ServiceAccount(key_file))
    assert "kid" not in header


def test_scopes_are_joined_by_one_space_and_sub_is_delegation(key_file: dict[str, Any]) -> None:
    source = ServiceAccount(key_file, scopes=("aaa", "bbb"), sub="bob@example.com")
    _, claims = _assertion(source)
    assert claims["scope"] == "aaa bbb"
    assert claims["sub"] == "bob@example.com"
    exchange = source.prepare(0.0)
    assert (exchange.scope, exchange.sub) == ("aaa bbb", "bob@example.com")


def test_claims_are_merged_over_the_defaults(key_file: dict[str, Any]) -> None:
    source = ServiceAccount(key_file, claims={"exp": 5, "extra": "yes"})
    _, claims = _assertion(source, now=0.0)
    assert claims["exp"] == 5
    assert claims["extra"] == "yes"
    assert claims["scope"] == CLOUD


def test_target_audience_asks_for_an_id_token_without_a_scope(key_file: dict[str, Any]) -> None:
    source = ServiceAccount(key_file, claims={"target_audience": "https://svc.example"})
    _, claims = _assertion(source)
    assert claims["target_audience"] == "https://svc.example"
    assert "scope" not in claims


def test_token_url_comes_from_url_then_token_uri_then_google(key_file: dict[str, Any]) -> None:
    assert ServiceAccount(key_file).token_url == "https://oauth2.googleapis.com/token"
    key_file["token_uri"] = "http://127.0.0.1:9/token"
    assert ServiceAccount(key_file).token_url == "http://127.0.0.1:9/token"
    source = ServiceAccount(key_file, url="http://127.0.0.1:10/t")
    assert source.token_url == "http://127.0.0.1:10/t"
    _, claims = _assertion(source)
    assert claims["aud"] == "http://127.0.0.1:10/t"


def test_a_single_scope_string_is_refused_with_a_hint(key_file: dict[str, Any]) -> None:
    # Goth issue 187: a scope string silently fell back to the default scope.
    with pytest.raises(ConfigError, match=r"did you mean scopes=\('https://x',\)") as info:
        ServiceAccount(key_file, scopes="https://x")  # type: ignore[arg-type]
    assert info.value.field == "scopes"


def test_an_unknown_keyword_is_a_type_error_naming_it_and_the_one_meant(
    key_file: dict[str, Any],
) -> None:
    with pytest.raises(TypeError, match=r"'scope'; did you mean 'scopes'\?"):
        ServiceAccount(key_file, scope=("x",))  # type: ignore[call-arg]
    with pytest.raises(TypeError, match=r"'target_audiance'; did you mean 'target_audience'\?"):
        ServiceAccount(key_file, target_audiance="x")  # type: ignore[call-arg]
    with pytest.raises(TypeError, match="'colour'; it takes account, url, audience, scopes"):
        Metadata(colour="blue")  # type: ignore[call-arg]


@pytest.mark.parametrize(
    ("call", "wrong", "meant"),
    [
        (
            lambda: source_from_credentials({"type": "service_account"}, scope=("x",)),
            "scope",
            "scopes",
        ),
        (lambda: default_source(environ={"HOME": "/nonexistent"}, acount="x"), "acount", "account"),
        (lambda: RefreshToken({}, quota_project="p"), "quota_project", "quota_project_id"),
    ],
)
def test_every_way_to_build_a_source_names_an_unknown_keyword(
    call: Any, wrong: str, meant: str
) -> None:
    with pytest.raises(TypeError, match=rf"'{wrong}'; did you mean '{meant}'\?"):
        call()


def test_scopes_in_claims_is_caught_as_a_typo(key_file: dict[str, Any]) -> None:
    # Goth issue 159: "scopes" in the claims instead of "scope".
    with pytest.raises(ConfigError, match="'scope'") as info:
        ServiceAccount(key_file, claims={"scopes": "x"})
    assert info.value.field == "claims"


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"client_email": None}, "credentials.client_email"),
        ({"client_email": 5}, "credentials.client_email"),
        ({"client_email": "  "}, "credentials.client_email"),
        ({"private_key": None}, "credentials.private_key"),
        ({"private_key": "not a pem"}, "credentials.private_key"),
        ({"private_key_id": 7}, "credentials.private_key_id"),
        ({"type": "authorized_user"}, "credentials.type"),
        ({"token_uri": "ftp://x"}, "credentials.token_uri"),
    ],
)
def test_bad_service_account_fields_are_named(
    key_file: dict[str, Any], change: dict[str, Any], field: str
) -> None:
    for key, value in change.items():
        if value is None:
            del key_file[key]
        else:
            key_file[key] = value
    with pytest.raises(ConfigError) as info:
        ServiceAccount(key_file)
    assert info.value.field == field


@pytest.mark.parametrize("credentials", [None, [], "key.json", 42])
def test_credentials_that_are_not_a_mapping_are_refused(credentials: object) -> None:
    with pytest.raises(ConfigError, match="must be a mapping") as info:
        ServiceAccount(credentials)  # type: ignore[arg-type]
    assert info.value.field == "credentials"


def test_a_truncated_pem_is_refused_without_echoing_it(key_file: dict[str, Any]) -> None:
    pem = key_file["private_key"]
    key_file["private_key"] = pem[: len(pem) // 2]
    with pytest.raises(ConfigError) as info:
        ServiceAccount(key_file)
    body = pem.splitlines()[3]
    assert body not in str(info.value)
    assert info.value.__cause__ is None


def test_a_non_rsa_key_is_refused(key_file: dict[str, Any]) -> None:
    ec_key = ec.generate_private_key(ec.SECP256R1())
    key_file["private_key"] = ec_key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()
    with pytest.raises(ConfigError, match="must be an RSA key"):
        ServiceAccount(key_file)


def test_an_encrypted_key_is_refused(key_file: dict[str, Any]) -> None:
    private = serialization.load_pem_private_key(key_file["private_key"].encode(), None)
    key_file["private_key"] = private.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.BestAvailableEncryption(b"pw"),
    ).decode()
    with pytest.raises(ConfigError, match="encrypted"):
        ServiceAccount(key_file)


def test_repr_shows_who_but_never_the_key(key_file: dict[str, Any]) -> None:
    text = repr(ServiceAccount(key_file))
    assert "robot@project.iam.gserviceaccount.com" in text
    assert "PRIVATE" not in text
    assert key_file["private_key"].splitlines()[2] not in text


def test_refresh_token_posts_the_three_fields(user_file: dict[str, Any]) -> None:
    exchange = RefreshToken(user_file).prepare(0.0)
    assert exchange.url == "https://oauth2.googleapis.com/token"
    assert exchange.body == (
        b"grant_type=refresh_token&refresh_token=1%2F%2Frefresh-secret"
        b"&client_id=client-id.apps.googleusercontent.com&client_secret=GOCSPX-very-secret"
    )
    text = repr(RefreshToken(user_file))
    assert "secret" not in text


@pytest.mark.parametrize("missing", ["client_id", "client_secret", "refresh_token"])
def test_refresh_token_names_a_missing_field(user_file: dict[str, Any], missing: str) -> None:
    del user_file[missing]
    with pytest.raises(ConfigError) as info:
        RefreshToken(user_file)
    assert info.value.field == f"credentials.{missing}"


def test_metadata_urls_are_built_and_encoded() -> None:
    assert Metadata(url="http://mds").prepare(0.0).url == (
        "http://mds/computeMetadata/v1/instance/service-accounts/default/token"
    )
    exchange = Metadata(account="a b@x", url="http://mds/", scopes=("s1", "s2")).prepare(0.0)
    assert exchange.url == (
        "http://mds/computeMetadata/v1/instance/service-accounts/a%20b@x/token?scopes=s1%2Cs2"
    )
    assert exchange.headers == {"Metadata-Flavor": "Google"}
    identity = Metadata(url="http://mds", audience="https://a.run.app/?x=1&y").prepare(0.0)
    assert identity.url.endswith(
        "/default/identity?audience=https%3A%2F%2Fa.run.app%2F%3Fx%3D1%26y&format=full"
    )


def test_metadata_host_comes_from_gce_metadata_host_when_fetching() -> None:
    source = Metadata()
    assert source.base_url({}) == "http://metadata.google.internal"
    assert source.base_url({"GCE_METADATA_HOST": "127.0.0.1:8080"}) == "http://127.0.0.1:8080"
    assert Metadata(url="http://explicit").base_url({"GCE_METADATA_HOST": "x"}) == "http://explicit"


def test_metadata_refuses_scopes_with_an_audience() -> None:
    with pytest.raises(ConfigError) as info:
        Metadata(audience="a", scopes=("s",))
    assert info.value.field == "scopes"


def test_source_from_credentials_picks_by_type(
    key_file: dict[str, Any], user_file: dict[str, Any]
) -> None:
    assert isinstance(source_from_credentials(key_file, scopes=("x",)), ServiceAccount)
    assert isinstance(source_from_credentials(user_file, scopes=("x",)), RefreshToken)
    with pytest.raises(ConfigError, match="'external_thing' is not supported") as info:
        source_from_credentials({"type": "external_thing"})
    assert info.value.field == "credentials.type"
    with pytest.raises(ConfigError, match="missing"):
        source_from_credentials({})
    with pytest.raises(ConfigError, match="Distributed Cloud"):  # out of scope: a clear refusal
        source_from_credentials({"type": "gdch_service_account"})


def test_default_source_reads_google_application_credentials(
    tmp_path: Path, key_file: dict[str, Any]
) -> None:
    path = tmp_path / "key.json"
    path.write_text(json.dumps(key_file))
    source = default_source(environ={"GOOGLE_APPLICATION_CREDENTIALS": str(path)})
    assert isinstance(source, ServiceAccount)


def test_default_source_names_a_missing_key_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="does not exist") as info:
        default_source(environ={"GOOGLE_APPLICATION_CREDENTIALS": str(tmp_path / "nope.json")})
    assert info.value.field == "GOOGLE_APPLICATION_CREDENTIALS"


def test_default_source_reads_gclouds_file_under_cloudsdk_config(
    tmp_path: Path, user_file: dict[str, Any]
) -> None:
    (tmp_path / "application_default_credentials.json").write_text(json.dumps(user_file))
    source = default_source(environ={"CLOUDSDK_CONFIG": str(tmp_path)})
    assert isinstance(source, RefreshToken)


def test_default_source_reads_gclouds_file_under_home(
    tmp_path: Path, user_file: dict[str, Any]
) -> None:
    folder = tmp_path / ".config" / "gcloud"
    folder.mkdir(parents=True)
    (folder / "application_default_credentials.json").write_text(json.dumps(user_file))
    assert isinstance(default_source(environ={"HOME": str(tmp_path)}), RefreshToken)


def test_default_source_falls_back_to_the_metadata_server(tmp_path: Path) -> None:
    source = default_source(environ={"HOME": str(tmp_path)}, scopes=("s",))
    assert source == Metadata(scopes=("s",))


def test_metadata_sources_are_equal_and_hash_alike_by_value() -> None:
    one = Metadata(scopes=["s"], universe_domain="example.test")
    same = Metadata(scopes=("s",), universe_domain="example.test")
    assert one == same
    assert hash(one) == hash(same)
    assert {one: "server"}[same] == "server"
    assert one != Metadata(scopes=("s",))
    assert one != Metadata(scopes=("s",), universe_domain="example.test", account="a@b.c")


def test_default_source_refuses_a_key_file_that_is_not_json(tmp_path: Path) -> None:
    path = tmp_path / "key.json"
    path.write_text("-----BEGIN PRIVATE KEY----- secret")
    with pytest.raises(ConfigError, match="not valid JSON") as info:
        default_source(environ={"GOOGLE_APPLICATION_CREDENTIALS": str(path)})
    assert "secret" not in str(info.value)


def test_a_metadata_source_with_a_fixed_url_builds_the_same_request_at_every_fetch() -> None:
    source = Metadata(url="http://mds/", scopes=("s1",))
    first, second = source.prepare(0.0), source.prepare(1.0, {"GCE_METADATA_HOST": "elsewhere"})
    assert first == second
    assert (
        first.url
        == "http://mds/computeMetadata/v1/instance/service-accounts/default/token?scopes=s1"
    )
    assert first.where == "http://mds/computeMetadata/v1/instance/service-accounts/default/token"
    moved = dataclasses.replace(source, account="a@b.c")
    assert "/a@b.c/token" in moved.prepare(0.0).url
    assert "_fixed" not in repr(source)


def test_a_metadata_source_without_a_url_reads_the_host_at_every_fetch() -> None:
    source = Metadata()
    assert source.prepare(0.0, {"GCE_METADATA_HOST": "one:1"}).url.startswith("http://one:1/")
    assert source.prepare(0.0, {"GCE_METADATA_HOST": "two:2"}).url.startswith("http://two:2/")

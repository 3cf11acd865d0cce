"""google-cloud-storage's ``generate_signed_url`` with the google-auth adapter's signing.

The URLs are made by google-cloud-storage itself (``storage.Client(credentials=...)``, as a
user writes it) and checked here from the URL alone: the string to sign is rebuilt by the
V4 and V2 specifications, and the signature verified with the signing account's public key
(the key file's own for local signing, the account's Google-managed key for ``signBlob``).
No request leaves 127.0.0.1: making a signed URL is local, or one ``signBlob`` at the emulator.
"""

from __future__ import annotations

import base64
import hashlib
from datetime import timedelta
from urllib.parse import parse_qsl, quote, urlsplit

import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from google.cloud import storage
from google.cloud.storage import _signing
from google.oauth2 import service_account as google_service_account

import goth_actors
from goth_actors import Impersonated, Metadata, RefreshToken, ServiceAccount, signer
from goth_actors.integrations.google_auth import Credentials
from goth_actors.testing import GoogleEmulator

TARGET = "signer@emulator-project.iam.gserviceaccount.com"
EXPIRES = timedelta(minutes=15)


pytestmark = pytest.mark.usefixtures("shutdown_servers")


def blob(credentials: object) -> storage.Blob:
    """A blob of a client built as a user builds one (no request is made by either)."""
    client = storage.Client(project="emulator-project", credentials=credentials)
    return client.bucket("a-bucket").blob("reports/q3 2026.csv")


def v4_string_to_sign(url: str, method: str = "GET") -> tuple[str, str, bytes]:
    """``(signer email, string to sign, signature)`` of a V4 signed URL, by the V4 spec."""
    parts = urlsplit(url)
    query = parse_qsl(parts.query, keep_blank_values=True)
    signature = bytes.fromhex(dict(query)["X-Goog-Signature"])
    params = sorted((k, v) for k, v in query if k != "X-Goog-Signature")
    canonical_query = "&".join(f"{quote(k, safe='')}={quote(v, safe='')}" for k, v in params)
    signed = dict(params)
    assert signed["X-Goog-SignedHeaders"] == "host"
    canonical_request = "\n".join(
        [method, parts.path, canonical_query, f"host:{parts.netloc}\n", "host", "UNSIGNED-PAYLOAD"]
    )
    email, _, scope = signed["X-Goog-Credential"].partition("/")
    to_sign = "\n".join(
        [
            signed["X-Goog-Algorithm"],
            signed["X-Goog-Date"],
            scope,
            hashlib.sha256(canonical_request.encode("ascii")).hexdigest(),
        ]
    )
    return email, to_sign, signature


def v2_string_to_sign(url: str, method: str = "GET") -> tuple[str, str, bytes]:
    """``(signer email, string to sign, signature)`` of a V2 signed URL, by the V2 spec."""
    parts = urlsplit(url)
    query = dict(parse_qsl(parts.query))
    to_sign = "\n".join([method, "", "", query["Expires"], parts.path])
    return query["GoogleAccessId"], to_sign, base64.b64decode(query["Signature"])


def key_file_public_key(key: dict[str, str]) -> rsa.RSAPublicKey:
    private = serialization.load_pem_private_key(key["private_key"].encode(), password=None)
    assert isinstance(private, rsa.RSAPrivateKey)
    return private.public_key()


def test_a_v4_signed_url_from_a_key_source_is_signed_locally_by_the_key(
    emulator: GoogleEmulator,
) -> None:
    key = emulator.service_account()
    goth_actors.start_link(name="sa", source=ServiceAccount(key), prefetch="sync")
    url = blob(Credentials("sa")).generate_signed_url(expiration=EXPIRES, version="v4")
    assert url.startswith("https://storage.googleapis.com/a-bucket/reports/q3%202026.csv?")
    email, to_sign, signature = v4_string_to_sign(url)
    assert email == key["client_email"]
    key_file_public_key(key).verify(
        signature, to_sign.encode("ascii"), padding.PKCS1v15(), hashes.SHA256()
    )
    assert emulator.requests_to("iam") == []  # local: no signBlob


def test_a_v2_signed_url_from_a_key_source_is_signed_locally_by_the_key(
    emulator: GoogleEmulator,
) -> None:
    key = emulator.service_account()
    goth_actors.start_link(name="sa", source=ServiceAccount(key), prefetch="sync")
    url = blob(Credentials("sa")).generate_signed_url(expiration=EXPIRES, version="v2")
    email, to_sign, signature = v2_string_to_sign(url)
    assert email == key["client_email"]
    key_file_public_key(key).verify(
        signature, to_sign.encode("ascii"), padding.PKCS1v15(), hashes.SHA256()
    )


def test_the_v4_url_is_the_one_google_auths_own_key_credentials_make(
    emulator: GoogleEmulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    key = emulator.service_account()
    goth_actors.start_link(name="sa", source=ServiceAccount(key), prefetch="sync")
    # One request time for both URLs: PKCS#1 v1.5 is deterministic, so the URLs must match.
    monkeypatch.setattr(_signing, "get_v4_now_dtstamps", lambda: ("20261130T010203Z", "20261130"))
    theirs = google_service_account.Credentials.from_service_account_info(key)
    ours = blob(Credentials("sa")).generate_signed_url(expiration=EXPIRES, version="v4")
    assert ours == blob(theirs).generate_signed_url(expiration=EXPIRES, version="v4")


def test_a_v4_signed_url_from_an_impersonated_source_is_signed_through_signblob(
    emulator: GoogleEmulator,
) -> None:
    emulator.service_account(TARGET)
    user = emulator.authorized_user()
    source = Impersonated(RefreshToken(user), TARGET, url=emulator.iam_url)
    goth_actors.start_link(name="imp", source=source, prefetch="sync")
    url = blob(Credentials("imp")).generate_signed_url(
        expiration=EXPIRES, version="v4", method="PUT"
    )
    email, to_sign, signature = v4_string_to_sign(url, method="PUT")
    assert email == TARGET
    assert emulator.verify_signed_blob(TARGET, to_sign.encode("ascii"), signature)
    assert emulator.requests_to("iam")[-1].path.endswith(f"{TARGET}:signBlob")


def test_v4_and_v2_signed_urls_from_the_metadata_server_are_signed_through_signblob(
    emulator: GoogleEmulator,
) -> None:
    # The case google-auth's own compute credentials cannot sign for (its issue 50).
    emulator.service_account(emulator.metadata_email)
    source = Metadata(url=emulator.metadata_url)
    goth_actors.start_link(name="md", source=source, prefetch="sync")
    credentials = Credentials("md", signer=signer(source, iam_url=emulator.iam_url))
    for version, read in (("v4", v4_string_to_sign), ("v2", v2_string_to_sign)):
        url = blob(credentials).generate_signed_url(expiration=EXPIRES, version=version)
        email, to_sign, signature = read(url)
        assert email == emulator.metadata_email
        assert emulator.verify_signed_blob(email, to_sign.encode("ascii"), signature)
        assert not emulator.verify_signed_blob(email, to_sign.encode("ascii") + b"!", signature)
    sent = emulator.requests_to("iam")[-1].headers["authorization"]
    assert sent == f"Bearer {goth_actors.fetch('md').token}"  # the server's token, no exchange


# --- what google-cloud clients ask of credentials besides signing ------------------------------


def test_a_storage_client_calls_the_api_with_the_servers_token_and_its_quota_project(
    emulator: GoogleEmulator,
) -> None:
    user = emulator.authorized_user()
    goth_actors.start_link(name="user", source=RefreshToken(user), prefetch="sync")
    options = {"api_endpoint": f"{emulator.url}/api", "quota_project_id": "billed-project"}
    client = storage.Client(project="p", credentials=Credentials("user"), client_options=options)
    # client_options' quota project reaches the credentials through with_quota_project
    assert client._credentials.quota_project_id == "billed-project"
    client.get_bucket("a-bucket")  # GET {api}/storage/v1/b/a-bucket: the emulator's API answers
    sent = emulator.requests_to("api")[-1]
    assert sent.path.startswith("/api/storage/v1/b/a-bucket")
    assert sent.headers["authorization"] == f"Bearer {goth_actors.fetch('user').token}"
    assert sent.headers["x-goog-user-project"] == "billed-project"


def test_a_storage_client_accepts_the_servers_universe_and_refuses_another(
    emulator: GoogleEmulator,
) -> None:
    emulator.universe_domain = "example-universe.test"
    key = emulator.service_account()
    goth_actors.start_link(name="sa", source=ServiceAccount(key), prefetch="sync")
    credentials = Credentials("sa")
    assert credentials.universe_domain == "example-universe.test"
    options = {"universe_domain": "example-universe.test"}
    client = storage.Client(project="p", credentials=credentials, client_options=options)
    assert client.api_endpoint == "https://storage.example-universe.test"
    with pytest.raises(ValueError, match="does not match the universe domain"):
        storage.Client(project="p", credentials=credentials)  # googleapis.com by default


def test_a_storage_client_asking_for_its_scopes_keeps_the_servers_credentials(
    emulator: GoogleEmulator,
) -> None:
    goth_actors.start_link(
        name="sa", source=ServiceAccount(emulator.service_account()), prefetch="sync"
    )
    credentials = Credentials("sa")
    assert credentials.requires_scopes is False
    client = storage.Client(project="p", credentials=credentials)
    assert client._credentials is credentials  # with_scopes_if_required left them alone
    assert credentials.with_scopes(["https://www.googleapis.com/auth/devstorage.read_only"]) is (
        credentials
    )

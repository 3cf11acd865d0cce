"""``ServiceAccount``: a service-account key signs a JWT, traded for a token or used as one.

The JWT is traded for a token (JWT-bearer grant), or used as the token itself (a self-signed
JWT, which needs no token endpoint at all).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

import jwt
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding
from cryptography.hazmat.primitives.asymmetric.rsa import RSAPrivateKey
from cryptography.hazmat.primitives.serialization import load_pem_private_key

from goth_actors._base import ConfigError
from goth_actors._protocol.endpoints import GOOGLE_UNIVERSE, EndpointTrust, check_explicit_url
from goth_actors._protocol.exchange import Exchange
from goth_actors._protocol.token import Exchanger, Source, Token
from goth_actors._protocol.validate import (
    CLOUD_PLATFORM_SCOPE,
    FORM,
    check_project,
    check_scopes,
    credentials_mapping,
    form,
    optional_string,
    required_string,
    shown,
)

__all__ = ["ASSERTION_LIFETIME", "JWT_BEARER_GRANT", "ServiceAccount"]

JWT_BEARER_GRANT = "urn:ietf:params:oauth:grant-type:jwt-bearer"
ASSERTION_LIFETIME = 3600
"""Seconds a signed assertion is valid (its ``exp`` minus its ``iat``)."""


@dataclass(frozen=True, eq=False, repr=False)
class ServiceAccount(Source):
    """A service account: signs a JWT with the key file's private key (the JWT-bearer grant).

    Args:
        credentials: The decoded service-account key file (a mapping). Needs ``client_email``
            and ``private_key`` (an unencrypted RSA PEM); ``private_key_id`` becomes the JWT
            ``kid`` and ``token_uri`` the token URL when present.
        scopes: OAuth scopes, joined by one space into the ``scope`` claim. Default:
            ``("https://www.googleapis.com/auth/cloud-platform",)``. A single string is an
            error (pass a tuple).
        sub: The user to impersonate with domain-wide delegation, or ``None``.
        claims: Extra JWT claims, merged over the defaults (``iss``, ``scope``, ``aud``,
            ``iat``, ``exp``, ``sub``). With ``target_audience`` in them Google answers with
            an ID token, and no ``scope`` claim is sent unless ``claims`` has one.
        url: Token endpoint. Default: the key file's ``token_uri``, else
            ``https://oauth2.googleapis.com/token``. The JWT ``aud`` is this URL.
        target_audience: When set, ask for an ID token for this audience (an IAP client id,
            a Cloud Run URL) instead of an access token; the same as the ``target_audience``
            claim. The token's ``expires`` is then the ID token's ``exp`` and its ``scope``
            the audience.
        universe_domain: The universe this key belongs to. Default: the key file's
            ``universe_domain``, else ``googleapis.com``. Naming it also trusts that
            universe's token services for the key file's ``token_uri``.
        allow_custom_endpoints: Send the signed assertion to a ``token_uri`` that is not one
            of Google's token services (a private endpoint you trust). Default ``False``:
            such a key file is refused (see the README's "Credential files are trusted
            input").
        self_signed_jwt: Use a self-signed JWT as the access token (AIP-4111, what
            google-cloud client libraries do by default): no token endpoint, no network, the
            same server and refresh rules. It carries ``scopes`` (the ``scope`` claim) or,
            when given, ``audience``. Default ``None``: only outside the ``googleapis.com``
            universe, as google-auth (there ``False`` is an error). Not with ``sub`` or an ID
            token.
        audience: The self-signed JWT's ``aud`` (an API's ``https://SERVICE.googleapis.com/``)
            instead of a ``scope`` claim. Only with a self-signed JWT.
        quota_project_id: The project to bill (``x-goog-user-project``), or ``None``.

    Raises:
        ConfigError: At construction, naming the field, for any invalid input. No key
            material is ever part of the message.

    Examples:
        ```python
        import json
        source = ServiceAccount(json.load(open("key.json")), scopes=(
            "https://www.googleapis.com/auth/devstorage.read_only",))
        run = ServiceAccount(key, target_audience="https://hello.a.run.app")
        local = ServiceAccount(key, self_signed_jwt=True)  # no token endpoint
        ```
    """

    credentials: Mapping[str, Any]
    scopes: Sequence[str] = (CLOUD_PLATFORM_SCOPE,)
    sub: str | None = None
    claims: Mapping[str, Any] | None = None
    url: str | None = None
    target_audience: str | None = None
    universe_domain: str | None = None
    allow_custom_endpoints: bool = False
    self_signed_jwt: bool | None = None
    audience: str | None = None
    quota_project_id: str | None = None
    _key: RSAPrivateKey = field(init=False, repr=False, compare=False)
    _token_url: str | None = field(init=False, repr=False, compare=False)
    _universe: str = field(init=False, repr=False, compare=False)
    _universe_trusted: bool = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        credentials = credentials_mapping(self.credentials, "service_account")
        required_string(credentials, "client_email")
        pem = required_string(credentials, "private_key", secret=True)
        key_id = credentials.get("private_key_id")
        if key_id is not None and not isinstance(key_id, str):
            raise ConfigError(
                "credentials.private_key_id", f"must be a string, got {type(key_id).__name__}"
            )
        scopes = check_scopes(self.scopes)
        sub = optional_string(self.sub, "sub")
        claims: Mapping[str, Any] | None = None
        if self.claims is not None:
            if not isinstance(self.claims, Mapping):
                raise ConfigError(
                    "claims", f"must be a mapping of claim names, got {type(self.claims).__name__}"
                )
            for key in self.claims:
                if not isinstance(key, str):
                    raise ConfigError("claims", f"claim names must be strings, got {key!r}")
            if "scopes" in self.claims:
                raise ConfigError("claims", "has 'scopes'; the JWT claim is called 'scope'")
            claims = MappingProxyType(dict(self.claims))
        url = None if self.url is None else check_explicit_url(self.url, "url")
        trust = EndpointTrust.resolve(
            credentials, self.universe_domain, self.allow_custom_endpoints
        )
        target_audience = optional_string(self.target_audience, "target_audience")
        claimed = (claims or {}).get("target_audience")
        if target_audience is not None and claimed is not None and claimed != target_audience:
            raise ConfigError(
                "target_audience", "differs from claims['target_audience']; give only one"
            )
        asks_for_id_token = target_audience is not None or "target_audience" in (claims or {})
        audience = optional_string(self.audience, "audience")
        self_signed = _self_signed(self.self_signed_jwt, trust.universe_domain)
        if self_signed:
            _check_self_signed(url, sub, asks_for_id_token)
        elif audience is not None:
            raise ConfigError(
                "audience", "is the aud of a self-signed JWT: add self_signed_jwt=True"
            )
        asks_for_scope = "scope" in (claims or {}) or asks_for_id_token or audience is not None
        if not scopes and not asks_for_scope:
            raise ConfigError("scopes", "is empty; Google needs at least one scope")
        quota = check_project(self.quota_project_id, "quota_project_id")
        object.__setattr__(self, "credentials", MappingProxyType(dict(credentials)))
        object.__setattr__(self, "scopes", scopes)
        object.__setattr__(self, "sub", sub)
        object.__setattr__(self, "claims", claims)
        object.__setattr__(self, "url", url)
        object.__setattr__(self, "target_audience", target_audience)
        object.__setattr__(self, "_key", _load_rsa_key(pem))
        trust.bind(self)
        object.__setattr__(self, "self_signed_jwt", self_signed)
        object.__setattr__(self, "audience", audience)
        object.__setattr__(self, "quota_project_id", quota)
        # A self-signed JWT is sent to no token endpoint: the key file's is not even checked.
        token_url = None
        if not self_signed:
            token_url = trust.endpoint(credentials, "token_uri", "oauth2", "/token", url)
        object.__setattr__(self, "_token_url", token_url)

    @property
    def client_email(self) -> str:
        """The service account's email address."""
        return str(self.credentials["client_email"])

    @property
    def token_url(self) -> str | None:
        """The token endpoint this source posts to; ``None`` with a self-signed JWT."""
        return self._token_url

    def __repr__(self) -> str:
        return (
            f"ServiceAccount(client_email={self.client_email!r}, scopes={self.scopes!r}, "
            f"sub={self.sub!r}, claims={sorted(self.claims or {})!r}, url={self._token_url!r}"
            f"{shown('target_audience', self.target_audience)}"
            f"{', self_signed_jwt=True' if self.self_signed_jwt else ''}"
            f"{shown('audience', self.audience)}"
            f"{shown('quota_project_id', self.quota_project_id)})"
        )

    def assertion_claims(self, now: float) -> dict[str, Any]:
        """The JWT claims this source signs at unix time ``now``."""
        issued = int(now)
        if self.self_signed_jwt:
            claims: dict[str, Any] = {
                "iss": self.client_email,
                "sub": self.client_email,
                "iat": issued,
                "exp": issued + ASSERTION_LIFETIME,
            }
            if self.audience is not None:
                claims["aud"] = self.audience
            else:
                claims["scope"] = " ".join(self.scopes)
            claims.update(self.claims or {})
            return claims
        assert self._token_url is not None
        claims = {
            "iss": self.client_email,
            "aud": self._token_url,
            "iat": issued,
            "exp": issued + ASSERTION_LIFETIME,
        }
        extra = self.claims or {}
        if self.target_audience is not None:
            claims["target_audience"] = self.target_audience
        elif "target_audience" not in extra:
            claims["scope"] = " ".join(self.scopes)
        if self.sub is not None:
            claims["sub"] = self.sub
        claims.update(extra)
        return claims

    def signed_jwt(self, now: float) -> str:
        """The JWT of ``assertion_claims``, signed RS256 with ``kid`` = ``private_key_id``.

        The claims are those of [`assertion_claims`][goth_actors.ServiceAccount.assertion_claims].
        """
        headers: dict[str, str] = {"typ": "JWT"}
        key_id = self.credentials.get("private_key_id")
        if key_id:
            headers["kid"] = key_id
        return jwt.encode(self.assertion_claims(now), self._key, algorithm="RS256", headers=headers)

    def sign_bytes(self, data: bytes) -> bytes:
        """``data`` signed with the key (RSASSA-PKCS1-v1_5, SHA-256), as IAM's signBlob does."""
        return self._key.sign(data, padding.PKCS1v15(), hashes.SHA256())

    def fetch_token(self, exchanger: Exchanger) -> Token:
        """The JWT-bearer exchange, or, for a self-signed JWT, the JWT itself: no request."""
        if not self.self_signed_jwt:
            return super().fetch_token(exchanger)
        now = exchanger.clock()
        claims = self.assertion_claims(now)
        scope = claims.get("scope")
        return Token(
            token=self.signed_jwt(now),
            type="Bearer",
            scope=scope if isinstance(scope, str) else claims.get("aud"),
            sub=None,
            expires=float(claims["exp"]),
        )

    def prepare(  # the interface's signature
        self,
        now: float,
        environ: Mapping[str, str] | None = None,  # noqa: ARG002
    ) -> Exchange:
        if self.self_signed_jwt:
            raise NotImplementedError("a self-signed JWT needs no request; use Token.fetch()")
        claims = self.assertion_claims(now)
        assertion = self.signed_jwt(now)
        scope = claims.get("scope")
        sub = claims.get("sub")
        assert self._token_url is not None
        return Exchange(
            method="POST",
            url=self._token_url,
            headers={"Content-Type": FORM, "Accept": "application/json"},
            body=form([("grant_type", JWT_BEARER_GRANT), ("assertion", assertion)]),
            kind="oauth",
            scope=scope if isinstance(scope, str) else None,
            sub=sub if isinstance(sub, str) else None,
            secrets=(assertion,),
        )


def _self_signed(value: object, universe_domain: str) -> bool:
    if value is not None and not isinstance(value, bool):
        raise ConfigError("self_signed_jwt", f"must be True, False or None, got {value!r:.40}")
    if universe_domain == GOOGLE_UNIVERSE:
        return bool(value)
    if value is False:
        raise ConfigError(
            "self_signed_jwt",
            f"must not be False outside googleapis.com (universe {universe_domain!r} has no "
            "JWT-bearer token endpoint; google-auth also refuses)",
        )
    return True


def _check_self_signed(url: str | None, sub: str | None, asks_for_id_token: bool) -> None:
    if url is not None:
        raise ConfigError("url", "is a token endpoint, which a self-signed JWT does not use")
    if sub is not None:
        raise ConfigError("sub", "needs the token endpoint: a self-signed JWT cannot delegate")
    if asks_for_id_token:
        raise ConfigError(
            "target_audience", "needs the token endpoint: a self-signed JWT is no ID token"
        )


def _load_rsa_key(pem: str) -> RSAPrivateKey:
    field_name = "credentials.private_key"
    if "-----BEGIN" not in pem:
        raise ConfigError(field_name, "is not a PEM-encoded private key")
    if "ENCRYPTED" in pem:
        raise ConfigError(field_name, "is encrypted; service-account keys are not, decrypt it")
    key: object = None
    failure = ""
    try:
        key = load_pem_private_key(pem.encode("utf-8"), password=None)
    except (ValueError, TypeError, UnsupportedAlgorithm) as exc:
        failure = type(exc).__name__
    if failure:
        # The library's message can quote the input: say only what kind of failure it was,
        # and raise outside the except block, so the error does not carry it as __context__.
        raise ConfigError(field_name, f"could not be loaded as a PEM private key ({failure})")
    if not isinstance(key, RSAPrivateKey):
        raise ConfigError(field_name, f"must be an RSA key, got {type(key).__name__}")
    if key.key_size < 2048:
        raise ConfigError(field_name, f"RSA key is too short ({key.key_size} bits, need 2048)")
    return key

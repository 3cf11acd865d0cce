"""``ServiceAccount``: a service-account key signs a JWT, traded for a token (JWT-bearer grant)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

import jwt
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives.asymmetric.rsa import RSAPrivateKey
from cryptography.hazmat.primitives.serialization import load_pem_private_key

from goth_actors._base import ConfigError
from goth_actors._protocol.endpoints import EndpointTrust, check_explicit_url
from goth_actors._protocol.exchange import Exchange
from goth_actors._protocol.token import Source
from goth_actors._protocol.validate import (
    CLOUD_PLATFORM_SCOPE,
    FORM,
    check_scopes,
    credentials_mapping,
    form,
    optional_string,
    required_string,
    resolve_token_url,
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

    Raises:
        ConfigError: At construction, naming the field, for any invalid input. No key
            material is ever part of the message.

    Example:
        ```python
        import json
        source = ServiceAccount(json.load(open("key.json")), scopes=(
            "https://www.googleapis.com/auth/devstorage.read_only",))
        run = ServiceAccount(key, target_audience="https://hello.a.run.app")
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
    _key: RSAPrivateKey = field(init=False, repr=False, compare=False)
    _token_url: str = field(init=False, repr=False, compare=False)

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
        asks_for_scope = "scope" in (claims or {}) or asks_for_id_token
        if not scopes and not asks_for_scope:
            raise ConfigError("scopes", "is empty; Google needs at least one scope")
        object.__setattr__(self, "credentials", MappingProxyType(dict(credentials)))
        object.__setattr__(self, "scopes", scopes)
        object.__setattr__(self, "sub", sub)
        object.__setattr__(self, "claims", claims)
        object.__setattr__(self, "url", url)
        object.__setattr__(self, "target_audience", target_audience)
        object.__setattr__(self, "_key", _load_rsa_key(pem))
        object.__setattr__(self, "universe_domain", trust.universe_domain)
        object.__setattr__(self, "_token_url", resolve_token_url(url, credentials, trust))

    @property
    def client_email(self) -> str:
        """The service account's email address."""
        return str(self.credentials["client_email"])

    @property
    def token_url(self) -> str:
        """The token endpoint this source posts to."""
        return self._token_url

    def __repr__(self) -> str:
        return (
            f"ServiceAccount(client_email={self.client_email!r}, scopes={self.scopes!r}, "
            f"sub={self.sub!r}, claims={sorted(self.claims or {})!r}, url={self._token_url!r}"
            f"{shown('target_audience', self.target_audience)})"
        )

    def assertion_claims(self, now: float) -> dict[str, Any]:
        """The JWT claims this source signs at unix time ``now``."""
        issued = int(now)
        claims: dict[str, Any] = {
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

    def prepare(  # the interface's signature
        self,
        now: float,
        environ: Mapping[str, str] | None = None,  # noqa: ARG002
    ) -> Exchange:
        claims = self.assertion_claims(now)
        headers: dict[str, str] = {"typ": "JWT"}
        key_id = self.credentials.get("private_key_id")
        if key_id:
            headers["kid"] = key_id
        assertion = jwt.encode(claims, self._key, algorithm="RS256", headers=headers)
        scope = claims.get("scope")
        sub = claims.get("sub")
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

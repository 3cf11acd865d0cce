"""Token sources: where a token comes from, validated when constructed.

A source is a frozen dataclass that knows how to build the one HTTP request that asks for a
token (:meth:`Source.prepare`). It does no I/O itself: :meth:`goth_actors.Token.fetch` sends the
request and reads the answer. Sources that need several requests (workload identity in
``_external``, impersonation in ``_impersonated``) override :meth:`Source.fetch_token` instead.
Secrets (private keys, client secrets, refresh tokens) never appear in a source's ``repr`` or
in any error raised here.
"""

from __future__ import annotations

import json
import os
import re
import sys
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, Literal
from urllib.parse import quote, urlencode, urlsplit

import jwt
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives.asymmetric.rsa import RSAPrivateKey
from cryptography.hazmat.primitives.serialization import load_pem_private_key

from goth_actors._errors import ConfigError

if TYPE_CHECKING:
    from goth_actors._token import Exchanger, Token

__all__ = [
    "CLOUD_PLATFORM_SCOPE",
    "DEFAULT_METADATA_URL",
    "GOOGLE_TOKEN_URL",
    "Exchange",
    "Metadata",
    "RefreshToken",
    "ServiceAccount",
    "Source",
    "default_source",
    "source_from_credentials",
]

CLOUD_PLATFORM_SCOPE = "https://www.googleapis.com/auth/cloud-platform"
GOOGLE_TOKEN_URL = "https://oauth2.googleapis.com/token"
DEFAULT_METADATA_URL = "http://metadata.google.internal"
JWT_BEARER_GRANT = "urn:ietf:params:oauth:grant-type:jwt-bearer"
ASSERTION_LIFETIME = 3600
_FORM = "application/x-www-form-urlencoded"
_METADATA_PATH = "/computeMetadata/v1/instance/service-accounts/"


@dataclass(frozen=True, slots=True)
class Exchange:
    """One prepared token request, and what the answer should be read as.

    Attributes:
        method: ``"GET"`` or ``"POST"``.
        url: The full URL, query included.
        headers: Request headers.
        body: The request body (``b""`` for GET).
        kind: ``"oauth"`` for a JSON token response, ``"metadata"`` for a metadata-server JSON
            token, ``"metadata_identity"`` for a metadata-server ID token (the body is the JWT).
        scope: The scope the request asked for, reported on the token instead of the
            response's when set.
        sub: The subject the request asked for (domain-wide delegation), likewise.
        secrets: Strings that must never be echoed in an error (removed from body excerpts).
    """

    method: Literal["GET", "POST"]
    url: str
    headers: Mapping[str, str] = field(repr=False)  # may carry a bearer token
    body: bytes = field(repr=False)  # carries the assertion or the secrets
    kind: Literal["oauth", "metadata", "metadata_identity"]
    scope: str | None = None
    sub: str | None = None
    secrets: tuple[str, ...] = field(default=(), repr=False)


class Source:
    """Base class of every token source.

    Subclasses are frozen dataclasses that validate themselves on construction and implement
    :meth:`prepare` (or, for several requests, :meth:`fetch_token`). Users pick one of
    :class:`ServiceAccount`, :class:`RefreshToken`, :class:`Metadata`,
    :class:`~goth_actors.WorkloadIdentity`, :class:`~goth_actors.Impersonated`, or let
    :func:`default_source` pick.
    """

    __slots__ = ()

    def prepare(self, now: float, environ: Mapping[str, str] | None = None) -> Exchange:
        """Builds the token request to send at unix time ``now``.

        Args:
            now: Wall-clock unix seconds (used for JWT ``iat``/``exp``).
            environ: Environment variables to read (``os.environ`` when ``None``).
        """
        raise NotImplementedError

    def fetch_token(self, exchanger: Exchanger) -> Token:
        """Gets one token through ``exchanger``: by default, the one request of :meth:`prepare`.

        Sources that need several requests override this and use the exchanger's ``json``,
        ``text`` and ``token`` methods for each step.
        """
        return exchanger.token(self.prepare(exchanger.clock(), exchanger.environ))


# --------------------------------------------------------------------------- validation helpers


def _credentials_mapping(value: object, expected_type: str) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise ConfigError(
            "credentials",
            f"must be a mapping (the decoded JSON key file), got {type(value).__name__}",
        )
    kind = value.get("type")
    if kind is not None and kind != expected_type:
        shown = _quoted_type(kind) if isinstance(kind, str) else f"a {type(kind).__name__}"
        raise ConfigError(
            "credentials.type",
            f"is {shown}, expected {expected_type!r}; use source_from_credentials() to pick the "
            "source from the key file's type",
        )
    return value


def _required_string(credentials: Mapping[str, Any], key: str, *, secret: bool = False) -> str:
    value = credentials.get(key)
    if value is None:
        raise ConfigError(f"credentials.{key}", "is missing from the credentials")
    if not isinstance(value, str):
        raise ConfigError(f"credentials.{key}", f"must be a string, got {type(value).__name__}")
    if not value.strip():
        raise ConfigError(f"credentials.{key}", "is empty")
    if not secret and len(value) > 2048:
        raise ConfigError(f"credentials.{key}", f"is implausibly long ({len(value)} characters)")
    return value


def _optional_string(value: object, name: str) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str):
        raise ConfigError(name, f"must be a string or None, got {type(value).__name__}")
    if not value.strip():
        raise ConfigError(name, "must not be empty")
    return value


def _url(value: object, name: str) -> str | None:
    text = _optional_string(value, name)
    if text is None:
        return None
    parts = urlsplit(text)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ConfigError(name, f"must be an http:// or https:// URL, got {text[:100]!r}")
    return text


def _scopes(value: object, name: str = "scopes") -> tuple[str, ...]:
    if isinstance(value, str | bytes):
        raise ConfigError(
            name,
            f"must be a sequence of scope strings, not a single string; did you mean "
            f"{name}=({value!r},)?",
        )
    if not isinstance(value, Iterable):
        raise ConfigError(name, f"must be a sequence of scope strings, got {type(value).__name__}")
    scopes = tuple(value)
    for scope in scopes:
        if not isinstance(scope, str) or not scope or any(c.isspace() for c in scope):
            raise ConfigError(
                name, f"each scope must be a non-empty string without spaces, got {scope!r}"
            )
    return scopes


def _load_rsa_key(pem: str) -> RSAPrivateKey:
    field_name = "credentials.private_key"
    if "-----BEGIN" not in pem:
        raise ConfigError(field_name, "is not a PEM-encoded private key")
    if "ENCRYPTED" in pem:
        raise ConfigError(field_name, "is encrypted; service-account keys are not, decrypt it")
    try:
        key = load_pem_private_key(pem.encode("utf-8"), password=None)
    except (ValueError, TypeError, UnsupportedAlgorithm) as exc:
        # The library's message can quote the input; say only what kind of failure it was.
        raise ConfigError(
            field_name, f"could not be loaded as a PEM private key ({type(exc).__name__})"
        ) from None
    if not isinstance(key, RSAPrivateKey):
        raise ConfigError(field_name, f"must be an RSA key, got {type(key).__name__}")
    if key.key_size < 2048:
        raise ConfigError(field_name, f"RSA key is too short ({key.key_size} bits, need 2048)")
    return key


def _token_url(url: str | None, credentials: Mapping[str, Any]) -> str:
    if url is not None:
        return url
    token_uri = credentials.get("token_uri")
    if token_uri is None:
        return GOOGLE_TOKEN_URL
    checked = _url(token_uri, "credentials.token_uri")
    assert checked is not None
    return checked


def _form(fields: Sequence[tuple[str, str]]) -> bytes:
    return urlencode(fields).encode("ascii")


def _shown(name: str, value: object) -> str:
    """``", name=value"`` for a ``repr``, or nothing when ``value`` is ``None``."""
    return "" if value is None else f", {name}={value!r}"


# --------------------------------------------------------------------------------- the sources


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

    Raises:
        ConfigError: At construction, naming the field, for any invalid input. No key
            material is ever part of the message.

    Example:
        >>> import json  # doctest: +SKIP
        >>> source = ServiceAccount(json.load(open("key.json")), scopes=(  # doctest: +SKIP
        ...     "https://www.googleapis.com/auth/devstorage.read_only",))
        >>> run = ServiceAccount(key, target_audience="https://hello.a.run.app")  # doctest: +SKIP
    """

    credentials: Mapping[str, Any]
    scopes: Sequence[str] = (CLOUD_PLATFORM_SCOPE,)
    sub: str | None = None
    claims: Mapping[str, Any] | None = None
    url: str | None = None
    target_audience: str | None = None
    _key: RSAPrivateKey = field(init=False, repr=False, compare=False)
    _token_url: str = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        credentials = _credentials_mapping(self.credentials, "service_account")
        _required_string(credentials, "client_email")
        pem = _required_string(credentials, "private_key", secret=True)
        key_id = credentials.get("private_key_id")
        if key_id is not None and not isinstance(key_id, str):
            raise ConfigError(
                "credentials.private_key_id", f"must be a string, got {type(key_id).__name__}"
            )
        scopes = _scopes(self.scopes)
        sub = _optional_string(self.sub, "sub")
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
        url = _url(self.url, "url")
        target_audience = _optional_string(self.target_audience, "target_audience")
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
        object.__setattr__(self, "_token_url", _token_url(url, credentials))

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
            f"{_shown('target_audience', self.target_audience)})"
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

    def prepare(self, now: float, environ: Mapping[str, str] | None = None) -> Exchange:
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
            headers={"Content-Type": _FORM, "Accept": "application/json"},
            body=_form([("grant_type", JWT_BEARER_GRANT), ("assertion", assertion)]),
            kind="oauth",
            scope=scope if isinstance(scope, str) else None,
            sub=sub if isinstance(sub, str) else None,
            secrets=(assertion,),
        )


@dataclass(frozen=True, eq=False, repr=False)
class RefreshToken(Source):
    """A user's refresh token (an ``authorized_user`` key file, as gcloud writes it).

    Args:
        credentials: The decoded ``authorized_user`` credentials: ``client_id``,
            ``client_secret`` and ``refresh_token``; ``token_uri`` is used when present.
        url: Token endpoint. Default: the credentials' ``token_uri``, else
            ``https://oauth2.googleapis.com/token``.

    Raises:
        ConfigError: At construction, naming the missing or malformed field.

    Example:
        >>> source = RefreshToken(json.load(open(adc_path)))  # doctest: +SKIP
    """

    credentials: Mapping[str, Any]
    url: str | None = None
    _token_url: str = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        credentials = _credentials_mapping(self.credentials, "authorized_user")
        for key in ("client_id", "client_secret", "refresh_token"):
            _required_string(credentials, key, secret=key != "client_id")
        url = _url(self.url, "url")
        object.__setattr__(self, "credentials", MappingProxyType(dict(credentials)))
        object.__setattr__(self, "url", url)
        object.__setattr__(self, "_token_url", _token_url(url, credentials))

    @property
    def token_url(self) -> str:
        """The token endpoint this source posts to."""
        return self._token_url

    def __repr__(self) -> str:
        return f"RefreshToken(client_id={self.credentials['client_id']!r}, url={self._token_url!r})"

    def prepare(self, now: float, environ: Mapping[str, str] | None = None) -> Exchange:
        secret = str(self.credentials["client_secret"])
        refresh = str(self.credentials["refresh_token"])
        return Exchange(
            method="POST",
            url=self._token_url,
            headers={"Content-Type": _FORM, "Accept": "application/json"},
            body=_form(
                [
                    ("grant_type", "refresh_token"),
                    ("refresh_token", refresh),
                    ("client_id", str(self.credentials["client_id"])),
                    ("client_secret", secret),
                ]
            ),
            kind="oauth",
            secrets=(secret, refresh),
        )


@dataclass(frozen=True, eq=False)
class Metadata(Source):
    """The metadata server of Compute Engine, GKE, Cloud Run, App Engine and Cloud Functions.

    Args:
        account: The service account: ``"default"`` or its email.
        url: Base URL of the metadata server. Default: ``http://`` + ``GCE_METADATA_HOST``
            when that variable is set (read at each fetch, never at import), else
            ``http://metadata.google.internal``.
        audience: When set, ask for an ID token for this audience
            (``.../identity?audience=...&format=full``) instead of an access token.
        scopes: Scopes to ask for (``?scopes=a,b``); ``None`` for the instance's own.

    Example:
        >>> source = Metadata()  # on Google Cloud
        >>> source = Metadata(audience="https://my-service-abc123.a.run.app")
    """

    account: str = "default"
    url: str | None = None
    audience: str | None = None
    scopes: Sequence[str] | None = None

    def __post_init__(self) -> None:
        account = _optional_string(self.account, "account")
        if account is None:
            raise ConfigError("account", "must be 'default' or a service account email")
        object.__setattr__(self, "account", account)
        object.__setattr__(self, "url", _url(self.url, "url"))
        object.__setattr__(self, "audience", _optional_string(self.audience, "audience"))
        if self.scopes is not None:
            scopes = _scopes(self.scopes)
            if not scopes:
                raise ConfigError("scopes", "is empty; pass None for the instance's own scopes")
            object.__setattr__(self, "scopes", scopes)
        if self.audience is not None and self.scopes is not None:
            raise ConfigError("scopes", "cannot be combined with audience (an ID token)")

    def __hash__(self) -> int:
        return hash((self.account, self.url, self.audience, self.scopes))

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Metadata):
            return NotImplemented
        return (self.account, self.url, self.audience, self.scopes) == (
            other.account,
            other.url,
            other.audience,
            other.scopes,
        )

    def base_url(self, environ: Mapping[str, str] | None = None) -> str:
        """The metadata server's base URL, resolved now (see ``url``)."""
        if self.url is not None:
            return self.url.rstrip("/")
        env = os.environ if environ is None else environ
        host = env.get("GCE_METADATA_HOST") or env.get("GCE_METADATA_ROOT")
        if host:
            host = host.strip().rstrip("/")
            return host if host.startswith(("http://", "https://")) else f"http://{host}"
        return DEFAULT_METADATA_URL

    def prepare(self, now: float, environ: Mapping[str, str] | None = None) -> Exchange:
        base = self.base_url(environ) + _METADATA_PATH + quote(self.account, safe="@")
        kind: Literal["metadata", "metadata_identity"]
        if self.audience is not None:
            url = base + "/identity?" + urlencode({"audience": self.audience, "format": "full"})
            kind = "metadata_identity"
        else:
            url = base + "/token"
            if self.scopes:
                url += "?" + urlencode({"scopes": ",".join(self.scopes)})
            kind = "metadata"
        return Exchange(
            method="GET",
            url=url,
            headers={"Metadata-Flavor": "Google"},
            body=b"",
            kind=kind,
        )


# ------------------------------------------------------------------ application default creds

_SOURCE_TYPES: dict[str, Callable[..., Source]] = {
    "service_account": ServiceAccount,
    "authorized_user": RefreshToken,
}
_SUPPORTED_TYPES = (
    "service_account",
    "authorized_user",
    "external_account",
    "impersonated_service_account",
)


def _factory(kind: str) -> Callable[..., Source] | None:
    # The multi-step sources import this module; they are imported here, when first needed.
    if kind == "external_account":
        from goth_actors._external import WorkloadIdentity

        return WorkloadIdentity
    if kind == "impersonated_service_account":
        from goth_actors._impersonated import Impersonated

        return Impersonated.from_credentials
    return _SOURCE_TYPES.get(kind)


def source_from_credentials(credentials: Mapping[str, Any], **options: Any) -> Source:
    """Picks the source for a decoded key file from its ``type``.

    - ``service_account`` gives :class:`ServiceAccount`;
    - ``authorized_user`` gives :class:`RefreshToken` (``scopes`` is dropped: these
      credentials carry the scopes the user granted);
    - ``external_account`` gives :class:`~goth_actors.WorkloadIdentity` (workload identity
      federation);
    - ``impersonated_service_account`` (gcloud's ADC file after ``gcloud auth
      application-default login --impersonate-service-account``) gives
      :class:`~goth_actors.Impersonated` around the source of its ``source_credentials``.

    ``options`` go to that source's constructor.

    Raises:
        ConfigError: The mapping has no ``type``, or one goth_actors does not support.

    Example:
        >>> credentials = json.load(open(path))  # doctest: +SKIP
        >>> source = source_from_credentials(credentials, scopes=(SCOPE,))  # doctest: +SKIP
    """
    if not isinstance(credentials, Mapping):
        raise ConfigError(
            "credentials",
            f"must be a mapping (the decoded JSON key file), got {type(credentials).__name__}",
        )
    supported = ", ".join(repr(k) for k in _SUPPORTED_TYPES)
    kind = credentials.get("type")
    if not isinstance(kind, str):
        raise ConfigError("credentials.type", f"is missing; expected one of {supported}")
    factory = _factory(kind)
    if factory is None:
        raise ConfigError(
            "credentials.type", f"{_quoted_type(kind)} is not supported; supported: {supported}"
        )
    if factory is RefreshToken:
        options.pop("scopes", None)
    return factory(credentials, **options)


def _quoted_type(value: str) -> str:
    """A key-file value fit to quote in an error: short identifiers only, never a secret."""
    if re.fullmatch(r"[A-Za-z0-9_]{1,40}", value):
        return repr(value)
    return f"a {len(value)}-character value"


def _gcloud_config_dir(environ: Mapping[str, str]) -> Path:
    configured = environ.get("CLOUDSDK_CONFIG")
    if configured:
        return Path(configured)
    if sys.platform == "win32" and environ.get("APPDATA"):
        return Path(environ["APPDATA"]) / "gcloud"
    return Path(environ.get("HOME") or Path.home()) / ".config" / "gcloud"


def _read_key_file(path: Path, origin: str) -> Mapping[str, Any]:
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(origin, f"names {str(path)!r}, which does not exist") from None
    except OSError as exc:
        raise ConfigError(origin, f"cannot read {str(path)!r}: {exc.strerror}") from None
    try:
        data = json.loads(text)
    except ValueError:
        raise ConfigError(origin, f"{str(path)!r} is not valid JSON") from None
    if not isinstance(data, dict):
        raise ConfigError(origin, f"{str(path)!r} does not hold a JSON object")
    return data


def default_source(*, environ: Mapping[str, str] | None = None, **options: Any) -> Source:
    """Application Default Credentials, looked up in google-auth's order.

    1. The key file named by ``GOOGLE_APPLICATION_CREDENTIALS``.
    2. gcloud's ``application_default_credentials.json`` (in ``CLOUDSDK_CONFIG`` when set,
       else ``~/.config/gcloud``, or ``%APPDATA%/gcloud`` on Windows).
    3. The metadata server (:class:`Metadata`).

    The environment is read when this is called, never at import.

    Args:
        environ: Environment to read instead of ``os.environ`` (for tests).
        **options: Passed to the chosen source (see :func:`source_from_credentials`); for the
            metadata server, ``scopes``, ``account``, ``audience`` and ``url`` apply.

    Raises:
        ConfigError: ``GOOGLE_APPLICATION_CREDENTIALS`` names a missing or malformed file, or a
            key file is of an unsupported type.

    Example:
        >>> source = default_source(scopes=("https://www.googleapis.com/auth/pubsub",))
    """
    env = os.environ if environ is None else environ
    named = env.get("GOOGLE_APPLICATION_CREDENTIALS")
    if named:
        credentials = _read_key_file(Path(named), "GOOGLE_APPLICATION_CREDENTIALS")
        return source_from_credentials(credentials, **options)
    well_known = _gcloud_config_dir(env) / "application_default_credentials.json"
    if well_known.is_file():
        credentials = _read_key_file(well_known, "application_default_credentials.json")
        return source_from_credentials(credentials, **options)
    metadata_options = {
        k: v for k, v in options.items() if k in ("scopes", "account", "audience", "url")
    }
    unknown = sorted(set(options) - set(metadata_options))
    if unknown:
        raise TypeError(
            f"default_source() got options the metadata source does not take: {unknown}"
        )
    return Metadata(**metadata_options)

"""Workload identity federation: ``external_account`` credentials (Goth's ``:workload_identity``).

A :class:`WorkloadIdentity` source trades a token from another identity provider (a
Kubernetes service account token in a file, a CI system's OIDC token from a URL) for a Google
access token at Google's Security Token Service (STS), and optionally trades that, through
IAM Credentials' ``generateAccessToken``, for a service account's token. At most three
requests, all through one :class:`~goth_actors._token.Exchanger` and so with its errors.
"""

from __future__ import annotations

import base64
import json
import os
import re
import stat
from collections.abc import Mapping, Sequence
from dataclasses import KW_ONLY, dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, Literal

from goth_actors._errors import ConfigError, TokenError, TransportError
from goth_actors._http import MAX_BODY_BYTES
from goth_actors._impersonated import (
    DEFAULT_LIFETIME,
    generate_access_token,
    split_generate_url,
    unusable_answer,
    without_query,
)
from goth_actors._sources import (
    _FORM,
    CLOUD_PLATFORM_SCOPE,
    Exchange,
    Source,
    _credentials_mapping,
    _form,
    _required_string,
    _scopes,
    _url,
)

if TYPE_CHECKING:
    from goth_actors._token import Exchanger, Token

__all__ = [
    "ACCESS_TOKEN_TYPE",
    "TOKEN_EXCHANGE_GRANT",
    "WorkloadIdentity",
]

TOKEN_EXCHANGE_GRANT = "urn:ietf:params:oauth:grant-type:token-exchange"
ACCESS_TOKEN_TYPE = "urn:ietf:params:oauth:token-type:access_token"
_WORKFORCE_AUDIENCE = re.compile(r"//iam\.googleapis\.com/locations/[^/]+/workforcePools/.+")
_MIN_IMPERSONATION_LIFETIME, _MAX_IMPERSONATION_LIFETIME = 600, 43200  # google-auth's bounds

_UNSUPPORTED = {
    "environment_id": "AWS credential sources ('environment_id') are not supported; use a file "
    "or url source",
    "executable": "executable-sourced credentials are not supported; run the executable "
    "yourself and point a file source at its output",
    "certificate": "X.509 certificate sources are not supported; use a file or url source",
}
_AWS_KEYS = ("region_url", "regional_cred_verification_url", "imdsv2_session_token_url")
_SOURCE_KEYS = ("file", "url", "headers", "format")


@dataclass(frozen=True, slots=True)
class _SubjectTokenSource:
    """Where the subject token comes from: validated ``credential_source``."""

    file: str | None
    url: str | None
    headers: Mapping[str, str] = field(repr=False)  # may carry a CI system's bearer token
    format: Literal["text", "json"]
    field_name: str | None

    def describe(self) -> str:
        if self.file is not None:
            where = f"file {self.file!r}"
        else:
            assert self.url is not None
            where = f"url {without_query(self.url)!r}"
        return where + (f" (json {self.field_name!r})" if self.format == "json" else "")


@dataclass(frozen=True, eq=False, repr=False)
class WorkloadIdentity(Source):
    """Workload identity federation: a Google token for another provider's token.

    Reads the subject token (from a file, or a URL such as a CI system's OIDC endpoint),
    exchanges it at Google's STS (``token_url``), and, when the credentials name a
    ``service_account_impersonation_url``, exchanges the STS token for that service
    account's token. Without impersonation the STS token is the token.

    Args:
        credentials: The decoded ``external_account`` credentials, as
            ``gcloud iam workload-identity-pools create-cred-config`` writes them:
            ``audience``, ``subject_token_type``, ``token_url``, ``credential_source`` and
            optionally ``service_account_impersonation_url``,
            ``service_account_impersonation.token_lifetime_seconds``,
            ``workforce_pool_user_project``, ``client_id`` and ``client_secret``.
            ``credential_source`` is ``{"file": path}`` or ``{"url": url, "headers": {...}}``,
            with an optional ``"format": {"type": "text"}`` (the default) or
            ``{"type": "json", "subject_token_field_name": name}``. AWS and executable
            sources are not supported.
        scopes: Scopes of the token. Sent to the impersonation step when there is one (STS
            then gets ``cloud-platform``, which IAM needs), else to STS. Default:
            ``("https://www.googleapis.com/auth/cloud-platform",)``.

    Raises:
        ConfigError: At construction, for any invalid or unsupported credentials, naming
            the field, e.g. ``credentials.credential_source.format.type``.

    Example:
        >>> source = WorkloadIdentity(json.load(open("wif.json")))  # doctest: +SKIP
        >>> token = Token.fetch(source)  # doctest: +SKIP
    """

    credentials: Mapping[str, Any]
    _: KW_ONLY
    scopes: Sequence[str] = (CLOUD_PLATFORM_SCOPE,)
    _source: _SubjectTokenSource = field(init=False, repr=False, compare=False)
    _impersonation_url: str | None = field(init=False, repr=False, compare=False)
    _lifetime: float = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        creds = _credentials_mapping(self.credentials, "external_account")
        _required_string(creds, "audience")
        subject_token_type = _required_string(creds, "subject_token_type")
        if not subject_token_type.startswith("urn:"):
            raise ConfigError(
                "credentials.subject_token_type",
                f"must be a token type URN such as 'urn:ietf:params:oauth:token-type:jwt', "
                f"got {subject_token_type[:100]!r}",
            )
        _url(_required_string(creds, "token_url"), "credentials.token_url")
        scopes = _scopes(self.scopes)
        if not scopes:
            raise ConfigError("scopes", "is empty; Google needs at least one scope")
        object.__setattr__(self, "scopes", scopes)
        object.__setattr__(self, "_source", _credential_source(creds.get("credential_source")))
        impersonation_url = _url(
            creds.get("service_account_impersonation_url"),
            "credentials.service_account_impersonation_url",
        )
        if impersonation_url is not None:
            split_generate_url(impersonation_url, "credentials.service_account_impersonation_url")
        object.__setattr__(self, "_impersonation_url", impersonation_url)
        object.__setattr__(self, "_lifetime", _impersonation_lifetime(creds, impersonation_url))
        _check_client(creds)
        _check_workforce_project(creds)
        object.__setattr__(self, "credentials", MappingProxyType(dict(creds)))

    @property
    def audience(self) -> str:
        """The workload identity pool provider (the STS ``audience``)."""
        return str(self.credentials["audience"])

    @property
    def token_url(self) -> str:
        """The STS endpoint this source posts to."""
        return str(self.credentials["token_url"])

    @property
    def service_account_email(self) -> str | None:
        """The service account impersonated after the STS exchange, or ``None``."""
        if self._impersonation_url is None:
            return None
        return split_generate_url(self._impersonation_url, "")[1]

    def __repr__(self) -> str:
        return (
            f"WorkloadIdentity(audience={self.audience!r}, "
            f"subject_token_type={self.credentials['subject_token_type']!r}, "
            f"subject_token_from={self._source.describe()!r}, "
            f"service_account_email={self.service_account_email!r}, scopes={self.scopes!r}, "
            f"token_url={without_query(self.token_url)!r})"
        )

    def prepare(self, now: float, environ: Mapping[str, str] | None = None) -> Exchange:
        raise NotImplementedError("WorkloadIdentity takes several requests; use Token.fetch()")

    def fetch_token(self, exchanger: Exchanger) -> Token:
        """Reads the subject token, exchanges it at STS, then impersonates if configured."""
        subject_token = self._subject_token(exchanger)
        sts = self._sts_exchange(subject_token)
        if self._impersonation_url is None:
            return exchanger.token(sts)
        data = exchanger.json(sts)
        where = without_query(self.token_url)
        sts_token = data.get("access_token")
        if not isinstance(sts_token, str) or not sts_token:
            raise unusable_answer(where, "answered 200 without an access_token string", data)
        token_type = data.get("token_type")
        token_type = token_type if isinstance(token_type, str) and token_type else "Bearer"
        return generate_access_token(
            exchanger,
            url=self._impersonation_url,
            authorization=f"{token_type} {sts_token}",
            scopes=self.scopes,
            lifetime=self._lifetime,
            secrets=(subject_token,),
        )

    # --- the steps ----------------------------------------------------------------------------

    def _subject_token(self, exchanger: Exchanger) -> str:
        source = self._source
        if source.file is not None:
            return _subject_from_file(source)
        assert source.url is not None
        exchange = Exchange(
            method="GET",
            url=source.url,
            headers=source.headers,
            body=b"",
            kind="oauth",
            secrets=tuple(source.headers.values()),
        )
        where = without_query(source.url)
        if source.format == "json":
            data = exchanger.json(exchange)
            assert source.field_name is not None
            value = data.get(source.field_name)
            if not isinstance(value, str) or not value.strip():
                raise unusable_answer(
                    where, f"answered without a subject token string in {source.field_name!r}", data
                )
            return value.strip()
        text = exchanger.text(exchange).strip()
        if not text:
            raise unusable_answer(where, "answered 200 with an empty subject token", None)
        return text

    def _sts_exchange(self, subject_token: str) -> Exchange:
        creds = self.credentials
        impersonating = self._impersonation_url is not None
        scopes = (CLOUD_PLATFORM_SCOPE,) if impersonating else tuple(self.scopes)
        fields = [
            ("audience", self.audience),
            ("grant_type", TOKEN_EXCHANGE_GRANT),
            ("requested_token_type", ACCESS_TOKEN_TYPE),
            ("scope", " ".join(scopes)),
            ("subject_token", subject_token),
            ("subject_token_type", str(creds["subject_token_type"])),
        ]
        headers = {"Content-Type": _FORM, "Accept": "application/json"}
        secrets: tuple[str, ...] = (subject_token,)
        client_id = creds.get("client_id")
        if isinstance(client_id, str) and client_id:
            client_secret = str(creds.get("client_secret") or "")
            pair = f"{client_id}:{client_secret}".encode()
            headers["Authorization"] = "Basic " + base64.b64encode(pair).decode("ascii")
            secrets += (headers["Authorization"],)
            secrets += (client_secret,) if client_secret else ()
        elif creds.get("workforce_pool_user_project"):
            options = {"userProject": creds["workforce_pool_user_project"]}
            fields.append(("options", json.dumps(options, separators=(",", ":"))))
        return Exchange(
            method="POST",
            url=self.token_url,
            headers=headers,
            body=_form(fields),
            kind="oauth",
            scope=" ".join(scopes),
            secrets=secrets,
        )


# ------------------------------------------------------------------------- the subject token


def _subject_from_file(source: _SubjectTokenSource) -> str:
    assert source.file is not None
    path = source.file
    try:
        # O_NONBLOCK: opening a FIFO with no writer must not block the server for ever.
        descriptor = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))
        with open(descriptor, "rb") as handle:
            if not stat.S_ISREG(os.fstat(descriptor).st_mode):
                raise _file_error(path, "is not a regular file")
            raw = handle.read(MAX_BODY_BYTES + 1)
    except OSError as exc:
        reason = exc.strerror or type(exc).__name__
        raise TransportError(
            f"cannot read the subject token file {path!r}: {reason}",
            url=Path(path).absolute().as_uri(),
        ) from exc
    if len(raw) > MAX_BODY_BYTES:
        raise _file_error(path, f"is larger than {MAX_BODY_BYTES} bytes")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise _file_error(path, "is not UTF-8 text") from None
    if source.format == "json":
        try:
            data = json.loads(text)
        except ValueError:
            raise _file_error(path, "is not JSON, but the format type is 'json'") from None
        value = data.get(source.field_name) if isinstance(data, dict) else None
        if not isinstance(value, str) or not value.strip():
            raise _file_error(path, f"has no subject token string in {source.field_name!r}")
        return value.strip()
    if not text.strip():
        raise _file_error(path, "is empty")
    return text.strip()


def _file_error(path: str, problem: str) -> TokenError:
    # Never quotes the file's content: it is, or is near, a credential.
    return TokenError(f"the subject token file {path!r} {problem}", retryable=False)


# --------------------------------------------------------------------------------- validation


def _credential_source(value: object) -> _SubjectTokenSource:
    name = "credentials.credential_source"
    if value is None:
        raise ConfigError(name, "is missing from the credentials")
    if not isinstance(value, Mapping):
        raise ConfigError(name, f"must be a mapping, got {type(value).__name__}")
    for key, reason in _UNSUPPORTED.items():
        if key in value:
            raise ConfigError(f"{name}.{key}", reason)
    for key in value:
        if key in _AWS_KEYS:
            raise ConfigError(f"{name}.{key}", _UNSUPPORTED["environment_id"])
        if key not in _SOURCE_KEYS:
            raise ConfigError(
                name, f"has an unknown key {str(key)[:40]!r}; expected file, url, headers, format"
            )
    file, url = value.get("file"), value.get("url")
    if (file is None) == (url is None):
        raise ConfigError(name, "needs exactly one of 'file' and 'url'")
    if file is not None and (not isinstance(file, str) or not file.strip()):
        raise ConfigError(f"{name}.file", "must be a non-empty path string")
    if url is not None:
        _url(url, f"{name}.url")
    headers = _headers(value.get("headers"), f"{name}.headers")
    if headers and file is not None:
        raise ConfigError(f"{name}.headers", "only apply to a 'url' credential source")
    kind, field_name = _format(value.get("format"), f"{name}.format")
    return _SubjectTokenSource(file, url, MappingProxyType(headers), kind, field_name)


def _headers(value: object, name: str) -> dict[str, str]:
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise ConfigError(
            name, f"must be a mapping of header names to values, got {type(value).__name__}"
        )
    headers: dict[str, str] = {}
    for key, item in value.items():
        if not isinstance(key, str) or not key or not key.isascii() or ":" in key:
            raise ConfigError(name, f"has a header name that is not valid: {str(key)[:40]!r}")
        if not isinstance(item, str) or "\n" in item or "\r" in item:
            # Never echo the value: it is usually a bearer token.
            raise ConfigError(f"{name}.{key}", "must be a one-line string")
        headers[key] = item
    return headers


def _format(value: object, name: str) -> tuple[Literal["text", "json"], str | None]:
    if value is None:
        return "text", None
    if not isinstance(value, Mapping):
        raise ConfigError(name, f"must be a mapping such as {{'type': 'text'}}, got {value!r:.40}")
    unknown = sorted(str(k)[:40] for k in value if k not in ("type", "subject_token_field_name"))
    if unknown:
        raise ConfigError(
            name, f"has unknown keys {unknown}; expected type, subject_token_field_name"
        )
    kind = value.get("type", "text")
    if kind not in ("text", "json"):
        shown = repr(kind)[:40]
        raise ConfigError(f"{name}.type", f"must be 'text' or 'json', got {shown}")
    field_name = value.get("subject_token_field_name")
    if field_name is not None and (not isinstance(field_name, str) or not field_name.strip()):
        raise ConfigError(f"{name}.subject_token_field_name", "must be a non-empty string")
    if kind == "json":
        if field_name is None:
            raise ConfigError(
                f"{name}.subject_token_field_name", "is required when the format type is 'json'"
            )
        return "json", field_name
    return "text", None


def _impersonation_lifetime(creds: Mapping[str, Any], impersonation_url: str | None) -> float:
    name = "credentials.service_account_impersonation"
    options = creds.get("service_account_impersonation")
    if options is None:
        return DEFAULT_LIFETIME
    if not isinstance(options, Mapping):
        raise ConfigError(name, f"must be a mapping, got {type(options).__name__}")
    unknown = sorted(str(k)[:40] for k in options if k != "token_lifetime_seconds")
    if unknown:
        raise ConfigError(name, f"has unknown keys {unknown}; expected token_lifetime_seconds")
    if "token_lifetime_seconds" in options and impersonation_url is None:
        raise ConfigError(
            f"{name}.token_lifetime_seconds",
            "has no effect without a service_account_impersonation_url",
        )
    seconds = options.get("token_lifetime_seconds", DEFAULT_LIFETIME)
    if isinstance(seconds, bool) or not isinstance(seconds, int | float):
        raise ConfigError(f"{name}.token_lifetime_seconds", "must be a number of seconds")
    if not _MIN_IMPERSONATION_LIFETIME <= seconds <= _MAX_IMPERSONATION_LIFETIME:
        raise ConfigError(
            f"{name}.token_lifetime_seconds",
            f"must be between {_MIN_IMPERSONATION_LIFETIME} and {_MAX_IMPERSONATION_LIFETIME} "
            f"seconds, got {seconds!r}",
        )
    return float(seconds)


def _check_client(creds: Mapping[str, Any]) -> None:
    client_id, client_secret = creds.get("client_id"), creds.get("client_secret")
    if client_id is not None and (not isinstance(client_id, str) or not client_id.strip()):
        raise ConfigError("credentials.client_id", "must be a non-empty string")
    if client_secret is not None and not isinstance(client_secret, str):
        raise ConfigError("credentials.client_secret", "must be a string")
    if client_secret and client_id is None:
        raise ConfigError("credentials.client_secret", "is given without a client_id")


def _check_workforce_project(creds: Mapping[str, Any]) -> None:
    project = creds.get("workforce_pool_user_project")
    if project is None:
        return
    name = "credentials.workforce_pool_user_project"
    if not isinstance(project, str) or not project.strip():
        raise ConfigError(name, "must be a non-empty string")
    if not _WORKFORCE_AUDIENCE.fullmatch(str(creds["audience"])):
        raise ConfigError(name, "applies only to a workforce pool audience")

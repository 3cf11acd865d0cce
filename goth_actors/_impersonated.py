"""Service-account impersonation through IAM Credentials, and the IAM answers it reads.

:class:`Impersonated` gets a token from any other source, then trades it at IAM Credentials
(``generateAccessToken``, or ``generateIdToken`` for an audience) for a token of the target
service account. Both requests go through the same :class:`~goth_actors._token.Exchanger`, so
both get its error handling. The helpers here also serve workload identity federation, whose
``service_account_impersonation_url`` is a ``generateAccessToken`` call.
"""

from __future__ import annotations

import calendar
import json
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import KW_ONLY, dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import quote, unquote, urlsplit, urlunsplit

from goth_actors._errors import ConfigError, TokenEndpointError
from goth_actors._sources import (
    CLOUD_PLATFORM_SCOPE,
    Exchange,
    Metadata,
    ServiceAccount,
    Source,
    _credentials_mapping,
    _optional_string,
    _required_string,
    _scopes,
    _shown,
    _url,
    source_from_credentials,
)
from goth_actors._token import Token, id_token_from_jwt, without_query

if TYPE_CHECKING:
    from goth_actors._token import Exchanger

__all__ = [
    "DEFAULT_LIFETIME",
    "IAM_CREDENTIALS_URL",
    "MAX_LIFETIME",
    "Impersonated",
    "generate_access_token",
    "generate_id_token",
    "id_token",
    "parse_rfc3339",
    "split_generate_url",
    "unusable_answer",
    "without_query",
]

IAM_CREDENTIALS_URL = "https://iamcredentials.googleapis.com"
DEFAULT_LIFETIME = 3600.0
"""Seconds an impersonated access token lives unless told otherwise (Google's default)."""
MAX_LIFETIME = 43200.0
"""The longest lifetime IAM grants (12 h), and only where an organization policy allows it."""

_JSON = "application/json"
_ACCOUNT = re.compile(r"[^@\s/:]+@[^@\s/:]+|\d+")
_RESOURCE_PREFIX = "projects/-/serviceAccounts/"
_GENERATE_URL = re.compile(r"(?P<prefix>.*)/v1/projects/-/serviceAccounts/(?P<target>[^/]+)")
_RFC3339 = re.compile(
    r"(\d{4})-(\d{2})-(\d{2})[Tt](\d{2}):(\d{2}):(\d{2})"  # date and time
    r"(?:\.(\d{1,9}))?"  # up to nanoseconds
    r"(?:([Zz])|([+-])(\d{2}):(\d{2}))"  # the offset, required
)


@dataclass(frozen=True, eq=False, repr=False)
class Impersonated(Source):
    """A service account's token, got by impersonating it with another source's token.

    Fetches a token from ``source`` (any source that gives access tokens: a user's refresh
    token, the metadata server, another service account, workload identity), then asks IAM
    Credentials for a token of ``target_principal``: ``generateAccessToken``, or
    ``generateIdToken`` when ``audience`` is set. The source's identity needs the Service
    Account Token Creator role on the target (or on the first of ``delegates``).

    Args:
        source: Where the caller's own token comes from.
        target_principal: The email (or numeric unique id) of the service account to
            impersonate.
        scopes: Scopes of the impersonated access token. Default:
            ``("https://www.googleapis.com/auth/cloud-platform",)``.
        delegates: The chain of service accounts from the caller to the target, each
            allowed to impersonate the next, as emails or ``projects/-/serviceAccounts/...``
            names. Default: none, the caller impersonates the target directly.
        lifetime: Seconds the access token lives, 1 to 43200 (above 3600 only where the
            organization policy ``iam.allowServiceAccountCredentialLifetimeExtension`` allows
            it). Default: 3600.
        audience: When set, ask for an ID token for this audience (IAP, Cloud Run) instead of
            an access token; ``scopes`` and ``lifetime`` do not apply. The ID token carries
            the target's email.
        url: Base URL of IAM Credentials. Default: ``https://iamcredentials.googleapis.com``.

    Raises:
        ConfigError: At construction, naming the field, for any invalid input.

    Example:
        >>> user = RefreshToken(json.load(open(adc_path)))  # doctest: +SKIP
        >>> source = Impersonated(user, "deployer@my-project.iam.gserviceaccount.com")
        ... # doctest: +SKIP
        >>> token = Token.fetch(source)  # doctest: +SKIP
    """

    source: Source
    target_principal: str
    _: KW_ONLY
    scopes: Sequence[str] = (CLOUD_PLATFORM_SCOPE,)
    delegates: Sequence[str] = ()
    lifetime: float = DEFAULT_LIFETIME
    audience: str | None = None
    url: str | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.source, Source):
            raise ConfigError(
                "source", f"must be a goth_actors Source, got {type(self.source).__name__}"
            )
        if _gives_id_tokens(self.source):
            raise ConfigError(
                "source", "gives ID tokens; IAM Credentials needs the caller's access token"
            )
        object.__setattr__(self, "target_principal", _account(self.target_principal))
        scopes = _scopes(self.scopes)
        if not scopes and self.audience is None:
            raise ConfigError("scopes", "is empty; an impersonated access token needs a scope")
        object.__setattr__(self, "scopes", scopes)
        object.__setattr__(self, "delegates", _delegates(self.delegates, "delegates"))
        object.__setattr__(self, "lifetime", _lifetime(self.lifetime))
        object.__setattr__(self, "audience", _optional_string(self.audience, "audience"))
        url = _url(self.url, "url")
        object.__setattr__(self, "url", url.rstrip("/") if url else None)

    @classmethod
    def from_credentials(cls, credentials: Mapping[str, Any], **options: Any) -> Impersonated:
        """The source for gcloud's ``impersonated_service_account`` credentials.

        That file is what ``gcloud auth application-default login
        --impersonate-service-account=SA`` writes: ``source_credentials`` (usually an
        ``authorized_user``), ``service_account_impersonation_url`` (which names the target
        and IAM's base URL) and ``delegates``.

        Args:
            credentials: The decoded file.
            **options: ``scopes``, ``lifetime``, ``audience`` or ``url``, as for the
                constructor.

        Raises:
            ConfigError: Naming the field, for a malformed file. A problem inside
                ``source_credentials`` is named ``credentials.source_credentials.<key>``.

        Example:
            >>> source = Impersonated.from_credentials(json.load(open(adc_path)))
            ... # doctest: +SKIP
        """
        creds = _credentials_mapping(credentials, "impersonated_service_account")
        name = "credentials.service_account_impersonation_url"
        impersonation_url = _url(_required_string(creds, "service_account_impersonation_url"), name)
        assert impersonation_url is not None
        base, target = split_generate_url(impersonation_url, name)
        inner = creds.get("source_credentials")
        if not isinstance(inner, Mapping):
            raise ConfigError(
                "credentials.source_credentials",
                "must be a mapping (the credentials of the identity that impersonates)",
            )
        if inner.get("type") == "impersonated_service_account":
            raise ConfigError(
                "credentials.source_credentials.type",
                "is 'impersonated_service_account'; list the chain in 'delegates' instead",
            )
        try:
            source = source_from_credentials(inner)
        except ConfigError as exc:
            field = "credentials.source_credentials" + exc.field.removeprefix("credentials")
            message = str(exc).removeprefix(f"{exc.field}: ")
            raise ConfigError(field, message) from None
        delegates = creds.get("delegates") or ()
        kwargs: dict[str, Any] = {
            "delegates": _delegates(delegates, "credentials.delegates"),
            "url": base,
            **options,
        }
        return cls(source, target, **kwargs)

    def __repr__(self) -> str:
        return (
            f"Impersonated(source={self.source!r}, target_principal={self.target_principal!r}, "
            f"scopes={self.scopes!r}, delegates={self.delegates!r}, lifetime={self.lifetime!r}"
            f"{_shown('audience', self.audience)}, url={self.iam_url!r})"
        )

    @property
    def iam_url(self) -> str:
        """IAM Credentials' base URL this source posts to."""
        return self.url or IAM_CREDENTIALS_URL

    def prepare(self, now: float, environ: Mapping[str, str] | None = None) -> Exchange:
        raise NotImplementedError("Impersonated takes two requests; use Token.fetch()")

    def fetch_token(self, exchanger: Exchanger) -> Token:
        """Fetches the source's token, then the target's from IAM Credentials."""
        caller = self.source.fetch_token(exchanger)
        authorization = f"{caller.type} {caller.token}"
        resource = f"{self.iam_url}/v1/{_RESOURCE_PREFIX}{quote(self.target_principal, safe='@')}"
        if self.audience is not None:
            return generate_id_token(
                exchanger,
                url=f"{resource}:generateIdToken",
                authorization=authorization,
                audience=self.audience,
                delegates=self.delegates,
                secrets=(caller.token,),
            )
        return generate_access_token(
            exchanger,
            url=f"{resource}:generateAccessToken",
            authorization=authorization,
            scopes=self.scopes,
            lifetime=self.lifetime,
            delegates=self.delegates,
            secrets=(caller.token,),
        )


# ------------------------------------------------------------------------------ IAM requests


def generate_access_token(
    exchanger: Exchanger,
    *,
    url: str,
    authorization: str,
    scopes: Sequence[str],
    lifetime: float,
    delegates: Sequence[str] = (),
    secrets: tuple[str, ...] = (),
) -> Token:
    """POSTs IAM's ``generateAccessToken`` at ``url``; reads ``{"accessToken", "expireTime"}``."""
    body: dict[str, Any] = {"scope": list(scopes), "lifetime": _duration(lifetime)}
    if delegates:
        body["delegates"] = [_RESOURCE_PREFIX + d for d in delegates]
    exchange = _json_post(url, authorization, body, secrets)
    data = exchanger.json(exchange)
    where = without_query(url)
    access_token = data.get("accessToken")
    if not isinstance(access_token, str) or not access_token:
        raise unusable_answer(where, "answered 200 without an accessToken string", data)
    expire_time = data.get("expireTime")
    expires = parse_rfc3339(expire_time) if isinstance(expire_time, str) else None
    if expires is None:
        shown = repr(expire_time[:40]) if isinstance(expire_time, str) else "missing"
        raise unusable_answer(
            where, f"has an expireTime that is not an RFC 3339 time ({shown})", data
        )
    if expires <= exchanger.clock():
        raise unusable_answer(where, f"has an expireTime in the past ({expire_time!r})", data)
    return Token(
        token=access_token, type="Bearer", scope=" ".join(scopes), sub=None, expires=expires
    )


def generate_id_token(
    exchanger: Exchanger,
    *,
    url: str,
    authorization: str,
    audience: str,
    delegates: Sequence[str] = (),
    secrets: tuple[str, ...] = (),
) -> Token:
    """POSTs IAM's ``generateIdToken`` at ``url``; reads ``{"token": jwt}``."""
    body: dict[str, Any] = {"audience": audience, "includeEmail": True}
    if delegates:
        body["delegates"] = [_RESOURCE_PREFIX + d for d in delegates]
    data = exchanger.json(_json_post(url, authorization, body, secrets))
    where = without_query(url)
    token = data.get("token")
    if not isinstance(token, str) or not token:
        raise unusable_answer(where, "answered 200 without a token string", data)
    return id_token(token, where, data)


def id_token(text: str, where: str, data: Mapping[str, Any] | None = None) -> Token:
    """A :class:`Token` from an IAM ``generateIdToken`` answer's JWT (see ``id_token_from_jwt``)."""
    return id_token_from_jwt(text, lambda problem: unusable_answer(where, problem, data))


def parse_rfc3339(text: str) -> float | None:
    """Unix seconds from an RFC 3339 time, or ``None`` if ``text`` is not one.

    Takes any offset (``Z``, ``+02:00``, ``-05:30``) and up to nine fractional digits, as
    Google's ``google.protobuf.Timestamp`` JSON does. An offset is required.

    Example:
        >>> parse_rfc3339("2024-01-01T02:00:00.5+02:00")
        1704067200.5
    """
    match = _RFC3339.fullmatch(text.strip())
    if match is None:
        return None
    year, month, day, hour, minute, second = (int(g) for g in match.groups()[:6])
    fraction, zulu, sign, offset_hours, offset_minutes = match.groups()[6:]
    if not (1 <= month <= 12 and 1 <= day <= 31 and hour <= 23 and minute <= 59 and second <= 60):
        return None
    if calendar.monthrange(year, month)[1] < day:
        return None
    seconds = calendar.timegm((year, month, day, hour, minute, second, 0, 0, 0))
    if not zulu:
        hours, minutes = int(offset_hours), int(offset_minutes)
        if hours > 23 or minutes > 59:
            return None
        offset = hours * 3600 + minutes * 60
        seconds -= offset if sign == "+" else -offset
    return seconds + (int(fraction) / 10 ** len(fraction) if fraction else 0.0)


# ----------------------------------------------------------------------------------- helpers


def _json_post(
    url: str, authorization: str, body: Mapping[str, Any], secrets: tuple[str, ...]
) -> Exchange:
    token = authorization.partition(" ")[2]
    return Exchange(
        method="POST",
        url=url,
        headers={"Authorization": authorization, "Content-Type": _JSON, "Accept": _JSON},
        body=json.dumps(body, separators=(",", ":")).encode("utf-8"),
        kind="oauth",
        secrets=(*secrets, token),
    )


def unusable_answer(where: str, problem: str, data: Mapping[str, Any] | None) -> TokenEndpointError:
    # The body excerpt names the keys and their types, never a value: values may be tokens.
    shape = ", ".join(f"{k!r}: {type(v).__name__}" for k, v in list((data or {}).items())[:10])
    return TokenEndpointError(
        f"{where} {problem}", status=200, retryable=False, body=f"{{{shape}}}", url=where
    )


def _account(value: object, name: str = "target_principal") -> str:
    if not isinstance(value, str):
        raise ConfigError(name, f"must be a service account email, got {type(value).__name__}")
    account = value.removeprefix(_RESOURCE_PREFIX)
    if not _ACCOUNT.fullmatch(account):
        raise ConfigError(
            name, f"must be a service account email or unique id, got {account[:100]!r}"
        )
    return account


def _delegates(value: object, name: str) -> tuple[str, ...]:
    if isinstance(value, str | bytes) or not isinstance(value, Sequence):
        raise ConfigError(name, "must be a sequence of service account emails (a list or tuple)")
    return tuple(_account(item, name) for item in value)


def _lifetime(value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ConfigError("lifetime", f"must be a number of seconds, got {type(value).__name__}")
    if not math.isfinite(value) or not 1 <= value <= MAX_LIFETIME:
        raise ConfigError(
            "lifetime", f"must be between 1 and {MAX_LIFETIME:.0f} seconds (12 h), got {value!r}"
        )
    return float(value)


def _duration(seconds: float) -> str:
    """``3600s``, or ``1.5s``: a ``google.protobuf.Duration`` in JSON."""
    if seconds == int(seconds):
        return f"{int(seconds)}s"
    return f"{seconds:.9f}".rstrip("0") + "s"


def split_generate_url(url: str, name: str) -> tuple[str, str]:
    """``(base, target)`` of ``{base}/v1/projects/-/serviceAccounts/{target}:generate...``."""
    parts = urlsplit(url)
    path, _, method = parts.path.rpartition(":")
    match = _GENERATE_URL.fullmatch(path)
    if method != "generateAccessToken" or match is None:
        raise ConfigError(
            name, "must end in /v1/projects/-/serviceAccounts/{email}:generateAccessToken"
        )
    base = urlunsplit((parts.scheme, parts.netloc, match["prefix"], "", ""))
    return base, _account(unquote(match["target"]), name)


def _gives_id_tokens(source: Source) -> bool:
    if isinstance(source, ServiceAccount):
        return source.target_audience is not None or "target_audience" in (source.claims or {})
    if isinstance(source, Metadata | Impersonated):
        return source.audience is not None
    return False

"""IAM Credentials: ``generateAccessToken`` and ``generateIdToken``, and the answers they read.

Used by `Impersonated` and by workload identity federation, whose
``service_account_impersonation_url`` is a ``generateAccessToken`` call. Both go through the
caller's `Exchanger`, so both get its error handling.
"""

from __future__ import annotations

import calendar
import json
import math
import re
from collections.abc import Mapping, Sequence
from typing import Any
from urllib.parse import unquote, urlsplit, urlunsplit

from goth_actors._base import ConfigError
from goth_actors._protocol.answers import token_problem, unusable_answer
from goth_actors._protocol.exchange import Exchange
from goth_actors._protocol.redact import without_query
from goth_actors._protocol.token import Exchanger, Token, id_token_from_jwt

__all__ = [
    "DEFAULT_LIFETIME",
    "IAM_CREDENTIALS_URL",
    "MAX_LIFETIME",
    "RESOURCE_PREFIX",
    "check_account",
    "check_delegates",
    "check_lifetime",
    "generate_access_token",
    "generate_id_token",
    "id_token",
    "json_post",
    "parse_rfc3339",
    "split_generate_url",
]

IAM_CREDENTIALS_URL = "https://iamcredentials.googleapis.com"
DEFAULT_LIFETIME = 3600.0
"""Seconds an impersonated access token lives unless told otherwise (Google's default)."""
MAX_LIFETIME = 43200.0
"""The longest lifetime IAM grants (12 h), and only where an organization policy allows it."""

_JSON = "application/json"
_ACCOUNT = re.compile(r"[^@\s/:]+@[^@\s/:]+|\d+")
RESOURCE_PREFIX = "projects/-/serviceAccounts/"
_GENERATE_URL = re.compile(r"(?P<prefix>.*)/v1/projects/-/serviceAccounts/(?P<target>[^/]+)")
_RFC3339 = re.compile(
    r"(\d{4})-(\d{2})-(\d{2})[Tt](\d{2}):(\d{2}):(\d{2})"  # date and time
    r"(?:\.(\d{1,9}))?"  # up to nanoseconds
    r"(?:([Zz])|([+-])(\d{2}):(\d{2}))"  # the offset, required
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
    client_cert: tuple[str, str] | None = None,
) -> Token:
    """POSTs IAM's ``generateAccessToken`` at ``url``; reads ``{"accessToken", "expireTime"}``."""
    body: dict[str, Any] = {"scope": list(scopes), "lifetime": _duration(lifetime)}
    if delegates:
        body["delegates"] = [RESOURCE_PREFIX + d for d in delegates]
    exchange = json_post(url, authorization, body, secrets, client_cert)
    data = exchanger.json(exchange)
    where = without_query(url)
    access_token = data.get("accessToken")
    if not isinstance(access_token, str) or not access_token:
        raise unusable_answer(where, "answered 200 without an accessToken string", data)
    problem = token_problem(access_token, "accessToken")
    if problem is not None:
        raise unusable_answer(where, problem, data)
    expire_time = data.get("expireTime")
    expires = parse_rfc3339(expire_time) if isinstance(expire_time, str) else None
    shown = repr(expire_time[:40]) if isinstance(expire_time, str) else "missing"
    if expires is None:
        raise unusable_answer(
            where, f"has an expireTime that is not an RFC 3339 time ({shown})", data
        )
    if expires <= exchanger.clock():
        raise unusable_answer(where, f"has an expireTime in the past ({shown})", data)
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
    client_cert: tuple[str, str] | None = None,
) -> Token:
    """POSTs IAM's ``generateIdToken`` at ``url``; reads ``{"token": jwt}``."""
    body: dict[str, Any] = {"audience": audience, "includeEmail": True}
    if delegates:
        body["delegates"] = [RESOURCE_PREFIX + d for d in delegates]
    data = exchanger.json(json_post(url, authorization, body, secrets, client_cert))
    where = without_query(url)
    token = data.get("token")
    if not isinstance(token, str) or not token:
        raise unusable_answer(where, "answered 200 without a token string", data)
    return id_token(token, where, data)


def id_token(text: str, where: str, data: Mapping[str, Any] | None = None) -> Token:
    """A `Token` from an IAM ``generateIdToken`` answer's JWT (see ``id_token_from_jwt``)."""
    return id_token_from_jwt(text, lambda problem: unusable_answer(where, problem, data))


def parse_rfc3339(text: str) -> float | None:
    """Unix seconds from an RFC 3339 time, or ``None`` if ``text`` is not one.

    Takes any offset (``Z``, ``+02:00``, ``-05:30``) and up to nine fractional digits, as
    Google's ``google.protobuf.Timestamp`` JSON does. An offset is required.

    Examples:
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


def json_post(
    url: str,
    authorization: str,
    body: Mapping[str, Any],
    secrets: tuple[str, ...],
    client_cert: tuple[str, str] | None = None,
) -> Exchange:
    """A JSON POST to a Google API with a bearer token (IAM Credentials' calls)."""
    token = authorization.partition(" ")[2]
    return Exchange(
        method="POST",
        url=url,
        headers={"Authorization": authorization, "Content-Type": _JSON, "Accept": _JSON},
        body=json.dumps(body, separators=(",", ":")).encode("utf-8"),
        kind="oauth",
        secrets=(*secrets, token),
        client_cert=client_cert,
    )


def check_account(value: object, name: str = "target_principal") -> str:
    if not isinstance(value, str):
        raise ConfigError(name, f"must be a service account email, got {type(value).__name__}")
    account = value.removeprefix(RESOURCE_PREFIX)
    if not _ACCOUNT.fullmatch(account):
        raise ConfigError(
            name, f"must be a service account email or unique id, got {account[:100]!r}"
        )
    return account


def check_delegates(value: object, name: str) -> tuple[str, ...]:
    if isinstance(value, str | bytes) or not isinstance(value, Sequence):
        raise ConfigError(name, "must be a sequence of service account emails (a list or tuple)")
    return tuple(check_account(item, name) for item in value)


def check_lifetime(value: object) -> float:
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
    return base, check_account(unquote(match["target"]), name)

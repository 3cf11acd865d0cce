"""The token, and the one-shot exchange that gets one (Goth's ``Goth.Token``).

:meth:`Token.fetch` makes one attempt for one source (one request, or one per step for
multi-step sources such as workload identity) and returns a :class:`Token` or raises a
:class:`~goth_actors.TokenError`. No cache, no retry, no threads: the token server does those.
"""

from __future__ import annotations

import json
import math
import re
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from email.utils import parsedate_to_datetime
from typing import Any
from urllib.parse import quote, quote_plus, urlsplit, urlunsplit

import jwt

from goth_actors._errors import TokenEndpointError, TransportError
from goth_actors._http import (
    DEFAULT_TIMEOUT,
    HttpClient,
    HttpResponse,
    ResponseTooLarge,
    default_http_client,
)
from goth_actors._sources import Exchange, Source

__all__ = ["RETRYABLE_OAUTH_ERRORS", "RETRYABLE_STATUSES", "Exchanger", "Token"]

RETRYABLE_STATUSES = frozenset({408, 429, 500, 502, 503, 504})
"""HTTP statuses after which trying again later may succeed."""

RETRYABLE_OAUTH_ERRORS = frozenset({"internal_failure", "server_error", "temporarily_unavailable"})
"""OAuth ``error`` codes after which trying again later may succeed."""

MAX_EXPIRES_IN = 30 * 24 * 3600
"""An ``expires_in`` above this (30 days) is treated as nonsense, not trusted."""

_EXCERPT_CHARS = 200


@dataclass(frozen=True, slots=True, repr=False)
class Token:
    """An access token or ID token, as Google issued it.

    Attributes:
        token: The token itself. Never shown by ``repr`` or ``str``.
        type: The token type for the ``Authorization`` header, e.g. ``"Bearer"``.
        scope: The scopes it grants (space separated), the ID token's audience, or ``None``.
        sub: The subject it acts for (domain-wide delegation, or the ID token's ``sub``).
        expires: When it expires, in absolute unix seconds (wall clock).

    Example:
        >>> token = Token.fetch(source)  # doctest: +SKIP
        >>> headers = {"Authorization": f"{token.type} {token.token}"}  # doctest: +SKIP
    """

    token: str
    type: str
    scope: str | None
    sub: str | None
    expires: float

    def __repr__(self) -> str:
        return (
            f"Token(token=<{len(self.token)} chars hidden>, type={self.type!r}, "
            f"scope={self.scope!r}, sub={self.sub!r}, expires={self.expires!r})"
        )

    __str__ = __repr__

    def expires_in(self, now: float | None = None) -> float:
        """Seconds until expiry (negative once expired) at unix time ``now`` (default: now)."""
        return self.expires - (time.time() if now is None else now)

    @classmethod
    def fetch(
        cls,
        source: Source,
        *,
        http_client: HttpClient | None = None,
        timeout: float = DEFAULT_TIMEOUT,
        clock: Callable[[], float] = time.time,
        environ: Mapping[str, str] | None = None,
    ) -> Token:
        """Makes one attempt to get a token for ``source`` from Google or the metadata server.

        No cache and no retry: one HTTP request, or one per step for multi-step sources
        (:class:`~goth_actors.WorkloadIdentity`: subject token, STS, impersonation;
        :class:`~goth_actors.Impersonated`: the source's token, then IAM).

        Args:
            source: A :class:`~goth_actors.ServiceAccount`, :class:`~goth_actors.RefreshToken`,
                :class:`~goth_actors.Metadata`, :class:`~goth_actors.WorkloadIdentity` or
                :class:`~goth_actors.Impersonated` (any :class:`~goth_actors.Source`).
            http_client: The HTTP client (see :mod:`goth_actors._http` for the contract).
                Default: a shared ``requests.Session``, TLS verified, no redirects followed.
            timeout: Seconds to wait to connect and for each read.
            clock: Wall clock in unix seconds, for JWT times and the token's expiry.
            environ: Environment to read (``GCE_METADATA_HOST``); ``os.environ`` by default.

        Returns:
            The token. For an access token ``expires`` is now + ``expires_in``; for an ID
            token (``{"id_token": ...}`` or a metadata identity answer) it is the JWT's
            ``exp``, ``scope`` its ``aud`` and ``sub`` its ``sub``. The ID token's payload
            is read **without verifying its signature**: it came straight from Google over
            TLS, and goth_actors only needs its expiry.

        Raises:
            TokenEndpointError: The endpoint answered with a non-200 status (``retryable``
                for 408, 429, 5xx and Google's transient OAuth errors), or a 200 that is not
                a usable token (``retryable=False``).
            TransportError: No answer: connection refused or reset, timeout, DNS (retryable).

        Example:
            >>> token = Token.fetch(Metadata())  # doctest: +SKIP
        """
        if not isinstance(source, Source):
            raise TypeError(f"source must be a goth_actors Source, got {type(source).__name__}")
        exchanger = Exchanger(
            default_http_client if http_client is None else http_client,
            timeout=timeout,
            clock=clock,
            environ=environ,
        )
        return source.fetch_token(exchanger)


class Exchanger:
    """Sends prepared requests and reads Google's answers; what a source fetches with.

    Most sources build one :class:`~goth_actors._sources.Exchange` and let
    :meth:`token` do the rest. Sources that need several steps (a subject token, then an STS
    exchange, then impersonation) call :meth:`json` or :meth:`text` for the intermediate steps
    and :meth:`token` for the last; every step gets the same error handling.
    """

    def __init__(
        self,
        http_client: HttpClient,
        *,
        timeout: float,
        clock: Callable[[], float],
        environ: Mapping[str, str] | None,
    ) -> None:
        self.http_client = http_client
        self.timeout = timeout
        self.clock = clock
        self.environ = environ

    def send(self, exchange: Exchange) -> HttpResponse:
        """Sends one request; raises on transport failure or a refused oversized body."""
        url = without_query(exchange.url)
        try:
            response = self.http_client(
                method=exchange.method,
                url=exchange.url,
                headers=exchange.headers,
                body=exchange.body,
                timeout=self.timeout,
            )
        except ResponseTooLarge as exc:
            raise TokenEndpointError(
                f"{url} answered {exc.status} with a body larger than {exc.limit} bytes; refused",
                status=exc.status,
                retryable=exc.status in RETRYABLE_STATUSES,
                url=url,
            ) from None
        except Exception as exc:
            detail = _redact(f"{type(exc).__name__}: {exc}", exchange.secrets)
            detail = _QUERY.sub("?<redacted>", detail)  # a query string can carry a signature
            raise TransportError(
                f"{exchange.method} {url} failed: {detail[:300]}", url=url
            ) from exc
        if not isinstance(response, HttpResponse):
            raise TransportError(
                f"http_client returned {type(response).__name__}, not an HttpResponse", url=url
            )
        return response

    def token(self, exchange: Exchange) -> Token:
        """Sends ``exchange`` and reads the answer as a token."""
        response = self.send(exchange)
        return _read_response(response, exchange, without_query(exchange.url), self.clock)

    def json(self, exchange: Exchange) -> Mapping[str, Any]:
        """Sends ``exchange`` and returns the 200 answer's JSON object."""
        response = self.send(exchange)
        url = without_query(exchange.url)
        if response.status != 200:
            raise _status_error(response, exchange, url, self.clock)
        return _json_object(response, exchange, url)

    def text(self, exchange: Exchange) -> str:
        """Sends ``exchange`` and returns the 200 answer's body as text."""
        response = self.send(exchange)
        if response.status != 200:
            raise _status_error(response, exchange, without_query(exchange.url), self.clock)
        if isinstance(response.body, Mapping):
            return json.dumps(response.body)
        return _text(response.body)


# ----------------------------------------------------------------------------- reading answers


def _read_response(
    response: HttpResponse, exchange: Exchange, url: str, clock: Callable[[], float]
) -> Token:
    if response.status != 200:
        raise _status_error(response, exchange, url, clock)
    if exchange.kind.startswith("metadata") and response.header("Metadata-Flavor") != "Google":
        raise _invalid(
            response,
            exchange,
            url,
            "answered without 'Metadata-Flavor: Google': "
            "not a metadata server (a proxy or captive portal?)",
        )
    if exchange.kind == "metadata_identity":
        text = _text(response.body).strip()
        return _id_token(text, response, exchange, url)
    data = _json_object(response, exchange, url)
    if "access_token" in data:
        return _access_token(data, response, exchange, url, clock)
    if "id_token" in data:
        id_token = data["id_token"]
        if not isinstance(id_token, str):
            raise _invalid(response, exchange, url, "has an id_token that is not a string")
        return _id_token(id_token, response, exchange, url)
    raise _invalid(response, exchange, url, "answered 200 without an access_token or id_token")


def _access_token(
    data: Mapping[str, Any],
    response: HttpResponse,
    exchange: Exchange,
    url: str,
    clock: Callable[[], float],
) -> Token:
    access_token = data["access_token"]
    if not isinstance(access_token, str) or not access_token:
        raise _invalid(response, exchange, url, "has an access_token that is not a string")
    expires_in = _expires_in(data.get("expires_in"))
    if expires_in is None:
        raise _invalid(
            response,
            exchange,
            url,
            f"has a nonsensical expires_in ({_describe(data.get('expires_in'))}); "
            f"expected a number of seconds in (0, {MAX_EXPIRES_IN}]",
        )
    token_type = data.get("token_type")
    scope = data.get("scope")
    sub = data.get("sub")
    return Token(
        token=access_token,
        type=token_type if isinstance(token_type, str) and token_type else "Bearer",
        scope=exchange.scope if exchange.scope is not None else _str_or_none(scope),
        sub=exchange.sub if exchange.sub is not None else _str_or_none(sub),
        expires=clock() + expires_in,
    )


def _id_token(text: str, response: HttpResponse, exchange: Exchange, url: str) -> Token:
    return id_token_from_jwt(text, lambda problem: _invalid(response, exchange, url, problem))


def id_token_from_jwt(text: str, unusable: Callable[[str], TokenEndpointError]) -> Token:
    """A :class:`Token` from an ID token: ``expires`` its ``exp``, ``scope`` its ``aud``.

    The signature is not checked: the JWT came straight from Google over TLS, and only its
    expiry, audience and subject are read. ``unusable(problem)`` builds the error to raise.
    """
    try:
        claims = jwt.decode(text, options={"verify_signature": False})
    except jwt.PyJWTError:
        raise unusable("answered with an ID token that is not a JWT") from None
    exp = claims.get("exp")
    if isinstance(exp, bool) or not isinstance(exp, int | float) or not math.isfinite(exp):
        raise unusable("answered with an ID token without a numeric exp")
    aud = claims.get("aud")
    audience = " ".join(a for a in aud if isinstance(a, str)) if isinstance(aud, list) else aud
    return Token(
        token=text,
        type="Bearer",
        scope=_str_or_none(audience),
        sub=_str_or_none(claims.get("sub")),
        expires=float(exp),
    )


def _expires_in(value: object) -> float | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, str):
        try:
            value = float(value.strip())
        except ValueError:
            return None
    if not isinstance(value, int | float) or not math.isfinite(value):
        return None
    if not 0 < value <= MAX_EXPIRES_IN:
        return None
    return float(value)


def _status_error(
    response: HttpResponse, exchange: Exchange, url: str, clock: Callable[[], float]
) -> TokenEndpointError:
    status = response.status
    error: str | None = None
    description: str | None = None
    body = response.body
    data: object = body if isinstance(body, Mapping) else None
    if data is None:
        try:
            data = json.loads(_text(body))
        except ValueError:
            data = None
    if isinstance(data, Mapping):
        raw_error = data.get("error")
        if isinstance(raw_error, Mapping):  # Google APIs' {"error": {"status": ..., "message"}}
            error = _str_or_none(raw_error.get("status"))
            description = _str_or_none(raw_error.get("message"))
        else:
            error = _str_or_none(raw_error)
            description = _str_or_none(data.get("error_description"))
    if error is not None:
        error = _redact(error, exchange.secrets)[:100]
    if description is not None:
        description = _redact(description, exchange.secrets)[:_EXCERPT_CHARS]
    if error == "invalid_grant":
        retryable = False
    else:
        retryable = status in RETRYABLE_STATUSES or error in RETRYABLE_OAUTH_ERRORS
    excerpt = _excerpt(body, exchange)
    if 300 <= status < 400:
        location = response.header("Location")
        where = f" to {without_query(location)}" if location else ""
        message = f"{url} answered a redirect ({status}{where}); redirects are never followed"
    else:
        what = ": ".join(part for part in (error, description) if part) or excerpt or "no body"
        message = f"{url} answered {status}: {what}"
    return TokenEndpointError(
        message,
        status=status,
        retryable=retryable,
        error=error,
        error_description=description,
        body=excerpt,
        retry_after=_retry_after(response.header("Retry-After"), clock),
        url=url,
    )


def _retry_after(value: str | None, clock: Callable[[], float]) -> float | None:
    """Seconds to wait from a ``Retry-After`` header: delta-seconds or an HTTP-date."""
    if value is None:
        return None
    value = value.strip()
    try:
        seconds = float(value)
    except ValueError:
        try:
            when = parsedate_to_datetime(value)
        except (TypeError, ValueError, IndexError):
            return None
        if when.tzinfo is None:
            return None
        seconds = when.timestamp() - clock()
    if not math.isfinite(seconds):
        return None
    return max(0.0, seconds)


def _invalid(
    response: HttpResponse, exchange: Exchange, url: str, problem: str
) -> TokenEndpointError:
    return TokenEndpointError(
        f"{url} {problem}",
        status=response.status,
        retryable=False,
        body=_excerpt(response.body, exchange),
        url=url,
    )


def _json_object(response: HttpResponse, exchange: Exchange, url: str) -> Mapping[str, Any]:
    body = response.body
    if isinstance(body, Mapping):
        return body
    try:
        data = json.loads(_text(body))
    except ValueError:
        raise _invalid(
            response, exchange, url, "answered 200 with a body that is not JSON"
        ) from None
    if not isinstance(data, dict):
        raise _invalid(response, exchange, url, "answered 200 with JSON that is not an object")
    return data


# ------------------------------------------------------------------------------ small helpers

# Anything that looks like a credential: Google access tokens, JWTs, PEM blocks, long opaque
# strings. Body excerpts and error messages pass through this before they are kept.
_SECRET_PATTERNS = re.compile(
    r"ya29\.[\w.-]+"
    r"|eyJ[\w-]*\.[\w-]*\.[\w-]*"
    r"|-----BEGIN[^-]*-----.*?(?:-----END[^-]*-----|$)"
    r"|1//[\w-]+"
    r"|[A-Za-z0-9_\-+=]{32,}",
    re.DOTALL,
)


_QUERY = re.compile(r"\?[^\s'\")]+")


def _redact(text: str, secrets: tuple[str, ...] = ()) -> str:
    for secret in secrets:
        # As sent: raw, URL-encoded in a form body or a query string, and for a header value
        # such as "Bearer <token>", the credential alone (an endpoint may echo just that).
        credential = secret.partition(" ")[2]
        for whole in (secret, credential) if len(credential) >= 8 else (secret,):
            for form in {whole, quote(whole, safe=""), quote_plus(whole)}:
                if form:
                    text = text.replace(form, "<redacted>")
    return _SECRET_PATTERNS.sub("<redacted>", text)


def _excerpt(body: object, exchange: Exchange) -> str:
    if isinstance(body, Mapping):
        text = json.dumps(
            {k: v for k, v in body.items() if k not in ("access_token", "id_token")}, default=str
        )
    else:
        text = _text(body)
    text = " ".join(text.split())
    return _redact(text[: _EXCERPT_CHARS * 4], exchange.secrets)[:_EXCERPT_CHARS]


def _text(body: object) -> str:
    if isinstance(body, bytes | bytearray):
        return bytes(body).decode("utf-8", errors="replace")
    if isinstance(body, str):
        return body
    return ""


def _str_or_none(value: object) -> str | None:
    return value if isinstance(value, str) and value else None


def _describe(value: object) -> str:
    if value is None:
        return "missing"
    if isinstance(value, str):
        return repr(value[:20])
    return f"{type(value).__name__} {value!r}"[:40]


def without_query(url: str) -> str:
    """``url`` without its query string and fragment (they can carry secrets)."""
    parts = urlsplit(url)
    return urlunsplit((parts.scheme, parts.netloc, parts.path, "", ""))

"""The token, the sources that ask for one, and the one-shot exchange (Goth's ``Goth.Token``).

`Token.fetch` makes one attempt for one source (one request, or one per step for
multi-step sources such as workload identity) and returns a `Token` or raises a
``TokenError``. No cache, no retry, no threads: the token server does those. A
`Source` prepares its request; the `Exchanger` sends it and reads the answer.

(A little over 400 lines: the token, the source contract and the exchange that makes one from
the other are read together; how an answer becomes a `Token` sits with its only caller, the
`Exchanger`, while what every answer shares is in ``answers.py``.)
"""

from __future__ import annotations

import dataclasses
import json
import math
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Self

from goth_actors._base import check_seconds
from goth_actors._protocol.answers import (
    MAX_EXPIRES_IN,
    RETRYABLE_STATUSES,
    body_text,
    describe,
    invalid,
    json_object,
    jwt_claims,
    parse_expires_in,
    status_error,
    str_or_none,
    token_problem,
    token_type_problem,
)
from goth_actors._protocol.errors import (
    RedactedCause,
    ResponseTooLarge,
    TokenEndpointError,
    TransportError,
)
from goth_actors._protocol.exchange import Exchange
from goth_actors._protocol.http_client import (
    DEFAULT_TIMEOUT,
    HttpClient,
    HttpResponse,
    default_http_client,
)
from goth_actors._protocol.redact import escape, redact, redact_query, shorten
from goth_actors._protocol.validate import unknown_keyword

__all__ = ["Exchanger", "Source", "Token", "id_token_from_jwt"]


def _qualified_name(cls: type) -> str:
    module = cls.__module__
    return cls.__qualname__ if module == "builtins" else f"{module}.{cls.__qualname__}"


@dataclass(frozen=True, slots=True, repr=False)
class Token:
    """An access token or ID token, as Google issued it.

    Attributes:
        token: The token itself. Never shown by ``repr`` or ``str``.
        type: The token type for the ``Authorization`` header, e.g. ``"Bearer"``.
        scope: The scopes it grants (space separated), the ID token's audience, or ``None``.
        sub: The subject it acts for (domain-wide delegation, or the ID token's ``sub``).
        expires: When it expires, in absolute unix seconds (wall clock).

    Examples:
        ```python
        token = Token.fetch(source)
        headers = {"Authorization": f"{token.type} {token.token}"}
        ```
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
        ([`WorkloadIdentity`][goth_actors.WorkloadIdentity]: subject token, STS, impersonation;
        [`Impersonated`][goth_actors.Impersonated]: the source's token, then IAM).

        Args:
            source: A [`ServiceAccount`][goth_actors.ServiceAccount],
                [`RefreshToken`][goth_actors.RefreshToken], [`Metadata`][goth_actors.Metadata],
                [`WorkloadIdentity`][goth_actors.WorkloadIdentity],
                [`WorkforceUser`][goth_actors.WorkforceUser] or
                [`Impersonated`][goth_actors.Impersonated] (any [`Source`][goth_actors.Source]).
            http_client: The HTTP client (the contract is in
                [`HttpClient`][goth_actors.HttpClient]). Default: a shared ``requests.Session``, TLS
                verified, no redirects followed.
            timeout: Seconds the whole exchange may take, every step of it, connect to last
                byte: a deadline (each step's ``http_client`` call gets the time left). More
                than 0, finite, at most ``threading.TIMEOUT_MAX``.
            clock: Wall clock in unix seconds, for JWT times and the token's expiry.
            environ: Environment to read (``GCE_METADATA_HOST``, AWS's keys and region,
                ``GOOGLE_EXTERNAL_ACCOUNT_ALLOW_EXECUTABLES``...); ``os.environ`` by default.

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
            ConfigError: ``timeout`` is not a number of seconds more than 0 (field
                ``timeout``).

        Examples:
            ```python
            token = Token.fetch(Metadata())
            ```
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


class Source:
    """Base class of every token source.

    Subclasses are frozen dataclasses that validate themselves on construction and implement
    [`prepare`][goth_actors.Source.prepare] (or, for several requests, `fetch_token`). Users pick
    one of [`ServiceAccount`][goth_actors.ServiceAccount],
    [`RefreshToken`][goth_actors.RefreshToken], [`Metadata`][goth_actors.Metadata],
    [`WorkloadIdentity`][goth_actors.WorkloadIdentity],
    [`WorkforceUser`][goth_actors.WorkforceUser], [`Impersonated`][goth_actors.Impersonated], or let
    [`default_source`][goth_actors.default_source] pick.

    An unknown keyword is a ``TypeError``, as Python's own, that names it and suggests the
    keyword meant (``scope=`` gives "did you mean 'scopes'?").

    Attributes:
        quota_project_id: The project billed for the APIs called with this source's tokens
            (sent as ``x-goog-user-project`` by the integrations), or ``None``.
        universe_domain: The universe the caller named (``universe_domain=``), or ``None``:
            then the credentials', else ``googleapis.com``, or for the metadata server its
            own. [`goth_actors.universe_domain`][goth_actors.universe_domain] tells the one in
            effect.
    """

    __slots__ = ()

    quota_project_id: str | None = None
    universe_domain: str | None = None

    def __new__(cls, *args: Any, **kwargs: Any) -> Self:  # noqa: ARG004 - checked, not used
        if kwargs and dataclasses.is_dataclass(cls):
            known = [f.name for f in dataclasses.fields(cls) if f.init]
            for name in kwargs:
                if name not in known:
                    raise TypeError(unknown_keyword(f"{cls.__name__}()", name, known))
        return super().__new__(cls)

    def prepare(self, now: float, environ: Mapping[str, str] | None = None) -> Exchange:
        """Builds the token request to send at unix time ``now``.

        Args:
            now: Wall-clock unix seconds (used for JWT ``iat``/``exp``).
            environ: Environment variables to read (``os.environ`` when ``None``).
        """
        raise NotImplementedError

    def fetch_token(self, exchanger: Exchanger) -> Token:
        """Gets one token through ``exchanger``: by default, the one request of ``prepare``.

        That request is [`prepare`][goth_actors.Source.prepare]'s.

        Sources that need several requests override this and use the exchanger's ``json``,
        ``text`` and ``token`` methods for each step.
        """
        return exchanger.token(self.prepare(exchanger.clock(), exchanger.environ))


class Exchanger:
    """Sends prepared requests and reads Google's answers; what a source fetches with.

    Most sources build one `Exchange` and let
    `token` do the rest. Sources that need several steps (a subject token, then an STS
    exchange, then impersonation) call `json` or `text` for the intermediate steps
    and `token` for the last; every step gets the same error handling.
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
        self.timeout = check_seconds("timeout", timeout, allow_minimum=False)
        self.deadline = time.monotonic() + self.timeout
        self.clock = clock
        self.environ = environ

    def time_left(self, what: str) -> float:
        """Seconds left of the exchange's deadline (``timeout`` for all its steps).

        Raises:
            TransportError: None is left; ``what`` (a URL, a file) names the step.
        """
        left = self.deadline - time.monotonic()
        if left <= 0:
            raise TransportError(
                f"{what}: no time left of the exchange's {self.timeout:g} s deadline "
                "(http_timeout bounds all the steps of one exchange together)",
                url=what,
            )
        return left

    def send(self, exchange: Exchange) -> HttpResponse:
        """Sends one request; raises on transport failure or a refused oversized body.

        The client gets the time left of the exchange's deadline as its ``timeout``. Its
        exception is never chained as is (it may quote a header, that is a credential): the
        ``TransportError``'s cause is a `RedactedCause`.
        """
        url = exchange.where
        timeout = self.time_left(url)
        too_large: ResponseTooLarge | None = None
        failure: tuple[str, str] | None = None
        extra: dict[str, Any] = {}
        if exchange.client_cert is not None:  # only mutual TLS asks more of a client
            extra["client_cert"] = exchange.client_cert
        try:
            response = self.http_client(
                method=exchange.method,
                url=exchange.url,
                headers=exchange.headers,
                body=exchange.body,
                timeout=timeout,
                **extra,
            )
        except ResponseTooLarge as exc:
            too_large = ResponseTooLarge(exc.status, exc.limit)
        except Exception as exc:
            failure = (_qualified_name(type(exc)), str(exc))
        # Raised here, outside the except blocks, so that no error carries the client's
        # exception as its __context__ either.
        if too_large is not None:
            raise TokenEndpointError(
                f"{url} answered {too_large.status} with a body larger than {too_large.limit} "
                "bytes; refused",
                status=too_large.status,
                retryable=too_large.status in RETRYABLE_STATUSES,
                url=url,
            )
        if failure is not None:
            kind, text = failure
            detail = shorten(escape(redact_query(redact(text, exchange.secrets))), 300)
            short_kind = kind.rpartition(".")[2]
            raise TransportError(
                f"{exchange.method} {url} failed: {short_kind}: {detail}", url=url
            ) from RedactedCause(kind, detail)
        if not isinstance(response, HttpResponse):
            raise TransportError(
                f"http_client returned {type(response).__name__}, not an HttpResponse", url=url
            )
        return response

    def token(self, exchange: Exchange) -> Token:
        """Sends ``exchange`` and reads the answer as a token."""
        response = self.send(exchange)
        return _read_response(response, exchange, exchange.where, self.clock)

    def answer(self, exchange: Exchange) -> tuple[Token, Mapping[str, Any]]:
        """Sends ``exchange``; the answer read as a token, and its JSON (for more fields)."""
        response = self.send(exchange)
        url = exchange.where
        token = _read_response(response, exchange, url, self.clock)
        return token, json_object(response, url)

    def json(self, exchange: Exchange) -> Mapping[str, Any]:
        """Sends ``exchange`` and returns the 200 answer's JSON object."""
        response = self.send(exchange)
        url = exchange.where
        if response.status != 200:
            raise status_error(response, exchange, url, self.clock)
        return json_object(response, url)

    def text(self, exchange: Exchange) -> str:
        """Sends ``exchange`` and returns the 200 answer's body as text."""
        response = self.send(exchange)
        if response.status != 200:
            raise status_error(response, exchange, exchange.where, self.clock)
        if isinstance(response.body, Mapping):
            return json.dumps(response.body)
        return body_text(response.body)


# ----------------------------------------------------------------------------- reading answers


def _read_response(
    response: HttpResponse, exchange: Exchange, url: str, clock: Callable[[], float]
) -> Token:
    if response.status != 200:
        raise status_error(response, exchange, url, clock)
    if exchange.kind.startswith("metadata") and response.header("Metadata-Flavor") != "Google":
        raise invalid(
            response,
            url,
            "answered without 'Metadata-Flavor: Google': "
            "not a metadata server (a proxy or captive portal?)",
        )
    if exchange.kind == "metadata_identity":
        text = body_text(response.body).strip()
        return _id_token(text, response, url)
    data = json_object(response, url)
    if "access_token" in data:
        return _access_token(data, response, exchange, url, clock)
    if "id_token" in data:
        id_token = data["id_token"]
        if not isinstance(id_token, str):
            raise invalid(response, url, "has an id_token that is not a string")
        return _id_token(id_token, response, url)
    raise invalid(response, url, "answered 200 without an access_token or id_token")


def _access_token(
    data: Mapping[str, Any],
    response: HttpResponse,
    exchange: Exchange,
    url: str,
    clock: Callable[[], float],
) -> Token:
    access_token = data["access_token"]
    problem = token_problem(access_token)
    if problem is not None:
        raise invalid(response, url, problem)
    expires_in = parse_expires_in(data.get("expires_in"))
    if expires_in is None:
        raise invalid(
            response,
            url,
            f"has a nonsensical expires_in ({describe(data.get('expires_in'))}); "
            f"expected a number of seconds in (0, {MAX_EXPIRES_IN}]",
        )
    token_type = data.get("token_type")
    token_type = token_type if isinstance(token_type, str) and token_type else "Bearer"
    problem = token_type_problem(token_type)
    if problem is not None:
        raise invalid(response, url, problem)
    scope = data.get("scope")
    sub = data.get("sub")
    return Token(
        token=access_token,
        type=token_type,
        scope=exchange.scope if exchange.scope is not None else str_or_none(scope),
        sub=exchange.sub if exchange.sub is not None else str_or_none(sub),
        expires=clock() + expires_in,
    )


def _id_token(text: str, response: HttpResponse, url: str) -> Token:
    return id_token_from_jwt(text, lambda problem: invalid(response, url, problem))


def id_token_from_jwt(text: str, unusable: Callable[[str], TokenEndpointError]) -> Token:
    """A `Token` from an ID token: ``expires`` its ``exp``, ``scope`` its ``aud``.

    The signature is not checked: the JWT came straight from Google over TLS, and only its
    expiry, audience and subject are read. ``unusable(problem)`` builds the error to raise.
    """
    problem = token_problem(text, "ID token")
    if problem is not None:
        raise unusable(problem)
    claims = jwt_claims(text)
    if claims is None:
        raise unusable("answered with an ID token that is not a JWT")
    exp = claims.get("exp")
    if isinstance(exp, bool) or not isinstance(exp, int | float) or not math.isfinite(exp):
        raise unusable("answered with an ID token without a numeric exp")
    aud = claims.get("aud")
    audience = " ".join(a for a in aud if isinstance(a, str)) if isinstance(aud, list) else aud
    return Token(
        token=text,
        type="Bearer",
        scope=str_or_none(audience),
        sub=str_or_none(claims.get("sub")),
        expires=float(exp),
    )

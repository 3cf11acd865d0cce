"""Drop-in authentication for HTTP clients and Google's client libraries, from token servers.

One integration per audience, each a thin layer over [`goth_actors.fetch`][goth_actors.fetch] (or
[`goth_actors.fetch_async`][goth_actors.fetch_async]):

- [`goth_actors.integrations.requests`][goth_actors.integrations.requests]: ``GothAuth(name)``, a
  ``requests`` auth (no extra needed).
- [`goth_actors.integrations.httpx`][goth_actors.integrations.httpx]: ``GothAuth(name)``, an
  ``httpx.Auth`` for ``Client`` and ``AsyncClient`` (``pip install goth-actors[httpx]``).
- [`goth_actors.integrations.google_auth`][goth_actors.integrations.google_auth]:
  ``Credentials(name)``, a google-auth credentials object for google-cloud-* clients and
  ``AuthorizedSession`` (``pip install goth-actors[google-auth]``).
- [`goth_actors.integrations.aiohttp`][goth_actors.integrations.aiohttp]: ``GothAuth(name)``, an
  aiohttp client middleware (``pip install goth-actors[aiohttp]``).
- [`goth_actors.integrations.grpc`][goth_actors.integrations.grpc]: call credentials (an
  ``AuthMetadataPlugin``) and interceptors that retry ``UNAUTHENTICATED``, for ``grpc`` and
  ``grpc.aio`` (``pip install goth-actors[grpc]``).
- [`goth_actors.integrations.opentelemetry`][goth_actors.integrations.opentelemetry]: the servers'
  metrics through OpenTelemetry (``pip install goth-actors[otel]``).

Every auth above sends the server's source's quota project, if it has one, as
``x-goog-user-project`` (unless the request names one itself): APIs that need a quota project
refuse user credentials without it.

Every auth above handles a ``401`` from the API (gRPC's ``UNAUTHENTICATED``) the same way, with
[`refresh_rejected`][goth_actors.integrations.refresh_rejected]
([`refresh_rejected_async`][goth_actors.integrations.refresh_rejected_async] in a coroutine): the
token the API refused is replaced once, by the server's newer token if someone already refreshed it
(or already made an exchange since the request was sent: a metadata server may hand out the same
token again), else by one forced refresh that every concurrent caller shares (the server's single
flight). So a hundred requests rejected together cost one request to the token endpoint, not a
hundred. The requests, httpx and aiohttp auths and the gRPC interceptors retry a request once;
google-auth's ``AuthorizedSession`` follows its own ``max_refresh_attempts`` (2 by default: up to
three sends, each refresh still shared).

Examples:
    ```python
    import requests, goth_actors
    from goth_actors.integrations.requests import GothAuth
    goth_actors.start_link(name="storage", source=goth_actors.default_source())
    requests.get(url, auth=GothAuth("storage"))
    ```
"""

from __future__ import annotations

import asyncio
import copy
import math
import time
from collections.abc import Hashable
from functools import partial

from goth_actors import (
    ConfigError,
    FetchTimeout,
    GothError,
    ServerNotFound,
    Token,
    cached,
    fetch,
    refresh,
    status,
)

__all__ = ["refresh_rejected", "refresh_rejected_async"]


def refresh_rejected(
    name: Hashable, rejected: str | Token, *, timeout: float = 5.0, sent_at: float | None = None
) -> Token:
    """A replacement for a token an API rejected (401): newer, and shared by every caller.

    If the server already holds a different token (someone refreshed meanwhile), that one is
    returned at once, without asking the server. Otherwise the server is asked for one forced
    refresh with ``refresh(name, unless_changed_from=rejected)``: the first such ask makes the
    exchange, and those queued behind it get its result, so concurrent 401s for the same token
    cause one request to the token endpoint.

    Args:
        name: The token server's name.
        rejected: The token the API answered 401 to: the `Token`, or its ``token`` string.
        timeout: Seconds to wait in all (fetch and refresh). Default 5.
        sent_at: ``time.monotonic()`` when the rejected token was put on the request. An
            exchange the server started since then counts as the refresh (a metadata server
            may hand out the same token again). Default: now.

    Returns:
        A token other than ``rejected``, unless the server is between a crash and its restart
        and still serves ``rejected`` (it is then returned as the best there is).

    Raises:
        ServerNotFound: No server has this name.
        FetchTimeout: No token within ``timeout``.
        TokenEndpointError, TransportError: The forced refresh failed.

    Examples:
        ```python
        response = session.get(url, headers={"Authorization": f"Bearer {token.token}"})
        if response.status_code == 401:
            token = refresh_rejected("my_app", token.token)
        ```
    """
    rejected = _token_text(rejected)
    deadline = time.monotonic() + timeout
    since = deadline - timeout if sent_at is None else sent_at
    current = fetch(name, timeout)
    if current.token != rejected:
        return current  # already replaced: no refresh
    return refresh(
        name,
        unless_changed_from=rejected,
        unless_attempted_since=since,
        timeout=max(deadline - time.monotonic(), 0.0),
    )


async def refresh_rejected_async(
    name: Hashable, rejected: str | Token, *, timeout: float = 5.0, sent_at: float | None = None
) -> Token:
    """``refresh_rejected`` for asyncio: the same replacement, without blocking the loop.

    A token that already changed is returned at once, from the cache. Otherwise one worker
    thread (``asyncio.to_thread``) runs
    [`refresh_rejected`][goth_actors.integrations.refresh_rejected] for every coroutine of this
    event loop that has the same token rejected at the same time, so a hundred concurrent 401s cost
    one thread hop and, at the server, one forced refresh. A cancelled coroutine cancels only its
    own wait.

    Args:
        name: The token server's name.
        rejected: The token the API refused: the `Token`, or its ``token`` string.
        timeout: Seconds to wait in all. Default 5.
        sent_at: ``time.monotonic()`` when the rejected token was sent. Default: now.

    Raises:
        ServerNotFound: No server has this name.
        FetchTimeout: No token within ``timeout``.
        TokenEndpointError, TransportError: The forced refresh failed.

    Examples:
        ```python
        if response.status == 401:
            token = await refresh_rejected_async("my_app", token.token)
        ```
    """
    rejected = _token_text(rejected)
    current = cached(name)
    if current is not None and current.token != rejected:
        return current  # already replaced: no refresh, no thread
    since = time.monotonic() if sent_at is None else sent_at
    key = (asyncio.get_running_loop(), name, rejected)
    refreshing = _refreshing.get(key)
    if refreshing is None:
        call = partial(refresh_rejected, name, rejected, timeout=timeout, sent_at=since)
        refreshing = _refreshing[key] = asyncio.ensure_future(asyncio.to_thread(call))
        refreshing.add_done_callback(lambda _: _refreshing.pop(key, None))
    try:
        async with asyncio.timeout(timeout):
            return await asyncio.shield(refreshing)
    except GothError as error:
        raise _detached(error) from None
    except TimeoutError:
        raise FetchTimeout(f"no new token from server {name!r} within {timeout} s") from None


def _detached(error: GothError) -> GothError:
    """A copy of an error that came from a token server, for this coroutine to raise.

    The server's actor holds on to the error it answered with until its next message. Raised
    here, the original would gather this coroutine's frames in its traceback and keep them
    (and all they hold: an event loop, a gRPC channel) alive that long.
    """
    try:
        copied = copy.copy(error)
    except Exception:
        copied = error
    error.with_traceback(None)
    return copied


_refreshing: dict[tuple[asyncio.AbstractEventLoop, Hashable, str], asyncio.Future[Token]] = {}
"""The refreshes in flight for `refresh_rejected_async`, by loop, name and token."""


QUOTA_PROJECT_HEADER = "x-goog-user-project"
"""The header that names the project to bill, from the server's source's quota project."""


def _quota_project(name: Hashable) -> str | None:
    """The named server's source's quota project (``x-goog-user-project``), or ``None``."""
    try:
        return status(name).quota_project_id
    except ServerNotFound:
        return None


def _token_text(rejected: object) -> str:
    """The rejected token's string, from a `Token` or the string itself."""
    if isinstance(rejected, Token):
        return rejected.token
    if isinstance(rejected, str):
        return rejected
    msg = f"rejected must be the rejected Token or its token string, not {type(rejected).__name__}"
    raise TypeError(msg)


def _authorization(token: Token) -> str:
    """The ``Authorization`` header value for a token."""
    return f"{token.type} {token.token}"


def _check_timeout(timeout: object) -> float:
    """Validates an integration's ``timeout``: a positive, finite number of seconds."""
    if isinstance(timeout, bool) or not isinstance(timeout, int | float):
        raise ConfigError("timeout", f"must be a number of seconds, got {type(timeout).__name__}")
    if not (math.isfinite(timeout) and timeout > 0):
        raise ConfigError(
            "timeout", f"must be a positive, finite number of seconds, got {timeout!r}"
        )
    return float(timeout)

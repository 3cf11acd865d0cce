"""Drop-in authentication for HTTP clients and Google's client libraries, from token servers.

Three integrations, one per audience, each a thin layer over :func:`goth_actors.fetch`:

- :mod:`goth_actors.integrations.requests`: ``GothAuth(name)``, a ``requests`` auth
  (no extra needed).
- :mod:`goth_actors.integrations.httpx`: ``GothAuth(name)``, an ``httpx.Auth`` for ``Client``
  and ``AsyncClient`` (``pip install goth-actors[httpx]``).
- :mod:`goth_actors.integrations.google_auth`: ``Credentials(name)``, a google-auth credentials
  object for google-cloud-* clients and ``AuthorizedSession``
  (``pip install goth-actors[google-auth]``).

All three handle a ``401`` from the API the same way, with :func:`refresh_rejected`: the token
the API refused is replaced once, by the server's newer token if someone already refreshed it
(or already made an exchange since the request was sent: a metadata server may hand out the
same token again), else by one forced refresh that every concurrent caller shares (the
server's single flight). So a hundred requests rejected together cost one request to the
token endpoint, not a hundred. The requests and httpx auths retry a request once; google-auth's
``AuthorizedSession`` follows its own ``max_refresh_attempts`` (2 by default: up to three
sends, each refresh still shared).

Example:
    ```python
    import requests, goth_actors
    from goth_actors.integrations.requests import GothAuth
    goth_actors.start_link(name="storage", source=goth_actors.default_source())
    requests.get(url, auth=GothAuth("storage"))
    ```
"""

from __future__ import annotations

import math
import time
from collections.abc import Hashable

from goth_actors import ConfigError, Token, fetch, refresh

__all__ = ["refresh_rejected"]


def refresh_rejected(
    name: Hashable, rejected: str, *, timeout: float = 5.0, sent_at: float | None = None
) -> Token:
    """A replacement for a token an API rejected (401): newer, and shared by every caller.

    If the server already holds a different token (someone refreshed meanwhile), that one is
    returned at once, without asking the server. Otherwise the server is asked for one forced
    refresh with ``refresh(name, unless_changed_from=rejected)``: the first such ask makes the
    exchange, and those queued behind it get its result, so concurrent 401s for the same token
    cause one request to the token endpoint.

    Args:
        name: The token server's name.
        rejected: The token string the API answered 401 to.
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

    Example:
        ```python
        response = session.get(url, headers={"Authorization": f"Bearer {token.token}"})
        if response.status_code == 401:
            token = refresh_rejected("my_app", token.token)
        ```
    """
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

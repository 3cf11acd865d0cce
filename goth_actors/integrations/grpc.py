"""gRPC call credentials from a goth_actors token server; ``UNAUTHENTICATED`` handled like a 401.

Needs the ``grpc`` extra: ``pip install goth-actors[grpc]``.

- [`GothMetadataPlugin`][goth_actors.integrations.grpc.GothMetadataPlugin] is a
  ``grpc.AuthMetadataPlugin``: every call carries ``authorization: <type> <token>`` (and
  ``x-goog-user-project`` when the server's source has a quota project). gRPC sends call credentials
  only over a secure channel: TLS, or ``grpc.local_channel_credentials()`` on the same machine.
- [`RetryUnauthenticated`][goth_actors.integrations.grpc.RetryUnauthenticated] (``grpc``) and
  [`AsyncRetryUnauthenticated`][goth_actors.integrations.grpc.AsyncRetryUnauthenticated]
  (``grpc.aio``) are unary-unary interceptors. Each makes sure a token is cached before the call
  (``fetch``, or ``fetch_async`` without blocking the event loop); when the call ends in
  ``UNAUTHENTICATED``, the token is replaced once with
  [`refresh_rejected`][goth_actors.integrations.refresh_rejected] (no exchange if someone already
  refreshed it; one shared forced refresh otherwise) and the call is made once more. A second
  ``UNAUTHENTICATED`` is returned as is.
- [`secure_channel`][goth_actors.integrations.grpc.secure_channel] and
  [`aio_secure_channel`][goth_actors.integrations.grpc.aio_secure_channel] put the two together.

Streaming calls carry the token too, but are not retried (a request stream cannot be sent
twice). A sync call made with ``.future()`` is retried only when it has already ended in
``UNAUTHENTICATED`` as ``.future()`` returns (gRPC can refuse it that quickly); one still running
then is not, for the interceptor would have to block the caller to see its outcome.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Hashable, Sequence
from typing import Any

try:
    import grpc
    import grpc.aio
except ImportError as error:  # pragma: no cover - exercised with grpc hidden
    raise ImportError(
        "goth_actors.integrations.grpc needs grpcio: pip install goth-actors[grpc]"
    ) from error

from goth_actors import GothError, Token, fetch, fetch_async
from goth_actors.integrations import (
    _authorization,
    _check_timeout,
    _quota_project,
    refresh_rejected,
    refresh_rejected_async,
)

__all__ = [
    "AsyncRetryUnauthenticated",
    "GothMetadataPlugin",
    "RetryUnauthenticated",
    "aio_secure_channel",
    "call_credentials",
    "secure_channel",
]

QUOTA_PROJECT_KEY = "x-goog-user-project"
"""The metadata key that names the project billed for a call (Google's ``x-goog-user-project``)."""


class GothMetadataPlugin(grpc.AuthMetadataPlugin):
    """gRPC call credentials: the token server's token as ``authorization`` metadata.

    gRPC calls the plugin on a thread of its own for each call; a cached token is handed over
    at once, otherwise that thread waits for the server, up to ``timeout``. A failure (no such
    server, no token in time, a failed exchange) fails the call with its message, which never
    holds a secret.

    Args:
        name: The token server's name, as given to
            [`goth_actors.start_link`][goth_actors.start_link].
        timeout: Seconds to wait for a token when none is cached. Default 5.

    Raises:
        ConfigError: ``timeout`` is not a positive number of seconds.

    Examples:
        ```python
        credentials = grpc.composite_channel_credentials(
            grpc.ssl_channel_credentials(),
            grpc.metadata_call_credentials(GothMetadataPlugin("pubsub")),
        )
        channel = grpc.secure_channel("pubsub.googleapis.com:443", credentials)
        ```
    """

    def __init__(self, name: Hashable, *, timeout: float = 5.0) -> None:
        self.name = name
        self.timeout = _check_timeout(timeout)

    def __repr__(self) -> str:
        return f"GothMetadataPlugin({self.name!r}, timeout={self.timeout!r})"

    def __call__(
        self,
        context: grpc.AuthMetadataContext,  # noqa: ARG002  # gRPC's signature
        callback: grpc.AuthMetadataPluginCallback,
    ) -> None:
        """Gives gRPC the ``authorization`` metadata (and the quota project's), or the error."""
        try:
            token = fetch(self.name, self.timeout)
        except GothError as error:
            callback((), error)
            return
        callback(_metadata(self.name, token), None)


def _metadata(name: Hashable, token: Token) -> tuple[tuple[str, str], ...]:
    quota = _quota_project(name)
    authorization = ("authorization", _authorization(token))
    return (authorization,) if quota is None else (authorization, (QUOTA_PROJECT_KEY, quota))


def call_credentials(name: Hashable, *, timeout: float = 5.0) -> grpc.CallCredentials:
    """``grpc.metadata_call_credentials`` of a ``GothMetadataPlugin`` for ``name``.

    The plugin is a [`GothMetadataPlugin`][goth_actors.integrations.grpc.GothMetadataPlugin].

    Examples:
        ```python
        credentials = grpc.composite_channel_credentials(
            grpc.ssl_channel_credentials(), call_credentials("pubsub")
        )
        ```
    """
    return grpc.metadata_call_credentials(
        GothMetadataPlugin(name, timeout=timeout), name="goth_actors"
    )


class RetryUnauthenticated(grpc.UnaryUnaryClientInterceptor):
    """A ``grpc`` interceptor: an ``UNAUTHENTICATED`` unary call is retried once, with a new token.

    Use it with [`GothMetadataPlugin`][goth_actors.integrations.grpc.GothMetadataPlugin] credentials
    on the same channel (as [`secure_channel`][goth_actors.integrations.grpc.secure_channel] does):
    the plugin sends the token, this makes sure it is cached before the call, and replaces it when
    the call is refused.

    Args:
        name: The token server's name.
        timeout: Seconds to wait for a token, and for the replacement. Default 5.

    Raises:
        ConfigError: ``timeout`` is not a positive number of seconds.

    On a call, [`goth_actors.fetch`][goth_actors.fetch]'s errors (``ServerNotFound``,
    ``FetchTimeout``, ``TokenEndpointError``, ``TransportError``) reach the caller, and so do those
    of the refresh after ``UNAUTHENTICATED``.

    Examples:
        ```python
        channel = grpc.intercept_channel(
            grpc.secure_channel(target, credentials), RetryUnauthenticated("pubsub")
        )
        ```
    """

    def __init__(self, name: Hashable, *, timeout: float = 5.0) -> None:
        self.name = name
        self.timeout = _check_timeout(timeout)

    def __repr__(self) -> str:
        return f"RetryUnauthenticated({self.name!r}, timeout={self.timeout!r})"

    def intercept_unary_unary(
        self,
        continuation: Callable[[grpc.ClientCallDetails, Any], Any],
        client_call_details: grpc.ClientCallDetails,
        request: Any,
    ) -> Any:
        """Makes the call; after ``UNAUTHENTICATED``, once more with a replacement token."""
        token = fetch(self.name, self.timeout)  # cached for the plugin, or the error, now
        sent_at = time.monotonic()
        outcome = continuation(client_call_details, request)
        if not outcome.done() or outcome.code() != grpc.StatusCode.UNAUTHENTICATED:
            return outcome  # a .future() call still running is not waited for
        refresh_rejected(self.name, token.token, timeout=self.timeout, sent_at=sent_at)
        return continuation(client_call_details, request)


class AsyncRetryUnauthenticated(grpc.aio.UnaryUnaryClientInterceptor):
    """A ``grpc.aio`` interceptor: ``RetryUnauthenticated``, never blocking the loop.

    It does what [`RetryUnauthenticated`][goth_actors.integrations.grpc.RetryUnauthenticated] does.

    Pass it in ``grpc.aio.secure_channel(..., interceptors=[...])`` with
    [`GothMetadataPlugin`][goth_actors.integrations.grpc.GothMetadataPlugin] credentials (as
    [`aio_secure_channel`][goth_actors.integrations.grpc.aio_secure_channel] does). The token is
    awaited with [`goth_actors.fetch_async`][goth_actors.fetch_async] and replaced with
    [`refresh_rejected_async`][goth_actors.integrations.refresh_rejected_async].

    Args:
        name: The token server's name.
        timeout: Seconds to wait for a token, and for the replacement. Default 5.

    Raises:
        ConfigError: ``timeout`` is not a positive number of seconds.

    Examples:
        ```python
        channel = grpc.aio.secure_channel(
            target, credentials, interceptors=[AsyncRetryUnauthenticated("pubsub")]
        )
        ```
    """

    def __init__(self, name: Hashable, *, timeout: float = 5.0) -> None:
        self.name = name
        self.timeout = _check_timeout(timeout)

    def __repr__(self) -> str:
        return f"AsyncRetryUnauthenticated({self.name!r}, timeout={self.timeout!r})"

    async def intercept_unary_unary(
        self,
        continuation: Callable[[grpc.aio.ClientCallDetails, Any], Any],
        client_call_details: grpc.aio.ClientCallDetails,
        request: Any,
    ) -> Any:
        """Makes the call; after ``UNAUTHENTICATED``, once more, never blocking the loop."""
        token = await fetch_async(self.name, self.timeout)
        sent_at = time.monotonic()
        call = await continuation(client_call_details, request)
        if await call.code() != grpc.StatusCode.UNAUTHENTICATED:
            return call
        del call  # the refused call: a failed refresh's traceback must not keep it alive
        await refresh_rejected_async(self.name, token.token, timeout=self.timeout, sent_at=sent_at)
        return await continuation(client_call_details, request)


def secure_channel(
    target: str,
    name: Hashable,
    *,
    credentials: grpc.ChannelCredentials | None = None,
    timeout: float = 5.0,
    options: Sequence[tuple[str, Any]] | None = None,
) -> grpc.Channel:
    """A ``grpc`` channel whose calls carry the server's token and survive one rejection.

    ``credentials`` (default ``grpc.ssl_channel_credentials()``) composed with
    [`call_credentials`][goth_actors.integrations.grpc.call_credentials], intercepted by
    [`RetryUnauthenticated`][goth_actors.integrations.grpc.RetryUnauthenticated].

    Examples:
        ```python
        with secure_channel("pubsub.googleapis.com:443", "pubsub") as channel:
            stub = PublisherStub(channel)
        ```
    """
    composite = grpc.composite_channel_credentials(
        credentials if credentials is not None else grpc.ssl_channel_credentials(),
        call_credentials(name, timeout=timeout),
    )
    channel = grpc.secure_channel(target, composite, options=options)
    return grpc.intercept_channel(channel, RetryUnauthenticated(name, timeout=timeout))


def aio_secure_channel(
    target: str,
    name: Hashable,
    *,
    credentials: grpc.ChannelCredentials | None = None,
    timeout: float = 5.0,
    options: Sequence[tuple[str, Any]] | None = None,
) -> grpc.aio.Channel:
    """``secure_channel`` for ``grpc.aio``, with ``AsyncRetryUnauthenticated``.

    As [`secure_channel`][goth_actors.integrations.grpc.secure_channel], with
    [`AsyncRetryUnauthenticated`][goth_actors.integrations.grpc.AsyncRetryUnauthenticated].

    Examples:
        ```python
        async with aio_secure_channel("pubsub.googleapis.com:443", "pubsub") as channel:
            stub = PublisherStub(channel)
        ```
    """
    composite = grpc.composite_channel_credentials(
        credentials if credentials is not None else grpc.ssl_channel_credentials(),
        call_credentials(name, timeout=timeout),
    )
    return grpc.aio.secure_channel(
        target,
        composite,
        options=options,
        interceptors=[AsyncRetryUnauthenticated(name, timeout=timeout)],
    )

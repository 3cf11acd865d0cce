"""``GothAuth``: an aiohttp client middleware that authenticates with a goth_actors token server.

Needs the ``aiohttp`` extra (aiohttp 3.12 or later, which has client middlewares):
``pip install goth-actors[aiohttp]``.

Every request gets ``Authorization: <type> <token>`` from
[`goth_actors.fetch_async`][goth_actors.fetch_async] (and ``X-Goog-User-Project`` when the server's
source has a quota project): a cached token is read inline (no thread, no lock), and a cold or stale
server is waited for without blocking the event loop. When the API answers ``401`` to that token,
the token is replaced once with
[`refresh_rejected_async`][goth_actors.integrations.refresh_rejected_async] (no exchange if someone
already refreshed it; one shared forced refresh otherwise) and the request is sent once more; a
second ``401`` is returned as is.

aiohttp runs a session's middlewares again for every redirect it follows, and only strips the
headers the caller gave. So the token goes only to the origins it is meant for: those given as
``origins``, or else the origin of the first request the middleware handles (as aiohttp's own
``DigestAuthMiddleware`` does). A request elsewhere, a redirect to another host included, is
sent without it.
"""

from __future__ import annotations

import time
from collections.abc import Hashable, Iterable

try:
    from aiohttp import ClientHandlerType, ClientRequest, ClientResponse, hdrs
    from yarl import URL
except ImportError as error:  # pragma: no cover - exercised with aiohttp hidden
    raise ImportError(
        "goth_actors.integrations.aiohttp needs aiohttp: pip install goth-actors[aiohttp]"
    ) from error

from goth_actors import ConfigError, fetch_async
from goth_actors.integrations import (
    QUOTA_PROJECT_HEADER,
    _authorization,
    _check_timeout,
    _quota_project,
    refresh_rejected_async,
)

__all__ = ["GothAuth"]


class GothAuth:
    """An aiohttp client middleware: a token server's token on every request, one retry on 401.

    Pass it to ``aiohttp.ClientSession(middlewares=(GothAuth("name"),))`` or to one request's
    ``middlewares=``. One instance may serve any number of sessions of one event loop.

    Args:
        name: The token server's name, as given to
            [`goth_actors.start_link`][goth_actors.start_link].
        timeout: Seconds to wait for a token when none is cached, and for the replacement
            after a 401. Default 5.
        origins: The origins (``"https://storage.googleapis.com"``) whose requests get the
            token. Default: the origin of the first request this middleware handles.

    Raises:
        ConfigError: ``timeout`` is not a positive number of seconds, or an origin is not an
            absolute ``http`` or ``https`` URL.

    When a request is sent, [`goth_actors.fetch_async`][goth_actors.fetch_async]'s errors
    (``ServerNotFound``, ``FetchTimeout``, ``TokenEndpointError``, ``TransportError``) reach the
    caller, and so do those of the refresh after a 401. A request whose body cannot be sent twice
    (an async iterator, a file that cannot seek) is not retried; its token is replaced all the same,
    for the next request.

    Examples:
        ```python
        import aiohttp, goth_actors
        goth_actors.start_link(name="storage", source=goth_actors.default_source())
        auth = GothAuth("storage", origins=["https://storage.googleapis.com"])
        async with aiohttp.ClientSession(middlewares=(auth,)) as session:
            async with session.get("https://storage.googleapis.com/storage/v1/b") as response:
                ...
        ```
    """

    def __init__(
        self, name: Hashable, *, timeout: float = 5.0, origins: Iterable[str] | None = None
    ) -> None:
        self.name = name
        self.timeout = _check_timeout(timeout)
        self._origins = None if origins is None else frozenset(_origin(o) for o in origins)

    def __repr__(self) -> str:
        return f"GothAuth({self.name!r}, timeout={self.timeout!r})"

    async def __call__(self, request: ClientRequest, handler: ClientHandlerType) -> ClientResponse:
        """Sends ``request`` with the token (to a covered origin), retrying once after a 401."""
        if not self._covers(request.url):
            return await handler(request)  # another origin: never our token
        token = await fetch_async(self.name, self.timeout)
        header = _authorization(token)
        request.headers[hdrs.AUTHORIZATION] = header
        quota = _quota_project(self.name)
        if quota is not None and QUOTA_PROJECT_HEADER not in request.headers:
            request.headers[QUOTA_PROJECT_HEADER] = quota
        sent_at = time.monotonic()
        response = await handler(request)
        if response.status != 401:
            return response
        try:
            token = await refresh_rejected_async(
                self.name, token.token, timeout=self.timeout, sent_at=sent_at
            )
        except BaseException:
            response.release()
            raise
        body = request.body
        if not isinstance(body, bytes) and body.consumed:
            return response  # cannot be sent again: the 401 as is (the next request is fine)
        response.release()
        request.headers[hdrs.AUTHORIZATION] = _authorization(token)
        return await handler(request)

    def _covers(self, url: URL) -> bool:
        """Whether a request to ``url`` gets the token."""
        origin = url.origin()
        if self._origins is None:
            self._origins = frozenset([origin])  # the first request's origin, from now on
        return origin in self._origins


def _origin(text: str) -> URL:
    try:
        url = URL(text)
        origin = url.origin()
    except (TypeError, ValueError):
        origin = None
    if origin is None or url.scheme not in ("http", "https"):
        raise ConfigError("origins", f"each must be an http(s) origin, got {text!r:.100}")
    return origin

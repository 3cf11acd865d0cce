"""``GothAuth``: httpx authentication from a goth_actors token server, sync and async.

Needs the ``httpx`` extra: ``pip install goth-actors[httpx]``.

Every request gets ``Authorization: <type> <token>`` from the named server. When the API
answers ``401`` to that token, the token is replaced once with
[`refresh_rejected`][goth_actors.integrations.refresh_rejected] (no exchange if someone already
refreshed it; one shared forced refresh otherwise) and the request is sent once more. The ``401``
ends up in ``response.history``; a second ``401`` is returned as is.

In an ``AsyncClient`` the event loop is never blocked: a cached token is read inline (a dict
read, no lock), and waiting for a token or a refresh happens in a worker thread
(``anyio.to_thread``, so asyncio and trio both work).
"""

from __future__ import annotations

import time
from collections.abc import AsyncGenerator, Generator, Hashable
from functools import partial

try:
    import anyio.to_thread
    import httpx
except ImportError as error:  # pragma: no cover - exercised with httpx hidden
    raise ImportError(
        "goth_actors.integrations.httpx needs httpx: pip install goth-actors[httpx]"
    ) from error

from goth_actors import Token, cached, fetch
from goth_actors.integrations import (
    QUOTA_PROJECT_HEADER,
    _authorization,
    _check_timeout,
    _quota_project,
    refresh_rejected,
)

__all__ = ["GothAuth"]


class GothAuth(httpx.Auth):
    """Authenticates httpx requests with a token server's token; refreshes and retries on 401.

    Works with ``httpx.Client`` and ``httpx.AsyncClient``; one instance may serve any number
    of clients, threads and tasks.

    Args:
        name: The token server's name, as given to
            [`goth_actors.start_link`][goth_actors.start_link].
        timeout: Seconds to wait for a token when none is cached, and for the replacement
            after a 401. Default 5.

    Raises:
        ConfigError: ``timeout`` is not a positive number of seconds.

    When a request is sent, [`goth_actors.fetch`][goth_actors.fetch]'s errors (``ServerNotFound``,
    ``FetchTimeout``, ``TokenEndpointError``, ``TransportError``) reach the caller, and so do
    those of the refresh after a 401. A request whose body is a stream (an iterator, a file
    object) is not sent twice; its token is replaced all the same, for the next request.

    Examples:
        ```python
        import httpx, goth_actors
        goth_actors.start_link(name="storage", source=goth_actors.default_source())
        with httpx.Client(auth=GothAuth("storage")) as client:
            client.get("https://storage.googleapis.com/storage/v1/b", params={"project": "p"})
        ```
        <Response [200 OK]>
        ```python
        async with httpx.AsyncClient(auth=GothAuth("storage")) as client:
            await client.get("https://storage.googleapis.com/storage/v1/b")
        ```
    """

    def __init__(self, name: Hashable, *, timeout: float = 5.0) -> None:
        self.name = name
        self.timeout = _check_timeout(timeout)

    def __repr__(self) -> str:
        return f"GothAuth({self.name!r}, timeout={self.timeout!r})"

    def sync_auth_flow(
        self, request: httpx.Request
    ) -> Generator[httpx.Request, httpx.Response, None]:
        """Sends ``request`` with the token; after a 401, once more with a replacement."""
        token = fetch(self.name, self.timeout)
        header = _authorization(token)
        request.headers["Authorization"] = header
        _bill(request, self.name)
        sent_at = time.monotonic()
        response = yield request
        if not _refused(response, header):
            return
        token = refresh_rejected(self.name, token.token, timeout=self.timeout, sent_at=sent_at)
        if _replayable(request):
            request.headers["Authorization"] = _authorization(token)
            yield request

    async def async_auth_flow(
        self, request: httpx.Request
    ) -> AsyncGenerator[httpx.Request, httpx.Response]:
        """``sync_auth_flow`` for ``AsyncClient``, never blocking the event loop."""
        token = cached(self.name)  # a hit never blocks: no thread hop
        if token is None:
            token = await _in_thread(partial(fetch, self.name, self.timeout))
        header = _authorization(token)
        request.headers["Authorization"] = header
        _bill(request, self.name)
        sent_at = time.monotonic()
        response = yield request
        if not _refused(response, header):
            return
        token = await _in_thread(
            partial(refresh_rejected, self.name, token.token, timeout=self.timeout, sent_at=sent_at)
        )
        if _replayable(request):
            request.headers["Authorization"] = _authorization(token)
            yield request


def _bill(request: httpx.Request, name: Hashable) -> None:
    """Names the server's quota project on the request, unless it names one already."""
    project = _quota_project(name)
    if project is not None and QUOTA_PROJECT_HEADER not in request.headers:
        request.headers[QUOTA_PROJECT_HEADER] = project


def _refused(response: httpx.Response, header: str) -> bool:
    """A 401 to the header we set (not to a redirect that went elsewhere without it)."""
    return response.status_code == 401 and response.request.headers.get("Authorization") == header


def _replayable(request: httpx.Request) -> bool:
    """Whether the request's body can be sent again: bytes, text, JSON, a form, or none."""
    return isinstance(request.stream, httpx.ByteStream)


async def _in_thread(call: partial[Token]) -> Token:
    """Runs a blocking call in a worker thread: the event loop goes on meanwhile."""
    return await anyio.to_thread.run_sync(call)

"""``GothAuth``: requests authentication from a goth_actors token server.

Every request gets ``Authorization: <type> <token>`` from [`goth_actors.fetch`][goth_actors.fetch]
(lock-free once the token is cached), and ``x-goog-user-project`` when the server's source has a
quota project. When the API answers ``401`` to that token, the token is replaced
once with [`refresh_rejected`][goth_actors.integrations.refresh_rejected] (no exchange if someone
already refreshed it; one shared forced refresh otherwise) and the request is sent once more, as
requests' own ``HTTPDigestAuth`` does: a copy of the prepared request, with the new header,
through the same connection adapter and with the same settings (timeout, TLS, proxies,
stream). The ``401`` ends up in ``response.history``. A second ``401`` is returned as is.
"""

from __future__ import annotations

import time
from collections.abc import Hashable
from typing import Any

from requests.auth import AuthBase
from requests.cookies import RequestsCookieJar, extract_cookies_to_jar
from requests.exceptions import UnrewindableBodyError
from requests.models import PreparedRequest, Response
from requests.utils import rewind_body

from goth_actors import fetch
from goth_actors.integrations import (
    QUOTA_PROJECT_HEADER,
    _authorization,
    _check_timeout,
    _quota_project,
    refresh_rejected,
)

__all__ = ["GothAuth"]


class GothAuth(AuthBase):
    """Authenticates requests with a token server's token; refreshes and retries once on 401.

    Thread-safe: one instance may serve any number of threads and sessions.

    Args:
        name: The token server's name, as given to
            [`goth_actors.start_link`][goth_actors.start_link].
        timeout: Seconds to wait for a token when none is cached, and for the replacement
            after a 401. Default 5.

    Raises:
        ConfigError: ``timeout`` is not a positive number of seconds.

    When a request is sent, [`goth_actors.fetch`][goth_actors.fetch]'s errors (``ServerNotFound``,
    ``FetchTimeout``, ``TokenEndpointError``, ``TransportError``) reach the caller, and so do
    those of the refresh after a 401. The request is not retried when its body cannot be sent
    twice (a generator, or a file that cannot seek); the token is replaced all the same, for
    the next request.

    Examples:
        ```python
        import requests, goth_actors
        goth_actors.start_link(name="storage", source=goth_actors.default_source())
        session = requests.Session()
        session.auth = GothAuth("storage")
        session.get("https://storage.googleapis.com/storage/v1/b", params={"project": "p"})
        ```
        <Response [200]>
    """

    def __init__(self, name: Hashable, *, timeout: float = 5.0) -> None:
        self.name = name
        self.timeout = _check_timeout(timeout)

    def __repr__(self) -> str:
        return f"GothAuth({self.name!r}, timeout={self.timeout!r})"

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, GothAuth):
            return NotImplemented
        return (self.name, self.timeout) == (other.name, other.timeout)

    def __hash__(self) -> int:
        return hash((GothAuth, self.name, self.timeout))

    def __call__(self, request: PreparedRequest) -> PreparedRequest:
        """Puts the token on ``request`` and a hook that handles a 401 from the API."""
        token = fetch(self.name, self.timeout)
        header = _authorization(token)
        request.headers["Authorization"] = header
        project = _quota_project(self.name)
        if project is not None and QUOTA_PROJECT_HEADER not in request.headers:
            request.headers[QUOTA_PROJECT_HEADER] = project
        hook = _RetryOn401(self, token.token, header, time.monotonic())
        request.register_hook("response", hook)  # type: ignore[no-untyped-call]  # stubs: untyped
        return request


class _RetryOn401:
    """The response hook of one request: after a 401 to its token, a new token and one retry."""

    def __init__(self, auth: GothAuth, token: str, header: str, sent_at: float) -> None:
        self._auth = auth
        self._token = token
        self._header = header
        self._sent_at = sent_at
        self._retried = False  # one hook per request, so one thread: no lock needed

    def __call__(self, response: Response, **settings: Any) -> Response | None:
        request = response.request
        # Only a 401 to the header this hook set: after a redirect to another host, requests
        # strips the header, and a token must never follow where requests would not send it.
        if (
            response.status_code != 401
            or self._retried
            or request.headers.get("Authorization") != self._header
        ):
            return None
        self._retried = True  # at most one retry, even across the redirects that may follow
        try:
            token = refresh_rejected(
                self._auth.name, self._token, timeout=self._auth.timeout, sent_at=self._sent_at
            )
        except BaseException:
            response.close()
            raise
        header = _authorization(token)
        connection = getattr(response, "connection", None)
        retry = request.copy()
        if connection is None or not _rewound(retry):
            return None  # cannot send it again: the 401 as is (the next request has the new token)
        # Consume and release the 401, so the retry can reuse its connection.
        response.content  # noqa: B018
        response.close()
        # The adapter sends the retry, so no response hook runs on it. The session follows
        # the retry's redirects with copies of the original request: give that the new header,
        # and the 401 a snapshot of the request as it was sent.
        response.request = request.copy()
        request.headers["Authorization"] = header
        jar = getattr(retry, "_cookies", None)  # as HTTPDigestAuth does; not in the stubs
        if isinstance(jar, RequestsCookieJar):
            extract_cookies_to_jar(jar, request, response.raw)  # type: ignore[no-untyped-call]
            retry.prepare_cookies(jar)
        retry.headers["Authorization"] = header
        new: Response = connection.send(retry, **settings)
        new.history.append(response)
        new.request = retry
        return new


def _rewound(request: PreparedRequest) -> bool:
    """Whether the request's body can be sent again, rewound to where it started if a file."""
    body = request.body
    if body is None or isinstance(body, bytes | str):
        return True
    try:
        rewind_body(request)
    except UnrewindableBodyError:
        return False
    return True

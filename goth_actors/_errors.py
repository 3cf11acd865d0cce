"""Every exception goth_actors raises, under one root.

::

    GothError                              root of everything below
    ├── ConfigError (ValueError)           bad option, source or credentials, named by field
    ├── TokenError                         one token exchange failed; has ``retryable``
    │   ├── TokenEndpointError             Google (or the metadata server) answered, but not
    │   │                                  with a token: status, error, description, body excerpt
    │   └── TransportError                 no usable answer: refused, reset, timeout, DNS
    ├── FetchTimeout (TimeoutError)        no token within the caller's timeout
    ├── ServerNotFound (LookupError)       no token server under that name
    ├── AlreadyStarted                     a token server with that name is running
    ├── AlreadyRegistered                  the name is held by a live actor
    ├── FailedToStartChild                 a supervisor could not start a child
    ├── ChildNotFound (LookupError)        a supervisor has no child with that id
    ├── ChildAlreadyPresent (ValueError)   start_child with an id the supervisor has
    ├── ChildRunning (RuntimeError)        restart_child / delete_child of a running child
    └── MaxRestartsExceeded                a supervisor gave up: too many restarts too fast

Errors carry data (``status``, ``retryable``, a body excerpt) but never a secret: no access
token, private key, client secret or refresh token is ever part of a message or attribute.
"""

from __future__ import annotations

from typing import Any

__all__ = [
    "AlreadyRegistered",
    "AlreadyStarted",
    "ChildAlreadyPresent",
    "ChildNotFound",
    "ChildRunning",
    "ConfigError",
    "FailedToStartChild",
    "FetchTimeout",
    "GothError",
    "MaxRestartsExceeded",
    "ServerNotFound",
    "TokenEndpointError",
    "TokenError",
    "TransportError",
]


class GothError(Exception):
    """Root of every exception goth_actors raises."""


class ConfigError(GothError, ValueError):
    """An option, source or credentials mapping is invalid.

    Attributes:
        field: The name of the offending option or credentials key (``"credentials.private_key"``,
            ``"refresh_before"``, ...).
    """

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field


class TokenError(GothError):
    """A single token exchange failed.

    Attributes:
        retryable: Whether trying again later may succeed (a 503, a refused connection) as
            opposed to a rejection that will not change by itself (``invalid_grant``).
        retry_after: Seconds the server asked us to wait before trying again, or ``None``.
    """

    def __init__(self, message: str, *, retryable: bool, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retryable = retryable
        self.retry_after = retry_after

    def __reduce__(self) -> tuple[Any, ...]:
        return (_rebuild_token_error, (type(self), str(self), self.retryable, self.retry_after))


def _rebuild_token_error(
    cls: type[TokenError], message: str, retryable: bool, retry_after: float | None
) -> TokenError:
    return cls(message, retryable=retryable, retry_after=retry_after)


class TokenEndpointError(TokenError):
    """The token endpoint answered, but not with a usable token.

    Raised for any non-200 status, and for a 200 whose body is not JSON, has no token, or has
    a nonsensical ``expires_in``.

    Attributes:
        status: The HTTP status code.
        error: Google's OAuth ``error`` code (``"invalid_grant"``), or ``None``.
        error_description: Google's ``error_description``, or ``None``.
        body: A short excerpt of the response body, with anything that looks like a token
            removed.
        url: The URL that answered (without its query string).
    """

    def __init__(
        self,
        message: str,
        *,
        status: int,
        retryable: bool,
        error: str | None = None,
        error_description: str | None = None,
        body: str = "",
        retry_after: float | None = None,
        url: str = "",
    ) -> None:
        super().__init__(message, retryable=retryable, retry_after=retry_after)
        self.status = status
        self.error = error
        self.error_description = error_description
        self.body = body
        self.url = url

    def __reduce__(self) -> tuple[Any, ...]:
        return (
            _rebuild_endpoint_error,
            (
                str(self),
                self.status,
                self.retryable,
                self.error,
                self.error_description,
                self.body,
                self.retry_after,
                self.url,
            ),
        )


def _rebuild_endpoint_error(
    message: str,
    status: int,
    retryable: bool,
    error: str | None,
    error_description: str | None,
    body: str,
    retry_after: float | None,
    url: str,
) -> TokenEndpointError:
    return TokenEndpointError(
        message,
        status=status,
        retryable=retryable,
        error=error,
        error_description=error_description,
        body=body,
        retry_after=retry_after,
        url=url,
    )


class TransportError(TokenError):
    """The exchange failed below HTTP: connection refused or reset, timeout, DNS failure.

    Always retryable. The original exception is chained as ``__cause__``.

    Attributes:
        url: The URL that was being requested (without its query string).
    """

    def __init__(self, message: str, *, url: str = "") -> None:
        super().__init__(message, retryable=True)
        self.url = url

    def __reduce__(self) -> tuple[Any, ...]:
        return (type(self), (str(self),), {"url": self.url})


class FetchTimeout(GothError, TimeoutError):
    """No token arrived within the caller's timeout."""


class ServerNotFound(GothError, LookupError):
    """No token server is registered under the given name."""


class AlreadyStarted(GothError):
    """A token server with this name is already running.

    Attributes:
        name: The name that was asked for.
    """

    def __init__(self, name: object) -> None:
        super().__init__(f"a token server named {name!r} is already running")
        self.name = name


class AlreadyRegistered(GothError):
    """The name is already held by a live actor.

    Attributes:
        name: The name that was asked for.
    """

    def __init__(self, name: object) -> None:
        super().__init__(f"the name {name!r} is already registered to a live actor")
        self.name = name


class FailedToStartChild(GothError):
    """A supervisor could not start one of its children.

    Attributes:
        id: The child's id from its ``ChildSpec``.
        reason: The exception that stopped it from starting.
    """

    def __init__(self, id: object, reason: BaseException) -> None:
        super().__init__(f"child {id!r} failed to start: {type(reason).__name__}: {reason}")
        self.id = id
        self.reason = reason


class ChildNotFound(GothError, LookupError):
    """A supervisor has no child with the given id."""


class ChildAlreadyPresent(GothError, ValueError):
    """``start_child`` with an id the supervisor already has (running or not)."""


class ChildRunning(GothError, RuntimeError):
    """``restart_child`` or ``delete_child`` of a child that is running."""


class MaxRestartsExceeded(GothError):
    """A supervisor saw more than ``max_restarts`` restarts within ``max_seconds`` and gave up.

    Attributes:
        max_restarts: The supervisor's ``max_restarts``.
        max_seconds: The supervisor's ``max_seconds``.
        last_child: The id of the child whose exit broke the limit.
        last_reason: That child's exit reason, or ``None`` for a normal exit.
    """

    def __init__(
        self,
        max_restarts: int,
        max_seconds: float,
        last_child: object = None,
        last_reason: BaseException | None = None,
    ) -> None:
        detail = ""
        if last_child is not None:
            detail = f"; last exit: child {last_child!r}"
            if last_reason is not None:
                detail += f" ({type(last_reason).__name__}: {last_reason})"
        super().__init__(
            f"more than {max_restarts} restarts within {max_seconds} s, supervisor gave up{detail}"
        )
        self.max_restarts = max_restarts
        self.max_seconds = max_seconds
        self.last_child = last_child
        self.last_reason = last_reason

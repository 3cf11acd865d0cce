"""Every exception goth_actors defines, in one place: the token server's own, and the others'.

The token server's errors are defined here; the token protocol's come from
``goth_actors._protocol.errors``, supervision's from ``goth_actors.otp``, and the root
(``GothError``, ``ConfigError``) from the neutral leaf both of those import. The whole tree is
drawn in ``goth_actors``' package docstring. Errors carry data (``status``, ``retryable``, a
body excerpt) but never a secret: no access token, private key, client secret or refresh token
is ever part of a message or attribute.
"""

from __future__ import annotations

from collections.abc import Hashable

from goth_actors._base import ConfigError, GothError
from goth_actors._protocol import ResponseTooLarge, TokenEndpointError, TokenError, TransportError
from goth_actors.otp import (
    AlreadyRegistered,
    ChildAlreadyPresent,
    ChildNotFound,
    ChildRunning,
    FailedToStartChild,
    MaxRestartsExceeded,
    OtpError,
)

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
    "OtpError",
    "ResponseTooLarge",
    "RetriesExhausted",
    "ServerNotFound",
    "TokenEndpointError",
    "TokenError",
    "TransportError",
]


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

    def __reduce__(self) -> tuple[object, ...]:
        return (type(self), (self.name,))


class RetriesExhausted(GothError):
    """A token server failed more than ``max_retries`` retries in a row and crashed.

    Its supervisor restarts it. Pykka logs the crash with its traceback, so the last error is
    kept as an attribute, not chained: its own cause (an HTTP client's exception) is never
    printed there.

    Attributes:
        name: The server's name.
        attempts: How many attempts failed in a row.
        last_error: The last attempt's error.
    """

    def __init__(self, name: Hashable, attempts: int, last_error: TokenError) -> None:
        error = f"{type(last_error).__name__}: {last_error}"
        if attempts == 1:
            what = f"its attempt failed with {error}"
        else:
            what = f"{attempts} attempts failed in a row, the last with {error}"
        super().__init__(f"token server {name!r}: {what}")
        self.name = name
        self.attempts = attempts
        self.last_error = last_error
        self.__suppress_context__ = True

    def __reduce__(self) -> tuple[object, ...]:
        return (type(self), (self.name, self.attempts, self.last_error))

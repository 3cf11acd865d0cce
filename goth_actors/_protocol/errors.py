"""The token protocol's errors: one exchange failed (`TokenError` and its kinds).

    GothError
    ├── ConfigError (ValueError)       bad option, source or credentials, named by field
    └── TokenError                     one token exchange failed; has ``retryable``
        ├── TokenEndpointError         the endpoint answered, but not with a token
        └── TransportError             no usable answer: refused, reset, timeout, DNS

`ResponseTooLarge` is what the default HTTP client raises for an oversized body; the
exchange turns it into a ``TokenEndpointError``. Errors carry data (``status``, ``retryable``,
a body excerpt) but never a secret, and neither does their cause chain: where the original
exception could quote one (requests quotes a bad header's value), the cause is a
`RedactedCause` that stands in for it.
"""

from __future__ import annotations

from typing import Any

from goth_actors._base import GothError

__all__ = [
    "RedactedCause",
    "ResponseTooLarge",
    "TokenEndpointError",
    "TokenError",
    "TransportError",
]


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

    Always retryable. The HTTP client's exception is chained as ``__cause__`` through a
    `RedactedCause` (its type's name and its redacted message), never as itself.

    Attributes:
        url: The URL that was being requested (without its query string).
    """

    def __init__(self, message: str, *, url: str = "") -> None:
        super().__init__(message, retryable=True)
        self.url = url

    def __reduce__(self) -> tuple[Any, ...]:
        return (type(self), (str(self),), {"url": self.url})


class ResponseTooLarge(GothError):
    """Raised by the default HTTP client when a body exceeds its size limit (1 MiB).

    Attributes:
        status: The HTTP status of the answer whose body was refused.
        limit: The limit, in bytes.
    """

    def __init__(self, status: int, limit: int) -> None:
        super().__init__(f"response body larger than {limit} bytes refused")
        self.status = status
        self.limit = limit

    def __reduce__(self) -> tuple[Any, ...]:
        return (type(self), (self.status, self.limit))


class RedactedCause(GothError):
    """Stands in, as ``__cause__``, for an exception that could carry a secret.

    Such an exception's message or attributes could hold one: this keeps its type's name and
    its message, redacted and escaped; nothing else of it.

    Attributes:
        type_name: The qualified name of the original exception's type
            (``"requests.exceptions.InvalidHeader"``).
    """

    def __init__(self, type_name: str, message: str) -> None:
        super().__init__(f"{type_name}: {message}" if message else type_name)
        self.type_name = type_name

    def __reduce__(self) -> tuple[Any, ...]:
        return (_rebuild_redacted_cause, (self.type_name, str(self)))


def _rebuild_redacted_cause(type_name: str, text: str) -> RedactedCause:
    cause = RedactedCause(type_name, "")
    cause.args = (text,)
    return cause

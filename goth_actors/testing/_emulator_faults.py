"""Planned misbehaviour for the Google emulator: armed faults, and which requests they hit.

A fault is a small object given the request and its normal answer (lazily), which returns
what to send instead. A new kind of misbehaviour (a reset connection, a stripped header, a huge
body) is a new small class and a method on `GoogleEmulator` that
arms it, not a new branch in the server.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Protocol

from goth_actors.testing import _emulator_routes as routes
from goth_actors.testing._emulator_messages import RecordedRequest, Response
from goth_actors.testing._emulator_store import api_status

__all__ = [
    "ENDPOINTS",
    "Armed",
    "Canned",
    "Failure",
    "Fault",
    "check_count",
    "check_endpoint",
    "default_error",
    "format_seconds",
]

ENDPOINTS = frozenset(
    ("token", "metadata", "tokeninfo", "certs", "sts", "iam", "subject", "aws", "api", "other")
)
"""The values of `RecordedRequest.endpoint`."""

_ERROR_BY_STATUS = {
    400: "invalid_request",
    401: "invalid_client",
    403: "access_denied",
    404: "not_found",
    429: "rate_limit_exceeded",
    500: "internal_failure",
    503: "temporarily_unavailable",
    504: "temporarily_unavailable",
}


class Fault(Protocol):
    """A planned misbehaviour: given the request and its normal answer (lazily), what to send."""

    def answer(self, request: RecordedRequest, normal: Callable[[], Response]) -> Response: ...


@dataclass(frozen=True, slots=True)
class Canned:
    """Answers ``response``; adds ``Metadata-Flavor`` on metadata paths when ``flavored``."""

    response: Response
    flavored: bool

    def answer(  # the interface's signature
        self,
        request: RecordedRequest,
        normal: Callable[[], Response],  # noqa: ARG002
    ) -> Response:
        if self.flavored and request.endpoint == "metadata":
            return self.response.with_headers(routes.METADATA_FLAVOR)
        return self.response


@dataclass(frozen=True, slots=True)
class Failure:
    """Answers an error in the shape the endpoint uses.

    OAuth's ``{"error", "error_description"}`` for the token endpoint, STS and the rest;
    Google APIs' ``{"error": {"code", "message", "status"}}`` for IAM Credentials, where
    ``error`` is the ``status`` (``"UNAVAILABLE"``).
    """

    status: int
    error: str | None
    headers: tuple[tuple[str, str], ...]

    def answer(  # the interface's signature
        self,
        request: RecordedRequest,
        normal: Callable[[], Response],  # noqa: ARG002
    ) -> Response:
        message = f"Emulated failure (HTTP {self.status})."
        payload: dict[str, object]
        if request.endpoint == "iam":
            status = self.error or api_status(self.status)
            payload = {"error": {"code": self.status, "message": message, "status": status}}
        else:
            payload = {
                "error": self.error or default_error(self.status),
                "error_description": message,
            }
        response = Response.json(self.status, payload, dict(self.headers))
        if request.endpoint == "metadata":
            return response.with_headers(routes.METADATA_FLAVOR)
        return response


@dataclass(frozen=True, slots=True)
class Reset:
    """Sends the normal answer's headers and half its body, then resets the connection."""

    def answer(  # the interface's signature
        self,
        request: RecordedRequest,  # noqa: ARG002
        normal: Callable[[], Response],
    ) -> Response:
        response = normal()
        return replace(response, cut_after=len(response.body) // 2)


@dataclass(slots=True)
class Armed:
    """A fault waiting for ``remaining`` more matching requests."""

    fault: Fault
    endpoint: str | None  # None: token-issuing requests; "any": every request
    remaining: int

    def matches(self, request: RecordedRequest) -> bool:
        if self.endpoint is None:
            return routes.issues_token(request)
        return self.endpoint in ("any", request.endpoint)


def check_count(n: int, name: str = "n") -> None:
    """Raises ``ValueError``, naming the argument ``name``, unless ``n`` is an int >= 1."""
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise ValueError(f"{name} must be an int >= 1, not {n!r}")


def check_endpoint(endpoint: str | None, name: str = "endpoint", *, paths: bool = False) -> None:
    """Raises ``ValueError`` unless ``endpoint`` is None, ``"any"`` or an endpoint name.

    The message names the argument ``name``, shows the value, and with ``paths`` mentions
    that a path prefix (starting with ``/``) is accepted too.
    """
    if endpoint is not None and endpoint != "any" and endpoint not in ENDPOINTS:
        choices = f"'any' or one of {sorted(ENDPOINTS)}"
        if paths:
            choices = f"a path starting with '/', {choices}"
        raise ValueError(f"{name} must be {choices}, not {endpoint!r}")


def default_error(status: int) -> str:
    """The OAuth ``error`` code the emulator sends for ``status`` unless told otherwise."""
    return _ERROR_BY_STATUS.get(status, "server_error" if status >= 500 else "invalid_request")


def format_seconds(seconds: float) -> str:
    """``"2"`` for 2.0, ``"1.5"`` for 1.5: a ``Retry-After`` value."""
    return str(int(seconds)) if seconds == int(seconds) else repr(float(seconds))

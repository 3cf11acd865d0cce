"""``Exchange``: one prepared request to a token endpoint, and how to read its answer."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Literal

__all__ = ["Exchange"]


@dataclass(frozen=True, slots=True)
class Exchange:
    """One prepared token request, and what the answer should be read as.

    Attributes:
        method: ``"GET"`` or ``"POST"``.
        url: The full URL, query included.
        headers: Request headers.
        body: The request body (``b""`` for GET).
        kind: ``"oauth"`` for a JSON token response, ``"metadata"`` for a metadata-server JSON
            token, ``"metadata_identity"`` for a metadata-server ID token (the body is the JWT).
        scope: The scope the request asked for, reported on the token instead of the
            response's when set.
        sub: The subject the request asked for (domain-wide delegation), likewise.
        secrets: Strings that must never be echoed in an error (removed from body excerpts).
    """

    method: Literal["GET", "POST"]
    url: str
    headers: Mapping[str, str] = field(repr=False)  # may carry a bearer token
    body: bytes = field(repr=False)  # carries the assertion or the secrets
    kind: Literal["oauth", "metadata", "metadata_identity"]
    scope: str | None = None
    sub: str | None = None
    secrets: tuple[str, ...] = field(default=(), repr=False)

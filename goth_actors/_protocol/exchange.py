"""``Exchange``: one prepared request to a token endpoint, and how to read its answer."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Literal

from goth_actors._protocol.redact import url_password, without_query

__all__ = ["Exchange"]


@dataclass(frozen=True, slots=True)
class Exchange:
    """One prepared token request, and what the answer should be read as.

    Attributes:
        method: ``"GET"``, ``"POST"``, or ``"PUT"`` (only AWS's IMDSv2 session token).
        url: The full URL, query included.
        headers: Request headers.
        body: The request body (``b""`` for GET).
        kind: ``"oauth"`` for a JSON token response, ``"metadata"`` for a metadata-server JSON
            token, ``"metadata_identity"`` for a metadata-server ID token (the body is the JWT).
        scope: The scope the request asked for, reported on the token instead of the
            response's when set.
        sub: The subject the request asked for (domain-wide delegation), likewise.
        secrets: Strings that must never be echoed in an error (removed from body excerpts);
            a password in ``url`` (``user:password@``) is added to them.
        client_cert: ``(certificate_path, key_path)`` of the client certificate to present
            (mutual TLS: X.509 workload identity), or ``None``.
        where: ``url`` without its user name, password, query and fragment: what messages
            about this request may show (computed once, not passed).
    """

    method: Literal["GET", "POST", "PUT"]
    url: str
    headers: Mapping[str, str] = field(repr=False)  # may carry a bearer token
    body: bytes = field(repr=False)  # carries the assertion or the secrets
    kind: Literal["oauth", "metadata", "metadata_identity"]
    scope: str | None = None
    sub: str | None = None
    secrets: tuple[str, ...] = field(default=(), repr=False)
    client_cert: tuple[str, str] | None = None
    where: str = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        password = url_password(self.url)
        if password:
            object.__setattr__(self, "secrets", (*self.secrets, *password))
        object.__setattr__(self, "where", without_query(self.url))

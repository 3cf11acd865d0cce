"""What every kind of workload-identity subject token source shares: its context and result.

A ``credential_source`` (a file or URL, AWS, an executable, an X.509 certificate) reads a
subject token at each fetch through `SubjectSource`; it is told the pool's audience and
token type (`SubjectContext`) and answers a `Subject`: the token, and for mutual
TLS the client certificate the STS exchange must present.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol

from goth_actors._protocol.token import Exchanger

__all__ = ["Subject", "SubjectContext", "SubjectSource"]


@dataclass(frozen=True, slots=True)
class SubjectContext:
    """What a subject token source may need to know of the credentials it serves.

    Attributes:
        audience: The workload identity pool provider (STS's ``audience``).
        subject_token_type: The token type STS expects.
        impersonated_email: The service account impersonated after STS, or ``None``.
    """

    audience: str
    subject_token_type: str
    impersonated_email: str | None


@dataclass(frozen=True, slots=True, repr=False)
class Subject:
    """A subject token, and the client certificate to present with it (mutual TLS), if any.

    Attributes:
        token: The subject token.
        client_cert: ``(certificate_path, key_path)`` for mutual TLS, or ``None``.
        secrets: More strings that must never reach a message: what the token was made
            from and may be echoed in part (AWS's secret key and session token).
    """

    token: str = field(repr=False)
    client_cert: tuple[str, str] | None = None
    secrets: tuple[str, ...] = field(default=(), repr=False)

    @property
    def all_secrets(self) -> tuple[str, ...]:
        """The token and `secrets`: what every exchange that sends it must redact."""
        return (self.token, *self.secrets)

    def __repr__(self) -> str:
        return f"Subject(token=<{len(self.token)} chars hidden>, client_cert={self.client_cert!r})"


class SubjectSource(Protocol):
    """A validated ``credential_source``: reads the subject token at each fetch."""

    def describe(self) -> str:
        """Where the token comes from, for a ``repr`` (never a secret)."""
        ...

    def read(self, exchanger: Exchanger, context: SubjectContext) -> Subject:
        """Reads the subject token now, within the exchange's deadline."""
        ...

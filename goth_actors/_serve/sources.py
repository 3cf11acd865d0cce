"""What a client asks for (`Want`), and the upstream source that gives it.

A client asks for an access token with a set of scopes, or for an ID token with an audience.
Each distinct `Want` gets its own token server; `Upstream` turns a want into the
`Source` for that server, derived from the one source serve was started
with (a key file, Application Default Credentials or an upstream metadata server).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Literal

from goth_actors import (
    GothError,
    Impersonated,
    Metadata,
    RefreshToken,
    ServiceAccount,
    Source,
    WorkloadIdentity,
)
from goth_actors._serve.runtime import Identity

__all__ = ["CLOUD_PLATFORM", "NoIdTokens", "Upstream", "Want"]

CLOUD_PLATFORM = "https://www.googleapis.com/auth/cloud-platform"


@dataclass(frozen=True, slots=True)
class Want:
    """An access token for ``scopes`` (sorted, distinct), or an ID token for ``audience``."""

    kind: Literal["token", "identity"]
    scopes: tuple[str, ...] = ()
    audience: str | None = None

    def describe(self) -> str:
        """One line for logs and the status page (no secret in it: none is part of a want)."""
        if self.kind == "identity":
            return f"identity[{self.audience}]"
        return f"token[{' '.join(self.scopes) or 'instance scopes'}]"


class NoIdTokens(GothError):  # answered as a 404, never raised to a user
    """The upstream credentials cannot give ID tokens (a user's refresh token)."""


class Upstream:
    """The source serve was started with, and what it can give.

    Args:
        base: The source: its scopes (when it takes any) are the default scope set, served
            to clients that name none.
        identity: Who the tokens belong to (`describe_identity`).
    """

    def __init__(self, base: Source, identity: Identity) -> None:
        self.base = base
        self.identity = identity
        self.takes_scopes = not isinstance(base, RefreshToken)
        self.gives_id_tokens = isinstance(base, ServiceAccount | Metadata | Impersonated)
        scopes: tuple[str, ...] | None
        if isinstance(base, ServiceAccount | Impersonated | WorkloadIdentity):
            scopes = tuple(base.scopes)
        elif isinstance(base, Metadata):
            scopes = tuple(base.scopes) if base.scopes else identity.scopes
        else:
            scopes = None
        self.scopes: tuple[str, ...] = tuple(sorted(set(scopes or (CLOUD_PLATFORM,))))
        """The default scope set: listed at ``.../scopes``, used when a client names none."""
        self.default = Want("token", self.scopes)

    @property
    def kind(self) -> str:
        """The source's kind, for the status page: ``ServiceAccount``, ``Metadata``..."""
        return type(self.base).__name__

    def token_want(self, scopes: tuple[str, ...] | None) -> Want:
        """The want for an access token with ``scopes`` (``None``: the default set)."""
        if scopes is None or not self.takes_scopes:
            return self.default
        return Want("token", tuple(sorted(set(scopes))))

    def source_for(self, want: Want) -> Source:
        """The source of ``want``'s token server.

        Raises:
            NoIdTokens: An ID token, from credentials that cannot give one.
            ConfigError: The scopes or the audience are not acceptable to the source.
        """
        base = self.base
        if want.kind == "identity":
            if isinstance(base, ServiceAccount):
                return replace(base, target_audience=want.audience)
            if isinstance(base, Metadata):
                return replace(base, audience=want.audience, scopes=None)
            if isinstance(base, Impersonated):
                return replace(base, audience=want.audience)
            raise NoIdTokens(
                "ID tokens need a service account, impersonation or a metadata server, "
                f"not {self.kind}"
            )
        if want == self.default or not self.takes_scopes:
            return base
        if isinstance(base, ServiceAccount | Impersonated | WorkloadIdentity | Metadata):
            return replace(base, scopes=want.scopes)
        return base

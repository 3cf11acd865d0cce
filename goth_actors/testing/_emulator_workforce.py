"""Workforce identity federation users, as the fake Google knows them.

What ``gcloud auth login`` with a workforce pool leaves (``external_account_authorized_user``),
refreshed at STS's ``/v1/oauthtoken`` with the OAuth client's credentials, and introspected at
``/v1/introspect``.

Their tokens are a person's (an API wants a quota project with them), issued through
`FakeGoogle` with the email
``principal://iam.googleapis.com/locations/global/workforcePools/{pool}/subject/{user}``.
Revoking the client id or the refresh token ends them. Plain Python; thread-safe.
"""

from __future__ import annotations

import itertools
import secrets
import threading
from collections.abc import Mapping
from dataclasses import dataclass

from goth_actors.testing._emulator_google import FakeGoogle
from goth_actors.testing._emulator_store import Rejected, numeric_id

__all__ = ["OAUTHTOKEN_PATH", "FakeWorkforce"]

OAUTHTOKEN_PATH = "/v1/oauthtoken"
INTROSPECT_PATH = "/v1/introspect"
_SCOPES = ("https://www.googleapis.com/auth/cloud-platform",)


@dataclass(frozen=True, slots=True)
class _User:
    pool: str
    client_id: str
    client_secret: str
    refresh_token: str
    subject: str


class FakeWorkforce:
    """Workforce pools' users and STS's refresh of their tokens; thread-safe."""

    def __init__(self, google: FakeGoogle) -> None:
        self._google = google
        self._lock = threading.Lock()
        self._serial = itertools.count(1)
        self._users: dict[str, _User] = {}  # by refresh token

    def create_user(self, email: str | None) -> _User:
        """A new user of a new workforce pool, with an OAuth client and a refresh token."""
        serial = next(self._serial)
        user = _User(
            pool=f"emulator-workforce-{serial}",
            client_id=f"emu-workforce-client-{serial}",
            client_secret=f"emu-secret-{secrets.token_urlsafe(18)}",
            refresh_token=f"emu-workforce-{secrets.token_urlsafe(40)}",
            subject=email or f"worker-{serial}@example.com",
        )
        with self._lock:
            self._users[user.refresh_token] = user
        for identity in (user.client_id, user.refresh_token):
            self._google.register_identity(identity)
        return user

    def refresh(
        self, form: Mapping[str, str], client_id: str | None, client_secret: str | None
    ) -> dict[str, object]:
        """STS ``oauthtoken``'s answer to a refresh-token grant; raises `Rejected`."""
        if form.get("grant_type") != "refresh_token":
            raise Rejected(400, "unsupported_grant_type", "Invalid grant_type.")
        with self._lock:
            user = self._users.get(form.get("refresh_token", ""))
        if not client_id or not client_secret:
            raise Rejected(401, "invalid_client", "Client authentication is required.")
        if user is None:
            raise Rejected(400, "invalid_grant", "The refresh token is invalid.")
        if user.client_id != client_id or not secrets.compare_digest(
            client_secret, user.client_secret
        ):
            raise Rejected(401, "invalid_client", "The OAuth client was not found.")
        if self._google.is_revoked((user.client_id, user.refresh_token)):
            raise Rejected(400, "invalid_grant", "Token has been expired or revoked.")
        principal = (
            f"principal://iam.googleapis.com/locations/global/workforcePools/{user.pool}/"
            f"subject/{user.subject}"
        )
        return self._google.issue_access(
            client_id=user.client_id,
            subject=user.subject,
            email=principal,
            scopes=_SCOPES,
            identities=frozenset((user.client_id, user.refresh_token)),
            user=True,
        )

    def introspect(self, token: str) -> dict[str, object]:
        """RFC 7662 introspection of ``token``: ``{"active": false}`` unless it is good."""
        info = self._google.token_info(token, "access")
        if info is None:
            return {"active": False}
        return {
            "active": True,
            "scope": info["scope"],
            "client_id": info["azp"],
            "username": info["email"],
            "exp": int(info["exp"]),
            "sub": numeric_id() if not info.get("sub") else info["sub"],
        }

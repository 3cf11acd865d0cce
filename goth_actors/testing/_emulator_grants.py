"""Google's two grants at the token endpoint, as the fake Google checks them.

The JWT-bearer grant of a service account's signed assertion, and a user's refresh-token grant
(with reauth's ``rapt``). Each failed check raises `Rejected` with Google's fixed description,
never quoting the assertion or a secret.
"""

from __future__ import annotations

import json
import secrets

import jwt

from goth_actors.testing._emulator_google import FakeGoogle
from goth_actors.testing._emulator_store import (
    CLOCK_SKEW,
    GOOGLE_TOKEN_URL,
    LEGACY_TOKEN_URL,
    MAX_ASSERTION_LIFETIME,
    TOKEN_PATHS,
    Rejected,
    ServiceAccountRecord,
    number,
    signing_key_id,
    split_scopes,
)

__all__ = ["jwt_bearer_grant", "refresh_grant"]

_JWS = jwt.PyJWS()
_BAD_TIMES = (
    "Invalid JWT: Token must be a short-lived token (60 minutes) and in a reasonable timeframe. "
    "Check your iat and exp values in the JWT claim."
)


def jwt_bearer_grant(google: FakeGoogle, assertion: str) -> dict[str, object]:
    """The token endpoint's answer to a JWT-bearer grant; raises `Rejected`."""
    account, key_id, claims = _verify_assertion(google, assertion)
    identities = frozenset((account.email, account.client_id, key_id))
    target_audience = claims.get("target_audience")
    if isinstance(target_audience, str) and target_audience:
        id_token = google.issue_id_token(
            audience=target_audience,
            azp=account.email,
            subject=account.client_id,
            email=account.email,
            identities=identities,
        )
        return {"id_token": id_token}
    scopes = split_scopes(claims.get("scope"))
    if not scopes:
        raise Rejected(400, "invalid_scope", "Invalid OAuth scope or ID token audience provided.")
    delegated = claims.get("sub")
    user = delegated if isinstance(delegated, str) and delegated else None
    body = google.issue_access(
        client_id=account.client_id,
        subject=user or account.client_id,
        email=user or account.email,
        scopes=scopes,
        identities=identities,
    )
    return {**body, "scope": " ".join(scopes)}


def refresh_grant(
    google: FakeGoogle,
    client_id: str,
    client_secret: str,
    refresh_token: str,
    scopes: tuple[str, ...],
    rapt: str | None = None,
) -> dict[str, object]:
    """The token endpoint's answer to a refresh-token grant; raises `Rejected`.

    ``scopes`` empty means all the user granted; otherwise it must be a subset. A user
    under a reauth policy needs its ``rapt`` token.
    """
    user, revoked = google.user(client_id)
    if user is None:
        raise Rejected(401, "invalid_client", "The OAuth client was not found.")
    if not client_secret:
        raise Rejected(400, "invalid_request", "client_secret is missing.")
    if not secrets.compare_digest(client_secret, user.client_secret):
        raise Rejected(401, "invalid_client", "Unauthorized")
    if not secrets.compare_digest(refresh_token, user.refresh_token):
        raise Rejected(400, "invalid_grant", "Bad Request")
    if revoked:
        raise Rejected(400, "invalid_grant", "Token has been expired or revoked.")
    if not set(scopes) <= set(user.scopes):
        raise Rejected(400, "invalid_scope", "Some requested scopes were not granted.")
    if user.rapt_token is not None and not secrets.compare_digest(rapt or "", user.rapt_token):
        raise Rejected(400, "invalid_grant", "reauth related error (invalid_rapt)")
    body = google.issue_access(
        client_id=user.client_id,
        subject=user.user_id,
        email=user.email,
        scopes=scopes or user.scopes,
        identities=frozenset((user.client_id, user.refresh_token)),
        user=True,
    )
    return {**body, "scope": " ".join(scopes or user.scopes)}


def _verify_assertion(
    google: FakeGoogle, assertion: str
) -> tuple[ServiceAccountRecord, str, dict[str, object]]:
    try:
        unverified = _JWS.decode_complete(assertion, options={"verify_signature": False})
        claims = json.loads(unverified["payload"])
    except (jwt.InvalidTokenError, ValueError):
        raise Rejected(400, "invalid_grant", "Invalid JWT: malformed.") from None
    header = unverified["header"]
    if not isinstance(claims, dict) or header.get("alg") != "RS256":
        raise Rejected(400, "invalid_grant", "Invalid JWT: expected an RS256 JWT.")
    issuer = claims.get("iss")
    account = google.account(issuer) if isinstance(issuer, str) else None
    if account is None:
        raise Rejected(400, "invalid_grant", "Invalid grant: account not found")
    kid = header.get("kid")  # google-auth sends it; Goth does not
    key_id = signing_key_id(account, assertion, kid, google.key_revoked)
    if key_id is None:
        raise Rejected(400, "invalid_grant", "Invalid JWT Signature.")
    own = {google.base_url() + path for path in TOKEN_PATHS}
    if claims.get("aud") not in {GOOGLE_TOKEN_URL, LEGACY_TOKEN_URL, *own}:
        raise Rejected(400, "invalid_grant", "Invalid JWT: Failed audience check.")
    issued_at, expires = number(claims.get("iat")), number(claims.get("exp"))
    now = google.clock()
    if (
        issued_at is None
        or expires is None
        or issued_at > now + CLOCK_SKEW
        or expires < now
        or expires <= issued_at
        or expires - issued_at > MAX_ASSERTION_LIFETIME
    ):
        raise Rejected(400, "invalid_grant", _BAD_TIMES)
    return account, key_id, claims

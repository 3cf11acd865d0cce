"""Service accounts' own signatures, as Google checks and makes them.

Self-signed JWTs used as access tokens (AIP-4111), and IAM Credentials' ``signBlob``.

A self-signed JWT is accepted when a key of the account it names (``iss`` = ``sub`` = the
account's email) signed it RS256, it is unexpired, lives at most an hour, and carries a
``scope`` or an ``aud``. ``signBlob`` signs with the account's Google-managed key;
`verify_blob` accepts a signature by that key or by any of the account's unrevoked keys
(a key file signs locally with its own). Plain Python over the accounts of
`FakeGoogle`.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import json
from typing import Any, Protocol

import jwt
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from goth_actors.testing._emulator_store import (
    MAX_ASSERTION_LIFETIME,
    ServiceAccountRecord,
    number,
    signing_key_id,
)

__all__ = ["Accounts", "decode_payload", "self_signed_info", "sign_blob", "verify_blob"]

_JWS = jwt.PyJWS()


class Accounts(Protocol):
    """What these checks need of the fake Google: its accounts and their keys."""

    def account(self, email_or_id: str) -> ServiceAccountRecord | None: ...
    def key_revoked(self, key_id: str) -> bool: ...
    def system_key(self, account: ServiceAccountRecord) -> tuple[rsa.RSAPrivateKey, str]: ...


def self_signed_info(google: Accounts, token: str, now: float) -> dict[str, str] | None:
    """Tokeninfo of a service account's self-signed JWT, or ``None`` if it is not a good one."""
    claims: Any = None
    header: Any = None
    with contextlib.suppress(jwt.InvalidTokenError, ValueError):
        unverified = _JWS.decode_complete(token, options={"verify_signature": False})
        header = unverified["header"]
        claims = json.loads(unverified["payload"])
    if not isinstance(claims, dict) or not isinstance(header, dict) or header.get("alg") != "RS256":
        return None
    issuer = claims.get("iss")
    account = google.account(issuer) if isinstance(issuer, str) else None
    if account is None or claims.get("sub") != account.email:
        return None
    if signing_key_id(account, token, header.get("kid"), google.key_revoked) is None:
        return None
    issued_at, expires = number(claims.get("iat")), number(claims.get("exp"))
    if (
        issued_at is None
        or expires is None
        or expires <= now
        or issued_at > now + 60
        or expires - issued_at > MAX_ASSERTION_LIFETIME
    ):
        return None
    scope, audience = claims.get("scope"), claims.get("aud")
    if not isinstance(scope, str) and not isinstance(audience, str):
        return None
    return {
        "azp": account.client_id,
        "aud": audience if isinstance(audience, str) else account.client_id,
        "sub": account.client_id,
        "scope": scope if isinstance(scope, str) else "",
        "exp": str(int(expires)),
        "expires_in": str(max(0, int(expires - now))),
        "email": account.email,
        "email_verified": "true",
        "access_type": "online",
        "self_signed": "true",
    }


def sign_blob(google: Accounts, account: ServiceAccountRecord, data: bytes) -> dict[str, str]:
    """IAM ``signBlob``'s answer: ``data`` signed with the account's Google-managed key."""
    key, key_id = google.system_key(account)
    signature = key.sign(data, padding.PKCS1v15(), hashes.SHA256())
    return {"keyId": key_id, "signedBlob": base64.b64encode(signature).decode("ascii")}


def verify_blob(google: Accounts, email: str, data: bytes, signature: bytes) -> bool:
    """Whether ``signature`` is ``email``'s signature of ``data`` (any of its keys)."""
    account = google.account(email)
    if account is None:
        return False
    keys = [key for key_id, key in account.keys.items() if not google.key_revoked(key_id)]
    if account.system_key is not None:
        keys.append(account.system_key[0].public_key())
    for key in keys:
        try:
            key.verify(signature, data, padding.PKCS1v15(), hashes.SHA256())
        except InvalidSignature:
            continue
        return True
    return False


def decode_payload(value: object) -> bytes | None:
    """The base64 ``payload`` of a ``signBlob`` request, or ``None``."""
    if not isinstance(value, str):
        return None
    with contextlib.suppress(binascii.Error, ValueError):
        return base64.b64decode(value, validate=True)
    return None

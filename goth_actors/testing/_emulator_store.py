"""What the fake Google's pieces share: constants, keys, stores, records and small helpers.

`Expiring` keeps values until they expire, at a bounded cost per addition; the key
pool generates a few RSA keys per process and reuses them (generating one costs 50-100 ms);
`Rejected` is the OAuth error every check raises; the records are what
`FakeGoogle` keeps of accounts, users and tokens.
Plain Python, no HTTP.
"""

from __future__ import annotations

import heapq
import itertools
import json
import os
import secrets
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Generic, Literal, TypeVar

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from jwt.utils import base64url_encode

from goth_actors import GothError

__all__ = [
    "CLOCK_SKEW",
    "DEFAULT_METADATA_EMAIL",
    "DEFAULT_METADATA_SCOPES",
    "DEFAULT_USER_SCOPES",
    "GOOGLE_TOKEN_URL",
    "ID_TOKEN_ISSUER",
    "LEGACY_TOKEN_URL",
    "MAX_ASSERTION_LIFETIME",
    "PROJECT_ID",
    "TOKEN_PATHS",
    "ApiRejected",
    "AuthorizedUser",
    "Expiring",
    "Issued",
    "Rejected",
    "ServiceAccountRecord",
    "api_status",
    "b64_uint",
    "info_value",
    "number",
    "numeric_id",
    "pooled_key",
    "seconds",
    "signing_key_id",
    "split_scopes",
]

GOOGLE_TOKEN_URL = "https://oauth2.googleapis.com/token"
"""The audience google-auth signs into every assertion, whatever its ``token_uri``."""
LEGACY_TOKEN_URL = "https://www.googleapis.com/oauth2/v4/token"
"""Goth's token URL, and the audience of its assertions."""
TOKEN_PATHS = ("/token", "/oauth2/v4/token")
"""Where the emulator serves its token endpoint."""
ID_TOKEN_ISSUER = "https://accounts.google.com"
CLOCK_SKEW = 60.0
"""Seconds an assertion's ``iat`` may lie in the future."""
MAX_ASSERTION_LIFETIME = 3600.0
"""The largest ``exp - iat`` accepted in an assertion."""
PROJECT_ID = "emulator-project"
DEFAULT_METADATA_EMAIL = f"default-sa@{PROJECT_ID}.iam.gserviceaccount.com"
DEFAULT_METADATA_SCOPES = ("https://www.googleapis.com/auth/cloud-platform",)
DEFAULT_USER_SCOPES = (
    "openid",
    "https://www.googleapis.com/auth/userinfo.email",
    "https://www.googleapis.com/auth/cloud-platform",
)

_JWS = jwt.PyJWS()
_PRUNE_BATCH = 8
"""The most expired entries `Expiring.add` forgets: bounded work, faster than arrivals."""

_V = TypeVar("_V")

# RSA-2048 generation costs 50-100 ms, so a process makes a few keys and reuses them, each
# time under a new private_key_id. Generated per process, never stored on disk.
_KEY_POOL_SIZE = 4
_pool_lock = threading.Lock()
_pool: list[tuple[rsa.RSAPrivateKey, str]] = []
_pool_turn = itertools.count()


def _after_fork_in_child() -> None:
    global _pool_lock
    _pool_lock = threading.Lock()


os.register_at_fork(after_in_child=_after_fork_in_child)


def pooled_key() -> tuple[rsa.RSAPrivateKey, str]:
    """Returns the next of a few process-wide RSA keys, with its PKCS#8 PEM."""
    index = next(_pool_turn) % _KEY_POOL_SIZE
    with _pool_lock:
        while len(_pool) <= index:
            key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
            pem = key.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            )
            _pool.append((key, pem.decode()))
        return _pool[index]


class Rejected(GothError):
    """Google said no: an OAuth error, to be sent as ``{"error", "error_description"}``.

    Attributes:
        status: The HTTP status (400, or 401 for ``invalid_client``).
        error: The OAuth error code (``"invalid_grant"``).
        description: A fixed, secret-free description.
    """

    def __init__(self, status: int, error: str, description: str) -> None:
        super().__init__(f"{error}: {description}")
        self.status = status
        self.error = error
        self.description = description


_STATUS_BY_CODE = {
    400: "INVALID_ARGUMENT",
    401: "UNAUTHENTICATED",
    403: "PERMISSION_DENIED",
    404: "NOT_FOUND",
    409: "ABORTED",
    429: "RESOURCE_EXHAUSTED",
    500: "INTERNAL",
    501: "NOT_IMPLEMENTED",
    503: "UNAVAILABLE",
    504: "DEADLINE_EXCEEDED",
}


def api_status(code: int) -> str:
    """The Google API ``status`` for an HTTP code (``503`` gives ``"UNAVAILABLE"``)."""
    return _STATUS_BY_CODE.get(code, "INTERNAL" if code >= 500 else "FAILED_PRECONDITION")


class ApiRejected(GothError):
    """A Google API said no: to be sent as ``{"error": {"code", "message", "status"}}``.

    Attributes:
        code: The HTTP status.
        message: A fixed, secret-free message.
        status: The API status name, e.g. ``"PERMISSION_DENIED"``.
    """

    def __init__(self, code: int, message: str) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message
        self.status = api_status(code)

    def payload(self) -> dict[str, object]:
        """The JSON error body."""
        return {"error": {"code": self.code, "message": self.message, "status": self.status}}


class Expiring(Generic[_V]):
    """Values by key, forgotten once expired; not thread-safe (the owner holds its lock).

    Each `add` also forgets up to 8 expired entries, those that expired first, so
    the store holds little more than its unexpired entries at a bounded cost per call.
    """

    def __init__(self) -> None:
        self._values: dict[str, tuple[float, _V]] = {}
        self._deadlines: list[tuple[float, str]] = []  # a heap: the first to expire on top

    def __len__(self) -> int:
        return len(self._values)

    def get(self, key: str) -> _V | None:
        """The value under ``key``, or ``None``; it may have expired but not yet be dropped."""
        entry = self._values.get(key)
        return None if entry is None else entry[1]

    def add(self, key: str, value: _V, expires: float, now: float) -> None:
        """Remembers ``value`` until ``expires`` (unix seconds); forgets a few expired ones."""
        self._values[key] = (expires, value)
        heapq.heappush(self._deadlines, (expires, key))
        for _ in range(_PRUNE_BATCH):
            if not self._deadlines or self._deadlines[0][0] > now:
                return
            deadline, old = heapq.heappop(self._deadlines)
            entry = self._values.get(old)
            if entry is not None and entry[0] == deadline:
                del self._values[old]


@dataclass(slots=True)
class ServiceAccountRecord:
    email: str
    client_id: str
    keys: dict[str, rsa.RSAPublicKey] = field(default_factory=dict)  # by private_key_id
    system_key: tuple[rsa.RSAPrivateKey, str] | None = None  # Google-managed: signBlob


@dataclass(frozen=True, slots=True)
class AuthorizedUser:
    client_id: str
    client_secret: str
    refresh_token: str
    email: str
    user_id: str
    scopes: tuple[str, ...]
    rapt_token: str | None = None  # a reauth policy: refreshes must send it as "rapt"


@dataclass(frozen=True, slots=True)
class Issued:
    kind: Literal["access", "id"]
    client_id: str
    subject: str
    email: str
    scopes: tuple[str, ...]
    expires: float
    identities: frozenset[str]  # naming any of these in revoke() invalidates the token
    claims: Mapping[str, object] = field(default_factory=dict)  # ID tokens only
    user: bool = False  # a person's token (APIs then want a quota project)


def split_scopes(value: object, separator: str | None = None) -> tuple[str, ...]:
    """Scopes from a space- (or ``separator``-) separated string, without blanks or repeats."""
    if not isinstance(value, str):
        return ()
    return tuple(dict.fromkeys(s.strip() for s in value.split(separator) if s.strip()))


def signing_key_id(
    account: ServiceAccountRecord, token: str, kid: object, revoked: Callable[[str], bool]
) -> str | None:
    """The id of the account's key that signed ``token`` (RS256), or ``None``.

    Only the key ``kid`` names is tried (every key when ``kid`` is ``None``), and no revoked
    one.
    """
    for key_id, key in list(account.keys.items()):
        if kid not in (None, key_id) or revoked(key_id):
            continue
        try:
            _JWS.decode(token, key, algorithms=["RS256"])
        except jwt.InvalidTokenError:
            continue
        return key_id
    return None


def numeric_id() -> str:
    return str(10**20 + secrets.randbelow(9 * 10**20))


def seconds(value: float) -> int | float:
    return int(value) if value == int(value) else value


def number(value: object) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value)


def b64_uint(value: int) -> str:
    raw = value.to_bytes((value.bit_length() + 7) // 8, "big")
    return base64url_encode(raw).decode()


def info_value(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return value if isinstance(value, str) else json.dumps(value)

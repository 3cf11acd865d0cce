"""What the fake Google knows beyond OAuth: workload identity pools, STS, IAM Credentials.

:class:`FakeFederation` keeps workload identity pools and the subject tokens minted for them
(until they expire; an expired one is still recognised by its signature, to be refused as
expired), answers the Security Token Service's token exchange, and IAM Credentials'
``generateAccessToken`` and ``generateIdToken``. It issues tokens through :class:`FakeGoogle`,
so they show in tokeninfo and die when revoked like any other. Plain Python, no HTTP; a
failed check raises :class:`~goth_actors.testing._emulator_google.Rejected` (STS, OAuth's
error shape) or :class:`ApiRejected` (IAM, Google APIs' ``{"error": {"code", "message",
"status"}}``), whose messages never quote a token. Thread-safe.
"""

from __future__ import annotations

import itertools
import json
import math
import re
import secrets
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone
from typing import Literal

import jwt

from goth_actors import GothError
from goth_actors.testing._emulator_google import Expiring, FakeGoogle, Rejected, split_scopes

__all__ = [
    "ACCESS_TOKEN_TYPE",
    "DEFAULT_SUBJECT",
    "IAM_MAX_LIFETIME",
    "JWT_TOKEN_TYPE",
    "STS_PATH",
    "SUBJECT_PATH",
    "TOKEN_EXCHANGE_GRANT",
    "ApiRejected",
    "FakeFederation",
    "Pool",
]

STS_PATH = "/v1/token"
SUBJECT_PATH = "/subject-token/"
TOKEN_EXCHANGE_GRANT = "urn:ietf:params:oauth:grant-type:token-exchange"
ACCESS_TOKEN_TYPE = "urn:ietf:params:oauth:token-type:access_token"
JWT_TOKEN_TYPE = "urn:ietf:params:oauth:token-type:jwt"
DEFAULT_SUBJECT = "system:serviceaccount:default:app"
IAM_MAX_LIFETIME = 3600.0
"""Google's longest impersonated token, unless an organization policy allows 12 h."""
_IAM_LIFETIME_LIMIT = 43200.0
_DURATION = re.compile(r"(\d+(?:\.\d{1,9})?)s")
_RESOURCE = "projects/-/serviceAccounts/"
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


@dataclass(frozen=True, slots=True)
class Pool:
    """One workload identity pool provider, and how its subject tokens are served."""

    number: int
    audience: str
    subject_token_type: str
    format: Literal["text", "json"]
    request_token: str  # what the subject-token URL wants in its Authorization header
    subject: str

    @property
    def principal_prefix(self) -> str:
        return self.audience.removeprefix("//").split("/providers/")[0]


@dataclass(frozen=True, slots=True)
class _Subject:
    audience: str
    subject: str
    expires: float


class FakeFederation:
    """Workload identity pools, STS and IAM Credentials, as Python calls; thread-safe.

    Args:
        google: The fake Google that issues and remembers tokens.
        base_url: Returns the emulator's base URL.

    Attributes:
        iam_max_lifetime: The longest ``lifetime`` generateAccessToken grants, in seconds.
        expire_time_offset: The UTC offset of IAM's ``expireTime`` (zero: ``Z``).
        expire_time_digits: Fractional digits of IAM's ``expireTime`` (0 to 9).
    """

    def __init__(self, google: FakeGoogle, base_url: Callable[[], str]) -> None:
        self.clock = google.clock
        self._google = google
        self._base_url = base_url
        self.iam_max_lifetime = IAM_MAX_LIFETIME
        self.expire_time_offset = timedelta(0)
        self.expire_time_digits = 0
        self._lock = threading.Lock()
        self._serial = itertools.count(1)
        self._pools: dict[str, Pool] = {}  # by audience
        self._subjects: Expiring[_Subject] = Expiring()  # by subject token

    # --- pools and subject tokens -------------------------------------------------------------

    def create_pool(
        self, *, subject_token_type: str, format: Literal["text", "json"], subject: str
    ) -> Pool:
        """A new pool provider, revocable by its audience."""
        number = next(self._serial)
        audience = (
            f"//iam.googleapis.com/projects/{self._google.project_number}/locations/global/"
            f"workloadIdentityPools/emulator-pool-{number}/providers/emulator-provider"
        )
        pool = Pool(
            number, audience, subject_token_type, format, secrets.token_urlsafe(24), subject
        )
        with self._lock:
            self._pools[audience] = pool
        self._google.register_identity(audience)
        return pool

    def pool(self, number: int) -> Pool | None:
        """The pool with this number, or None."""
        with self._lock:
            return next((p for p in self._pools.values() if p.number == number), None)

    def mint_subject_token(self, audience: str, subject: str | None, lifetime: float) -> str:
        """A signed OIDC-like JWT for ``audience``, which STS will accept until it expires.

        ``subject`` defaults to the pool's.
        """
        if subject is None:
            with self._lock:
                pool = self._pools.get(audience)
            subject = pool.subject if pool is not None else DEFAULT_SUBJECT
        key, kid = self._google.signing_key()
        now = int(self.clock())
        expires = now + math.ceil(lifetime)
        claims = {
            "iss": f"{self._base_url()}/oidc",
            "aud": audience,
            "sub": subject,
            "iat": now,
            "exp": expires,
            "jti": secrets.token_hex(8),
        }
        token = jwt.encode(claims, key, algorithm="RS256", headers={"kid": kid})
        with self._lock:
            self._subjects.add(token, _Subject(audience, subject, float(expires)), expires, now)
        return token

    def _forgotten_subject(self, token: str) -> _Subject | None:
        """A subject token minted here that expired and was forgotten, read from its claims."""
        key, kid = self._google.signing_key()
        try:
            if jwt.get_unverified_header(token).get("kid") != kid:
                return None
            claims = jwt.decode(
                token,
                key.public_key(),
                algorithms=["RS256"],
                options={"verify_exp": False, "verify_aud": False, "verify_iat": False},
            )
        except jwt.InvalidTokenError:
            return None
        audience, subject, expires = claims.get("aud"), claims.get("sub"), claims.get("exp")
        if (
            claims.get("iss") != f"{self._base_url()}/oidc"
            or not isinstance(audience, str)
            or not isinstance(subject, str)
            or isinstance(expires, bool)
            or not isinstance(expires, int)
        ):
            return None
        return _Subject(audience, subject, float(expires))

    def serve_subject_token(self, number: int, authorization: str) -> tuple[Pool, str]:
        """What the subject-token URL of pool ``number`` answers: a fresh subject token.

        Raises :class:`ApiRejected`: 404 for an unknown pool, 401 without the pool's bearer
        token in ``authorization``.
        """
        pool = self.pool(number)
        if pool is None:
            raise ApiRejected(404, "No such subject-token source.")
        scheme, _, token = authorization.partition(" ")
        if scheme.lower() != "bearer" or not secrets.compare_digest(
            token.strip(), pool.request_token
        ):
            raise ApiRejected(401, "Bad credentials.")
        return pool, self.mint_subject_token(pool.audience, pool.subject, 3600.0)

    # --- the Security Token Service -----------------------------------------------------------

    def sts_exchange(self, form: Mapping[str, str]) -> dict[str, object]:
        """STS's answer to a token exchange; raises :class:`Rejected`."""
        if form.get("grant_type") != TOKEN_EXCHANGE_GRANT:
            raise Rejected(400, "unsupported_grant_type", "Invalid grant_type.")
        if form.get("requested_token_type") != ACCESS_TOKEN_TYPE:
            raise Rejected(400, "invalid_request", "Invalid value for requested_token_type.")
        with self._lock:
            pool = self._pools.get(form.get("audience", ""))
            subject = self._subjects.get(form.get("subject_token", ""))
        if subject is None and form.get("subject_token"):
            subject = self._forgotten_subject(form["subject_token"])
        if pool is None:
            raise Rejected(
                400,
                "invalid_target",
                'The target service indicated by the "audience" parameters is invalid.',
            )
        if form.get("subject_token_type") != pool.subject_token_type:
            raise Rejected(400, "invalid_request", "Invalid value for subject_token_type.")
        if not form.get("subject_token"):
            raise Rejected(400, "invalid_request", "Missing required parameter: subject_token")
        if subject is None or subject.audience != pool.audience:
            raise Rejected(400, "invalid_grant", "The subject token is invalid.")
        if subject.expires <= self.clock():
            raise Rejected(400, "invalid_grant", "The subject token has expired.")
        if self._google.is_revoked((pool.audience,)):
            raise Rejected(400, "invalid_grant", "The workload identity pool is disabled.")
        scopes = split_scopes(form.get("scope")) or (
            "https://www.googleapis.com/auth/cloud-platform",
        )
        principal = f"principal://{pool.principal_prefix}/subject/{subject.subject}"
        body = self._google.issue_access(
            client_id=pool.audience,
            subject=subject.subject,
            email=principal,
            scopes=scopes,
            identities=frozenset((pool.audience,)),
        )
        return {**body, "issued_token_type": ACCESS_TOKEN_TYPE}

    # --- IAM Credentials ----------------------------------------------------------------------

    def generate_access_token(
        self, authorization: str, target: str, body: bytes
    ) -> dict[str, object]:
        """IAM's ``generateAccessToken`` answer; raises :class:`ApiRejected`."""
        self._check_caller(authorization)
        request = _json_body(body)
        scope = request.get("scope")
        if isinstance(scope, str):
            scope = [scope]
        if not isinstance(scope, list) or not scope or not all(isinstance(s, str) for s in scope):
            raise ApiRejected(400, "Scope required.")
        lifetime = self._lifetime(request.get("lifetime"))
        email, client_id = self._target(target, request.get("delegates"))
        expires, expire_time = self._expire_time(self.clock() + lifetime)
        issued = self._google.issue_access(
            client_id=client_id,
            subject=client_id,
            email=email,
            scopes=tuple(scope),
            identities=frozenset((email, client_id)),
            expires=expires,
        )
        return {"accessToken": issued["access_token"], "expireTime": expire_time}

    def generate_id_token(self, authorization: str, target: str, body: bytes) -> dict[str, object]:
        """IAM's ``generateIdToken`` answer; raises :class:`ApiRejected`."""
        self._check_caller(authorization)
        request = _json_body(body)
        audience = request.get("audience")
        if not isinstance(audience, str) or not audience:
            raise ApiRejected(400, "Audience required.")
        include_email = request.get("includeEmail") is True
        email, client_id = self._target(target, request.get("delegates"))
        token = self._google.issue_id_token(
            audience=audience,
            azp=client_id,
            subject=client_id,
            email=email,
            identities=frozenset((email, client_id)),
            include_email=include_email,
        )
        return {"token": token}

    def _check_caller(self, authorization: str) -> None:
        scheme, _, token = authorization.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise ApiRejected(
                401,
                "Request is missing required authentication credential. Expected OAuth 2 "
                "access token.",
            )
        if self._google.token_info(token.strip(), "access") is None:
            raise ApiRejected(
                401,
                "Request had invalid authentication credentials. Expected OAuth 2 access token.",
            )

    def _lifetime(self, value: object) -> float:
        if value is None:
            return min(IAM_MAX_LIFETIME, self.iam_max_lifetime, self._google.token_lifetime)
        match = _DURATION.fullmatch(value) if isinstance(value, str) else None
        if match is None:
            raise ApiRejected(400, "Invalid value at 'lifetime' (type.googleapis.com/Duration).")
        seconds = float(match[1])
        if not 1 <= seconds <= self.iam_max_lifetime:
            raise ApiRejected(
                400,
                f"The lifetime must be between 1s and {self.iam_max_lifetime:.0f}s "
                "(constraints/iam.allowServiceAccountCredentialLifetimeExtension).",
            )
        return min(seconds, self._google.token_lifetime)

    def _target(self, target: str, delegates: object) -> tuple[str, str]:
        if delegates is not None:
            if not isinstance(delegates, list):
                raise ApiRejected(400, "Invalid value at 'delegates'.")
            for delegate in delegates:
                if not isinstance(delegate, str) or not delegate.startswith(_RESOURCE):
                    raise ApiRejected(
                        400, "Delegates must be of the form projects/-/serviceAccounts/{email}."
                    )
                if self._google.active_account(delegate.removeprefix(_RESOURCE)) is None:
                    raise ApiRejected(404, "Requested entity was not found: a delegate.")
        account = self._google.active_account(target)
        if account is None:
            raise ApiRejected(404, "Requested entity was not found.")
        return account

    def _expire_time(self, expires: float) -> tuple[float, str]:
        """``(expires, text)``: the time rounded up to the digits sent, and as RFC 3339."""
        digits = self.expire_time_digits
        scale = 10**digits
        whole = math.floor(expires)
        ticks = math.ceil((expires - whole) * scale)
        if ticks >= scale:
            whole, ticks = whole + 1, 0
        offset = self.expire_time_offset
        moment = datetime.fromtimestamp(whole, UTC).astimezone(timezone(offset))
        text = moment.strftime("%Y-%m-%dT%H:%M:%S")
        if digits:
            text += f".{ticks:0{digits}d}"
        if offset:
            total = int(offset.total_seconds())
            sign = "+" if total > 0 else "-"
            hours, minutes = divmod(abs(total) // 60, 60)
            text += f"{sign}{hours:02d}:{minutes:02d}"
        else:
            text += "Z"
        return whole + ticks / scale, text


def check_iam_settings(max_lifetime: float, offset: timedelta, digits: int) -> None:
    """Raises ``ValueError`` for settings :class:`FakeFederation` cannot honour."""
    if isinstance(max_lifetime, bool) or not 1 <= max_lifetime <= _IAM_LIFETIME_LIMIT:
        raise ValueError(
            f"iam_max_lifetime must be between 1 and 43200 seconds, not {max_lifetime!r}"
        )
    if not isinstance(offset, timedelta) or abs(offset) >= timedelta(hours=24):
        raise ValueError(f"expire_time_offset must be a timedelta under 24 hours, not {offset!r}")
    if offset.total_seconds() % 60:
        raise ValueError(f"expire_time_offset must be whole minutes, not {offset!r}")
    if isinstance(digits, bool) or not isinstance(digits, int) or not 0 <= digits <= 9:
        raise ValueError(f"expire_time_digits must be an int from 0 to 9, not {digits!r}")


def _json_body(body: bytes) -> dict[str, object]:
    try:
        decoded = json.loads(body.decode("utf-8") or "{}")
    except (UnicodeDecodeError, ValueError):
        raise ApiRejected(400, "Invalid JSON payload received.") from None
    if not isinstance(decoded, dict):
        raise ApiRejected(400, "Invalid JSON payload received. Expected an object.")
    return decoded

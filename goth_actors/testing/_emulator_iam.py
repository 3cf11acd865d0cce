"""IAM Credentials, as the fake Google answers it.

``generateAccessToken``, ``generateIdToken`` and ``signBlob``.

`FakeIam` checks the caller's bearer token (an unexpired access token the emulator
issued, or a service account's self-signed JWT), the target and its delegates, and issues
tokens through `FakeGoogle`, so they show in
tokeninfo and die when revoked like any other. Errors are Google APIs'
`ApiRejected` (``{"error": {"code", "message",
"status"}}``), whose messages never quote a token. Plain Python, no HTTP; thread-safe.
"""

from __future__ import annotations

import json
import math
import re
from datetime import UTC, datetime, timedelta, timezone

from goth_actors.testing._emulator_google import FakeGoogle
from goth_actors.testing._emulator_signing import decode_payload, sign_blob
from goth_actors.testing._emulator_store import ApiRejected

__all__ = ["IAM_MAX_LIFETIME", "FakeIam", "check_iam_settings"]

IAM_MAX_LIFETIME = 3600.0
"""Google's longest impersonated token, unless an organization policy allows 12 h."""
_IAM_LIFETIME_LIMIT = 43200.0
_DURATION = re.compile(r"(\d+(?:\.\d{1,9})?)s")
_RESOURCE = "projects/-/serviceAccounts/"


class FakeIam:
    """IAM Credentials' answers, as Python calls; thread-safe.

    Attributes:
        iam_max_lifetime: The longest ``lifetime`` generateAccessToken grants, in seconds.
        expire_time_offset: The UTC offset of IAM's ``expireTime`` (zero: ``Z``).
        expire_time_digits: Fractional digits of IAM's ``expireTime`` (0 to 9).
    """

    def __init__(self, google: FakeGoogle) -> None:
        self.clock = google.clock
        self._google = google
        self.iam_max_lifetime = IAM_MAX_LIFETIME
        self.expire_time_offset = timedelta(0)
        self.expire_time_digits = 0

    def generate_access_token(
        self, authorization: str, target: str, body: bytes
    ) -> dict[str, object]:
        """IAM's ``generateAccessToken`` answer; raises `ApiRejected`."""
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
        """IAM's ``generateIdToken`` answer; raises `ApiRejected`."""
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

    def sign_blob(self, authorization: str, target: str, body: bytes) -> dict[str, object]:
        """IAM's ``signBlob`` answer: the payload signed with the target's Google-managed key."""
        self._check_caller(authorization)
        request = _json_body(body)
        payload = decode_payload(request.get("payload"))
        if payload is None:
            raise ApiRejected(400, "Invalid value at 'payload' (TYPE_BYTES).")
        self._target(target, request.get("delegates"))
        account = self._google.account(target)
        if account is None:  # revoked between the two reads
            raise ApiRejected(404, "Requested entity was not found.")
        return dict(sign_blob(self._google, account, payload))


def check_iam_settings(max_lifetime: float, offset: timedelta, digits: int) -> None:
    """Raises ``ValueError`` for settings `FakeIam` cannot honour."""
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

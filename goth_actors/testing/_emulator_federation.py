"""What the fake Google knows of workload identity federation: pools, subject tokens, STS.

`FakeFederation` keeps workload identity pools and the subject tokens minted for them
(until they expire; an expired one is still recognised by its signature, to be refused as
expired), and answers the Security Token Service's token exchange for each kind of pool: a
JWT minted here, an AWS workload's signed ``GetCallerIdentity`` request (checked by
`FakeAws`), or an X.509 certificate chain presented
over mutual TLS. It issues tokens through `FakeGoogle`, so they show in tokeninfo and
die when revoked like any other. Plain Python, no HTTP; a failed check raises
`Rejected` (STS, OAuth's error shape) or
`ApiRejected` (the subject-token URL), whose
messages never quote a token. Thread-safe.
"""

from __future__ import annotations

import base64
import itertools
import json
import math
import secrets
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Literal

import jwt
from cryptography import x509

from goth_actors.testing._emulator_aws import AWS_TOKEN_TYPE, FakeAws
from goth_actors.testing._emulator_google import FakeGoogle
from goth_actors.testing._emulator_store import ApiRejected, Expiring, Rejected, split_scopes

__all__ = [
    "ACCESS_TOKEN_TYPE",
    "DEFAULT_SUBJECT",
    "JWT_TOKEN_TYPE",
    "MTLS_TOKEN_TYPE",
    "STS_PATH",
    "SUBJECT_PATH",
    "TOKEN_EXCHANGE_GRANT",
    "FakeFederation",
    "Pool",
]

STS_PATH = "/v1/token"
SUBJECT_PATH = "/subject-token/"
TOKEN_EXCHANGE_GRANT = "urn:ietf:params:oauth:grant-type:token-exchange"
ACCESS_TOKEN_TYPE = "urn:ietf:params:oauth:token-type:access_token"
JWT_TOKEN_TYPE = "urn:ietf:params:oauth:token-type:jwt"
MTLS_TOKEN_TYPE = "urn:ietf:params:oauth:token-type:mtls"
DEFAULT_SUBJECT = "system:serviceaccount:default:app"


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
    """

    def __init__(self, google: FakeGoogle, aws: FakeAws, base_url: Callable[[], str]) -> None:
        self.clock = google.clock
        self._google = google
        self._aws = aws
        self._base_url = base_url
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

    def _jwt_subject(self, token: str, pool: Pool) -> str:
        with self._lock:
            subject = self._subjects.get(token)
        if subject is None:
            subject = self._forgotten_subject(token)
        if subject is None or subject.audience != pool.audience:
            raise Rejected(400, "invalid_grant", "The subject token is invalid.")
        if subject.expires <= self.clock():
            raise Rejected(400, "invalid_grant", "The subject token has expired.")
        return subject.subject

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

        Raises `ApiRejected`: 404 for an unknown pool, 401 without the pool's bearer
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

    def sts_exchange(
        self, form: Mapping[str, str], client_cert: bytes | None = None
    ) -> dict[str, object]:
        """STS's answer to a token exchange; raises `Rejected`.

        The subject is checked by the pool's kind: a JWT minted here for the pool, an AWS
        workload's signed ``GetCallerIdentity`` request, or, for an mTLS pool (on the mTLS
        listener only, ``client_cert`` the TLS peer's DER certificate), the certificate chain
        whose leaf is the one the client presented.
        """
        if form.get("grant_type") != TOKEN_EXCHANGE_GRANT:
            raise Rejected(400, "unsupported_grant_type", "Invalid grant_type.")
        if form.get("requested_token_type") != ACCESS_TOKEN_TYPE:
            raise Rejected(400, "invalid_request", "Invalid value for requested_token_type.")
        with self._lock:
            pool = self._pools.get(form.get("audience", ""))
        if pool is None:
            raise Rejected(
                400,
                "invalid_target",
                'The target service indicated by the "audience" parameters is invalid.',
            )
        if form.get("subject_token_type") != pool.subject_token_type:
            raise Rejected(400, "invalid_request", "Invalid value for subject_token_type.")
        token = form.get("subject_token", "")
        if not token:
            raise Rejected(400, "invalid_request", "Missing required parameter: subject_token")
        if pool.subject_token_type == AWS_TOKEN_TYPE:
            subject_name = self._aws.caller_identity(token, pool.audience)
        elif pool.subject_token_type == MTLS_TOKEN_TYPE:
            subject_name = _certificate_subject(token, client_cert)
        else:
            subject_name = self._jwt_subject(token, pool)
        if self._google.is_revoked((pool.audience,)):
            raise Rejected(400, "invalid_grant", "The workload identity pool is disabled.")
        subject = _Subject(pool.audience, subject_name, 0.0)
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


def _certificate_subject(token: str, client_cert: bytes | None) -> str:
    """The presented certificate's subject, if the subject token's leaf is that certificate."""
    if client_cert is None:
        raise Rejected(
            400,
            "invalid_request",
            "An mTLS subject token needs the mTLS endpoint (no client certificate).",
        )
    try:
        chain = json.loads(token)
    except ValueError:
        chain = None
    if (
        not isinstance(chain, list)
        or not chain
        or chain[0] != base64.b64encode(client_cert).decode()
    ):
        raise Rejected(400, "invalid_grant", "The subject token is not the presented certificate.")
    certificate = x509.load_der_x509_certificate(client_cert)
    names = certificate.subject.get_attributes_for_oid(x509.NameOID.COMMON_NAME)
    return str(names[0].value) if names else certificate.subject.rfc4514_string()

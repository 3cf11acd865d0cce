"""What the fake Google knows: accounts and keys, grants, issued tokens, revocations.

`FakeGoogle` is plain Python, with no HTTP in it (``_emulator_routes`` maps requests
onto it). It issues service-account keys and authorized users, checks the two grants as Google
does, issues access tokens (``ya29.emu-...``) and RS256 ID tokens, and remembers each token
for tokeninfo until it expires (`Expiring`). A
check that fails raises `Rejected`, whose
description is a fixed string: never a secret, assertion or token taken from the request.
Thread-safe.
"""

from __future__ import annotations

import itertools
import math
import secrets
import threading
from collections.abc import Callable, Iterable, Mapping, Sequence
from urllib.parse import quote

import jwt
from cryptography.hazmat.primitives.asymmetric import rsa

from goth_actors.testing._emulator_signing import self_signed_info
from goth_actors.testing._emulator_store import (
    DEFAULT_METADATA_EMAIL,
    DEFAULT_METADATA_SCOPES,
    DEFAULT_USER_SCOPES,
    ID_TOKEN_ISSUER,
    PROJECT_ID,
    TOKEN_PATHS,
    AuthorizedUser,
    Expiring,
    Issued,
    ServiceAccountRecord,
    b64_uint,
    info_value,
    numeric_id,
    pooled_key,
    seconds,
)

__all__ = ["FakeGoogle"]

_JWS = jwt.PyJWS()


class FakeGoogle:
    """Google's state and its answers, as Python calls; thread-safe.

    Args:
        base_url: Returns the emulator's base URL (known only once it listens).

    Attributes:
        token_lifetime: Seconds each new token lives.
        project_id: The project of issued accounts and of the metadata server.
        project_number: The metadata server's numeric project id.
        metadata_email: The metadata server's service account.
        metadata_scopes: Its scopes, when a token request names none.
        universe_domain: The universe of issued credentials and of the metadata server.
        require_quota_project: Whether the API refuses a person's token without
            ``x-goog-user-project``.
    """

    def __init__(self, base_url: Callable[[], str], clock: Callable[[], float]) -> None:
        self.clock = clock
        self._base_url = base_url
        self.token_lifetime = 3599.0
        self.project_id = PROJECT_ID
        self.project_number = str(100_000_000_000 + secrets.randbelow(900_000_000_000))
        self.metadata_email = DEFAULT_METADATA_EMAIL
        self.metadata_scopes: Sequence[str] = DEFAULT_METADATA_SCOPES
        self._metadata_client_id = numeric_id()
        self._lock = threading.Lock()
        self._serial = itertools.count(1)
        self._accounts: dict[str, ServiceAccountRecord] = {}  # by client_email
        self._users: dict[str, AuthorizedUser] = {}  # by client_id
        self._tokens: Expiring[Issued] = Expiring()
        self._revoked: set[str] = set()
        self._identities: set[str] = set()  # more names revoke() accepts (workload pools)
        self._signer: tuple[rsa.RSAPrivateKey, str] | None = None
        self.universe_domain = "googleapis.com"
        self.require_quota_project = True

    # --- credentials --------------------------------------------------------------------------

    def service_account(self, email: str | None) -> dict[str, str]:
        """Issues a key (for a new account, or for ``email``) and returns its key-file dict."""
        token_url = self._base_url() + TOKEN_PATHS[0]
        key, pem = pooled_key()
        key_id = secrets.token_hex(20)
        with self._lock:
            while email is None:
                serial = next(self._serial)
                candidate = f"emulator-sa-{serial}@{self.project_id}.iam.gserviceaccount.com"
                email = None if candidate in self._accounts else candidate
            account = self._accounts.get(email)
            if account is None:
                account = self._accounts[email] = ServiceAccountRecord(email, numeric_id())
            account.keys[key_id] = key.public_key()
        return {
            "type": "service_account",
            "project_id": self.project_id,
            "private_key_id": key_id,
            "private_key": pem,
            "client_email": email,
            "client_id": account.client_id,
            "auth_uri": "https://accounts.google.com/o/oauth2/auth",
            "token_uri": token_url,
            "auth_provider_x509_cert_url": "https://www.googleapis.com/oauth2/v1/certs",
            "client_x509_cert_url": (
                f"https://www.googleapis.com/robot/v1/metadata/x509/{quote(email, safe='')}"
            ),
            "universe_domain": self.universe_domain,
        }

    def authorized_user(
        self,
        scopes: Iterable[str] | None,
        email: str | None,
        *,
        quota_project: str | None = None,
        rapt: bool = False,
    ) -> dict[str, str]:
        """Issues a new OAuth client with one user's refresh token; returns its ADC dict."""
        token_url = self._base_url() + TOKEN_PATHS[0]
        serial = next(self._serial)
        user = AuthorizedUser(
            client_id=f"{numeric_id()[:12]}-emu{serial}.apps.googleusercontent.com",
            client_secret=f"GOCSPX-emu-{secrets.token_urlsafe(18)}",
            refresh_token=f"1//emu-{secrets.token_urlsafe(48)}",
            email=email or f"user-{serial}@example.com",
            user_id=numeric_id(),
            scopes=DEFAULT_USER_SCOPES if scopes is None else tuple(scopes),
            rapt_token=f"emu-rapt-{secrets.token_urlsafe(24)}" if rapt else None,
        )
        with self._lock:
            self._users[user.client_id] = user
        extra = {"quota_project_id": quota_project} if quota_project else {}
        if user.rapt_token is not None:
            extra["rapt_token"] = user.rapt_token
        return {
            "type": "authorized_user",
            "client_id": user.client_id,
            "client_secret": user.client_secret,
            "refresh_token": user.refresh_token,
            "token_uri": token_url,
            "universe_domain": self.universe_domain,
            **extra,
        }

    def revoke(self, identity: str) -> None:
        """Revokes a service account, key, OAuth client or refresh token issued here."""
        with self._lock:
            known = (
                identity in self._identities
                or identity in self._accounts
                or identity in self._users
                or any(identity in (a.client_id, *a.keys) for a in self._accounts.values())
                or any(identity == u.refresh_token for u in self._users.values())
            )
            if not known:
                # Never echo it: the identity may be a refresh token.
                raise ValueError(
                    "revoke() takes a client_email, private_key_id, client_id or refresh token "
                    "that this emulator issued"
                )
            self._revoked.add(identity)

    def register_identity(self, identity: str) -> None:
        """Makes ``identity`` (a workload identity pool's audience) revocable."""
        with self._lock:
            self._identities.add(identity)

    def is_revoked(self, identities: Iterable[str]) -> bool:
        """Whether any of ``identities`` has been revoked."""
        with self._lock:
            return not self._revoked.isdisjoint(identities)

    def active_account(self, email_or_id: str) -> tuple[str, str] | None:
        """``(email, client_id)`` of a service account issued here and not revoked, or None."""
        with self._lock:
            account = self._accounts.get(email_or_id) or next(
                (a for a in self._accounts.values() if a.client_id == email_or_id), None
            )
            if account is None or not self._revoked.isdisjoint((account.email, account.client_id)):
                return None
            return account.email, account.client_id

    def ensure_account(self, email: str) -> None:
        """Creates the service account ``email`` (without a key) unless it exists."""
        with self._lock:
            if email not in self._accounts:
                self._accounts[email] = ServiceAccountRecord(email, numeric_id())

    def token_info(self, token: str, kind: str | None = None) -> dict[str, str] | None:
        """What tokeninfo says about ``token``, or ``None`` if unknown, expired or revoked.

        Args:
            token: The access or ID token.
            kind: ``"access"`` or ``"id"`` to accept only that kind; ``None`` for either.
        """
        now = self.clock()
        with self._lock:
            issued = self._tokens.get(token)
            revoked = issued is not None and not issued.identities.isdisjoint(self._revoked)
            kid = self._signer[1] if self._signer else ""
        if issued is None and kind in (None, "access") and token.count(".") == 2:
            return self_signed_info(self, token, now)  # a service account's own JWT
        if issued is None or revoked or issued.expires <= now or kind not in (None, issued.kind):
            return None
        expires_in = str(max(0, int(issued.expires - now)))
        if issued.kind == "id":
            info = {name: info_value(value) for name, value in issued.claims.items()}
            return {**info, "alg": "RS256", "kid": kid, "typ": "JWT", "expires_in": expires_in}
        return {
            "azp": issued.client_id,
            "aud": issued.client_id,
            "sub": issued.subject,
            "scope": " ".join(issued.scopes),
            "exp": str(int(issued.expires)),
            "expires_in": expires_in,
            "email": issued.email,
            "email_verified": "true",
            "access_type": "online",
        }

    # --- grants -------------------------------------------------------------------------------

    def metadata_token(self, scopes: tuple[str, ...]) -> dict[str, object]:
        """The metadata server's token answer; ``scopes`` empty means its own."""
        email = self.metadata_email
        return self.issue_access(
            client_id=self._metadata_client_id,
            subject=self._metadata_client_id,
            email=email,
            scopes=scopes or tuple(self.metadata_scopes),
            identities=frozenset((email,)),
        )

    def metadata_identity(self, audience: str, *, full: bool) -> str:
        """The metadata server's ID token for ``audience``; ``full`` adds instance claims."""
        email = self.metadata_email
        instance = {"project_id": self.project_id, "zone": "emulator-zone-a"}
        return self.issue_id_token(
            audience=audience,
            azp=self._metadata_client_id,
            subject=self._metadata_client_id,
            email=email,
            identities=frozenset((email,)),
            extra={"google": {"compute_engine": instance}} if full else None,
        )

    def jwks(self) -> dict[str, object]:
        """The JWK set of the key that signs ID tokens."""
        key, kid = self.signing_key()
        numbers = key.public_key().public_numbers()
        jwk = {
            "kty": "RSA",
            "alg": "RS256",
            "use": "sig",
            "kid": kid,
            "n": b64_uint(numbers.n),
            "e": b64_uint(numbers.e),
        }
        return {"keys": [jwk]}

    # --- checking and issuing -----------------------------------------------------------------

    def issue_access(
        self,
        *,
        client_id: str,
        subject: str,
        email: str,
        scopes: tuple[str, ...],
        identities: frozenset[str],
        expires: float | None = None,
        user: bool = False,
    ) -> dict[str, object]:
        """Issues an access token; remembers it for tokeninfo. Returns the OAuth answer.

        ``expires`` (unix seconds) overrides now + `token_lifetime`; ``user`` marks a
        person's token (APIs want a quota project with it).
        """
        lifetime = self.token_lifetime
        token = f"ya29.emu-{secrets.token_urlsafe(32)}"
        now = self.clock()
        if expires is None:
            expires = now + lifetime
        else:
            lifetime = expires - now
        issued = Issued("access", client_id, subject, email, scopes, expires, identities, user=user)
        with self._lock:
            self._tokens.add(token, issued, expires, now)
        return {"access_token": token, "expires_in": seconds(lifetime), "token_type": "Bearer"}

    def issue_id_token(
        self,
        *,
        audience: str,
        azp: str,
        subject: str,
        email: str,
        identities: frozenset[str],
        extra: Mapping[str, object] | None = None,
        include_email: bool = True,
    ) -> str:
        """Issues an RS256 ID token; remembers it for tokeninfo."""
        key, kid = self.signing_key()
        issued_at = int(self.clock())
        expires = issued_at + math.ceil(self.token_lifetime)
        claims: dict[str, object] = {
            "iss": ID_TOKEN_ISSUER,
            "aud": audience,
            "azp": azp,
            "sub": subject,
            **({"email": email, "email_verified": True} if include_email else {}),
            "iat": issued_at,
            "exp": expires,
            **(extra or {}),
        }
        token = jwt.encode(claims, key, algorithm="RS256", headers={"kid": kid})
        issued = Issued("id", azp, subject, email, (), expires, identities, claims)
        with self._lock:
            self._tokens.add(token, issued, expires, self.clock())
        return token

    def user(self, client_id: str) -> tuple[AuthorizedUser | None, bool]:
        """The authorized user of OAuth client ``client_id``, and whether it is revoked."""
        with self._lock:
            user = self._users.get(client_id)
            revoked = user is not None and not self._revoked.isdisjoint(
                (user.client_id, user.refresh_token)
            )
        return user, revoked

    def base_url(self) -> str:
        """The emulator's base URL."""
        return self._base_url()

    def is_user_token(self, token: str) -> bool:
        """Whether ``token`` is an unexpired person's token issued here."""
        with self._lock:
            issued = self._tokens.get(token)
        return issued is not None and issued.user and issued.expires > self.clock()

    def account(self, email_or_id: str) -> ServiceAccountRecord | None:
        """The service account record (its keys), unless unknown or revoked."""
        with self._lock:
            account = self._accounts.get(email_or_id) or next(
                (a for a in self._accounts.values() if a.client_id == email_or_id), None
            )
            if account is None or not self._revoked.isdisjoint((account.email, account.client_id)):
                return None
            return account

    def key_revoked(self, key_id: str) -> bool:
        """Whether the key ``key_id`` was revoked."""
        with self._lock:
            return key_id in self._revoked

    def system_key(self, account: ServiceAccountRecord) -> tuple[rsa.RSAPrivateKey, str]:
        """The account's Google-managed key (what signBlob signs with), made on first use."""
        with self._lock:
            if account.system_key is None:
                account.system_key = (pooled_key()[0], secrets.token_hex(20))
            return account.system_key

    def signing_key(self) -> tuple[rsa.RSAPrivateKey, str]:
        """The key (and its ``kid``) that signs ID tokens; see `jwks`."""
        with self._lock:
            if self._signer is None:
                self._signer = (pooled_key()[0], secrets.token_hex(20))
            return self._signer

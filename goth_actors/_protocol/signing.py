"""Signing bytes as a service account: locally with its key, or through IAM's ``signBlob``.

A service account's key signs locally (RSASSA-PKCS1-v1_5 with SHA-256, what ``signBlob``
does). Any other source signs as a named service account through IAM Credentials'
``signBlob``, with a token that may act for it: an impersonated source's caller's token (as
google-auth), workload identity's federated token (the identity that impersonates the
account), or the source's own token (the metadata server's account signing as itself, a user
with the Token Creator role). This is what ``generate_signed_url`` in google-cloud-storage
needs, through `goth_actors.integrations.google_auth.Credentials`.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from urllib.parse import quote

from goth_actors._base import ConfigError
from goth_actors._protocol.answers import unusable_answer
from goth_actors._protocol.endpoints import check_explicit_url, derived_url
from goth_actors._protocol.http_client import DEFAULT_TIMEOUT, HttpClient, default_http_client
from goth_actors._protocol.iam import RESOURCE_PREFIX, check_account, json_post, split_generate_url
from goth_actors._protocol.impersonated import Impersonated
from goth_actors._protocol.metadata import Metadata
from goth_actors._protocol.redact import without_query
from goth_actors._protocol.service_account import ServiceAccount
from goth_actors._protocol.token import Exchanger, Source, Token
from goth_actors._protocol.workload_identity import WorkloadIdentity

__all__ = ["Signer", "signer"]

_TOKEN_MARGIN = 300.0  # a cached caller token is replaced this long before it expires


@dataclass(frozen=True, eq=False, repr=False)
class Signer:
    """Signs bytes as one service account (make one with ``goth_actors.signer``).

    [`goth_actors.signer`][goth_actors.signer] picks the way to sign for a source.

    Attributes:
        source: The source whose credentials sign (or get the token that signs).
        local: Whether the source's own key signs (no network), not IAM's ``signBlob``.
        uses_source_token: Whether ``signBlob`` is called with the source's own token (so a
            token server's cached token will do), not with a token it fetches itself.
    """

    source: Source
    email: str | None
    local: bool
    uses_source_token: bool
    iam_url: str
    delegates: tuple[str, ...] = ()
    _caller: Callable[[Exchanger], Token] | None = field(default=None, repr=False)
    _cached: list[Token | None] = field(default_factory=lambda: [None], repr=False)

    def __repr__(self) -> str:
        how = "local key" if self.local else f"signBlob at {self.iam_url!r}"
        return f"Signer(email={self.email or 'the metadata server account'!r}, {how})"

    def signer_email(
        self,
        *,
        http_client: HttpClient | None = None,
        timeout: float = DEFAULT_TIMEOUT,
        environ: Mapping[str, str] | None = None,
    ) -> str:
        """The signing service account's email (the metadata server is asked for its own)."""
        if self.email is not None:
            return self.email
        assert isinstance(self.source, Metadata)
        exchanger = _exchanger(http_client, timeout, environ)
        path = f"instance/service-accounts/{quote(self.source.account, safe='@')}/email"
        email = exchanger.text(self.source.value_exchange(path, environ)).strip()
        return check_account(email, "instance/service-accounts/.../email")

    def sign(
        self,
        data: bytes,
        *,
        token: Token | None = None,
        http_client: HttpClient | None = None,
        timeout: float = DEFAULT_TIMEOUT,
        environ: Mapping[str, str] | None = None,
    ) -> bytes:
        """``data`` signed RS256-style (RSASSA-PKCS1-v1_5, SHA-256) as the service account.

        Args:
            data: The bytes to sign.
            token: The source's current token, when `uses_source_token` (a token
                server's, to save an exchange). Default: one is fetched.
            http_client: The HTTP client. Default: the shared one.
            timeout: Seconds all of it may take (token and ``signBlob``).
            environ: Environment to read instead of ``os.environ``.

        Raises:
            TokenEndpointError, TransportError: A token or ``signBlob`` failed.
        """
        if not isinstance(data, bytes | bytearray):
            raise TypeError(f"data must be bytes, got {type(data).__name__}")
        if self.local:
            assert isinstance(self.source, ServiceAccount)
            return self.source.sign_bytes(bytes(data))
        exchanger = _exchanger(http_client, timeout, environ)
        email = self.email or self.signer_email(
            http_client=http_client, timeout=exchanger.time_left("signBlob"), environ=environ
        )
        caller = token if token is not None and self.uses_source_token else self._token(exchanger)
        url = f"{self.iam_url}/v1/{RESOURCE_PREFIX}{quote(email, safe='@')}:signBlob"
        body: dict[str, object] = {"payload": base64.b64encode(bytes(data)).decode("ascii")}
        if self.delegates:
            body["delegates"] = [RESOURCE_PREFIX + d for d in self.delegates]
        answer = exchanger.json(json_post(url, f"{caller.type} {caller.token}", body, ()))
        signed = answer.get("signedBlob")
        decoded: bytes | None = None
        if isinstance(signed, str):
            with contextlib.suppress(binascii.Error, ValueError):
                decoded = base64.b64decode(signed, validate=True)
        if not decoded:
            raise unusable_answer(without_query(url), "answered without a signedBlob", answer)
        return decoded

    def _token(self, exchanger: Exchanger) -> Token:
        cached = self._cached[0]
        if cached is not None and cached.expires - _TOKEN_MARGIN > time.time():
            return cached
        caller = self._caller or self.source.fetch_token
        token = caller(exchanger)
        self._cached[0] = token
        return token


def _exchanger(
    http_client: HttpClient | None, timeout: float, environ: Mapping[str, str] | None
) -> Exchanger:
    client = default_http_client if http_client is None else http_client
    return Exchanger(client, timeout=timeout, clock=time.time, environ=environ)


def signer(
    source: Source,
    *,
    email: str | None = None,
    iam_url: str | None = None,
    delegates: Sequence[str] = (),
) -> Signer:
    """A [`Signer`][goth_actors.Signer] for ``source``: who it signs as, and how.

    - A [`ServiceAccount`][goth_actors.ServiceAccount] signs locally as itself.
    - An [`Impersonated`][goth_actors.Impersonated] signs as its target through ``signBlob``, with
      its source's token and its delegates (as google-auth's impersonated credentials).
    - A [`WorkloadIdentity`][goth_actors.WorkloadIdentity] that impersonates a service account signs
      as that account, with the federated (STS) token.
    - A [`Metadata`][goth_actors.Metadata] source signs as the metadata server's account, with its
      own token.
    - Any other source signs as ``email``, which it must then name, with its own token.

    Args:
        source: The source.
        email: Sign as this service account instead (through ``signBlob``).
        iam_url: IAM Credentials' base URL. Default: the source's (an impersonated source's
            ``url``, a workload identity's impersonation URL), else
            ``https://iamcredentials.`` + the universe domain.
        delegates: The delegation chain to the signing account (an impersonated source's
            own by default).

    Raises:
        ConfigError: The source cannot sign as anyone without ``email``, or ``email`` or
            ``iam_url`` is malformed.

    Examples:
        ```python
        signature = goth_actors.signer(source).sign(b"data")
        ```
    """
    if email is not None:
        email = check_account(email, "email")
    url = None if iam_url is None else check_explicit_url(iam_url, "iam_url").rstrip("/")
    chain = tuple(delegates)
    if isinstance(source, ServiceAccount) and email in (None, source.client_email):
        return Signer(source, source.client_email, True, False, url or "")
    if email is None and isinstance(source, Impersonated):
        inner = source.source
        return Signer(
            source,
            source.target_principal,
            False,
            False,
            url or source.iam_url,
            chain or tuple(source.delegates),
            inner.fetch_token,
        )
    if email is None and isinstance(source, WorkloadIdentity):
        impersonated = source.service_account_email
        if impersonated is not None:
            impersonation = str(source.credentials["service_account_impersonation_url"])
            own = split_generate_url(impersonation, "service_account_impersonation_url")[0]
            return Signer(
                source, impersonated, False, False, url or own, chain, source.federated_token
            )
    if email is None and not isinstance(source, Metadata):
        raise ConfigError(
            "email",
            f"is needed: a {type(source).__name__} source signs only as a service account "
            "you name (through IAM signBlob, with the Service Account Token Creator role)",
        )
    base = url or derived_url(source, "iamcredentials", "", "iam_url")
    return Signer(source, email, False, True, base, chain)

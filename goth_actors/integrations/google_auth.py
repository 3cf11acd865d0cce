"""``Credentials``: google-auth credentials whose tokens come from a goth_actors token server.

Needs the ``google-auth`` extra: ``pip install goth-actors[google-auth]``.

Hand them to any google-cloud-* client (``storage.Client(credentials=...)``), to google-auth's
``AuthorizedSession`` or ``AuthorizedHttp``, or as the source of google-auth's impersonated
credentials: every one of them then shares the server's token, refreshed ahead of expiry by
the server, with no lock on the hot path and one exchange however many threads need a token.

How google-auth's machinery maps onto the server:

- ``token`` and ``expiry`` are read live from the server, without a lock: the token
  [`goth_actors.fetch`][goth_actors.fetch] would hand out right now (``None`` if there is none yet
  or it is within 10 seconds of expiry), and its expiry as a naive UTC datetime, as google-auth
  expects.
- ``token_state`` is ``FRESH`` or ``INVALID``, never ``STALE``: the server refreshes on its own
  before a token goes stale, so google-auth never needs to start a refresh thread of its own.
  ``valid`` and ``expired`` agree with it.
- ``refresh(request)`` takes a token from the server. If the server still holds the token this
  thread last had from these credentials, it is the token an API just refused (that is why
  ``AuthorizedSession`` refreshes after a 401), so the server is asked for one forced refresh,
  shared by every thread that asks for the same
  ([`refresh_rejected`][goth_actors.integrations.refresh_rejected]). Otherwise the server's current
  token is the answer, and no exchange is made. The ``request`` is not used: the server has its own
  HTTP client.
- ``before_request`` applies the header from one read of the server's token, waiting for one
  (up to ``timeout``) only when there is none.

- ``quota_project_id`` is the server's source's (sent as ``x-goog-user-project``), unless
  given; ``universe_domain`` the source's (the metadata server is asked once when it is the
  source); ``requires_scopes`` is ``False`` and ``with_scopes`` keeps the server's scopes (the
  server's source fixed them); ``with_universe_domain`` accepts only the source's universe.
- Signing (google-auth's ``Signing``: ``sign_bytes``, ``signer_email``, ``signer``) is the
  source's ([`goth_actors.signer`][goth_actors.signer]): a service-account key signs locally, any
  other source through IAM's ``signBlob``. So ``google-cloud-storage``'s ``generate_signed_url``
  works.

Errors reach google-auth as ``google.auth.exceptions.RefreshError``, with ``retryable`` and the
goth_actors error as ``__cause__``.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Hashable, Mapping, MutableMapping
from datetime import UTC, datetime
from typing import Any, cast

try:
    from google.auth import credentials as google_credentials
    from google.auth import crypt as google_crypt
    from google.auth import exceptions as google_exceptions
except ImportError as error:  # pragma: no cover - exercised with google-auth hidden
    raise ImportError(
        "goth_actors.integrations.google_auth needs google-auth: "
        "pip install goth-actors[google-auth]"
    ) from error

from goth_actors import (
    FetchTimeout,
    GothError,
    ServerNotFound,
    ServerStatus,
    Signer,
    Source,
    Token,
    TokenError,
    cached,
    fetch,
    signer,
    status,
    universe_domain,
)
from goth_actors.integrations import _check_timeout, refresh_rejected

__all__ = ["Credentials"]


_FROM_SERVER: Any = object()  # quota_project_id not given: the server's source's


class Credentials(google_credentials.CredentialsWithQuotaProject, google_credentials.Signing):
    """google-auth credentials that take their tokens from a goth_actors token server.

    Thread-safe: share one instance between clients and threads.

    Args:
        name: The token server's name, as given to
            [`goth_actors.start_link`][goth_actors.start_link].
        timeout: Seconds to wait for a token when none is cached, and for a refresh.
            Default 5.
        quota_project_id: The project to bill (sent as ``x-goog-user-project``). Default:
            the server's source's (``None`` for no header).
        signer: What signs bytes ([`goth_actors.signer`][goth_actors.signer]). Default: the server's
            source's signer, made at the first signature and again whenever the server under
            ``name`` has another source.

    Raises:
        ConfigError: ``timeout`` is not a positive number of seconds.

    Examples:
        ```python
        import goth_actors
        from google.cloud import storage
        goth_actors.start_link(name="storage", source=goth_actors.default_source())
        client = storage.Client(project="p", credentials=Credentials("storage"))
        from google.auth.transport.requests import AuthorizedSession
        AuthorizedSession(Credentials("storage")).get(url)
        ```
        <Response [200]>
    """

    def __init__(
        self,
        name: Hashable,
        *,
        timeout: float = 5.0,
        quota_project_id: str | None = _FROM_SERVER,
        signer: Signer | None = None,
    ) -> None:
        self._name = name
        self._timeout = _check_timeout(timeout)
        # .token: the token this thread last had from us; .at: time.monotonic() then
        self._seen = threading.local()
        super().__init__()  # type: ignore[no-untyped-call]  # google-auth is unannotated
        self._quota_project_id = quota_project_id
        self._signer = signer
        # The signer made from the server's source, with that source: a server restarted under
        # the same name with another source gets a signer of its own.
        self._made: tuple[Source, Signer] | None = None
        self._universe: tuple[Source, str] | None = None  # the source's, with it

    def __repr__(self) -> str:
        return f"Credentials({self._name!r}, timeout={self._timeout!r})"

    @property
    def name(self) -> Hashable:
        """The token server's name."""
        return self._name

    def _remember(self, token: str) -> None:
        """Notes the token this thread is about to use, and when (for a later 401)."""
        self._seen.token = token
        self._seen.at = time.monotonic()

    # --------------------------------------------------------------------- the server's token

    def _status(self) -> ServerStatus | None:
        try:
            return status(self._name)
        except ServerNotFound:
            return None

    @property
    def token(self) -> str | None:
        """The server's current token, or ``None`` when it has none to hand out right now."""
        token = cached(self._name)
        if token is None:
            return None
        self._remember(token.token)
        return token.token

    @token.setter
    def token(self, value: object) -> None:
        # google-auth's constructor sets token = None; the server owns the real one.
        if value is not None:
            raise AttributeError("the token comes from the goth_actors server: it cannot be set")

    @property
    def expiry(self) -> datetime | None:
        """When the server's token expires, as a naive UTC datetime; ``None`` without one."""
        current = self._status()
        if current is None or current.expires is None:
            return None
        return datetime.fromtimestamp(current.expires, UTC).replace(tzinfo=None)

    @expiry.setter
    def expiry(self, value: object) -> None:
        if value is not None:
            raise AttributeError("the expiry comes from the goth_actors server: it cannot be set")

    @property
    def expired(self) -> bool:
        """Whether the server's token is too close to expiry to use (False without a token)."""
        current = self._status()
        return current is not None and current.expires is not None and not current.has_valid_token

    @property
    def valid(self) -> bool:
        """Whether the server has a token to hand out right now."""
        return cached(self._name) is not None

    @property
    def token_state(self) -> google_credentials.TokenState:
        """``FRESH`` when the server has a token to hand out, else ``INVALID``; never ``STALE``."""
        if cached(self._name) is None:
            return google_credentials.TokenState.INVALID
        return google_credentials.TokenState.FRESH

    # ------------------------------------------------------------------------ google-auth API

    def refresh(self, request: object) -> None:  # noqa: ARG002
        """Takes a token from the server: forced only if it is the one this thread already had.

        Args:
            request: google-auth's transport request; unused (the server has its own client).

        Raises:
            google.auth.exceptions.RefreshError: No token: the server failed, timed out, or
                does not exist.
        """
        seen = getattr(self._seen, "token", None)
        try:
            if seen is None:
                token = fetch(self._name, self._timeout)
            else:
                sent_at = getattr(self._seen, "at", None)
                token = refresh_rejected(self._name, seen, timeout=self._timeout, sent_at=sent_at)
        except GothError as error:
            raise _refresh_error(self._name, error) from error
        self._remember(token.token)

    def before_request(  # google-auth's signature
        self,
        request: object,  # noqa: ARG002
        method: str,  # noqa: ARG002
        url: str,  # noqa: ARG002
        headers: MutableMapping[str, str],
    ) -> None:
        """Sets ``authorization`` (and ``x-goog-user-project``) from the server's token.

        Raises:
            google.auth.exceptions.RefreshError: No token within ``timeout``.
        """
        token = self._current()
        self._remember(token.token)
        self.apply(headers, token=token.token)  # type: ignore[no-untyped-call]

    def with_quota_project(self, quota_project_id: str | None) -> Credentials:
        """A copy that bills ``quota_project_id``, on the same server.

        Examples:
            >>> billed = Credentials("storage").with_quota_project("my-project")
        """
        return type(self)(
            self._name,
            timeout=self._timeout,
            quota_project_id=quota_project_id,
            signer=self._signer,
        )

    @property
    def quota_project_id(self) -> str | None:
        """The project billed: the one given, else the server's source's quota project."""
        if self._quota_project_id is not _FROM_SERVER:
            return cast(str | None, self._quota_project_id)
        current = self._status()
        return None if current is None else current.quota_project_id

    @property
    def universe_domain(self) -> str:
        """The universe of the server's tokens (the source's; the metadata server's own).

        ``googleapis.com`` while no server has the name; the server's source's, asked once
        per source (the metadata server's is a request), from then on.
        """
        current = self._status()
        source = None if current is None else current.source
        if source is None:
            return "googleapis.com"  # not kept: the server may start later
        known = self._universe
        if known is not None and known[0] is source:
            return known[1]
        found = universe_domain(source)
        self._universe = (source, found)
        return found

    @property
    def requires_scopes(self) -> bool:
        """``False``: the server's source has its scopes."""
        return False

    def with_scopes(self, scopes: object, default_scopes: object = None) -> Credentials:  # noqa: ARG002
        """These credentials: the server's source fixed the scopes (google-cloud asks anyway)."""
        return self

    def with_universe_domain(self, universe_domain: str) -> Credentials:
        """These credentials, if ``universe_domain`` is the server's; else ``ValueError``."""
        if universe_domain != self.universe_domain:
            raise ValueError(
                f"the goth_actors token server {self._name!r} has tokens for universe "
                f"{self.universe_domain!r}, not {universe_domain!r}: start a server with a "
                "source for that universe"
            )
        return self

    # ----------------------------------------------------------------------- google-auth Signing

    @property
    def signer(self) -> _GoogleSigner:
        """google-auth's ``Signer`` view of [`goth_actors.signer`][goth_actors.signer]'s."""
        return _GoogleSigner(self)

    @property
    def signer_email(self) -> str:
        """The email of the service account that signs."""
        return self._goth_signer().signer_email(timeout=self._timeout)

    def sign_bytes(self, message: bytes | str) -> bytes:
        """``message`` signed (RSASSA-PKCS1-v1_5, SHA-256) as ``signer_email``.

        Raises:
            google.auth.exceptions.TransportError: The signature could not be made.
        """
        data = message.encode("utf-8") if isinstance(message, str) else message
        chosen = self._goth_signer()
        try:
            token = cached(self._name) if chosen.uses_source_token else None
            return chosen.sign(data, token=token, timeout=self._timeout)
        except GothError as error:
            raise google_exceptions.TransportError(  # type: ignore[no-untyped-call]
                f"goth_actors token server {self._name!r} could not sign: {error}"
            ) from error

    def _goth_signer(self) -> Signer:
        if self._signer is not None:
            return self._signer
        current = self._status()
        if current is None or current.source is None:
            raise google_exceptions.TransportError(  # type: ignore[no-untyped-call]
                f"no goth_actors token server is named {self._name!r}"
            )
        made = self._made
        if made is not None and made[0] is current.source:
            return made[1]
        try:
            chosen = signer(current.source)
        except GothError as error:
            raise google_exceptions.TransportError(  # type: ignore[no-untyped-call]
                f"goth_actors token server {self._name!r} cannot sign: {error}"
            ) from error
        self._made = (current.source, chosen)
        return chosen

    def get_cred_info(self) -> Mapping[str, str]:
        """What google-auth adds to its error messages about these credentials."""
        return {
            "credential_source": f"goth_actors token server {self._name!r}",
            "credential_type": "goth_actors token server",
        }

    # ------------------------------------------------------------------------------ machinery

    def _current(self) -> Token:
        try:
            return fetch(self._name, self._timeout)
        except GothError as error:
            raise _refresh_error(self._name, error) from error

    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        state.pop("_seen", None)  # per thread, and a thread-local cannot be pickled
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._seen = threading.local()


class _GoogleSigner(google_crypt.Signer):
    """google-auth's ``Signer`` over a `Credentials`' signing."""

    def __init__(self, credentials: Credentials) -> None:
        self._credentials = credentials

    @property
    def key_id(self) -> None:
        """``None``: IAM chooses the key of a ``signBlob``."""
        return None

    def sign(self, message: bytes | str) -> bytes:
        """``message`` signed as the credentials' signer."""
        return self._credentials.sign_bytes(message)


def _refresh_error(name: Hashable, error: GothError) -> google_exceptions.RefreshError:
    retryable = isinstance(error, FetchTimeout) or (
        isinstance(error, TokenError) and error.retryable
    )
    message = f"goth_actors token server {name!r}: {type(error).__name__}: {error}"
    return google_exceptions.RefreshError(message, retryable=retryable)  # type: ignore[no-untyped-call]

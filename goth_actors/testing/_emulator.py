"""GoogleEmulator: a fake Google (token endpoint, metadata server, tokeninfo, STS, IAM) for tests.

The emulator is six pieces: ``_emulator_http`` (sockets, threads, HTTP framing),
``_emulator_google`` (what Google knows: accounts, grants, tokens), ``_emulator_federation``
(workload identity pools, STS, IAM Credentials), ``_emulator_routes`` (which path answers
what), ``_emulator_faults`` (planned misbehaviour) and this module, the public class with its
test controls.
"""

from __future__ import annotations

import json
import logging
import math
import os
import threading
import time as _time
from collections import Counter, deque
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import timedelta
from pathlib import Path
from types import TracebackType
from typing import Any, Literal, Self

from goth_actors.otp import FakeTime
from goth_actors.testing import _emulator_routes as routes
from goth_actors.testing._emulator_faults import (
    Armed,
    Canned,
    Failure,
    Fault,
    Reset,
    check_count,
    check_endpoint,
    format_seconds,
)
from goth_actors.testing._emulator_federation import (
    DEFAULT_SUBJECT,
    JWT_TOKEN_TYPE,
    STS_PATH,
    SUBJECT_PATH,
    FakeFederation,
    check_iam_settings,
)
from goth_actors.testing._emulator_google import FakeGoogle
from goth_actors.testing._emulator_http import (
    HttpServer,
    RecordedRequest,
    Response,
    for_record,
)

__all__ = ["GoogleEmulator"]

_log = logging.getLogger("goth_actors.testing")


class GoogleEmulator:
    """A real HTTP server on 127.0.0.1 that plays Google's token endpoint and metadata server.

    Speaks the protocol closely enough for google-auth itself: service-account (JWT-bearer)
    and refresh-token grants at :attr:`token_url`, the metadata server at
    :attr:`metadata_host`, tokeninfo at :attr:`tokeninfo_url` and ID-token keys at
    :attr:`certs_url`; for workload identity federation, the Security Token Service at
    :attr:`sts_url` and a CI-style subject-token URL (see :meth:`workload_identity`); and IAM
    Credentials' ``generateAccessToken`` / ``generateIdToken`` under :attr:`iam_url`. Every
    control method is thread-safe. Use it as a context manager, or
    call :meth:`start` and :meth:`close`.

    Memory stays bounded however long it runs: it records the last ``max_recorded``
    requests, each with at most the first 64 KiB of its body, and forgets tokens and
    subject tokens once they expire (tokeninfo, STS and IAM refuse them then anyway).

    Args:
        host: Address to listen on. Defaults to ``"127.0.0.1"``.
        port: Port to listen on; ``0`` (the default) picks a free one.
        token_lifetime: Seconds each issued token lives (``expires_in``). Defaults to
            ``3599.0``, as Google.
        max_recorded: How many requests :attr:`requests` keeps; older ones are dropped
            (:meth:`request_count` still counts them). Defaults to ``10_000``; ``0`` keeps
            none.
        time: A :class:`~goth_actors.otp.FakeTime` whose wall clock the emulator issues and
            checks tokens and JWTs by, so that it agrees with token servers on the same fake
            time (a moved clock expires tokens here as it does there). Default: real time.

    Attributes:
        metadata_email: The metadata server's service account. Defaults to
            ``"default-sa@emulator-project.iam.gserviceaccount.com"``.
        metadata_scopes: Its scopes, used when a token request names none. Defaults to
            ``["https://www.googleapis.com/auth/cloud-platform"]``.
        project_id: What ``project/project-id`` answers. Defaults to ``"emulator-project"``.

    Example:
        >>> import requests
        >>> with GoogleEmulator() as emu:
        ...     user = emu.authorized_user()
        ...     form = {"grant_type": "refresh_token", **user}
        ...     token = requests.post(emu.token_url, data=form).json()["access_token"]
        ...     emu.token_info(token)["email"]
        'user-1@example.com'
    """

    def __init__(
        self,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        token_lifetime: float = 3599.0,
        max_recorded: int = 10_000,
        time: FakeTime | None = None,
    ) -> None:
        if isinstance(max_recorded, bool) or not isinstance(max_recorded, int) or max_recorded < 0:
            raise ValueError(f"max_recorded must be an int >= 0, not {max_recorded!r}")
        self._host = host
        self._lock = threading.Lock()
        self._recorded = threading.Condition(self._lock)
        self._requests: deque[RecordedRequest] = deque(maxlen=max_recorded)
        self._counts: Counter[str] = Counter()  # since the last clear, by endpoint and "any"
        self._faults: list[Armed] = []
        self._delay = 0.0
        if time is not None and not isinstance(time, FakeTime):
            raise TypeError(f"time must be a FakeTime or None, not {type(time).__name__}")
        self._google = FakeGoogle(lambda: self.url, _time.time if time is None else time.time)
        self._federation = FakeFederation(self._google, lambda: self.url)
        self._server = HttpServer(host, port, self._respond, routes.endpoint_of)
        self.token_lifetime = token_lifetime

    # --- lifecycle ----------------------------------------------------------------------------

    def start(self) -> Self:
        """Starts listening; returns the emulator. Raises ``RuntimeError`` if called twice.

        Example:
            >>> emu = GoogleEmulator().start()
            >>> emu.url.startswith("http://127.0.0.1:")
            True
            >>> emu.close()
        """
        self._server.start()
        return self

    def close(self) -> None:
        """Stops the server at once; idempotent.

        New connections are refused, delayed answers wake, and every open connection is shut
        down: a request still being read or answered (even to a client that never reads) is
        cut off, so its client sees the connection close. ``close()`` then waits, at most one
        second in all, for the connection threads to end; in practice they end at once. A
        thread still busy after that (only a blocking responder could keep one) is a daemon
        and ends by itself. Recorded requests and issued tokens stay readable.

        Example:
            >>> emu = GoogleEmulator().start()
            >>> emu.close()
            >>> emu.close()
        """
        self._server.close()

    def __enter__(self) -> Self:
        if not self.is_started:
            self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        where = self.url if self.is_started else "not started"
        return f"<GoogleEmulator {where}{' (down)' if self.is_started and not self.is_up else ''}>"

    @property
    def is_started(self) -> bool:
        """Whether :meth:`start` has been called.

        Example:
            >>> GoogleEmulator().is_started
            False
        """
        return self._server.is_started

    @property
    def is_up(self) -> bool:
        """Whether the emulator is accepting connections (started, not down, not closed).

        Example:
            >>> with GoogleEmulator() as emu:
            ...     emu.down()
            ...     emu.is_up
            False
        """
        return self._server.is_up

    # --- addresses ----------------------------------------------------------------------------

    @property
    def url(self) -> str:
        """Base URL, ``http://127.0.0.1:PORT``. Raises ``RuntimeError`` before :meth:`start`.

        Example:
            >>> with GoogleEmulator() as emu:
            ...     emu.url == f"http://{emu.metadata_host}"
            True
        """
        host = f"[{self._host}]" if ":" in self._host else self._host
        return f"http://{host}:{self._server.port}"

    @property
    def token_url(self) -> str:
        """The token endpoint, ``{url}/token`` (``{url}/oauth2/v4/token`` works too).

        Example:
            >>> with GoogleEmulator() as emu:
            ...     emu.service_account()["token_uri"] == emu.token_url
            True
        """
        return f"{self.url}/token"

    @property
    def metadata_url(self) -> str:
        """The metadata server's base URL, with ``http://`` and without ``/computeMetadata/v1``.

        This is the form of Goth's metadata ``url`` option. For ``GCE_METADATA_HOST`` (and
        ``GCE_METADATA_IP``), which take no scheme, use :attr:`metadata_host`.

        Example:
            >>> import requests
            >>> with GoogleEmulator() as emu:
            ...     requests.get(
            ...         f"{emu.metadata_url}/computeMetadata/v1/project/project-id",
            ...         headers={"Metadata-Flavor": "Google"},
            ...     ).text
            'emulator-project'
        """
        return self.url

    @property
    def metadata_host(self) -> str:
        """``127.0.0.1:PORT``: the value for ``GCE_METADATA_HOST`` and ``GCE_METADATA_IP``.

        Example:
            ```python
            with GoogleEmulator() as emu:
                monkeypatch.setenv("GCE_METADATA_HOST", emu.metadata_host)
            ```
        """
        return self.url.removeprefix("http://")

    @property
    def tokeninfo_url(self) -> str:
        """``{url}/oauth2/v3/tokeninfo``; takes ``access_token=`` or ``id_token=``.

        Example:
            >>> import requests
            >>> with GoogleEmulator() as emu:
            ...     requests.get(emu.tokeninfo_url, params={"access_token": "nope"}).status_code
            400
        """
        return f"{self.url}/oauth2/v3/tokeninfo"

    @property
    def certs_url(self) -> str:
        """``{url}/oauth2/v3/certs``: the JWKS that verifies the emulator's ID tokens.

        Example:
            ```python
            id_token.verify_token(token, request, audience=aud, certs_url=emu.certs_url)
            ```
        """
        return f"{self.url}/oauth2/v3/certs"

    @property
    def sts_url(self) -> str:
        """``{url}/v1/token``: the Security Token Service (the ``token_url`` of workload identity).

        Example:
            >>> with GoogleEmulator() as emu:
            ...     emu.workload_identity()["token_url"] == emu.sts_url
            True
        """
        return f"{self.url}{STS_PATH}"

    @property
    def iam_url(self) -> str:
        """IAM Credentials' base URL (the emulator's :attr:`url`), for ``Impersonated(url=...)``.

        IAM answers ``POST {iam_url}/v1/projects/-/serviceAccounts/{email}:generateAccessToken``
        and ``...:generateIdToken``. The caller's bearer token must be an unexpired access
        token the emulator issued; it may impersonate any service account the emulator
        issued, unless that account is revoked.

        Example:
            ```python
            source = Impersonated(caller, target, url=emu.iam_url)
            ```
        """
        return self.url

    # --- settings -----------------------------------------------------------------------------

    @property
    def token_lifetime(self) -> float:
        """Seconds each token issued from now on lives.

        Sent as ``expires_in`` (an int when whole). ID tokens get ``iat`` in whole seconds and
        ``exp = iat + ceil(token_lifetime)``.

        Example:
            >>> emu = GoogleEmulator(token_lifetime=0.05)
            >>> emu.token_lifetime = 60
        """
        return self._google.token_lifetime

    @token_lifetime.setter
    def token_lifetime(self, seconds: float) -> None:
        if isinstance(seconds, bool) or not (math.isfinite(seconds) and seconds > 0):
            raise ValueError(
                f"token_lifetime must be a positive, finite number of seconds, not {seconds!r}"
            )
        self._google.token_lifetime = float(seconds)

    @property
    def metadata_email(self) -> str:
        """The metadata server's service account (its ``default``).

        Example:
            >>> emu = GoogleEmulator()
            >>> emu.metadata_email = "runner@my-project.iam.gserviceaccount.com"
        """
        return self._google.metadata_email

    @metadata_email.setter
    def metadata_email(self, email: str) -> None:
        self._google.metadata_email = email

    @property
    def metadata_scopes(self) -> Sequence[str]:
        """The metadata service account's scopes (a space-separated str is split).

        Example:
            >>> emu = GoogleEmulator()
            >>> emu.metadata_scopes = ["https://www.googleapis.com/auth/pubsub"]
        """
        return tuple(self._google.metadata_scopes)

    @metadata_scopes.setter
    def metadata_scopes(self, scopes: Iterable[str]) -> None:
        self._google.metadata_scopes = (
            tuple(scopes.split()) if isinstance(scopes, str) else tuple(scopes)
        )

    @property
    def project_id(self) -> str:
        """The project of issued service accounts and of ``project/project-id``.

        Example:
            >>> emu = GoogleEmulator()
            >>> emu.project_id = "my-project"
        """
        return self._google.project_id

    @project_id.setter
    def project_id(self, project_id: str) -> None:
        self._google.project_id = project_id

    @property
    def iam_max_lifetime(self) -> float:
        """The longest ``lifetime`` IAM's generateAccessToken grants; longer is a 400.

        Defaults to 3600 s, as Google; up to 43200 s where an organization policy allows it.
        The token issued lives ``min(lifetime, token_lifetime)``.

        Example:
            >>> emu = GoogleEmulator()
            >>> emu.iam_max_lifetime = 43200
        """
        return self._federation.iam_max_lifetime

    @iam_max_lifetime.setter
    def iam_max_lifetime(self, seconds: float) -> None:
        check_iam_settings(seconds, self.expire_time_offset, self.expire_time_digits)
        self._federation.iam_max_lifetime = float(seconds)

    @property
    def expire_time_offset(self) -> timedelta:
        """The UTC offset of IAM's ``expireTime``: zero (the default, as Google) sends ``Z``.

        Any other whole-minute offset under a day sends the same instant with that offset,
        ``2024-05-01T14:00:00+02:00``, so a client that only handles ``Z`` shows itself.

        Example:
            >>> from datetime import timedelta
            >>> emu = GoogleEmulator()
            >>> emu.expire_time_offset = timedelta(hours=2)
        """
        return self._federation.expire_time_offset

    @expire_time_offset.setter
    def expire_time_offset(self, offset: timedelta) -> None:
        check_iam_settings(self.iam_max_lifetime, offset, self.expire_time_digits)
        self._federation.expire_time_offset = offset

    @property
    def expire_time_digits(self) -> int:
        """Fractional-second digits of IAM's ``expireTime``, 0 (the default) to 9.

        The time is rounded up at that precision, and the token lives until then.

        Example:
            >>> emu = GoogleEmulator()
            >>> emu.expire_time_digits = 9  # ...T12:00:00.123456789Z
        """
        return self._federation.expire_time_digits

    @expire_time_digits.setter
    def expire_time_digits(self, digits: int) -> None:
        check_iam_settings(self.iam_max_lifetime, self.expire_time_offset, digits)
        self._federation.expire_time_digits = digits

    # --- credentials --------------------------------------------------------------------------

    def service_account(self, email: str | None = None) -> dict[str, str]:
        """Issues a service-account key and returns its key file, as a dict.

        Each call makes a new key (new ``private_key_id``); without ``email`` it is for a new
        account. The RSA keys come from a small per-process pool, so two keys may share key
        material: to test a foreign signature, make your own key. ``token_uri`` points at the
        emulator.

        Args:
            email: The account's ``client_email``; an existing one gets a second key.
                Defaults to a new ``emulator-sa-N@{project_id}.iam.gserviceaccount.com``.

        Example:
            >>> from google.oauth2 import service_account
            >>> with GoogleEmulator() as emu:
            ...     creds = service_account.Credentials.from_service_account_info(
            ...         emu.service_account(), scopes=["https://www.googleapis.com/auth/pubsub"]
            ...     )
        """
        return self._google.service_account(email)

    def authorized_user(
        self, *, scopes: Iterable[str] | None = None, email: str | None = None
    ) -> dict[str, str]:
        """Issues an OAuth client and a user's refresh token; returns them as an ADC dict.

        The dict has ``type: "authorized_user"``, ``client_id``, ``client_secret``,
        ``refresh_token`` and ``token_uri`` (pointing at the emulator). Note that
        google-auth's ``Credentials.from_authorized_user_info`` ignores ``token_uri`` (it
        always uses Google's); chain ``.with_token_uri(info["token_uri"])``.

        Args:
            scopes: What the user consented to; a refresh may ask for a subset. Defaults to
                ``openid``, ``userinfo.email`` and ``cloud-platform``.
            email: The user's email, reported by tokeninfo. Defaults to ``user-N@example.com``.

        Example:
            >>> from google.oauth2 import credentials
            >>> with GoogleEmulator() as emu:
            ...     info = emu.authorized_user()
            ...     # google-auth 2.63 replaces the info's token_uri with Google's: set it back.
            ...     creds = credentials.Credentials.from_authorized_user_info(info).with_token_uri(
            ...         info["token_uri"]
            ...     )
        """
        return self._google.authorized_user(scopes, email)

    def workload_identity(
        self,
        *,
        file: str | os.PathLike[str] | None = None,
        format: Literal["text", "json"] = "text",
        service_account: str | None = None,
        subject: str = DEFAULT_SUBJECT,
        subject_token_type: str = JWT_TOKEN_TYPE,
    ) -> dict[str, Any]:
        """Creates a workload identity pool; returns ``external_account`` credentials for it.

        The credentials point at :attr:`sts_url`. Their ``credential_source`` is ``file``
        when given (a fresh subject token is written there now; write more with
        :meth:`subject_token`), else the pool's subject-token URL on the emulator, which, like
        a CI system's OIDC endpoint, needs the ``Authorization`` header in the credentials and
        mints a fresh subject token per request. STS checks the grant type, requested token
        type, ``audience`` (the pool's), ``subject_token_type`` and that the subject token was
        minted here for this pool and is unexpired. Its tokens show in tokeninfo with the
        email ``principal://.../subject/{subject}``; :meth:`revoke` of the ``audience``
        disables the pool.

        Args:
            file: Where the subject token lives; ``None`` for the URL source.
            format: ``"text"``, or ``"json"`` (the token in the field ``"value"``).
            service_account: Impersonate this service account after STS (it is created if
                the emulator has not issued it): the credentials get a
                ``service_account_impersonation_url`` on the emulator.
            subject: The subject (``sub``) of the pool's subject tokens.
            subject_token_type: The ``subject_token_type`` STS will insist on.

        Example:
            >>> with GoogleEmulator() as emu:
            ...     creds = emu.workload_identity(format="json")
            ...     creds["credential_source"]["format"]
            {'type': 'json', 'subject_token_field_name': 'value'}
        """
        if format not in ("text", "json"):
            raise ValueError(f"format must be 'text' or 'json', not {format!r}")
        pool = self._federation.create_pool(
            subject_token_type=subject_token_type, format=format, subject=subject
        )
        token_format: dict[str, str] = {"type": format}
        if format == "json":
            token_format["subject_token_field_name"] = "value"
        if file is not None:
            source: dict[str, Any] = {"file": os.fspath(file), "format": token_format}
            self._write_subject_token(Path(file), pool.audience, format)
        else:
            source = {
                "url": f"{self.url}{SUBJECT_PATH}{pool.number}",
                "headers": {"Authorization": f"Bearer {pool.request_token}"},
                "format": token_format,
            }
        credentials: dict[str, Any] = {
            "type": "external_account",
            "audience": pool.audience,
            "subject_token_type": subject_token_type,
            "token_url": self.sts_url,
            "credential_source": source,
            "universe_domain": "googleapis.com",
        }
        if service_account is not None:
            self._google.ensure_account(service_account)
            credentials["service_account_impersonation_url"] = (
                f"{self.iam_url}/v1/projects/-/serviceAccounts/{service_account}"
                ":generateAccessToken"
            )
        return credentials

    def subject_token(
        self, audience: str, *, subject: str | None = None, lifetime: float = 3600.0
    ) -> str:
        """Mints a subject token (a signed JWT) that STS accepts for ``audience``.

        Args:
            audience: The pool's ``audience``, from :meth:`workload_identity`'s credentials.
            subject: Its ``sub``. Defaults to the pool's ``subject``.
            lifetime: Seconds until STS refuses it ("The subject token has expired.").

        Example:
            >>> with GoogleEmulator() as emu:
            ...     creds = emu.workload_identity()
            ...     token = emu.subject_token(creds["audience"])
        """
        if isinstance(lifetime, bool) or not (math.isfinite(lifetime) and lifetime > 0):
            raise ValueError(
                f"lifetime must be a positive, finite number of seconds, not {lifetime!r}"
            )
        return self._federation.mint_subject_token(audience, subject, lifetime)

    def _write_subject_token(self, path: Path, audience: str, format: str) -> None:
        token = self.subject_token(audience)
        path.write_text(json.dumps({"value": token}) if format == "json" else token)

    def revoke(self, identity: str) -> None:
        """Revokes an identity: its grants now get 400 ``invalid_grant`` and its tokens die.

        Args:
            identity: A service account's ``client_email`` or ``client_id`` ("Invalid grant:
                account not found"; IAM will not impersonate it either), one of its
                ``private_key_id`` ("Invalid JWT Signature."), an authorized user's
                ``client_id`` or ``refresh_token`` ("Token has been expired or revoked."), or
                a workload identity pool's ``audience`` ("The workload identity pool is
                disabled."). Anything else raises ``ValueError``.

        Example:
            ```python
            emu.revoke(key["client_email"])
            ```
        """
        self._google.revoke(identity)

    def token_info(self, token: str) -> dict[str, str] | None:
        """What ``/oauth2/v3/tokeninfo`` says of a token issued here, or ``None`` if invalid.

        Access tokens give ``azp``, ``aud``, ``sub``, ``email``, ``scope``, ``exp`` and
        ``expires_in`` (strings, seconds); ID tokens give their claims as strings plus
        ``expires_in``. Unknown, expired and revoked tokens give ``None``. A token IAM issued
        by impersonation has the impersonated account's ``email``; an STS token has its
        federated principal's, ``principal://iam.googleapis.com/.../subject/{subject}``.

        Example:
            ```python
            emu.token_info(creds.token)["scope"]
            ```
            'https://www.googleapis.com/auth/pubsub'
        """
        return self._google.token_info(token)

    # --- faults -------------------------------------------------------------------------------

    def fail_next(
        self,
        n: int,
        status: int = 503,
        *,
        error: str | None = None,
        retry_after: float | str | None = None,
        body: bytes | str | None = None,
        headers: Mapping[str, str] | None = None,
        endpoint: str | None = None,
    ) -> None:
        """Makes the next ``n`` matching requests fail with ``status``.

        Faults queue: each request takes the oldest armed fault that matches it.

        Args:
            n: How many requests fail (at least 1).
            status: The HTTP status, 400 to 599. Defaults to 503.
            error: The OAuth ``error`` code in the JSON body. Defaults by status: 503 and 504
                ``temporarily_unavailable``, 500 ``internal_failure``, 429
                ``rate_limit_exceeded``, 401 ``invalid_client``, other 5xx ``server_error``,
                other 4xx ``invalid_request``.
            retry_after: A ``Retry-After`` header: seconds (int or float), or a string sent
                verbatim, such as an HTTP-date.
            body: A raw body (bytes, or str sent as UTF-8) instead of the JSON error; no
                ``Content-Type`` is added.
            headers: More response headers.
            endpoint: Which requests: ``"token"``, ``"metadata"`` (every metadata path,
                ping included), ``"tokeninfo"``, ``"certs"``, ``"sts"``, ``"iam"`` (answered
                in Google APIs' shape, ``{"error": {"code", "message", "status"}}``, where
                ``error`` is the ``status``), ``"subject"`` (the subject-token URL),
                ``"other"`` or ``"any"``. Defaults to requests that ask for a token:
                ``POST /token``, STS, IAM, and the metadata ``token`` and ``identity`` paths.

        Example:
            ```python
            emu.fail_next(2, 503, retry_after=1)
            ```
        """
        check_count(n)
        check_endpoint(endpoint)
        if isinstance(status, bool) or not isinstance(status, int) or not 400 <= status <= 599:
            raise ValueError(f"status must be an HTTP error status, 400-599, not {status!r}")
        extra = dict(headers or {})
        if retry_after is not None:
            extra["Retry-After"] = (
                retry_after if isinstance(retry_after, str) else format_seconds(retry_after)
            )
        if body is None:
            self._arm(Failure(status, error, tuple(extra.items())), n, endpoint)
            return
        raw = body.encode() if isinstance(body, str) else body
        self._arm(Canned(Response(status, raw, tuple(extra.items())), flavored=True), n, endpoint)

    def respond_next(
        self,
        n: int,
        status: int,
        body: bytes | str | Mapping[str, object] = b"",
        headers: Mapping[str, str] | None = None,
        *,
        endpoint: str | None = None,
    ) -> None:
        """Makes the next ``n`` matching requests get exactly this answer.

        Only ``Content-Length``, ``Connection: close``, ``Server`` and ``Date`` are added; not
        even ``Metadata-Flavor`` on metadata paths. So this also plays a metadata server that
        forgets its header, a 200 with HTML, or a token without ``expires_in``.

        Args:
            n: How many requests (at least 1).
            status: The HTTP status.
            body: Bytes, a str (sent as UTF-8), or a mapping sent as JSON with
                ``Content-Type: application/json``. Defaults to empty.
            headers: Response headers.
            endpoint: Which requests, as in :meth:`fail_next`.

        Example:
            ```python
            emu.respond_next(1, 200, {"access_token": "x"})
            ```
        """
        check_count(n)
        check_endpoint(endpoint)
        if isinstance(body, Mapping):
            response = Response.json(status, dict(body), headers)
        else:
            raw = body.encode() if isinstance(body, str) else body
            response = Response(status, raw, tuple((headers or {}).items()))
        self._arm(Canned(response, flavored=False), n, endpoint)

    def reset_next(self, n: int = 1, *, endpoint: str | None = None) -> None:
        """Makes the next ``n`` matching requests die mid-response: the normal answer's headers
        and half its body are sent, then the connection is reset (TCP RST).

        Args:
            n: How many requests (at least 1).
            endpoint: Which requests, as in :meth:`fail_next`.

        Example:
            ```python
            emu.reset_next(1, endpoint="token")
            ```
        """
        check_count(n)
        check_endpoint(endpoint)
        self._arm(Reset(), n, endpoint)

    def delay(self, seconds: float) -> None:
        """Makes every following request wait ``seconds`` before its answer; 0 clears it.

        :meth:`close` cuts the wait short.

        Example:
            ```python
            emu.delay(0.05)
            ```
        """
        if isinstance(seconds, bool) or not (math.isfinite(seconds) and seconds >= 0):
            raise ValueError(f"seconds must be a finite number >= 0, not {seconds!r}")
        with self._lock:
            self._delay = float(seconds)

    def down(self) -> None:
        """Closes the listening socket: new connections are refused until :meth:`up`.

        Requests already being answered are unaffected.

        Example:
            ```python
            emu.down()
            ```
        """
        self._server.down()

    def up(self) -> None:
        """Listens again, on the same port, after :meth:`down`.

        Example:
            ```python
            emu.up()
            ```
        """
        self._server.up()

    def reset(self) -> None:
        """Clears armed faults, the delay, the recorded requests and their counts.

        Example:
            ```python
            emu.reset()
            ```
        """
        with self._lock:
            self._faults.clear()
            self._delay = 0.0
            self._requests.clear()
            self._counts.clear()

    # --- recorded requests --------------------------------------------------------------------

    @property
    def requests(self) -> list[RecordedRequest]:
        """A copy of the recorded requests, oldest first.

        That is every request since the emulator started (or since :meth:`clear_requests`),
        but at most the last ``max_recorded`` of them (10,000 unless the constructor said
        otherwise); count with :meth:`request_count`, which forgets none.

        Example:
            ```python
            emu.requests[-1].path
            ```
            '/token'
        """
        with self._lock:
            return list(self._requests)

    def requests_to(self, where: str) -> list[RecordedRequest]:
        """The recorded requests to an endpoint, or under a path prefix.

        Args:
            where: An endpoint name (``"token"``, ``"metadata"``, ``"tokeninfo"``,
                ``"certs"``, ``"sts"``, ``"iam"``, ``"subject"``, ``"other"``, or ``"any"``)
                or a path prefix starting with ``/``.

        Example:
            ```python
            len(emu.requests_to("token"))
            ```
            1
        """
        matches = _where(where)
        return [r for r in self.requests if matches(r)]

    def request_count(self, where: str = "any") -> int:
        """How many requests to ``where`` arrived since the start (or the last clear).

        Unlike ``len(requests_to(where))``, this counts requests older than the last
        ``max_recorded`` too, except for a path prefix, which only the recording can answer.

        Args:
            where: As in :meth:`requests_to`; ``"any"`` (the default) counts every request.

        Example:
            ```python
            emu.request_count("token")
            ```
            1
        """
        matches = _where(where)
        with self._lock:
            return self._count(where, matches)

    def wait_for_requests(
        self, count: int, where: str = "any", *, timeout: float = 5.0
    ) -> list[RecordedRequest]:
        """Waits until ``count`` requests to ``where`` have arrived; returns them.

        Counts as :meth:`request_count`; returns those requests to ``where`` still recorded
        (all of them, unless more than ``max_recorded`` requests arrived meanwhile).

        Args:
            count: How many requests to wait for.
            where: As in :meth:`requests_to`; ``"any"`` (the default) counts every request.
            timeout: Seconds to wait before raising ``TimeoutError``. Defaults to 5.

        Example:
            ```python
            emu.wait_for_requests(1, "token")
            ```
        """
        matches = _where(where)
        deadline = _time.monotonic() + timeout
        with self._recorded:
            while True:
                arrived = self._count(where, matches)
                left = deadline - _time.monotonic()
                if arrived >= count:
                    return [r for r in self._requests if matches(r)]
                if left <= 0:
                    raise TimeoutError(
                        f"{arrived} of {count} requests to {where!r} arrived in {timeout} s"
                    )
                self._recorded.wait(left)

    def clear_requests(self) -> None:
        """Forgets the recorded requests and their counts.

        Example:
            ```python
            emu.clear_requests()
            ```
        """
        with self._lock:
            self._requests.clear()
            self._counts.clear()

    def _count(self, where: str, matches: Callable[[RecordedRequest], bool]) -> int:
        # Called with the lock held.
        if where.startswith("/"):
            return sum(1 for r in self._requests if matches(r))
        return self._counts[where]

    # --- serving ------------------------------------------------------------------------------

    def _arm(self, fault: Fault, n: int, endpoint: str | None) -> None:
        with self._lock:
            self._faults.append(Armed(fault, endpoint, n))

    def _respond(self, request: RecordedRequest) -> Response:
        # Runs on a connection thread for every request.
        with self._recorded:
            self._requests.append(for_record(request))
            self._counts[request.endpoint] += 1
            self._counts["any"] += 1
            self._recorded.notify_all()
            delay = self._delay
            fault = self._take_fault(request)
        if delay:
            self._server.wait(delay)

        def normal() -> Response:
            return routes.answer(self._google, self._federation, request)

        try:
            return normal() if fault is None else fault.answer(request, normal)
        except Exception:
            # The path has no query string, so no token: safe to log.
            _log.exception("GoogleEmulator failed to answer %s %s", request.method, request.path)
            return Response.json(
                500, {"error": "internal_failure", "error_description": "Emulator bug."}
            )

    def _take_fault(self, request: RecordedRequest) -> Fault | None:
        for armed in self._faults:
            if armed.matches(request):
                armed.remaining -= 1
                if armed.remaining == 0:
                    self._faults.remove(armed)
                return armed.fault
        return None


def _where(where: str) -> Callable[[RecordedRequest], bool]:
    if where.startswith("/"):
        return lambda request: request.path.startswith(where)
    check_endpoint(where, "where", paths=True)
    return lambda request: where in ("any", request.endpoint)

"""GoogleEmulator: a fake Google for tests.

It plays the token endpoint, metadata server, tokeninfo, STS, IAM, an API and AWS's instance
metadata.

The emulator is many small pieces, one idea each. The server: ``_emulator_http`` (sockets,
threads, HTTP framing, TLS) and ``_emulator_tls`` (its certificates). What Google knows:
``_emulator_store`` (shared records and helpers), ``_emulator_google`` (accounts, grants,
tokens), ``_emulator_signing`` (self-signed JWTs, signBlob), ``_emulator_federation`` (pools,
STS), ``_emulator_iam`` (IAM Credentials), ``_emulator_workforce`` (workforce users) and
``_emulator_aws`` (AWS's metadata service and SigV4 check). Which path answers what:
``_emulator_routes``; planned misbehaviour: ``_emulator_faults``. The public class is this
module (lifecycle, addresses, serving) with its mixins: ``_emulator_settings``,
``_emulator_credentials`` and ``_emulator_workloads`` (what it issues) and
``_emulator_controls`` (faults and the request record). This module is a little over 400
lines because the public class's docstring is the emulator's manual: every address, option and
control a test author reaches for, with examples, in one place.
"""

from __future__ import annotations

import logging
import threading
import time as _time
from collections import Counter, deque
from types import TracebackType
from typing import Self

from goth_actors.otp import FakeTime
from goth_actors.testing import _emulator_routes as routes
from goth_actors.testing._emulator_aws import FakeAws
from goth_actors.testing._emulator_controls import EmulatorControls
from goth_actors.testing._emulator_credentials import EmulatorIdentities
from goth_actors.testing._emulator_faults import Armed
from goth_actors.testing._emulator_federation import STS_PATH, FakeFederation
from goth_actors.testing._emulator_google import FakeGoogle
from goth_actors.testing._emulator_http import HttpServer
from goth_actors.testing._emulator_iam import FakeIam
from goth_actors.testing._emulator_messages import RecordedRequest, Response, for_record
from goth_actors.testing._emulator_settings import EmulatorSettings
from goth_actors.testing._emulator_tls import Certificates
from goth_actors.testing._emulator_workforce import FakeWorkforce
from goth_actors.testing._emulator_workloads import EmulatorWorkloads

__all__ = ["GoogleEmulator"]

_log = logging.getLogger("goth_actors.testing")


class GoogleEmulator(EmulatorSettings, EmulatorIdentities, EmulatorWorkloads, EmulatorControls):
    """A real HTTP server on 127.0.0.1 that plays Google's token endpoint and metadata server.

    Speaks the protocol closely enough for google-auth itself: service-account (JWT-bearer)
    and refresh-token grants at [`token_url`][goth_actors.testing.GoogleEmulator.token_url] (with
    reauth's ``rapt``), the metadata server at
    [`metadata_host`][goth_actors.testing.GoogleEmulator.metadata_host], tokeninfo at
    [`tokeninfo_url`][goth_actors.testing.GoogleEmulator.tokeninfo_url] (self-signed JWTs too) and
    ID-token keys at [`certs_url`][goth_actors.testing.GoogleEmulator.certs_url]; for workload
    identity federation, the Security Token Service at
    [`sts_url`][goth_actors.testing.GoogleEmulator.sts_url] (JWT, AWS and, on
    [`mtls_url`][goth_actors.testing.GoogleEmulator.mtls_url], X.509 subject tokens; workforce
    users' ``oauthtoken``), a CI-style subject-token URL, an EC2 instance metadata service and an
    executable fixture (see
    [`workload_identity`][goth_actors.testing.GoogleEmulator.workload_identity],
    [`aws_workload_identity`][goth_actors.testing.GoogleEmulator.aws_workload_identity],
    [`executable_workload_identity`][goth_actors.testing.GoogleEmulator.executable_workload_identity],
    [`x509_workload_identity`][goth_actors.testing.GoogleEmulator.x509_workload_identity],
    [`workforce_user`][goth_actors.testing.GoogleEmulator.workforce_user]); IAM Credentials'
    ``generateAccessToken``, ``generateIdToken`` and ``signBlob`` under
    [`iam_url`][goth_actors.testing.GoogleEmulator.iam_url]; and a Google API at
    [`api_url`][goth_actors.testing.GoogleEmulator.api_url] that wants a quota project with a
    person's token. Every control method is thread-safe. Use it as a context manager, or call
    [`start`][goth_actors.testing.GoogleEmulator.start] and
    [`close`][goth_actors.testing.GoogleEmulator.close].

    Memory stays bounded however long it runs: it records the last ``max_recorded``
    requests, each with at most the first 64 KiB of its body, and forgets tokens and
    subject tokens once they expire (tokeninfo, STS and IAM refuse them then anyway).

    Args:
        host: Address to listen on. Defaults to ``"127.0.0.1"``.
        port: Port to listen on; ``0`` (the default) picks a free one.
        token_lifetime: Seconds each issued token lives (``expires_in``). Defaults to
            ``3599.0``, as Google.
        max_recorded: How many requests [`requests`][goth_actors.testing.GoogleEmulator.requests]
            keeps; older ones are dropped
            ([`request_count`][goth_actors.testing.GoogleEmulator.request_count] still counts them).
            Defaults to ``10_000``; ``0`` keeps none.
        time: A [`FakeTime`][goth_actors.otp.FakeTime] whose wall clock the emulator issues and
            checks tokens and JWTs by, so that it agrees with token servers on the same fake
            time (a moved clock expires tokens here as it does there). Default: real time.

    Attributes:
        metadata_email: The metadata server's service account. Defaults to
            ``"default-sa@emulator-project.iam.gserviceaccount.com"``.
        metadata_scopes: Its scopes, used when a token request names none. Defaults to
            ``["https://www.googleapis.com/auth/cloud-platform"]``.
        project_id: What ``project/project-id`` answers. Defaults to ``"emulator-project"``.

    Examples:
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
        self._aws = FakeAws(self._google.clock)
        self._federation = FakeFederation(self._google, self._aws, lambda: self.url)
        self._iam = FakeIam(self._google)
        self._workforce = FakeWorkforce(self._google)
        self._fakes = routes.Fakes(
            self._google, self._federation, self._iam, self._aws, self._workforce
        )
        self._server = HttpServer(host, port, self._respond, routes.endpoint_of)
        self._tls: tuple[HttpServer, Certificates] | None = None
        self.token_lifetime = token_lifetime

    # --- lifecycle ----------------------------------------------------------------------------

    def start(self) -> Self:
        """Starts listening; returns the emulator. Raises ``RuntimeError`` if called twice.

        Examples:
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

        The mutual-TLS listener, if it was started, closes too, and its certificates'
        temporary directory is removed.

        Examples:
            >>> emu = GoogleEmulator().start()
            >>> emu.close()
            >>> emu.close()
        """
        self._server.close()
        with self._lock:
            tls = self._tls
        if tls is not None:
            tls[0].close()
            tls[1].remove()

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
        """Whether [`start`][goth_actors.testing.GoogleEmulator.start] has been called.

        Examples:
            >>> GoogleEmulator().is_started
            False
        """
        return self._server.is_started

    @property
    def is_up(self) -> bool:
        """Whether the emulator is accepting connections (started, not down, not closed).

        Examples:
            >>> with GoogleEmulator() as emu:
            ...     emu.down()
            ...     emu.is_up
            False
        """
        return self._server.is_up

    # --- addresses ----------------------------------------------------------------------------

    @property
    def url(self) -> str:
        """Base URL, ``http://127.0.0.1:PORT``. Raises ``RuntimeError`` before ``start``.

        Examples:
            >>> with GoogleEmulator() as emu:
            ...     emu.url == f"http://{emu.metadata_host}"
            True
        """
        host = f"[{self._host}]" if ":" in self._host else self._host
        return f"http://{host}:{self._server.port}"

    @property
    def token_url(self) -> str:
        """The token endpoint, ``{url}/token`` (``{url}/oauth2/v4/token`` works too).

        Examples:
            >>> with GoogleEmulator() as emu:
            ...     emu.service_account()["token_uri"] == emu.token_url
            True
        """
        return f"{self.url}/token"

    @property
    def metadata_url(self) -> str:
        """The metadata server's base URL, with ``http://`` and without ``/computeMetadata/v1``.

        This is the form of Goth's metadata ``url`` option. For ``GCE_METADATA_HOST`` (and
        ``GCE_METADATA_IP``), which take no scheme, use
        [`metadata_host`][goth_actors.testing.GoogleEmulator.metadata_host].

        Examples:
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

        Examples:
            ```python
            with GoogleEmulator() as emu:
                monkeypatch.setenv("GCE_METADATA_HOST", emu.metadata_host)
            ```
        """
        return self.url.removeprefix("http://")

    @property
    def tokeninfo_url(self) -> str:
        """``{url}/oauth2/v3/tokeninfo``; takes ``access_token=`` or ``id_token=``.

        Examples:
            >>> import requests
            >>> with GoogleEmulator() as emu:
            ...     requests.get(emu.tokeninfo_url, params={"access_token": "nope"}).status_code
            400
        """
        return f"{self.url}/oauth2/v3/tokeninfo"

    @property
    def certs_url(self) -> str:
        """``{url}/oauth2/v3/certs``: the JWKS that verifies the emulator's ID tokens.

        Examples:
            ```python
            id_token.verify_token(token, request, audience=aud, certs_url=emu.certs_url)
            ```
        """
        return f"{self.url}/oauth2/v3/certs"

    @property
    def sts_url(self) -> str:
        """``{url}/v1/token``: the Security Token Service (the ``token_url`` of workload identity).

        Examples:
            >>> with GoogleEmulator() as emu:
            ...     emu.workload_identity()["token_url"] == emu.sts_url
            True
        """
        return f"{self.url}{STS_PATH}"

    @property
    def iam_url(self) -> str:
        """IAM Credentials' base URL (the emulator's ``url``), for ``Impersonated(url=...)``.

        IAM answers ``POST {iam_url}/v1/projects/-/serviceAccounts/{email}:generateAccessToken``
        and ``...:generateIdToken``. The caller's bearer token must be an unexpired access
        token the emulator issued; it may impersonate any service account the emulator
        issued, unless that account is revoked.

        Examples:
            ```python
            source = Impersonated(caller, target, url=emu.iam_url)
            ```
        """
        return self.url

    @property
    def mtls_url(self) -> str:
        """``https://127.0.0.1:PORT``: the mutual-TLS listener (STS for X.509 workloads, IAM).

        Started on first use (reading this starts it). It requires a client certificate
        signed by the emulator's authority and serves the same paths as
        [`url`][goth_actors.testing.GoogleEmulator.url].

        Examples:
            ```python
            emu.mtls_url
            ```
            'https://127.0.0.1:41234'
        """
        return self._mtls()[0]

    @property
    def ca_file(self) -> str:
        """The PEM file of the authority of the mTLS listener's certificate.

        It is the workloads' authority too: what clients must trust (``REQUESTS_CA_BUNDLE``).
        Starts the listener.

        Examples:
            ```python
            monkeypatch.setenv("REQUESTS_CA_BUNDLE", emu.ca_file)
            ```
        """
        return str(self._mtls()[1].ca_file)

    @property
    def api_url(self) -> str:
        """``{url}/api/v1/whoami``: a Google API that answers ``{"email", "quota_project"}``.

        ``401`` without a bearer token the emulator vouches for, and, while
        [`require_quota_project`][goth_actors.testing.GoogleEmulator.require_quota_project], ``403``
        to a person's token without ``x-goog-user-project``. Any path under ``{url}/api/`` answers
        the same.

        Examples:
            >>> import requests
            >>> with GoogleEmulator() as emu:
            ...     requests.get(emu.api_url).status_code
            401
        """
        return f"{self.url}{routes.API_PATH}v1/whoami"

    def _mtls(self) -> tuple[str, Certificates]:
        with self._lock:
            if self._tls is None:
                if not self.is_started:
                    raise RuntimeError("the emulator has not been started")
                certificates = Certificates()
                server = HttpServer(
                    self._host, 0, self._respond, routes.endpoint_of, certificates.context()
                )
                server.start()
                self._tls = (server, certificates)
            server, certificates = self._tls
        host = f"[{self._host}]" if ":" in self._host else self._host
        return f"https://{host}:{server.port}", certificates

    # --- serving ------------------------------------------------------------------------------

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
            return routes.answer(self._fakes, request)

        try:
            return normal() if fault is None else fault.answer(request, normal)
        except Exception:
            # The path has no query string, so no token: safe to log.
            _log.exception("GoogleEmulator failed to answer %s %s", request.method, request.path)
            return Response.json(
                500, {"error": "internal_failure", "error_description": "Emulator bug."}
            )

"""What serve needs from the runtime: its servers' supervisor, a non-blocking fetch, identities.

1. `ServerSupervisor` runs the token servers under a
   [DynamicSupervisor][goth_actors.otp.DynamicSupervisor] (``max_children`` enforced there,
   children stopped by ref and in parallel).
2. `fetch_async` is ``goth_actors.fetch_async``: a miss waits without blocking the loop.
3. `describe_identity` reads who the tokens belong to from the source (its email,
   project and universe: the decoded key file, or the upstream metadata server when the
   source is `Metadata`).

Everything else in `_serve` uses these through their signatures only.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Callable, Hashable, Mapping
from dataclasses import dataclass
from typing import Any

import pykka
import requests

import goth_actors
from goth_actors import (
    Impersonated,
    Metadata,
    RefreshToken,
    ServiceAccount,
    Source,
    Token,
    WorkloadIdentity,
)
from goth_actors.otp import (
    ChildNotFound,
    DynamicSupervisor,
    FailedToStartChild,
    FakeTime,
    MaxChildren,
    SupervisorEvent,
    start_child,
    terminate_child,
)

__all__ = ["Identity", "ServerSupervisor", "describe_identity", "fetch_async"]

DEFAULT_UNIVERSE = "googleapis.com"
MAX_METADATA_ANSWER = 4096  # bytes read of each upstream metadata answer
_SUPERVISOR_MAX_RESTARTS = 1_000_000  # within 1 s: servers pace their own restarts (backoff)
_SUPERVISOR_WAIT = 30.0  # seconds to wait for the supervisor to start or stop a server


# ------------------------------------------------------------------ 1. DynamicSupervisor


class ServerSupervisor:
    """The supervisor of serve's token servers: a ``DynamicSupervisor``, children on demand.

    Every method blocks: call them from a worker thread, never from the event loop. A server
    terminated here is gone for good: its name and token are released at once.

    Args:
        max_children: At most this many servers at once; `start_server` refuses more.
        on_gave_up: Called (on the supervisor's thread) with the reason if the supervisor
            exits on its own, which it does only after too many restarts in one second.
        time: A `FakeTime` for tests.
    """

    def __init__(
        self,
        *,
        max_children: int,
        on_gave_up: Callable[[BaseException], None],
        time: FakeTime | None = None,
    ) -> None:
        self.max_children = max_children
        self._refs: dict[Hashable, pykka.ActorRef[Any]] = {}
        self._on_gave_up = on_gave_up
        self._stopping = False
        self._ref = DynamicSupervisor.start(
            max_children=max_children,
            max_restarts=_SUPERVISOR_MAX_RESTARTS,
            max_seconds=1.0,
            on_event=self._event,
            time=time,
            link=False,
        )

    def _event(self, event: SupervisorEvent) -> None:
        if event.kind == "supervisor_exited" and not self._stopping:
            self._on_gave_up(event.reason or RuntimeError("the supervisor stopped"))

    def start_server(self, name: Hashable, source: Source, **options: Any) -> None:
        """Starts a token server named ``name`` (``options`` as ``child_spec``'s).

        Raises:
            OverflowError: ``max_children`` servers are running.
            AlreadyStarted: A server with this name is running.
        """
        spec = goth_actors.child_spec(name=name, source=source, **options)
        try:
            ref = start_child(self._ref, spec, timeout=_SUPERVISOR_WAIT)
        except MaxChildren:
            raise OverflowError(f"at most {self.max_children} token servers") from None
        except FailedToStartChild as failure:
            if isinstance(failure.reason, goth_actors.AlreadyStarted):
                raise goth_actors.AlreadyStarted(name) from None
            raise
        self._refs[name] = ref

    def stop_server(self, name: Hashable) -> None:
        """Stops the server ``name`` for good (its name and token are forgotten)."""
        ref = self._refs.pop(name, None)
        if ref is not None:
            with contextlib.suppress(ChildNotFound, pykka.ActorDeadError, pykka.Timeout):
                terminate_child(self._ref, ref, timeout=_SUPERVISOR_WAIT)

    def stop(self) -> None:
        """Stops every server (in parallel), then the supervisor."""
        self._stopping = True
        self._refs.clear()
        if self._ref.is_alive():
            self._ref.stop(block=True, timeout=_SUPERVISOR_WAIT)


# ---------------------------------------------------------------------------- 2. fetch_async


async def fetch_async(name: Hashable, timeout: float) -> Token:
    """``goth_actors.fetch(name, timeout)`` without blocking the event loop."""
    return await goth_actors.fetch_async(name, timeout)


# ----------------------------------------------------------------------- 3. identity details


@dataclass(frozen=True, slots=True)
class Identity:
    """Who the served tokens belong to, as far as the credentials say.

    Attributes:
        email: The service account's email, or ``None`` when the credentials do not say (a
            user's refresh token).
        project_id: The project id, or ``None``.
        numeric_project_id: The project number, or ``None``.
        universe_domain: The universe domain (``googleapis.com`` unless the credentials say).
        scopes: The upstream metadata server's own scopes (``Metadata`` sources only), else
            ``None``.
    """

    email: str | None = None
    project_id: str | None = None
    numeric_project_id: str | None = None
    universe_domain: str = DEFAULT_UNIVERSE
    scopes: tuple[str, ...] | None = None


_POOL_PROJECT = re.compile(r"^//iam\.googleapis\.com/(?:locations/[^/]+/)?projects/(\d+)/")


def describe_identity(source: Source, *, timeout: float = 5.0) -> Identity:
    """The email, project and universe behind ``source``, read from its key file.

    For a `Metadata` source this asks the upstream metadata server
    (blocking, at most five requests of ``timeout`` each).

    Raises:
        requests.RequestException: The upstream metadata server did not answer.
    """
    if isinstance(source, Metadata):
        return _from_metadata(source, timeout)
    if isinstance(source, Impersonated):
        inner = describe_identity(source.source, timeout=timeout)
        return Identity(
            email=source.target_principal,
            project_id=inner.project_id,
            universe_domain=inner.universe_domain,
        )
    credentials: Mapping[str, Any] = getattr(source, "credentials", None) or {}
    email = project = number = None
    if isinstance(source, ServiceAccount):
        email = source.client_email
        project = _text(credentials.get("project_id"))
    elif isinstance(source, RefreshToken):
        project = _text(credentials.get("quota_project_id"))
    elif isinstance(source, WorkloadIdentity):
        email = source.service_account_email
        project = _text(credentials.get("quota_project_id"))
        pool = _POOL_PROJECT.match(source.audience)
        number = pool.group(1) if pool else None
    universe = goth_actors.universe_domain(source)  # no I/O: not a Metadata source
    return Identity(
        email=email, project_id=project, numeric_project_id=number, universe_domain=universe
    )


def _text(value: object) -> str | None:
    return value if isinstance(value, str) and value and value.isprintable() else None


def _from_metadata(source: Metadata, timeout: float) -> Identity:
    base = source.base_url() + "/computeMetadata/v1/"
    account = f"instance/service-accounts/{source.account}/"

    def get(path: str) -> str | None:
        with requests.get(
            base + path,
            headers={"Metadata-Flavor": "Google"},
            timeout=timeout,
            allow_redirects=False,
            stream=True,
        ) as answer:
            body = answer.raw.read(MAX_METADATA_ANSWER + 1, decode_content=True)
            if answer.status_code != 200 or len(body) > MAX_METADATA_ANSWER:
                return None
            return _text(body.decode("utf-8", "replace").strip())

    scopes = get(account + "scopes")
    return Identity(
        email=get(account + "email"),
        project_id=get("project/project-id"),
        numeric_project_id=get("project/numeric-project-id"),
        universe_domain=get("universe/universe-domain") or DEFAULT_UNIVERSE,
        scopes=tuple(scopes.split()) if scopes else None,
    )

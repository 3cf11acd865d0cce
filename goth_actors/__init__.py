"""goth_actors: Google OAuth2 tokens kept fresh by supervised Pykka actors (Elixir's Goth).

Start a token server per credential, then fetch its token by name from any thread:

    import goth_actors

    goth_actors.start_link(name="my_app", source=goth_actors.default_source())
    token = goth_actors.fetch("my_app")   # well under a microsecond once cached

This module is Goth's API and everything a user of the token side needs: the functions, the
sources, the HTTP client contract and the errors; ``Supervisor``, ``ChildSpec`` and ``whereis``
come from [`goth_actors.otp`][goth_actors.otp], the supervision framework for any Pykka actor, which
holds the rest of the runtime (child-management messages, the name registry, timers, ``FakeTime``).
[`goth_actors.testing`][goth_actors.testing] has the Google emulator,
[`goth_actors.integrations`][goth_actors.integrations] the drop-in auth for requests, httpx,
aiohttp, gRPC and google-auth, and OpenTelemetry metrics. In a coroutine, ``await
goth_actors.fetch_async(name)``; for a lifespan, ``running(...)``.

The names here load on first use (PEP 562), so that ``import goth_actors.otp`` loads nothing of
the token side and the token protocol loads no pykka.

Every exception the library defines derives from [`GothError`][goth_actors.GothError]:

    GothError                                root of everything below
    ├── ConfigError (ValueError)             bad option, source or credentials, named by field
    ├── TokenError                           one token exchange failed; has ``retryable``
    │   ├── TokenEndpointError               the endpoint answered, but not with a token:
    │   │                                    status, error, description, body excerpt
    │   └── TransportError                   no usable answer: refused, reset, timeout, DNS
    ├── ResponseTooLarge                     the default HTTP client refused a body over 1 MiB
    ├── FetchTimeout (TimeoutError)          no token within the caller's timeout
    ├── ServerNotFound (LookupError)         no token server under that name
    ├── AlreadyStarted                       a token server with that name is running
    ├── RetriesExhausted                     a server failed max_retries retries and crashed
    ├── RedactedCause                        only as a ``__cause__``: stands in for an HTTP
    │                                        client's exception that could quote a secret
    └── OtpError                             supervision (goth_actors.otp)
        ├── AlreadyRegistered                the name is held by another live actor
        ├── FailedToStartChild               a supervisor could not start a child
        ├── ChildNotFound (LookupError)      a supervisor has no child with that id
        ├── ChildAlreadyPresent (ValueError) start_child with an id the supervisor has
        │   └── ChildAlreadyStarted          ... and that child is running (its ref attached)
        ├── ChildRunning (RuntimeError)      restart_child / delete_child of a running child
        ├── MaxChildren                      a DynamicSupervisor is at its max_children
        ├── MaxRestartsExceeded              a supervisor gave up: too many restarts too fast
        └── LinkExit                         an actor this one started (and owns) exited

A wrong argument type is a ``TypeError``, as in Python itself; Pykka's ``ActorDeadError`` and
``Timeout`` pass through where Pykka's semantics apply (an ``ask`` of your own). Errors carry
data but never a secret: no token, private key, client secret or refresh token is ever part of
a message or attribute.
"""

from __future__ import annotations

import importlib
import logging
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0.dev0"

logging.getLogger("goth_actors").addHandler(logging.NullHandler())

_API = "goth_actors._api"
_ERRORS = "goth_actors._errors"
_EVENTS = "goth_actors._events"
_OTP = "goth_actors.otp"
_PROTOCOL = "goth_actors._protocol"
_SERVER = "goth_actors._server"

_EXPORTS: dict[str, str] = {
    "AlreadyRegistered": _ERRORS,
    "AlreadyStarted": _ERRORS,
    "ChildAlreadyPresent": _ERRORS,
    "ChildNotFound": _ERRORS,
    "ChildRunning": _ERRORS,
    "ChildSpec": _OTP,
    "ConfigError": _ERRORS,
    "Event": _EVENTS,
    "EventKind": _EVENTS,
    "FailedToStartChild": _ERRORS,
    "Fetch": _SERVER,
    "FetchTimeout": _ERRORS,
    "GothError": _ERRORS,
    "HttpClient": _PROTOCOL,
    "HttpResponse": _PROTOCOL,
    "Impersonated": _PROTOCOL,
    "MaxRestartsExceeded": _ERRORS,
    "Metadata": _PROTOCOL,
    "OtpError": _ERRORS,
    "Refresh": _SERVER,
    "RefreshToken": _PROTOCOL,
    "ResponseTooLarge": _ERRORS,
    "RetriesExhausted": _ERRORS,
    "ServerNotFound": _ERRORS,
    "ServerStatus": "goth_actors._status",
    "ServiceAccount": _PROTOCOL,
    "Signer": _PROTOCOL,
    "Source": _PROTOCOL,
    "Supervisor": _OTP,
    "Token": _PROTOCOL,
    "TokenEndpointError": _ERRORS,
    "TokenError": _ERRORS,
    "TransportError": _ERRORS,
    "WorkforceUser": _PROTOCOL,
    "WorkloadIdentity": _PROTOCOL,
    "cached": _API,
    "child_spec": _API,
    "default_source": _PROTOCOL,
    "fetch": _API,
    "fetch_async": "goth_actors._async",
    "load_credentials": _PROTOCOL,
    "project_id": _PROTOCOL,
    "refresh": _API,
    "running": "goth_actors._running",
    "shutdown": _API,
    "signer": _PROTOCOL,
    "source_from_credentials": _PROTOCOL,
    "start_link": _API,
    "status": _API,
    "stop": _API,
    "subscribe": _EVENTS,
    "universe_domain": _PROTOCOL,
    "whereis": _OTP,
}

__all__ = [
    "AlreadyRegistered",
    "AlreadyStarted",
    "ChildAlreadyPresent",
    "ChildNotFound",
    "ChildRunning",
    "ChildSpec",
    "ConfigError",
    "Event",
    "EventKind",
    "FailedToStartChild",
    "Fetch",
    "FetchTimeout",
    "GothError",
    "HttpClient",
    "HttpResponse",
    "Impersonated",
    "MaxRestartsExceeded",
    "Metadata",
    "OtpError",
    "Refresh",
    "RefreshToken",
    "ResponseTooLarge",
    "RetriesExhausted",
    "ServerNotFound",
    "ServerStatus",
    "ServiceAccount",
    "Signer",
    "Source",
    "Supervisor",
    "Token",
    "TokenEndpointError",
    "TokenError",
    "TransportError",
    "WorkforceUser",
    "WorkloadIdentity",
    "__version__",
    "cached",
    "child_spec",
    "default_source",
    "fetch",
    "fetch_async",
    "load_credentials",
    "project_id",
    "refresh",
    "running",
    "shutdown",
    "signer",
    "source_from_credentials",
    "start_link",
    "status",
    "stop",
    "subscribe",
    "universe_domain",
    "whereis",
]

if TYPE_CHECKING:
    from goth_actors._api import (
        cached,
        child_spec,
        fetch,
        refresh,
        shutdown,
        start_link,
        status,
        stop,
    )
    from goth_actors._async import fetch_async
    from goth_actors._errors import (
        AlreadyRegistered,
        AlreadyStarted,
        ChildAlreadyPresent,
        ChildNotFound,
        ChildRunning,
        ConfigError,
        FailedToStartChild,
        FetchTimeout,
        GothError,
        MaxRestartsExceeded,
        OtpError,
        ResponseTooLarge,
        RetriesExhausted,
        ServerNotFound,
        TokenEndpointError,
        TokenError,
        TransportError,
    )
    from goth_actors._events import Event, EventKind, subscribe
    from goth_actors._protocol import (
        HttpClient,
        HttpResponse,
        Impersonated,
        Metadata,
        RefreshToken,
        ServiceAccount,
        Signer,
        Source,
        Token,
        WorkforceUser,
        WorkloadIdentity,
        default_source,
        load_credentials,
        project_id,
        signer,
        source_from_credentials,
        universe_domain,
    )
    from goth_actors._running import running
    from goth_actors._server import Fetch, Refresh
    from goth_actors._status import ServerStatus
    from goth_actors.otp import ChildSpec, Supervisor, whereis
else:

    def __getattr__(name: str) -> Any:
        module = _EXPORTS.get(name)
        if module is None:
            raise AttributeError(f"module 'goth_actors' has no attribute {name!r}")
        value = getattr(importlib.import_module(module), name)
        globals()[name] = value  # later reads are plain attribute reads
        return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))

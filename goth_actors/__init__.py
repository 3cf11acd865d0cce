"""goth_actors: Google OAuth2 tokens kept fresh by supervised Pykka actors.

Start a token server per credential, then fetch its token by name from any thread::

    import goth_actors

    goth_actors.start_link(name="my_app", source=goth_actors.default_source())
    token = goth_actors.fetch("my_app")   # well under a microsecond once cached

Everything public is importable from here; the Google emulator for tests lives in
:mod:`goth_actors.testing`.
"""

import logging

from goth_actors._api import child_spec, fetch, shutdown, start_link, status, stop
from goth_actors._childspec import (
    ChildCounts,
    ChildInfo,
    ChildRestarts,
    ChildSpec,
    CountChildren,
    DeleteChild,
    RestartChild,
    StartChild,
    SupervisorEvent,
    TerminateChild,
    WhichChildren,
)
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
    ServerNotFound,
    TokenEndpointError,
    TokenError,
    TransportError,
)
from goth_actors._events import Event, subscribe
from goth_actors._external import WorkloadIdentity
from goth_actors._http import HttpClient, HttpResponse
from goth_actors._impersonated import Impersonated
from goth_actors._registry import (
    RegistryEntry,
    lookup,
    register,
    unregister,
    update_value,
    whereis,
)
from goth_actors._server import (
    Fetch,
    Refresh,
    RetriesExhausted,
    ServerStatus,
    TokenServer,
)
from goth_actors._sources import (
    Metadata,
    RefreshToken,
    ServiceAccount,
    Source,
    default_source,
    source_from_credentials,
)
from goth_actors._supervisor import Supervisor
from goth_actors._timers import ManualClock, Scheduler, TimerHandle, send_after
from goth_actors._token import Token

logging.getLogger("goth_actors").addHandler(logging.NullHandler())

__all__ = [
    "AlreadyRegistered",
    "AlreadyStarted",
    "ChildAlreadyPresent",
    "ChildCounts",
    "ChildInfo",
    "ChildNotFound",
    "ChildRestarts",
    "ChildRunning",
    "ChildSpec",
    "ConfigError",
    "CountChildren",
    "DeleteChild",
    "Event",
    "FailedToStartChild",
    "Fetch",
    "FetchTimeout",
    "GothError",
    "HttpClient",
    "HttpResponse",
    "Impersonated",
    "ManualClock",
    "MaxRestartsExceeded",
    "Metadata",
    "Refresh",
    "RefreshToken",
    "RegistryEntry",
    "RestartChild",
    "RetriesExhausted",
    "Scheduler",
    "ServerNotFound",
    "ServerStatus",
    "ServiceAccount",
    "Source",
    "StartChild",
    "Supervisor",
    "SupervisorEvent",
    "TerminateChild",
    "TimerHandle",
    "Token",
    "TokenEndpointError",
    "TokenError",
    "TokenServer",
    "TransportError",
    "WhichChildren",
    "WorkloadIdentity",
    "child_spec",
    "default_source",
    "fetch",
    "lookup",
    "register",
    "send_after",
    "shutdown",
    "source_from_credentials",
    "start_link",
    "status",
    "stop",
    "subscribe",
    "unregister",
    "update_value",
    "whereis",
]

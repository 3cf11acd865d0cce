"""OTP supervision for any Pykka actor: supervisors, child specs, links, names and timers.

Pykka has had no supervision since 2014 (pykka issue 42). This package brings Erlang/OTP's:
a :class:`Supervisor` starts children from :class:`ChildSpec` objects, learns at once how and
when each one dies, restarts it by its ``restart`` type and the ``strategy``, gives up after
``max_restarts`` within ``max_seconds``, and stops the tree in order. Children are plain
``pykka.ThreadingActor`` subclasses; they inherit nothing of ours. A name registry (Elixir's
``Registry``) finds actors by any hashable name, and one scheduler thread delivers every
``send_after`` timer of the process. :class:`FakeTime` drives both in tests.

It knows nothing of Google tokens and imports nothing of the token side: a Pykka user with no
interest in Google can use it alone. ``docs/supervision.md`` is the guide.

Example:
    >>> import pykka
    >>> from goth_actors.otp import ChildSpec, Supervisor
    >>> class Worker(pykka.ThreadingActor):
    ...     def on_receive(self, message):
    ...         return f"done: {message}"
    >>> sup = Supervisor.start([ChildSpec.for_actor(Worker, id="worker")])
    >>> worker = sup.proxy().which_children().get()[0].ref
    >>> worker.ask("job", timeout=5.0)
    'done: job'
    >>> _ = sup.stop()
"""

from goth_actors._base import ConfigError, GothError
from goth_actors.otp._childspec import ChildSpec, ChildType, Restart, Shutdown
from goth_actors.otp._errors import (
    AlreadyRegistered,
    ChildAlreadyPresent,
    ChildNotFound,
    ChildRunning,
    FailedToStartChild,
    MaxRestartsExceeded,
    OtpError,
)
from goth_actors.otp._fake_time import FakeTime
from goth_actors.otp._messages import (
    ChildCounts,
    ChildInfo,
    ChildRestarts,
    CountChildren,
    DeleteChild,
    RestartChild,
    StartChild,
    SupervisorEvent,
    SupervisorEventKind,
    TerminateChild,
    WhichChildren,
)
from goth_actors.otp._registry import (
    RegistryEntry,
    lookup,
    register,
    unregister,
    update_value,
    whereis,
)
from goth_actors.otp._supervisor import Strategy, Supervisor
from goth_actors.otp._timers import (
    Scheduler,
    TimerHandle,
    default_scheduler,
    send_after,
    stop_default_scheduler,
)

__all__ = [
    "AlreadyRegistered",
    "ChildAlreadyPresent",
    "ChildCounts",
    "ChildInfo",
    "ChildNotFound",
    "ChildRestarts",
    "ChildRunning",
    "ChildSpec",
    "ChildType",
    "ConfigError",
    "CountChildren",
    "DeleteChild",
    "FailedToStartChild",
    "FakeTime",
    "GothError",
    "MaxRestartsExceeded",
    "OtpError",
    "RegistryEntry",
    "Restart",
    "RestartChild",
    "Scheduler",
    "Shutdown",
    "StartChild",
    "Strategy",
    "Supervisor",
    "SupervisorEvent",
    "SupervisorEventKind",
    "TerminateChild",
    "TimerHandle",
    "WhichChildren",
    "default_scheduler",
    "lookup",
    "register",
    "send_after",
    "stop_default_scheduler",
    "unregister",
    "update_value",
    "whereis",
]

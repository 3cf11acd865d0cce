"""OTP supervision for any Pykka actor: supervisors, child specs, links, names and timers.

Pykka has had no supervision since 2014 (pykka issue 42). This package brings Erlang/OTP's:
a [`Supervisor`][goth_actors.otp.Supervisor] starts children from
[`ChildSpec`][goth_actors.otp.ChildSpec] objects, learns at once how and when each one dies,
restarts it by its ``restart`` type and the ``strategy``, gives up after ``max_restarts`` within
``max_seconds``, and stops the tree in order; a
[`DynamicSupervisor`][goth_actors.otp.DynamicSupervisor] takes children at run time, found by
ref, and stops them in parallel. The child-management calls are functions with timeouts
([`start_child`][goth_actors.otp.start_child],
[`terminate_child`][goth_actors.otp.terminate_child]...). Children are plain
``pykka.ThreadingActor`` subclasses; they inherit nothing of ours. A supervisor started inside a
supervised actor is linked to it. A name registry (Elixir's ``Registry``) finds actors by any
hashable name, and one scheduler thread delivers every
[`send_after`][goth_actors.otp.send_after] timer of the process.
[`FakeTime`][goth_actors.otp.FakeTime] drives both in tests. Root supervisors stop, each tree
in order, at interpreter exit; and importing this package makes
``pykka.ActorRegistry.stop_all()`` tree-aware (each supervisor stops its own children, in
order, instead of seeing them stop and restarting them).

It knows nothing of Google tokens and imports nothing of the token side: a Pykka user with no
interest in Google can use it alone. The guide is [goth_actors.otp in depth][otp-guide].

Examples:
    >>> import pykka
    >>> from goth_actors.otp import ChildSpec, Supervisor
    >>> class Worker(pykka.ThreadingActor):
    ...     def on_receive(self, message):
    ...         return f"done: {message}"
    >>> sup = Supervisor.start([ChildSpec.for_actor(Worker, id="worker")])
    >>> from goth_actors.otp import which_children
    >>> worker = which_children(sup)[0].ref
    >>> worker.ask("job", timeout=5.0)
    'done: job'
    >>> _ = sup.stop()
"""

from goth_actors._base import ConfigError, GothError
from goth_actors.otp._calls import (
    count_children,
    delete_child,
    restart_child,
    start_child,
    terminate_child,
    which_children,
)
from goth_actors.otp._childspec import ChildSpec, ChildType, Restart, RestartDelay, Shutdown
from goth_actors.otp._dynamic import DynamicSupervisor
from goth_actors.otp._errors import (
    AlreadyRegistered,
    ChildAlreadyPresent,
    ChildAlreadyStarted,
    ChildNotFound,
    ChildRunning,
    FailedToStartChild,
    LinkExit,
    MaxChildren,
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
    Name,
    RegistryEntry,
    lookup,
    register,
    unregister,
    update_value,
    whereis,
)
from goth_actors.otp._send_after import default_scheduler, send_after, stop_default_scheduler
from goth_actors.otp._supervisor import AutoShutdown, Strategy, Supervisor
from goth_actors.otp._timers import Scheduler, TimerHandle

__all__ = [
    "AlreadyRegistered",
    "AutoShutdown",
    "ChildAlreadyPresent",
    "ChildAlreadyStarted",
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
    "DynamicSupervisor",
    "FailedToStartChild",
    "FakeTime",
    "GothError",
    "LinkExit",
    "MaxChildren",
    "MaxRestartsExceeded",
    "Name",
    "OtpError",
    "RegistryEntry",
    "Restart",
    "RestartChild",
    "RestartDelay",
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
    "count_children",
    "default_scheduler",
    "delete_child",
    "lookup",
    "register",
    "restart_child",
    "send_after",
    "start_child",
    "stop_default_scheduler",
    "terminate_child",
    "unregister",
    "update_value",
    "whereis",
    "which_children",
]

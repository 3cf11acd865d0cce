"""What goes in and out of a supervisor: child info, counts, events, and its plain messages.

- `ChildInfo` and `ChildCounts` are what ``which_children()`` and ``count_children()``
  return.
- `SupervisorEvent` is what a supervisor tells its ``on_event`` observer.
- `StartChild`, `TerminateChild`... are the plain messages of the child-management API, for
  callers that ``ask`` instead of using the functions or the supervisor's proxy.
"""

from __future__ import annotations

from collections.abc import Hashable
from dataclasses import dataclass
from typing import Any, Literal, NamedTuple

import pykka

from goth_actors.otp._childspec import ChildSpec, ChildType

__all__ = [
    "ChildCounts",
    "ChildInfo",
    "ChildRestarts",
    "CountChildren",
    "DeleteChild",
    "RestartChild",
    "StartChild",
    "SupervisorEvent",
    "SupervisorEventKind",
    "TerminateChild",
    "WhichChildren",
]


class ChildInfo(NamedTuple):
    """One row of [`which_children`][goth_actors.otp.which_children]: ``(id, ref, type)``.

    Attributes:
        id: The child's id (from its spec; a
            [`DynamicSupervisor`][goth_actors.otp.DynamicSupervisor] does not require ids to be
            unique and finds its children by ``ref``).
        ref: The running child's ``ActorRef``, or ``None`` if it is not running.
        type: ``"worker"`` or ``"supervisor"``.

    Examples:
        >>> ChildInfo("db", None, "worker")
        ChildInfo(id='db', ref=None, type='worker')
    """

    id: Hashable
    ref: pykka.ActorRef[Any] | None
    type: ChildType


@dataclass(frozen=True, slots=True)
class ChildCounts:
    """What [`count_children`][goth_actors.otp.count_children] returns (OTP's ``count_children/1``).

    Attributes:
        specs: All children, running or not.
        active: Children that are running.
        supervisors: Children of type supervisor, running or not.
        workers: Children of type worker, running or not.

    Examples:
        >>> ChildCounts(specs=2, active=1, supervisors=0, workers=2).active
        1
    """

    specs: int
    active: int
    supervisors: int
    workers: int


SupervisorEventKind = Literal[
    "child_started",
    "child_exited",
    "child_restarted",
    "child_start_failed",
    "shutdown_error",
    "supervisor_gave_up",
    "supervisor_exited",
]
"""The kinds of [`SupervisorEvent`][goth_actors.otp.SupervisorEvent]."""


@dataclass(frozen=True, slots=True)
class SupervisorEvent:
    """What a supervisor tells its ``on_event`` observer.

    Its ``kind`` is one of:

    - ``child_started``: a child started (at supervisor start, ``start_child``,
      ``restart_child``);
    - ``child_exited``: a child exited on its own; ``reason`` is ``None`` for a normal stop,
      else the exception. Children the supervisor stops itself are not reported;
    - ``child_restarted``: the supervisor restarted a child; ``restarts`` counts them;
    - ``child_start_failed``: a restart failed (``reason``); it is retried after a backoff,
      and each retry counts as a restart;
    - ``shutdown_error``: a child the supervisor stopped (``terminate_child``, a restart of
      its siblings, the supervisor's own exit) crashed on its way out, in ``on_stop``, or
      just before (OTP's ``shutdown_error``); it is not restarted;
    - ``supervisor_gave_up``: too many restarts; ``reason`` is the
      [`MaxRestartsExceeded`][goth_actors.otp.MaxRestartsExceeded];
    - ``supervisor_exited``: always the last event; ``reason`` is ``None`` after a normal
      stop (an ``auto_shutdown`` included), ``MaxRestartsExceeded`` after giving up,
      [`FailedToStartChild`][goth_actors.otp.FailedToStartChild] if it never started, or the
      internal error it crashed with (a ``BaseException`` raised in the supervisor, such as
      ``KeyboardInterrupt``, arrives as a ``RuntimeError`` caused by it).
      A parent supervisor sees the same reason in its ``child_exited``.

    An observer that raises (anything, ``KeyboardInterrupt`` included) is logged and ignored.

    Attributes:
        kind: One of the kinds above.
        supervisor: The supervisor's ref.
        child_id: The child's id (``None`` for the supervisor's own events).
        ref: The child's ref, when there is one.
        reason: The exit or failure reason, when there is one.
        restarts: How many times the supervisor has restarted this child.

    Examples:
        >>> from goth_actors.otp import Supervisor
        >>> events = []
        >>> sup = Supervisor.start(on_event=events.append)
        >>> _ = sup.stop()
        >>> [(e.kind, e.reason) for e in events]
        [('supervisor_exited', None)]
    """

    kind: SupervisorEventKind
    supervisor: pykka.ActorRef[Any]
    child_id: Hashable = None
    ref: pykka.ActorRef[Any] | None = None
    reason: BaseException | None = None
    restarts: int = 0


@dataclass(frozen=True, slots=True)
class StartChild:
    """Asks a supervisor to ``start_child(spec)``; the reply is the child's ``ActorRef``.

    The same as [`start_child`][goth_actors.otp.start_child], as a plain message, for callers
    that ``ask`` themselves. The example shows every such message.

    Attributes:
        spec: The child's spec.

    Examples:
        >>> import pykka
        >>> from goth_actors.otp import Supervisor
        >>> sup = Supervisor.start()
        >>> from goth_actors.otp import ChildSpec, ChildInfo, WhichChildren, ChildRestarts
        >>> from goth_actors.otp import TerminateChild, CountChildren, RestartChild, DeleteChild
        >>> spec = ChildSpec.for_actor(pykka.ThreadingActor, id="w")
        >>> ref = sup.ask(StartChild(spec), timeout=5.0)
        >>> sup.ask(WhichChildren(), timeout=5.0) == [ChildInfo("w", ref, "worker")]
        True
        >>> sup.ask(ChildRestarts("w"), timeout=5.0)
        0
        >>> sup.ask(TerminateChild("w"), timeout=5.0)
        >>> sup.ask(CountChildren(), timeout=5.0)
        ChildCounts(specs=1, active=0, supervisors=0, workers=1)
        >>> ref = sup.ask(RestartChild("w"), timeout=5.0)
        >>> sup.ask(TerminateChild("w"), timeout=5.0); sup.ask(DeleteChild("w"), timeout=5.0)
        >>> _ = sup.stop()
    """

    spec: ChildSpec


@dataclass(frozen=True, slots=True)
class TerminateChild:
    """Asks a supervisor to ``terminate_child(id)`` (the child's id, or its ``ActorRef``).

    ``sup.ask(TerminateChild("db"), timeout=5.0)``: see
    [`terminate_child`][goth_actors.otp.terminate_child], and
    [`StartChild`][goth_actors.otp.StartChild] for an example.

    Attributes:
        id: The child's id, or its ``ActorRef``.
    """

    id: Hashable


@dataclass(frozen=True, slots=True)
class RestartChild:
    """Asks a supervisor to ``restart_child(id)``; the reply is the new ``ActorRef``.

    ``ref = sup.ask(RestartChild("db"), timeout=5.0)``: see
    [`restart_child`][goth_actors.otp.restart_child], and
    [`StartChild`][goth_actors.otp.StartChild] for an example.

    Attributes:
        id: The child's id.
    """

    id: Hashable


@dataclass(frozen=True, slots=True)
class DeleteChild:
    """Asks a supervisor to ``delete_child(id)``.

    ``sup.ask(DeleteChild("db"), timeout=5.0)``: see
    [`delete_child`][goth_actors.otp.delete_child], and [`StartChild`][goth_actors.otp.StartChild]
    for an example.

    Attributes:
        id: The child's id.
    """

    id: Hashable


@dataclass(frozen=True, slots=True)
class WhichChildren:
    """Asks a supervisor for ``which_children()``.

    ``for id, ref, type in sup.ask(WhichChildren(), timeout=5.0): ...``: see
    [`which_children`][goth_actors.otp.which_children], and
    [`StartChild`][goth_actors.otp.StartChild] for an example.
    """


@dataclass(frozen=True, slots=True)
class CountChildren:
    """Asks a supervisor for ``count_children()``.

    ``sup.ask(CountChildren(), timeout=5.0).active``: see
    [`count_children`][goth_actors.otp.count_children], and
    [`StartChild`][goth_actors.otp.StartChild] for an example.
    """


@dataclass(frozen=True, slots=True)
class ChildRestarts:
    """Asks a supervisor how many times it restarted a child (its ``child_restarts(id)``).

    ``sup.ask(ChildRestarts("db"), timeout=5.0)``: see
    [`StartChild`][goth_actors.otp.StartChild] for an example.

    Attributes:
        id: The child's id (or, for a ``DynamicSupervisor``, its ``ActorRef``).
    """

    id: Hashable

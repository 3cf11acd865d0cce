"""What goes in and out of a supervisor: child info, counts, events, and its plain messages.

- :class:`ChildInfo` and :class:`ChildCounts` are what ``which_children()`` and
  ``count_children()`` return.
- :class:`SupervisorEvent` is what a supervisor tells its ``on_event`` observer.
- :class:`StartChild`, :class:`TerminateChild`... are the plain messages of the
  child-management API, for callers that ``ask`` instead of using the supervisor's proxy.
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
    """One row of ``which_children()``: ``(id, ref, type)``.

    Attributes:
        id: The child's id (from its spec; a ``DynamicSupervisor`` does not require ids to be
            unique and finds its children by ``ref``).
        ref: The running child's ``ActorRef``, or ``None`` if it is not running.
        type: ``"worker"`` or ``"supervisor"``.

    Example:
        >>> ChildInfo("db", None, "worker")
        ChildInfo(id='db', ref=None, type='worker')
    """

    id: Hashable
    ref: pykka.ActorRef[Any] | None
    type: ChildType


@dataclass(frozen=True, slots=True)
class ChildCounts:
    """What ``count_children()`` returns, as OTP's ``count_children/1``.

    Attributes:
        specs: All children, running or not.
        active: Children that are running.
        supervisors: Children of type supervisor, running or not.
        workers: Children of type worker, running or not.

    Example:
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
"""The kinds of :class:`SupervisorEvent`."""


@dataclass(frozen=True, slots=True)
class SupervisorEvent:
    """What a supervisor tells its ``on_event`` observer.

    Kinds:

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
    - ``supervisor_gave_up``: too many restarts; ``reason`` is the ``MaxRestartsExceeded``;
    - ``supervisor_exited``: always the last event; ``reason`` is ``None`` after a normal
      stop, ``MaxRestartsExceeded`` after giving up, ``FailedToStartChild`` if it never
      started, or the internal error it crashed with (a ``BaseException`` raised in the
      supervisor, such as ``KeyboardInterrupt``, arrives as a ``RuntimeError`` caused by it).
      A parent supervisor sees the same reason in its ``child_exited``.

    An observer that raises (anything, ``KeyboardInterrupt`` included) is logged and ignored.

    Attributes:
        kind: One of the kinds above.
        supervisor: The supervisor's ref.
        child_id: The child's id (``None`` for the supervisor's own events).
        ref: The child's ref, when there is one.
        reason: The exit or failure reason, when there is one.
        restarts: How many times the supervisor has restarted this child.

    Example:
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
    """Ask a supervisor to ``start_child(spec)``; the reply is the child's ``ActorRef``.

    Example:
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
    """Ask a supervisor to ``terminate_child(id)`` (the child's id, or its ``ActorRef``).

    Example: ``sup.ask(TerminateChild("db"), timeout=5.0)``; see :class:`StartChild`.
    """

    id: Hashable


@dataclass(frozen=True, slots=True)
class RestartChild:
    """Ask a supervisor to ``restart_child(id)``; the reply is the new ``ActorRef``.

    Example: ``ref = sup.ask(RestartChild("db"), timeout=5.0)``; see :class:`StartChild`.
    """

    id: Hashable


@dataclass(frozen=True, slots=True)
class DeleteChild:
    """Ask a supervisor to ``delete_child(id)``.

    Example: ``sup.ask(DeleteChild("db"), timeout=5.0)``; see :class:`StartChild`.
    """

    id: Hashable


@dataclass(frozen=True, slots=True)
class WhichChildren:
    """Ask a supervisor for ``which_children()``.

    Example: ``for id, ref, type in sup.ask(WhichChildren(), timeout=5.0): ...``
    """


@dataclass(frozen=True, slots=True)
class CountChildren:
    """Ask a supervisor for ``count_children()``.

    Example: ``sup.ask(CountChildren(), timeout=5.0).active``; see :class:`StartChild`.
    """


@dataclass(frozen=True, slots=True)
class ChildRestarts:
    """Ask a supervisor for ``child_restarts(id)``, how often it restarted that child.

    Example: ``sup.ask(ChildRestarts("db"), timeout=5.0)``; see :class:`StartChild`.
    """

    id: Hashable

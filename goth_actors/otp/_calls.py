"""The child-management calls as functions with timeouts, for both kinds of supervisor.

Elixir's ``Supervisor.start_child(sup, spec)``, ``terminate_child``, ``restart_child``,
``delete_child``, ``which_children`` and ``count_children``, here with a ``timeout`` (default
5 s, OTP's default call timeout; ``None`` waits for ever). Each one asks the supervisor and
returns its answer or raises its error: unlike a proxy call whose ``.get()`` is forgotten, an
error cannot go unseen. ``sup`` is the supervisor's ``ActorRef``, or a name it was started
with (``name=``; a bare name or a :class:`~goth_actors.otp.Name`).

Every call raises, besides its own errors:

- ``pykka.ActorDeadError``: no supervisor there (dead, or no live actor has that name), or
  it stopped before answering;
- ``pykka.Timeout``: no answer within ``timeout``. The call is still handled later.
"""

from __future__ import annotations

from collections.abc import Hashable
from typing import Any

import pykka

from goth_actors._base import check_seconds
from goth_actors.otp._childspec import ChildSpec
from goth_actors.otp._messages import (
    ChildCounts,
    ChildInfo,
    CountChildren,
    DeleteChild,
    RestartChild,
    StartChild,
    TerminateChild,
    WhichChildren,
)
from goth_actors.otp._registry import Name, whereis

__all__ = [
    "count_children",
    "delete_child",
    "restart_child",
    "start_child",
    "terminate_child",
    "which_children",
]

Sup = pykka.ActorRef[Any] | Name | Hashable
"""A supervisor: its ``ActorRef``, or a name it holds."""


def _call(sup: Sup, message: object, timeout: float | None) -> Any:
    if timeout is not None:
        timeout = check_seconds("timeout", timeout, error=ValueError)
    ref = sup if isinstance(sup, pykka.ActorRef) else whereis(_name(sup))
    if ref is None:
        raise pykka.ActorDeadError(f"no live supervisor is named {sup!r}")
    return ref.ask(message, timeout=timeout)


def _name(sup: Name | Hashable) -> Hashable:
    return sup.name if isinstance(sup, Name) else sup


def start_child(sup: Sup, spec: ChildSpec, *, timeout: float | None = 5.0) -> Any:
    """Start a child under ``sup``; return its ``ActorRef`` (``None``: its start said "not now").

    Raises:
        ChildAlreadyStarted: A ``Supervisor`` runs a child with this id (its ``ref`` attached).
        ChildAlreadyPresent: A ``Supervisor`` has a stopped child with this id.
        MaxChildren: A ``DynamicSupervisor`` has its ``max_children``.
        FailedToStartChild: The child failed to start (it was not added).

    Example:
        >>> import pykka
        >>> from goth_actors.otp import DynamicSupervisor
        >>> sup = DynamicSupervisor.start()
        >>> ref = start_child(sup, ChildSpec.for_actor(pykka.ThreadingActor), timeout=5.0)
        >>> ref.is_alive()
        True
        >>> _ = sup.stop()
    """
    return _call(sup, StartChild(spec), timeout)


def terminate_child(sup: Sup, child: Hashable, *, timeout: float | None = 5.0) -> None:
    """Stop a child of ``sup``, given its id or its ``ActorRef``, within its ``shutdown``.

    On a ``Supervisor`` the spec stays (unless temporary); a ``DynamicSupervisor`` forgets
    the child. Either way its registry names are unregistered and its ``on_final_exit`` runs.

    Raises:
        ChildNotFound: No such child.

    Example: see :func:`count_children`.
    """
    _call(sup, TerminateChild(child), timeout)


def restart_child(sup: Sup, id: Hashable, *, timeout: float | None = 5.0) -> Any:
    """Start again a stopped child of a ``Supervisor``; return its new ``ActorRef``.

    Raises:
        ChildNotFound: No such child.
        ChildRunning: It is running.
        FailedToStartChild: It failed to start (it stays stopped).
        TypeError: ``sup`` is a ``DynamicSupervisor`` (it forgets stopped children).
    """
    return _call(sup, RestartChild(id), timeout)


def delete_child(sup: Sup, id: Hashable, *, timeout: float | None = 5.0) -> None:
    """Remove the spec of a stopped child of a ``Supervisor``.

    Raises:
        ChildNotFound: No such child.
        ChildRunning: It is running.
        TypeError: ``sup`` is a ``DynamicSupervisor``.
    """
    _call(sup, DeleteChild(id), timeout)


def which_children(sup: Sup, *, timeout: float | None = 5.0) -> list[ChildInfo]:
    """``ChildInfo(id, ref or None, type)`` for every child of ``sup``, in start order."""
    result: list[ChildInfo] = _call(sup, WhichChildren(), timeout)
    return result


def count_children(sup: Sup, *, timeout: float | None = 5.0) -> ChildCounts:
    """``ChildCounts(specs, active, supervisors, workers)`` for ``sup``.

    Example:
        >>> import pykka
        >>> from goth_actors.otp import Supervisor
        >>> sup = Supervisor.start([ChildSpec.for_actor(pykka.ThreadingActor, id="a")])
        >>> terminate_child(sup, "a")
        >>> count_children(sup)
        ChildCounts(specs=1, active=0, supervisors=0, workers=1)
        >>> delete_child(sup, "a"); which_children(sup)
        []
        >>> _ = sup.stop()
    """
    result: ChildCounts = _call(sup, CountChildren(), timeout)
    return result

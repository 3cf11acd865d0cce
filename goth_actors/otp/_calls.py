"""The child-management calls as functions with timeouts, for both kinds of supervisor.

Elixir's ``Supervisor.start_child(sup, spec)``, ``terminate_child``, ``restart_child``,
``delete_child``, ``which_children`` and ``count_children``, here with a ``timeout`` (default
5 s, OTP's default call timeout; ``None`` waits for ever). Each one asks the supervisor and
returns its answer or raises its error: unlike a proxy call whose ``.get()`` is forgotten, an
error cannot go unseen. ``sup`` is the supervisor's ``ActorRef``, or a name it was started
with (``name=``; a bare name or a `Name`).

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
    """Starts a child under ``sup`` and returns its ``ActorRef`` (Elixir's ``start_child/2``).

    Args:
        sup: The supervisor's ``ActorRef``, or a name it was started with (``name=``; a bare
            name or a [`Name`][goth_actors.otp.Name]).
        spec: The child's spec.
        timeout: Seconds to wait for the supervisor's answer (default 5.0, OTP's default call
            timeout; ``None`` waits for ever).

    Returns:
        The child's ``ActorRef``, or ``None`` if its start function said "not now" (OTP's
        ``ignore``).

    Raises:
        ChildAlreadyStarted: A [`Supervisor`][goth_actors.otp.Supervisor] runs a child with this
            id (its ``ref`` attached).
        ChildAlreadyPresent: A [`Supervisor`][goth_actors.otp.Supervisor] has a stopped child
            with this id.
        MaxChildren: A [`DynamicSupervisor`][goth_actors.otp.DynamicSupervisor] has its
            ``max_children``.
        FailedToStartChild: The child failed to start (it was not added).
        ConfigError: ``spec`` is significant, and the supervisor's ``auto_shutdown`` is
            ``"never"`` (a ``DynamicSupervisor`` refuses every significant child).
        pykka.ActorDeadError: No supervisor there (dead, or no live actor has that name), or it
            stopped before answering.
        pykka.Timeout: No answer within ``timeout``; the call is still handled later.

    Examples:
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
    """Stops a child of ``sup``, given its id or its ``ActorRef``, within its ``shutdown``.

    A pending retry of a failed restart is cancelled. On a
    [`Supervisor`][goth_actors.otp.Supervisor] the spec stays (unless temporary); a
    [`DynamicSupervisor`][goth_actors.otp.DynamicSupervisor] forgets the child (given a spec id,
    it stops every child started from a spec with that id). Either way the child's registry
    names are unregistered and its ``on_final_exit`` runs. See
    [`count_children`][goth_actors.otp.count_children] for an example.

    Args:
        sup: The supervisor's ``ActorRef``, or a name it was started with.
        child: The child's id, or its ``ActorRef``.
        timeout: Seconds to wait for the supervisor's answer (default 5.0; ``None`` waits for
            ever). The supervisor waits up to the child's ``shutdown`` before it answers.

    Raises:
        ChildNotFound: No such child.
        pykka.ActorDeadError: No supervisor there, or it stopped before answering.
        pykka.Timeout: No answer within ``timeout``; the call is still handled later.
    """
    _call(sup, TerminateChild(child), timeout)


def restart_child(sup: Sup, id: Hashable, *, timeout: float | None = 5.0) -> Any:
    """Starts again a stopped child of a [`Supervisor`][goth_actors.otp.Supervisor].

    Args:
        sup: The supervisor's ``ActorRef``, or a name it was started with.
        id: The child's id.
        timeout: Seconds to wait for the supervisor's answer (default 5.0; ``None`` waits for
            ever).

    Returns:
        The child's new ``ActorRef``, or ``None`` if its start function said "not now".

    Raises:
        ChildNotFound: No such child.
        ChildRunning: It is running.
        FailedToStartChild: It failed to start (it stays stopped).
        TypeError: ``sup`` is a [`DynamicSupervisor`][goth_actors.otp.DynamicSupervisor] (it
            forgets stopped children).
        pykka.ActorDeadError: No supervisor there, or it stopped before answering.
        pykka.Timeout: No answer within ``timeout``; the call is still handled later.
    """
    return _call(sup, RestartChild(id), timeout)


def delete_child(sup: Sup, id: Hashable, *, timeout: float | None = 5.0) -> None:
    """Removes the spec of a stopped child of a [`Supervisor`][goth_actors.otp.Supervisor].

    Args:
        sup: The supervisor's ``ActorRef``, or a name it was started with.
        id: The child's id.
        timeout: Seconds to wait for the supervisor's answer (default 5.0; ``None`` waits for
            ever).

    Raises:
        ChildNotFound: No such child.
        ChildRunning: It is running.
        TypeError: ``sup`` is a [`DynamicSupervisor`][goth_actors.otp.DynamicSupervisor].
        pykka.ActorDeadError: No supervisor there, or it stopped before answering.
        pykka.Timeout: No answer within ``timeout``; the call is still handled later.
    """
    _call(sup, DeleteChild(id), timeout)


def which_children(sup: Sup, *, timeout: float | None = 5.0) -> list[ChildInfo]:
    """Returns ``ChildInfo(id, ref or None, type)`` for every child of ``sup``, in start order.

    Args:
        sup: The supervisor's ``ActorRef``, or a name it was started with.
        timeout: Seconds to wait for the supervisor's answer (default 5.0; ``None`` waits for
            ever).

    Returns:
        One [`ChildInfo`][goth_actors.otp.ChildInfo] per child.

    Raises:
        pykka.ActorDeadError: No supervisor there, or it stopped before answering.
        pykka.Timeout: No answer within ``timeout``; the call is still handled later.
    """
    result: list[ChildInfo] = _call(sup, WhichChildren(), timeout)
    return result


def count_children(sup: Sup, *, timeout: float | None = 5.0) -> ChildCounts:
    """Returns ``ChildCounts(specs, active, supervisors, workers)`` for ``sup``.

    Args:
        sup: The supervisor's ``ActorRef``, or a name it was started with.
        timeout: Seconds to wait for the supervisor's answer (default 5.0; ``None`` waits for
            ever).

    Returns:
        The counts, as OTP's ``count_children/1``: a [`ChildCounts`][goth_actors.otp.ChildCounts].

    Raises:
        pykka.ActorDeadError: No supervisor there, or it stopped before answering.
        pykka.Timeout: No answer within ``timeout``; the call is still handled later.

    Examples:
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

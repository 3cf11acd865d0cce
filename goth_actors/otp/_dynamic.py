"""``DynamicSupervisor``: Elixir's ``DynamicSupervisor`` (OTP's ``simple_one_for_one``).

A supervisor that starts with no children and takes them at run time, found by their
``ActorRef`` rather than an id: one per tenant, per connection, per job. Each child is
restarted alone (``one_for_one``) by its restart type; a child that will not come back is
forgotten, spec and all. At most ``max_children`` run at once. When the supervisor stops,
its children are all asked to stop at once and waited for in parallel, each within its own
``shutdown`` (Elixir's and OTP's behaviour): stopping 10,000 children takes the time of the
slowest, not the sum.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Hashable
from typing import Any, ClassVar

import pykka

from goth_actors._base import ConfigError
from goth_actors.otp._children import Keeper, check_intensity
from goth_actors.otp._childspec import ChildSpec
from goth_actors.otp._errors import ChildNotFound, MaxChildren
from goth_actors.otp._fake_time import FakeTime  # a runtime annotation
from goth_actors.otp._messages import SupervisorEvent
from goth_actors.otp._restarts import Child as _Child
from goth_actors.otp._roots import remember_root

__all__ = ["DynamicSupervisor"]


class DynamicSupervisor(Keeper):
    """A supervisor of children started at run time, found by ref (Elixir's DynamicSupervisor).

    It starts with no children and takes them at run time: one per tenant, per connection,
    per job. Each child is restarted alone (``one_for_one``) by its restart type; a child that
    will not come back is forgotten, spec and all. When the supervisor stops, its children are
    all asked to stop at once and waited for in parallel, each within its own ``shutdown``
    (Elixir's and OTP's behaviour): stopping 10,000 children takes the time of the slowest,
    not the sum.

    Start one with [`start`][goth_actors.otp.DynamicSupervisor.start]; add children with
    [`start_child`][goth_actors.otp.start_child] (or the
    [`StartChild`][goth_actors.otp.StartChild] message, or the proxy); stop one with
    [`terminate_child`][goth_actors.otp.terminate_child] and its ref. The child-management
    functions work as on a [`Supervisor`][goth_actors.otp.Supervisor], except that
    ``restart_child`` and ``delete_child`` do not apply (a stopped child is forgotten: start it
    again).

    Examples:
        >>> import pykka
        >>> from goth_actors.otp import ChildSpec, start_child, terminate_child, count_children
        >>> class Tenant(pykka.ThreadingActor):
        ...     def __init__(self, number):
        ...         super().__init__()
        ...         self.number = number
        >>> tenants = DynamicSupervisor.start(max_children=1000)
        >>> ref = start_child(tenants, ChildSpec.for_actor(Tenant, 42, id=("tenant", 42)))
        >>> count_children(tenants).active
        1
        >>> terminate_child(tenants, ref)
        >>> count_children(tenants).specs
        0
        >>> _ = tenants.stop()
    """

    _concurrent_shutdown: ClassVar[bool] = True

    @classmethod
    def start(
        cls,
        *,
        max_children: int | None = None,
        max_restarts: int = 3,
        max_seconds: float = 5.0,
        on_event: Callable[[SupervisorEvent], None] | None = None,
        time: FakeTime | None = None,
        name: Hashable | None = None,
        link: bool = True,
    ) -> pykka.ActorRef[DynamicSupervisor]:
        """Starts a dynamic supervisor, with no children.

        Args:
            max_children: At most this many children at once (default ``None``: no limit);
                ``start_child`` beyond it raises [`MaxChildren`][goth_actors.otp.MaxChildren].
                A child waiting for a retry of its failed restart counts.
            max_restarts: Restarts allowed within ``max_seconds`` (default 3), counted over all
                children; one more and the supervisor stops them all and exits with
                ``MaxRestartsExceeded``.
            max_seconds: The intensity window, in seconds (default 5.0).
            on_event: As for [`Supervisor.start`][goth_actors.otp.Supervisor.start].
            time: As for [`Supervisor.start`][goth_actors.otp.Supervisor.start].
            name: As for [`Supervisor.start`][goth_actors.otp.Supervisor.start].
            link: As for [`Supervisor.start`][goth_actors.otp.Supervisor.start].

        Returns:
            The supervisor's ``ActorRef``.

        Raises:
            ConfigError: If an option is invalid, naming it.
            AlreadyRegistered: If ``name`` is held by another live actor.
        """
        return super().start(
            max_children=max_children,
            max_restarts=max_restarts,
            max_seconds=max_seconds,
            on_event=on_event,
            time=time,
            name=name,
            link=link,
        )

    def __init__(
        self,
        *,
        max_children: int | None = None,
        max_restarts: int = 3,
        max_seconds: float = 5.0,
        on_event: Callable[[SupervisorEvent], None] | None = None,
        time: FakeTime | None = None,
        name: Hashable | None = None,
        link: bool = True,
    ) -> None:
        _check_max_children(max_children)
        check_intensity(max_restarts, max_seconds, on_event, time)
        super().__init__(
            max_restarts=max_restarts,
            max_seconds=max_seconds,
            on_event=on_event,
            time=time,
            name=name,
            link=link,
        )
        self._max_children = max_children

    @classmethod
    def _goth_actors_prepare(
        cls, args: tuple[Any, ...], kwargs: dict[str, Any]
    ) -> tuple[tuple[Any, ...], dict[str, Any]]:
        """For ``ChildSpec.for_actor``: checks the options when the spec is built."""
        bound = inspect.signature(cls.start).bind(*args, **kwargs)
        bound.apply_defaults()  # the defaults are start's own: not written twice
        options = bound.arguments
        _check_max_children(options["max_children"])
        check_intensity(
            options["max_restarts"], options["max_seconds"], options["on_event"], options["time"]
        )
        return args, kwargs

    def on_start(self) -> None:
        self._goth_actors_running()
        link = self._goth_actors_link
        if link is None:
            remember_root(self.actor_ref, self._done)
        else:
            link.set_started()

    # -- the child-management API ------------------------------------------------------------

    def start_child(self, spec: ChildSpec) -> pykka.ActorRef[Any] | None:
        """Starts a child from ``spec``; returns its ref (``None`` if its start said "not now").

        The spec's ``id`` is kept (it shows in ``which_children``) but need not be unique.

        Raises:
            MaxChildren: If the supervisor has ``max_children`` children (running, or waiting
                for a retry of a failed restart).
            FailedToStartChild: If it failed to start (it is then not added).
            ConfigError: If ``spec`` is significant: a ``DynamicSupervisor`` has no
                ``auto_shutdown``.
        """
        if not isinstance(spec, ChildSpec):
            msg = f"start_child takes a ChildSpec, not {type(spec).__name__}"
            raise TypeError(msg)
        if spec.significant:
            raise ConfigError("significant", "a DynamicSupervisor has no auto_shutdown")
        if self._max_children is not None and len(self._children) >= self._max_children:
            raise MaxChildren(self._max_children)
        child = _Child(spec)
        try:
            ref = self._start(child, "child_started")
        except BaseException:
            self._final(child)
            raise
        if ref is None:
            self._final(child)
            return None
        self._add(child)
        return ref

    def terminate_child(self, id: Hashable) -> None:
        """Stops a child, found by its ``ActorRef``, and forgets it.

        Also takes a spec id: every child started from a spec with that id is terminated
        (an extension for callers that keep ids unique, as the token servers' root does).

        Raises:
            ChildNotFound: If no child has this ref (or id).
        """
        for child in self._find(id):
            self._terminate(child)
            self._remove(child)
            self._final(child)

    def restart_child(self, id: Hashable) -> pykka.ActorRef[Any] | None:  # noqa: ARG002
        """Not for a ``DynamicSupervisor``: a stopped child is forgotten; start it again."""
        msg = "a DynamicSupervisor forgets stopped children: start_child again instead"
        raise TypeError(msg)

    def delete_child(self, id: Hashable) -> None:  # noqa: ARG002
        """Not for a ``DynamicSupervisor``: ``terminate_child`` already forgets the child."""
        msg = "a DynamicSupervisor forgets stopped children: terminate_child is enough"
        raise TypeError(msg)

    def child_restarts(self, id: Hashable) -> int:
        """Returns how many times the child with this ref (or id) was restarted.

        Raises:
            ChildNotFound: If no child has this ref (or id).
        """
        return self._find(id)[0].restarts

    def _find(self, id: Hashable) -> list[_Child]:
        if isinstance(id, pykka.ActorRef):
            child = self._by_urn.get(id.actor_urn)
            found = [] if child is None else [child]
        else:
            found = [c for c in self._children if c.spec.id == id]
        if not found:
            msg = f"no child {id!r}"
            raise ChildNotFound(msg)
        return found

    def _forgets(self, child: _Child) -> bool:  # noqa: ARG002
        return True


def _check_max_children(max_children: object) -> None:
    if max_children is not None and (
        not isinstance(max_children, int) or isinstance(max_children, bool) or max_children < 0
    ):
        raise ConfigError("max_children", f"must be an int >= 0 or None, not {max_children!r}")

"""``Supervisor``: Erlang's ``supervisor`` as a Pykka actor, for any Pykka actor.

Vocabulary and defaults are OTP's: strategies one_for_one / one_for_all / rest_for_one,
restart types permanent / transient / temporary, intensity ``max_restarts`` (3) within
``max_seconds`` (5.0), per-child ``shutdown``, significant children and ``auto_shutdown``.
Children have ids, unique within the supervisor. What it shares with ``DynamicSupervisor``
(links, restarts, retries, stops) is in ``_children.py``; ``docs/supervision.md`` is the guide.

A supervisor crashes, and is reported as crashed, on any error of its own; a
``BaseException`` raised in it (say, a ``KeyboardInterrupt`` from a ``clock``) is turned into a
``RuntimeError`` crash of that one supervisor (the ``Linked`` base, in ``_hooks.py``, that it
shares with hooked workers). An ``on_event`` observer that raises anything is logged
and ignored. Root supervisors stop, in order, at interpreter exit (``_roots.py``).
"""

from __future__ import annotations

import copy
import inspect
import logging
import threading
from collections.abc import Callable, Hashable, Iterable
from typing import Any, Literal, Self, get_args

import pykka

from goth_actors._base import ConfigError
from goth_actors.otp._children import Keeper, check_intensity
from goth_actors.otp._childspec import ChildSpec
from goth_actors.otp._errors import (
    ChildAlreadyPresent,
    ChildAlreadyStarted,
    ChildNotFound,
    ChildRunning,
)
from goth_actors.otp._fake_time import FakeTime  # a runtime annotation
from goth_actors.otp._hooks import disown
from goth_actors.otp._messages import SupervisorEvent
from goth_actors.otp._restarts import Child as _Child
from goth_actors.otp._roots import remember_root

__all__ = ["AutoShutdown", "Strategy", "Supervisor"]

logger = logging.getLogger("goth_actors.otp")

Strategy = Literal["one_for_one", "one_for_all", "rest_for_one"]
"""Which children a supervisor restarts when one dies."""

AutoShutdown = Literal["never", "any_significant", "all_significant"]
"""When a supervisor shuts itself down after its significant children exit (OTP 24)."""


class _StartSignal:
    def __init__(self) -> None:
        self.event = threading.Event()
        self.error: BaseException | None = None
        self.thread: threading.Thread | None = None


class Supervisor(Keeper):
    """A Pykka actor that starts children, restarts them when they die, and stops them in order.

    Start one with [`start`][goth_actors.otp.Supervisor.start]. Talk to it with the package's
    functions ([`start_child(sup, spec)`][goth_actors.otp.start_child]...), through its proxy
    (``sup.proxy().start_child(spec).get()``) or with plain messages
    (``sup.ask(StartChild(spec), timeout=5)``). Stop it with ``sup.stop()``: children stop in
    reverse start order, each within its ``shutdown``.

    Examples:
        >>> import pykka
        >>> class Worker(pykka.ThreadingActor):
        ...     def on_receive(self, message):
        ...         if message == "crash":
        ...             raise RuntimeError("boom")
        >>> sup = Supervisor.start([ChildSpec.for_actor(Worker, id="worker")])
        >>> [(c.id, c.type) for c in sup.proxy().which_children().get()]
        [('worker', 'worker')]
        >>> _ = sup.stop()
    """

    @classmethod
    def start(
        cls,
        children: Iterable[ChildSpec] = (),
        *,
        strategy: Strategy = "one_for_one",
        max_restarts: int = 3,
        max_seconds: float = 5.0,
        auto_shutdown: AutoShutdown = "never",
        on_event: Callable[[SupervisorEvent], None] | None = None,
        time: FakeTime | None = None,
        name: Hashable | None = None,
        link: bool = True,
    ) -> pykka.ActorRef[Self]:
        """Starts a supervisor and its children, in order; returns once all have started.

        Args:
            children: The children's specs, started in this order (copied: a generator is
                fine).
            strategy: ``"one_for_one"`` (default) restarts the dead child; ``"one_for_all"``
                stops the others in reverse start order and restarts all in start order;
                ``"rest_for_one"`` does that for the dead child and those started after it.
            max_restarts: Restarts allowed within ``max_seconds`` (default 3); one more and
                the supervisor stops its children and exits with
                [`MaxRestartsExceeded`][goth_actors.otp.MaxRestartsExceeded].
            max_seconds: The intensity window, in seconds (default 5.0).
            auto_shutdown: ``"never"`` (default), ``"any_significant"`` (shut down, normally,
                once a significant child exits on its own and is not restarted) or
                ``"all_significant"`` (once every significant child has). Significant
                children are refused with ``"never"``, as in OTP.
            on_event: Called with a [`SupervisorEvent`][goth_actors.otp.SupervisorEvent], in the
                supervisor's thread, for every child start, exit and restart and for the
                supervisor's own exit. Keep it quick and never wait on the supervisor in it;
                whatever it raises (even ``KeyboardInterrupt`` or ``SystemExit``) is logged and
                ignored. This is how whoever starts a root supervisor learns why it exited.
            time: A [`FakeTime`][goth_actors.otp.FakeTime] for tests: its monotonic clock times
                the intensity window and its scheduler the retries of failed restarts.
                Default: real time.
            name: Register the supervisor under this name (any hashable), for
                [`whereis`][goth_actors.otp.whereis] and the package's functions. Default: none.
            link: Started on the thread of an actor the framework started (say in a
                supervised worker's ``on_start``), the supervisor is linked to that actor
                and stops with it (default ``True``, as OTP's ``start_link``); ``False``
                makes it a root wherever it is started.

        Returns:
            The supervisor's ``ActorRef``.

        Raises:
            FailedToStartChild: If a child failed to start. The children already started
                have been stopped, in reverse order, and the supervisor has exited.
            ConfigError: If an option is invalid, naming it.
            AlreadyRegistered: If ``name`` is held by another live actor.

        Examples:
            >>> import pykka
            >>> sup = Supervisor.start(
            ...     [ChildSpec.for_actor(pykka.ThreadingActor, id="a")],
            ...     strategy="one_for_all", max_restarts=5, max_seconds=10.0, name="app",
            ... )
            >>> from goth_actors.otp import whereis
            >>> whereis("app") is sup
            True
            >>> sup.stop()
            True
        """
        signal = _StartSignal()
        ref = super().start(
            children,
            strategy=strategy,
            max_restarts=max_restarts,
            max_seconds=max_seconds,
            auto_shutdown=auto_shutdown,
            on_event=on_event,
            time=time,
            name=name,
            link=link,
            _signal=signal,
        )
        signal.event.wait()
        if signal.error is not None:
            if signal.thread is not None:
                signal.thread.join()
            disown(ref)  # on the starter's thread: an owner no longer keeps the dead tree
            raise signal.error
        return ref

    def __init__(
        self,
        children: Iterable[ChildSpec] = (),
        *,
        strategy: Strategy = "one_for_one",
        max_restarts: int = 3,
        max_seconds: float = 5.0,
        auto_shutdown: AutoShutdown = "never",
        on_event: Callable[[SupervisorEvent], None] | None = None,
        time: FakeTime | None = None,
        name: Hashable | None = None,
        link: bool = True,
        _signal: _StartSignal | None = None,
    ) -> None:
        specs = list(children)
        _validate(specs, strategy, max_restarts, max_seconds, auto_shutdown, on_event, time)
        super().__init__(
            max_restarts=max_restarts,
            max_seconds=max_seconds,
            on_event=on_event,
            time=time,
            name=name,
            link=link,
        )
        self._specs = specs
        self._strategy = strategy
        self._auto_shutdown = auto_shutdown
        self._by_id: dict[Hashable, _Child] = {}
        self._signal = _signal or _StartSignal()

    @classmethod
    def _goth_actors_prepare(
        cls, args: tuple[Any, ...], kwargs: dict[str, Any]
    ) -> tuple[tuple[Any, ...], dict[str, Any]]:
        """For ``ChildSpec.for_actor``: copies the children, checks the options, when built."""
        bound = inspect.signature(cls.start).bind(*args, **kwargs)
        if "children" in bound.arguments:
            bound.arguments["children"] = tuple(bound.arguments["children"])
        full = copy.copy(bound)
        full.arguments = dict(bound.arguments)
        full.apply_defaults()  # the defaults are start's own: not written twice
        options = full.arguments
        _validate(
            list(options["children"]),
            options["strategy"],
            options["max_restarts"],
            options["max_seconds"],
            options["auto_shutdown"],
            options["on_event"],
            options["time"],
        )
        return bound.args, bound.kwargs

    # -- lifecycle ---------------------------------------------------------------------------

    def on_start(self) -> None:
        self._goth_actors_running()
        signal = self._signal
        signal.thread = threading.current_thread()
        try:
            for spec in self._specs:
                child = _Child(spec)
                self._add(child)
                self._start(child, "child_started")
        except BaseException as error:
            logger.info("%s did not start: %s", self, error)
            signal.error = error
            # The starter learns of it from the exception Supervisor.start raises; telling its
            # owner too would crash an owner that caught it.
            self._goth_actors_owner = None
            self._shut_down(error)
            signal.event.set()
            return
        link = self._goth_actors_link
        if link is None:
            remember_root(self.actor_ref, self._done)
        else:
            link.set_started()
        signal.event.set()

    # -- the child-management API (module functions, the proxy, or the messages) ------------

    def start_child(self, spec: ChildSpec) -> pykka.ActorRef[Any] | None:
        """Adds a child and starts it; returns its ref (``None`` if its start said "not now").

        Raises:
            ChildAlreadyStarted: If a child with ``spec.id`` is running (its ``ref`` attached).
            ChildAlreadyPresent: If a stopped child with ``spec.id`` is present (a
                ``ValueError``; ``ChildAlreadyStarted`` is one too).
            FailedToStartChild: If it failed to start (it is then not added).
            ConfigError: If ``spec`` is significant and ``auto_shutdown`` is ``"never"``.

        Examples:
            >>> import pykka
            >>> sup = Supervisor.start()
            >>> spec = ChildSpec.for_actor(pykka.ThreadingActor, id="late")
            >>> ref = sup.proxy().start_child(spec).get()
            >>> ref.is_alive()
            True
            >>> _ = sup.stop()
        """
        if not isinstance(spec, ChildSpec):
            msg = f"start_child takes a ChildSpec, not {type(spec).__name__}"
            raise TypeError(msg)
        _check_significant([spec], self._auto_shutdown)
        existing = self._by_id.get(spec.id)
        if existing is not None:
            if existing.ref is not None:
                raise ChildAlreadyStarted(spec.id, existing.ref)
            msg = f"a child with id {spec.id!r} is already present"
            raise ChildAlreadyPresent(msg)
        child = _Child(spec)
        try:
            ref = self._start(child, "child_started")
        except BaseException:
            self._final(child)  # what its start claimed (a name, say) goes with it
            raise
        self._add(child)
        return ref

    def terminate_child(self, id: Hashable) -> None:
        """Stops a child (by id, or by its ``ActorRef``), within its ``shutdown``.

        Its spec stays (unless it is temporary), and it is not restarted until
        [`restart_child`][goth_actors.otp.Supervisor.restart_child]; its names and
        ``on_final_exit`` go as for any final exit. A pending retry of a failed restart is
        cancelled. Terminating a child that was already terminated does nothing.

        Raises:
            ChildNotFound: If there is no such child (a ``LookupError``).
        """
        child = self._get(id)
        self._terminate(child)  # and a failed restart is no longer retried
        if child.spec.restart == "temporary":
            self._remove(child)
        self._final(child)

    def restart_child(self, id: Hashable) -> pykka.ActorRef[Any] | None:
        """Starts again a child that is not running; returns its new ref (``None``: ignored).

        Raises:
            ChildNotFound: If there is no child with this id (a ``LookupError``).
            ChildRunning: If the child is running (a ``RuntimeError``).
            FailedToStartChild: If it failed to start (it stays stopped).
        """
        child = self._get(id)
        if child.ref is not None:
            msg = f"child {id!r} is running"
            raise ChildRunning(msg)
        self._stop_retrying(child)
        try:
            return self._start(child, "child_started")
        except BaseException:
            self._final(child)
            raise

    def delete_child(self, id: Hashable) -> None:
        """Removes the spec of a child that is not running.

        Raises:
            ChildNotFound: If there is no child with this id (a ``LookupError``).
            ChildRunning: If the child is running (a ``RuntimeError``).
        """
        child = self._get(id)
        if child.ref is not None:
            msg = f"child {id!r} is running; terminate_child first"
            raise ChildRunning(msg)
        self._stop_retrying(child)
        self._remove(child)
        self._final(child)

    def child_restarts(self, id: Hashable) -> int:
        """Returns how many times this supervisor has restarted the child.

        Raises:
            ChildNotFound: If there is no child with this id (a ``LookupError``).
        """
        return self._get(id).restarts

    # -- what the strategy decides -------------------------------------------------------------

    def _get(self, child_id: Hashable) -> _Child:
        if isinstance(child_id, pykka.ActorRef):
            child = self._by_urn.get(child_id.actor_urn)
        else:
            child = self._by_id.get(child_id)
        if child is None:
            msg = f"no child with id {child_id!r}"
            raise ChildNotFound(msg)
        return child

    def _add(self, child: _Child) -> None:
        super()._add(child)
        self._by_id[child.spec.id] = child

    def _remove(self, child: _Child) -> None:
        super()._remove(child)
        if self._by_id.get(child.spec.id) is child:
            del self._by_id[child.spec.id]

    def _restart_group(self, child: _Child) -> list[_Child]:
        if self._strategy == "one_for_one":
            return [child]
        children = list(self._children)
        if self._strategy == "one_for_all":
            return children
        return children[children.index(child) :]

    def _gone(self, child: _Child, on_its_own: bool) -> None:
        super()._gone(child, on_its_own)
        if not (on_its_own and child.spec.significant) or self._auto_shutdown == "never":
            return
        if self._auto_shutdown == "all_significant" and any(
            c.spec.significant and (c.ref is not None or c.restarting) for c in self._children
        ):
            return
        logger.info("%s: significant child %r exited: auto shutdown", self, child.spec.id)
        self._shut_down(None)


def _check_significant(specs: list[ChildSpec], auto_shutdown: object) -> None:
    if auto_shutdown == "never" and any(spec.significant for spec in specs):
        raise ConfigError("children", 'a significant child needs auto_shutdown other than "never"')


def _validate(
    specs: list[ChildSpec],
    strategy: object,
    max_restarts: object,
    max_seconds: object,
    auto_shutdown: object,
    on_event: object,
    time: object,
) -> None:
    if strategy not in get_args(Strategy):
        raise ConfigError(
            "strategy", f"must be one_for_one, one_for_all or rest_for_one: {strategy!r}"
        )
    check_intensity(max_restarts, max_seconds, on_event, time)
    if auto_shutdown not in get_args(AutoShutdown):
        raise ConfigError(
            "auto_shutdown",
            f"must be never, any_significant or all_significant: {auto_shutdown!r}",
        )
    seen: set[Hashable] = set()
    for spec in specs:
        if not isinstance(spec, ChildSpec):
            raise ConfigError("children", f"must be ChildSpec objects, not {spec!r}")
        if spec.id in seen:
            raise ConfigError("children", f"two children have the id {spec.id!r}")
        seen.add(spec.id)
    _check_significant(specs, auto_shutdown)

"""``Supervisor``: Erlang's ``supervisor`` as a Pykka actor, for any Pykka actor.

Vocabulary and defaults are OTP's: strategies one_for_one / one_for_all / rest_for_one,
restart types permanent / transient / temporary, intensity ``max_restarts`` (3) within
``max_seconds`` (5.0), per-child ``shutdown``. ``docs/supervision.md`` is the guide.

How a death is detected is in ``_link.py``. Exits arrive here as ``_ChildExit`` messages
(told, never asked: a supervisor never waits on a child that might wait on it), except for
children started by a plain ``start`` function that does not speak the link protocol: those
are polled every ``poll_interval`` seconds with ``ref.is_alive()``.

A supervisor crashes, and is reported as crashed, on any error of its own; a
``BaseException`` raised in it (say, a ``KeyboardInterrupt`` from a ``clock``) is turned into a
``RuntimeError`` crash of that one supervisor (the :class:`~goth_actors.otp._link.Linked`
base it shares with hooked workers). An ``on_event`` observer that raises anything is logged
and ignored. Root supervisors stop, in order, at interpreter exit (``_roots.py``).
"""

from __future__ import annotations

import logging
import threading
from collections import deque
from collections.abc import Callable, Hashable, Iterable
from dataclasses import dataclass
from time import monotonic
from types import TracebackType
from typing import Any, ClassVar, Literal, Self, get_args

import pykka

from goth_actors._base import ConfigError, check_seconds
from goth_actors.otp._childspec import ChildSpec
from goth_actors.otp._errors import (
    ChildAlreadyPresent,
    ChildNotFound,
    ChildRunning,
    FailedToStartChild,
    MaxRestartsExceeded,
)
from goth_actors.otp._fake_time import FakeTime
from goth_actors.otp._link import (
    Linked,
    _ChildExit,
    _Link,
    _mark_stopped,
    start_linked,
    stop_child,
)
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
from goth_actors.otp._registry import _names_of, _release_names, _reregister
from goth_actors.otp._roots import forget_root, remember_root
from goth_actors.otp._timers import Scheduler, TimerHandle, default_scheduler

__all__ = ["Strategy", "Supervisor"]

logger = logging.getLogger("goth_actors.otp")

Strategy = Literal["one_for_one", "one_for_all", "rest_for_one"]
"""Which children a supervisor restarts when one dies."""

_RETRY_PAUSE = 0.1  # at most this long between a failed restart and its retry (seconds)


@dataclass(frozen=True, slots=True)
class _Poll:
    pass


@dataclass(frozen=True, slots=True)
class _TryAgain:
    id: Hashable
    reason: BaseException | None


class _Child:
    __slots__ = ("link", "names", "ref", "restarting", "restarts", "retry", "spec")

    def __init__(self, spec: ChildSpec) -> None:
        self.spec = spec
        self.ref: pykka.ActorRef[Any] | None = None
        self.link: _Link | None = None  # None: not running, or not linked (then polled)
        self.restarts = 0
        self.names: tuple[Hashable, ...] = ()  # names to hand to the next instance
        self.restarting = False  # a restart failed and will be retried (by a _TryAgain)
        self.retry: TimerHandle | None = None  # the pending _TryAgain's timer


class _StartSignal:
    def __init__(self) -> None:
        self.event = threading.Event()
        self.error: BaseException | None = None
        self.thread: threading.Thread | None = None


class Supervisor(Linked):
    """A Pykka actor that starts children, restarts them when they die, and stops them in order.

    Start one with :meth:`start`. Talk to it through its proxy (``ref.proxy().start_child(spec)``)
    or with plain messages (``ref.ask(StartChild(spec), timeout=5)``). Stop it with
    ``ref.stop()``: children stop in reverse start order, each within its ``shutdown``.

    Example:
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

    _goth_actors_is_supervisor: ClassVar[bool] = True

    @classmethod
    def start(
        cls,
        children: Iterable[ChildSpec] = (),
        *,
        strategy: Strategy = "one_for_one",
        max_restarts: int = 3,
        max_seconds: float = 5.0,
        on_event: Callable[[SupervisorEvent], None] | None = None,
        poll_interval: float = 0.5,
        time: FakeTime | None = None,
    ) -> pykka.ActorRef[Self]:
        """Start a supervisor and its children, in order; return once all have started.

        Args:
            children: The children's specs, started in this order.
            strategy: ``"one_for_one"`` (default) restarts the dead child; ``"one_for_all"``
                stops the others in reverse start order and restarts all in start order;
                ``"rest_for_one"`` does that for the dead child and those started after it.
            max_restarts: Restarts allowed within ``max_seconds`` (default 3); one more and
                the supervisor stops its children and exits with ``MaxRestartsExceeded``.
            max_seconds: The intensity window, in seconds (default 5.0).
            on_event: Called with a :class:`SupervisorEvent`, in the supervisor's thread, for
                every child start, exit and restart and for the supervisor's own exit. Keep it
                quick and never wait on the supervisor in it; whatever it raises (even
                ``KeyboardInterrupt`` or ``SystemExit``) is logged and ignored. This is how
                whoever starts a root supervisor learns why it exited.
            poll_interval: Seconds between liveness checks of children started by a plain
                ``start`` function, the only way to notice their death (default 0.5).
            time: A :class:`~goth_actors.otp.FakeTime` for tests: its monotonic clock times
                the intensity window and its scheduler the polls and the retries of failed
                restarts. Default: real time and the process-wide scheduler.

        Returns:
            The supervisor's ``ActorRef``.

        Raises:
            FailedToStartChild: If a child failed to start. The children already started
                have been stopped, in reverse order, and the supervisor has exited.
            ConfigError: If an option is invalid, naming it.

        Example:
            >>> import pykka
            >>> sup = Supervisor.start(
            ...     [ChildSpec.for_actor(pykka.ThreadingActor, id="a")],
            ...     strategy="one_for_all", max_restarts=5, max_seconds=10.0,
            ... )
            >>> sup.stop()
            True
        """
        signal = _StartSignal()
        ref = super().start(
            children,
            strategy=strategy,
            max_restarts=max_restarts,
            max_seconds=max_seconds,
            on_event=on_event,
            poll_interval=poll_interval,
            time=time,
            _signal=signal,
        )
        signal.event.wait()
        if signal.error is not None:
            if signal.thread is not None:
                signal.thread.join()
            raise signal.error
        return ref

    def __init__(
        self,
        children: Iterable[ChildSpec] = (),
        *,
        strategy: Strategy = "one_for_one",
        max_restarts: int = 3,
        max_seconds: float = 5.0,
        on_event: Callable[[SupervisorEvent], None] | None = None,
        poll_interval: float = 0.5,
        time: FakeTime | None = None,
        _signal: _StartSignal | None = None,
    ) -> None:
        specs = list(children)
        _validate(specs, strategy, max_restarts, max_seconds, on_event, poll_interval, time)
        super().__init__()
        self._specs = specs
        self._strategy = strategy
        self._max_restarts = max_restarts
        self._max_seconds = float(max_seconds)
        self._on_event = on_event
        self._poll_interval = poll_interval
        self._clock: Callable[[], float] = monotonic if time is None else time.monotonic
        self._scheduler: Scheduler = default_scheduler() if time is None else time.scheduler
        self._signal = _signal or _StartSignal()
        self._children: list[_Child] = []
        self._restart_times: deque[float] = deque()
        self._poll_timer: TimerHandle | None = None
        self._finished = False
        self._done = threading.Event()

    # -- lifecycle ---------------------------------------------------------------------------

    def on_start(self) -> None:
        self._goth_actors_running()
        signal = self._signal
        signal.thread = threading.current_thread()
        try:
            for spec in self._specs:
                child = _Child(spec)
                self._start(child, "child_started")
                self._children.append(child)
        except BaseException as error:
            logger.info("%s did not start: %s", self, error)
            signal.error = error
            self._shut_down(error)
            signal.event.set()
            return
        link = self._goth_actors_link
        if link is None:
            remember_root(self.actor_ref, self._done)
        else:
            link.set_started()
        signal.event.set()

    def on_stop(self) -> None:
        self._shut_down(None)

    def on_failure(  # Pykka's signature
        self,
        exception_type: type[BaseException] | None,  # noqa: ARG002
        exception_value: BaseException | None,
        traceback: TracebackType | None,  # noqa: ARG002
    ) -> None:
        self._shut_down(exception_value or RuntimeError(f"{self} crashed"))

    def _goth_actors_crash(self, crash: RuntimeError, error: BaseException) -> None:  # noqa: ARG002
        self._shut_down(crash)

    def on_receive(self, message: Any) -> Any:
        match message:
            case _ChildExit(link=link):
                self._handle_exit(link)
            case _Poll():
                self._poll()
            case _TryAgain(id=child_id, reason=reason):
                child = self._find(child_id)
                if child is not None and child.restarting and child.ref is None:
                    child.retry = None
                    self._restart(child, reason)
            case StartChild(spec=spec):
                return self.start_child(spec)
            case TerminateChild(id=child_id):
                return self.terminate_child(child_id)
            case RestartChild(id=child_id):
                return self.restart_child(child_id)
            case DeleteChild(id=child_id):
                return self.delete_child(child_id)
            case WhichChildren():
                return self.which_children()
            case CountChildren():
                return self.count_children()
            case ChildRestarts(id=child_id):
                return self.child_restarts(child_id)
            case _:
                return super().on_receive(message)
        return None

    # -- the dynamic-children API (call through the proxy, or send the messages) -------------

    def start_child(self, spec: ChildSpec) -> pykka.ActorRef[Any]:
        """Add a child and start it; return its ref.

        Raises:
            ChildAlreadyPresent: If a child with ``spec.id`` is already present (a
                ``ValueError``).
            FailedToStartChild: If it failed to start (it is then not added).

        Example:
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
        existing = self._find(spec.id)
        if existing is not None:
            state = "running" if existing.ref is not None else "present"
            msg = f"a child with id {spec.id!r} is already {state}"
            raise ChildAlreadyPresent(msg)
        child = _Child(spec)
        ref = self._start(child, "child_started")
        self._children.append(child)
        return ref

    def terminate_child(self, id: Hashable) -> None:
        """Stop a child, within its ``shutdown``; its spec stays (unless it is temporary).

        A terminated child is not restarted until :meth:`restart_child`.

        Raises:
            ChildNotFound: If there is no child with this id (a ``LookupError``).
        """
        child = self._get(id)
        self._terminate(child)  # and a failed restart is no longer retried
        if child.spec.restart == "temporary":
            self._children.remove(child)

    def restart_child(self, id: Hashable) -> pykka.ActorRef[Any]:
        """Start again a child that is not running; return its new ref.

        Raises:
            ChildNotFound: If there is no child with this id (a ``LookupError``).
            ChildRunning: If the child is running (a ``RuntimeError``).
            FailedToStartChild: If it failed to start.
        """
        child = self._get(id)
        if child.ref is not None:
            msg = f"child {id!r} is running"
            raise ChildRunning(msg)
        self._stop_retrying(child)
        return self._start(child, "child_started")

    def delete_child(self, id: Hashable) -> None:
        """Remove the spec of a child that is not running.

        Raises:
            ChildNotFound: If there is no child with this id (a ``LookupError``).
            ChildRunning: If the child is running (a ``RuntimeError``).
        """
        child = self._get(id)
        if child.ref is not None:
            msg = f"child {id!r} is running; terminate_child first"
            raise ChildRunning(msg)
        self._stop_retrying(child)
        self._children.remove(child)

    def which_children(self) -> list[ChildInfo]:
        """Return ``(id, ref or None, type)`` for every child, in start order."""
        return [ChildInfo(c.spec.id, c.ref, c.spec.type) for c in self._children]

    def count_children(self) -> ChildCounts:
        """Count the children: specs, active, supervisors, workers (as OTP)."""
        supervisors = sum(1 for c in self._children if c.spec.type == "supervisor")
        return ChildCounts(
            specs=len(self._children),
            active=sum(1 for c in self._children if c.ref is not None),
            supervisors=supervisors,
            workers=len(self._children) - supervisors,
        )

    def child_restarts(self, id: Hashable) -> int:
        """Return how many times this supervisor has restarted the child.

        Raises:
            ChildNotFound: If there is no child with this id (a ``LookupError``).
        """
        return self._get(id).restarts

    # -- internals ----------------------------------------------------------------------------

    def _find(self, child_id: Hashable) -> _Child | None:
        for child in self._children:
            if child.spec.id == child_id:
                return child
        return None

    def _get(self, child_id: Hashable) -> _Child:
        child = self._find(child_id)
        if child is None:
            msg = f"no child with id {child_id!r}"
            raise ChildNotFound(msg)
        return child

    def _emit(
        self,
        kind: SupervisorEventKind,
        child: _Child | None = None,
        ref: pykka.ActorRef[Any] | None = None,
        reason: BaseException | None = None,
    ) -> None:
        if self._on_event is None:
            return
        event = SupervisorEvent(
            kind,
            self.actor_ref,
            None if child is None else child.spec.id,
            ref,
            reason,
            0 if child is None else child.restarts,
        )
        try:
            self._on_event(event)
        except BaseException:  # even KeyboardInterrupt: it must not take the tree down
            logger.exception("%s: the on_event observer raised; ignored", self)

    def _start(self, child: _Child, kind: SupervisorEventKind) -> pykka.ActorRef[Any]:
        try:
            ref, link = start_linked(child.spec.start, self.actor_ref, child.names)
        except BaseException as error:
            raise FailedToStartChild(child.spec.id, error) from error
        refused = _reregister(list(child.names), ref)
        if refused:
            logger.warning(
                "child %r lost names held by other live actors: %r", child.spec.id, refused
            )
        child.names = ()
        child.ref = ref
        child.link = link
        self._stop_retrying(child)
        if link is None:
            self._arm_poll()
        self._emit(kind, child, ref)
        return ref

    def _stop_retrying(self, child: _Child) -> None:
        child.restarting = False
        if child.retry is not None:
            child.retry.cancel()
            child.retry = None

    def _terminate(self, child: _Child) -> None:
        self._stop_retrying(child)
        ref, link = child.ref, child.link
        if ref is None:
            return
        child.ref = child.link = None
        child.names = tuple(_names_of(ref))
        shutdown = child.spec.shutdown
        stopped = stop_child(ref, link, shutdown)
        if not stopped:
            logger.warning(
                "%s: child %r did not stop within %s s; no longer waiting for it",
                self,
                child.spec.id,
                shutdown,
            )
        if shutdown == "brutal_kill" or not stopped:
            # Given up on, maybe still running: its names go to its successor, not to it.
            released = _release_names(ref)
            child.names += tuple(name for name in released if name not in child.names)

    def _terminate_all(self) -> None:
        for child in reversed(self._children):
            self._terminate(child)
        self._children = [c for c in self._children if c.spec.restart != "temporary"]

    def _handle_exit(self, link: _Link) -> None:
        for child in self._children:
            if child.link is link:
                ref = child.ref
                child.ref = child.link = None
                self._child_down(child, ref, link.reason)
                return

    def _child_down(
        self, child: _Child, ref: pykka.ActorRef[Any] | None, reason: BaseException | None
    ) -> None:
        self._emit("child_exited", child, ref, reason)
        if reason is None:
            logger.info("%s: child %r stopped", self, child.spec.id)
        else:
            logger.warning("%s: child %r crashed: %r", self, child.spec.id, reason)
        if ref is not None:
            child.names = tuple(_names_of(ref))
        if child.spec.restart == "temporary":
            self._children.remove(child)
        elif child.spec.restart == "permanent" or reason is not None:
            self._restart(child, reason)

    def _restart(self, child: _Child, reason: BaseException | None) -> None:
        now = self._clock()
        self._restart_times.append(now)
        while self._restart_times[0] < now - self._max_seconds:
            self._restart_times.popleft()
        if len(self._restart_times) > self._max_restarts:
            self._give_up(child, reason)
            return
        if self._strategy == "one_for_one":
            group = [child]
        elif self._strategy == "one_for_all":
            group = list(self._children)
        else:
            group = self._children[self._children.index(child) :]
        for other in reversed(group):
            if other is not child:
                self._terminate(other)
        for other in group:
            if other is not child and other.spec.restart == "temporary":
                self._children.remove(other)
                continue
            other.restarts += 1
            try:
                self._start(other, "child_restarted")
            except FailedToStartChild as failure:
                logger.error("%s: restarting child %r failed: %s", self, other.spec.id, failure)
                self._retry_later(other, failure.reason)
                self._emit("child_start_failed", other, None, failure.reason)
                return

    def _retry_later(self, child: _Child, reason: BaseException | None) -> None:
        """Retry a failed restart after a pause short enough to reach the intensity limit.

        Every retry counts as a restart, as in OTP; the pause only keeps a failing start from
        using up ``max_restarts`` in microseconds while (say) a port or a name is released.
        """
        pause = min(_RETRY_PAUSE, self._max_seconds / (2 * (self._max_restarts + 1)))
        child.restarting = True
        child.retry = self._scheduler.send_after(
            self.actor_ref, _TryAgain(child.spec.id, reason), pause
        )

    def _give_up(self, child: _Child, reason: BaseException | None) -> None:
        error = MaxRestartsExceeded(self._max_restarts, self._max_seconds, child.spec.id, reason)
        logger.error("%s gave up: %s", self, error)
        self._emit("supervisor_gave_up", child, None, error)
        self._shut_down(error)

    def _shut_down(self, reason: BaseException | None) -> None:
        """Stop every child (reverse order), then exit with ``reason``."""
        if self._finished:
            return
        if self._poll_timer is not None:
            self._poll_timer.cancel()
            self._poll_timer = None
        self._terminate_all()
        self._finished = True
        forget_root(self.actor_ref)
        _mark_stopped(self)
        self._emit("supervisor_exited", None, None, reason)
        self._goth_actors_report(reason)
        self._done.set()

    def _arm_poll(self) -> None:
        if self._poll_timer is None and not self._finished:
            self._poll_timer = self._scheduler.send_after(
                self.actor_ref, _Poll(), self._poll_interval
            )

    def _poll(self) -> None:
        self._poll_timer = None
        for child in list(self._children):
            ref = child.ref
            if self._finished:
                return
            if ref is None or child.link is not None or ref.is_alive():
                continue
            if child in self._children:
                child.ref = None
                unknown = RuntimeError(
                    f"{ref} stopped; the reason is unknown (not started by ChildSpec.for_actor)"
                )
                self._child_down(child, ref, unknown)
        if any(c.ref is not None and c.link is None for c in self._children):
            self._arm_poll()


def _validate(
    specs: list[ChildSpec],
    strategy: object,
    max_restarts: object,
    max_seconds: object,
    on_event: object,
    poll_interval: object,
    time: object,
) -> None:
    if strategy not in get_args(Strategy):
        raise ConfigError(
            "strategy", f"must be one_for_one, one_for_all or rest_for_one: {strategy!r}"
        )
    if not isinstance(max_restarts, int) or isinstance(max_restarts, bool) or max_restarts < 0:
        raise ConfigError("max_restarts", f"must be an int >= 0, not {max_restarts!r}")
    for name, value in (("max_seconds", max_seconds), ("poll_interval", poll_interval)):
        check_seconds(name, value, allow_minimum=False)
    if on_event is not None and not callable(on_event):
        raise ConfigError("on_event", f"must be callable, not {on_event!r}")
    if time is not None and not isinstance(time, FakeTime):
        raise ConfigError("time", f"must be a FakeTime or None, not {type(time).__name__}")
    seen: set[Hashable] = set()
    for spec in specs:
        if not isinstance(spec, ChildSpec):
            raise ConfigError("children", f"must be ChildSpec objects, not {spec!r}")
        if spec.id in seen:
            raise ConfigError("children", f"two children have the id {spec.id!r}")
        seen.add(spec.id)

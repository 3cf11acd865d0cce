"""What ``Supervisor`` and ``DynamicSupervisor`` share: starting, watching, restarting, stopping.

`Keeper` is their common base. It starts a child inside a link (``_link.py``), learns of its
exit from a ``_ChildExit`` message (told, never asked: a supervisor never waits on a child that
might wait on it), decides by the child's restart type
whether to restart it, counts restarts against the intensity (more than ``max_restarts`` within
``max_seconds``: give up), and stops children within their ``shutdown``, killing them after.
The subclasses say which children a restart takes along (the strategy) and what becomes of a
child that will not come back.

How failed restarts are retried (with a backoff, by retries that cannot be lost) is in
``_restarts.py``, with the record kept of each child.

**Gone for good.** A child that stops and will not be restarted (terminated, deleted, a
transient child's normal exit, a temporary child's exit, a start that failed for good, its
supervisor's exit) has the registry names its last instance held unregistered, and its spec's
``on_final_exit`` called. A crash the supervisor restarts keeps the names for the successor.

(A little over 400 lines: every path a child takes through its supervisor, in one place.)
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Hashable
from types import TracebackType
from typing import Any, ClassVar

import pykka

from goth_actors.otp._childspec import ChildSpec
from goth_actors.otp._errors import FailedToStartChild, MaxRestartsExceeded
from goth_actors.otp._fake_time import FakeTime
from goth_actors.otp._hooks import Linked, _mark_stopped
from goth_actors.otp._inbox import Inbox
from goth_actors.otp._link import _ChildExit, _Link, await_stop, deadline_of, request_stop
from goth_actors.otp._link import start_linked as _start_linked
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
from goth_actors.otp._registry import _drop_names, _names_of, _release_names, _reregister, register
from goth_actors.otp._restarts import Child as _Child
from goth_actors.otp._restarts import (
    Intensity,
    Retries,
    RetryTick,
    check_intensity,
    log_failure,
    retry_delay,
)
from goth_actors.otp._roots import forget_root

__all__ = ["Keeper", "check_intensity", "is_shutdown"]

logger = logging.getLogger("goth_actors.otp")


def is_shutdown(reason: BaseException | None) -> bool:
    """Whether an exit reason is OTP's ``normal`` or ``shutdown``: no crash, for ``transient``.

    A supervisor that gave up exits with ``shutdown`` in OTP: here, ``MaxRestartsExceeded``.
    """
    return reason is None or isinstance(reason, MaxRestartsExceeded)


class Keeper(Linked):
    """The base of both supervisors (see the module docstring); not used on its own."""

    _goth_actors_is_supervisor: ClassVar[bool] = True
    _concurrent_shutdown: ClassVar[bool] = False

    def __init__(
        self,
        *,
        max_restarts: int,
        max_seconds: float,
        on_event: Callable[[SupervisorEvent], None] | None,
        time: FakeTime | None,
        name: Hashable | None,
        link: bool = True,
    ) -> None:
        super().__init__()
        if not link:
            self._goth_actors_disown()  # a root, whichever actor's thread started it
        if name is not None:
            try:
                register(name, self.actor_ref)  # AlreadyRegistered: before any thread exists
            except BaseException:
                self.actor_stopped.set()  # it will never run
                self._goth_actors_disown()
                raise
        self._intensity = Intensity(max_restarts, max_seconds)
        self._on_event = on_event
        self._clock: Callable[[], float] = _monotonic if time is None else time.monotonic
        self._retries = Retries(self.actor_ref, self._clock, time)
        self._children: dict[_Child, None] = {}  # an ordered set, in start order
        self._by_link: dict[_Link, _Child] = {}
        self._by_urn: dict[str, _Child] = {}  # the running instance's actor URN
        self._finished = False
        self._done = threading.Event()

    # -- lifecycle ---------------------------------------------------------------------------

    def _actor_loop_teardown(self) -> None:
        # Killed (brutal_kill, or past its shutdown): no hook of ours ran, but a supervisor's
        # children are linked to it and die with it, as in OTP, newest first.
        if not self._finished:
            self._shut_down(RuntimeError(f"{self} was killed"))
        super()._actor_loop_teardown()

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
            case RetryTick():
                self._on_retry_tick()
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

    # -- the child-management API, completed by the subclasses -------------------------------

    def start_child(self, spec: ChildSpec) -> pykka.ActorRef[Any] | None:
        raise NotImplementedError

    def terminate_child(self, id: Hashable) -> None:
        raise NotImplementedError

    def restart_child(self, id: Hashable) -> pykka.ActorRef[Any] | None:
        raise NotImplementedError

    def delete_child(self, id: Hashable) -> None:
        raise NotImplementedError

    def child_restarts(self, id: Hashable) -> int:
        raise NotImplementedError

    def which_children(self) -> list[ChildInfo]:
        """Returns ``(id, ref or None, type)`` for every child, in start order."""
        return [ChildInfo(c.spec.id, c.ref, c.spec.type) for c in self._children]

    def count_children(self) -> ChildCounts:
        """Counts the children: specs, active, supervisors, workers (as OTP)."""
        supervisors = sum(1 for c in self._children if c.spec.type == "supervisor")
        return ChildCounts(
            specs=len(self._children),
            active=sum(1 for c in self._children if c.ref is not None),
            supervisors=supervisors,
            workers=len(self._children) - supervisors,
        )

    # -- what the subclasses decide ----------------------------------------------------------

    def _restart_group(self, child: _Child) -> list[_Child]:
        """The children a restart of ``child`` takes along, in start order (the strategy)."""
        return [child]

    def _forgets(self, child: _Child) -> bool:
        """Whether a child that will not come back is removed (or kept as a stopped spec)."""
        return child.spec.restart == "temporary"

    def _gone(self, child: _Child, on_its_own: bool) -> None:  # noqa: ARG002
        """``child`` stopped and will not be restarted: forget it or keep its spec; final."""
        if self._forgets(child):
            self._remove(child)
        self._final(child)

    def _add(self, child: _Child) -> None:
        self._children[child] = None

    def _remove(self, child: _Child) -> None:
        self._children.pop(child, None)

    # -- starting and stopping ---------------------------------------------------------------

    def _start(self, child: _Child, kind: SupervisorEventKind) -> pykka.ActorRef[Any] | None:
        """Starts ``child``; ``None`` if its start function said "not now" (OTP's ignore)."""
        child.held = True
        try:
            started = _start_linked(child.spec.start, self.actor_ref, child.names)
        except BaseException as error:
            raise FailedToStartChild(child.spec.id, error) from error
        child.started()
        if started is None:
            self._final(child)  # nothing runs, and nothing will until asked again
            return None
        ref, link = started
        refused = _reregister(list(child.names), ref)
        if refused:
            logger.warning(
                "child %r lost names held by other live actors: %r", child.spec.id, refused
            )
        child.names = ()
        child.ref = child.last_ref = ref
        child.link = link
        self._by_link[link] = child
        self._by_urn[ref.actor_urn] = child
        self._emit(kind, child, ref)
        return ref

    def _stop_retrying(self, child: _Child) -> None:
        child.restarting = False  # its heap entry is now stale

    def _detach(self, child: _Child) -> tuple[pykka.ActorRef[Any], _Link] | None:
        ref, link = child.ref, child.link
        child.ref = child.link = None
        if ref is None or link is None:
            return None
        self._by_link.pop(link, None)
        self._by_urn.pop(ref.actor_urn, None)
        return ref, link

    def _terminate(self, child: _Child) -> None:
        """Stops ``child`` within its ``shutdown`` (kills it after); no retry stays pending."""
        self._stop_retrying(child)
        running = self._detach(child)
        if running is None:
            return
        ref, link = running
        shutdown = child.spec.shutdown
        request_stop(ref, link, shutdown)
        stopped = await_stop(link, shutdown, deadline_of(shutdown, time.monotonic()))
        self._stopped(child, ref, link, stopped)

    def _terminate_all(self) -> None:
        """Stops every child, newest first; at once and in parallel if ``_concurrent_shutdown``."""
        children = list(reversed(self._children))
        for child in children:
            self._stop_retrying(child)
        if not self._concurrent_shutdown:
            for child in children:
                self._terminate(child)
            return
        now = time.monotonic()
        pending = []
        for child in children:
            running = self._detach(child)
            if running is not None:
                request_stop(*running, child.spec.shutdown)
                pending.append((child, *running, deadline_of(child.spec.shutdown, now)))
        for child, ref, link, deadline in pending:
            self._stopped(child, ref, link, await_stop(link, child.spec.shutdown, deadline))

    def _stopped(self, child: _Child, ref: pykka.ActorRef[Any], link: _Link, stopped: bool) -> None:
        shutdown = child.spec.shutdown
        if not stopped:
            logger.warning(
                "%s: child %r did not stop within %s s; killed", self, child.spec.id, shutdown
            )
        elif shutdown != "brutal_kill" and link.reason is not None:
            # OTP's shutdown_error: it crashed on its way out, or just before.
            logger.error("%s: child %r: shutdown error: %r", self, child.spec.id, link.reason)
            self._emit("shutdown_error", child, ref, link.reason)
        if shutdown == "brutal_kill" or not stopped:
            # Killed, maybe still running its last message: its names go to its successor.
            released = _release_names(ref)
            child.names += tuple(name for name in released if name not in child.names)
        else:
            child.names = tuple(_names_of(ref))

    def _final(self, child: _Child) -> None:
        """``child`` is gone for good: its names die with it, and its ``on_final_exit`` runs."""
        if not child.held:
            return
        child.held = False
        _drop_names(child.last_ref, child.names)
        child.names = ()
        callback = child.spec.on_final_exit
        if callback is not None:
            try:
                callback()
            except BaseException:  # even KeyboardInterrupt: it must not take the tree down
                logger.exception(
                    "%s: on_final_exit of child %r raised; ignored", self, child.spec.id
                )

    # -- exits and restarts ------------------------------------------------------------------

    def _handle_exit(self, link: _Link) -> None:
        child = self._by_link.pop(link, None)
        if child is None or self._finished:
            return  # a child already detached (terminated, or being restarted)
        ref = child.ref
        child.ref = child.link = None
        if ref is not None:
            self._by_urn.pop(ref.actor_urn, None)
        self._child_down(child, ref, link.reason)

    def _child_down(
        self, child: _Child, ref: pykka.ActorRef[Any] | None, reason: BaseException | None
    ) -> None:
        self._emit("child_exited", child, ref, reason)
        if reason is None:
            logger.info("%s: child %r stopped", self, child.spec.id)
        elif is_shutdown(reason):
            logger.info("%s: child %r shut down: %s", self, child.spec.id, reason)
        else:
            logger.warning("%s: child %r crashed: %r", self, child.spec.id, reason)
        if ref is not None:
            child.names = tuple(_names_of(ref))
        restart = child.spec.restart
        if restart == "permanent" or (restart == "transient" and not is_shutdown(reason)):
            self._restart(child, reason)
        else:
            self._gone(child, on_its_own=True)

    def _restart(self, child: _Child, reason: BaseException | None) -> None:
        if self._intensity.exceeded_by_one_more(self._clock()):
            self._give_up(child, reason)
            return
        group = self._restart_group(child)
        for other in reversed(group):
            if other is not child:
                self._terminate(other)
        for other in group:
            if other is not child and other.spec.restart == "temporary":
                self._remove(other)
                self._final(other)
                continue
            other.restarts += 1
            try:
                ref = self._start(other, "child_restarted")
            except FailedToStartChild as failure:
                self._restart_failed(other, failure.reason)
                return
            if ref is None:  # its start function said "not now"
                self._gone(other, on_its_own=False)

    def _restart_failed(self, child: _Child, reason: BaseException) -> None:
        child.failures += 1
        child.last_reason = reason
        delay = retry_delay(child, self._intensity, self)
        log_failure(child, reason, delay, self._clock(), self)
        self._emit("child_start_failed", child, None, reason)
        if not self._finished:
            self._retries.add(child, delay, self._is_current)

    def _is_current(self, child: _Child) -> bool:
        return child in self._children

    def _on_retry_tick(self) -> None:
        self._retries.ticked()
        while not self._finished:
            child = self._retries.take_due(self._is_current)
            if child is None:
                break
            self._restart(child, child.last_reason)
        if not self._finished:
            inbox = self.actor_inbox
            assert isinstance(inbox, Inbox)  # Linked actors always get one
            self._retries.wait_and_rearm(inbox, self._is_current)

    def _give_up(self, child: _Child, reason: BaseException | None) -> None:
        intensity = self._intensity
        error = MaxRestartsExceeded(
            intensity.max_restarts, intensity.max_seconds, child.spec.id, reason
        )
        logger.error("%s gave up: %s", self, error)
        self._emit("supervisor_gave_up", child, None, error)
        self._shut_down(error)

    def _shut_down(self, reason: BaseException | None) -> None:
        """Stops every child (newest first), then exits with ``reason``."""
        if self._finished:
            return
        self._finished = True
        self._retries.cancel()
        self._terminate_all()
        for child in list(self._children):
            self._final(child)
        self._children.clear()
        self._by_link.clear()
        self._by_urn.clear()
        forget_root(self.actor_ref)
        _mark_stopped(self)
        self._emit("supervisor_exited", None, None, reason)
        self._goth_actors_report(reason)
        self._done.set()

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


def _monotonic() -> float:
    return time.monotonic()

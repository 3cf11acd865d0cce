"""Links: how a supervisor learns that a child started, and how and when it died.

Pykka has no links or monitors (pykka issue 42), so this module installs them. A supervisor
starts each child inside an *offer*: it puts a :class:`_Link` in a thread-local slot and calls
the child's start function. An actor class that knows the protocol takes the offered link in
its ``__init__`` (which Pykka runs in the starter's thread) and from then on reports through it:

- ``started``, once ``on_start`` returned (or failed: ``start_error``);
- ``exited``, exactly once, with the exit reason: ``None`` for a normal stop, otherwise the
  exception. It then tells its supervisor a :class:`_ChildExit` message.

Users' actors do not know the protocol and need not: :func:`hooked_class` builds, once per
class, a subclass with the same name whose hooks wrap the user's own ones (the user's methods
are called through ``super()``). The wrappers

- catch an ``on_start`` failure, which Pykka reports to no hook at all;
- mark the actor dead (``actor_stopped``) *before* reporting, so that a successor can take the
  dead actor's registered names at once;
- turn a ``BaseException`` (``SystemExit``, ``KeyboardInterrupt``...) raised in any handler into
  a ``RuntimeError`` crash of that one actor. Left alone, Pykka would leave a zombie (in
  ``on_start``) or stop every actor in the process (in a message handler).

The subclass also runs on a daemon thread (``use_daemon_thread = True``, whatever the user's
class says): the tree owns the child's lifetime, and the supervisor's exit hook stops it, in
order and through its ``on_stop``, when the program ends; a child that outlives that is not
waited for by the interpreter.

A supervisor waits for a child's ``on_start`` with no time limit, as OTP does. At interpreter
exit :func:`abandon_starts` ends every such wait (and refuses new starts), so that a child
stuck in ``on_start`` cannot keep its supervisor from stopping.

Supervisors speak the protocol themselves; they and the hooked classes share :class:`Linked`.
"""

from __future__ import annotations

import contextlib
import logging
import os
import threading
import time
from collections.abc import Callable, Hashable, Iterator
from dataclasses import dataclass
from types import TracebackType
from typing import Any, ClassVar, Literal

import pykka

from goth_actors.otp._registry import _reregister

__all__ = ["Linked", "Shutdown", "hooked_class", "start_linked", "stop_child"]

logger = logging.getLogger("goth_actors.otp")

Shutdown = float | Literal["brutal_kill"] | None
"""Seconds to wait for a child to stop; ``None`` waits forever; ``"brutal_kill"`` not at all."""

_DEAD_GRACE = 1.0  # seconds to wait for a stop reply once an unlinked child is seen dead

_local = threading.local()
_hooked_lock = threading.Lock()
_hooked: dict[type[pykka.ThreadingActor], type[pykka.ThreadingActor]] = {}
_starts_lock = threading.Lock()
_starts: set[_Link] = set()  # links whose child's on_start a supervisor is waiting for
_exiting = False  # set at interpreter exit: no new start, no wait for an on_start


class _Link:
    """One start of one child: the channel from the child back to its supervisor."""

    def __init__(
        self, parent: pykka.ActorRef[Any] | None, names: tuple[Hashable, ...] = ()
    ) -> None:
        self.parent = parent
        self.names = names  # registry names the new instance takes over from its predecessor
        self.urn: str | None = None  # set by the actor that takes the link
        self.thread: threading.Thread | None = None  # the actor's thread, set in on_start
        self.started = threading.Event()
        self.start_error: BaseException | None = None
        self.abandoned = False  # the starter stopped waiting for on_start (interpreter exit)
        self.exited = threading.Event()
        self.reason: BaseException | None = None
        self._lock = threading.Lock()
        self._reported = False

    def __repr__(self) -> str:
        return (
            f"<_Link urn={self.urn} started={self.started.is_set()} exited={self.exited.is_set()}>"
        )

    def set_started(self) -> None:
        with self._lock:
            self.started.set()

    def abandon_start(self, error: BaseException) -> bool:
        """Make the wait for ``on_start`` end with ``error``, unless it has already ended."""
        with self._lock:
            if self.started.is_set():
                return False
            self.abandoned = True
            self.start_error = error
            self.started.set()
            return True

    def report_exit(self, reason: BaseException | None) -> None:
        """Record the exit (first call only), wake waiters, tell the supervisor."""
        with self._lock:
            if self._reported:
                return
            self._reported = True
            self.reason = reason
            if not self.started.is_set():
                self.start_error = reason or RuntimeError("the actor stopped before it started")
                self.started.set()
        self.exited.set()
        parent = self.parent
        if parent is not None:
            with contextlib.suppress(pykka.ActorDeadError):
                parent.tell(_ChildExit(self))


@dataclass(frozen=True, slots=True)
class _ChildExit:
    """Told to a supervisor when a linked child has exited; the reason is on the link."""

    link: _Link


@contextlib.contextmanager
def _offering(link: _Link) -> Iterator[None]:
    """Offer ``link`` to the first linkable actor constructed in this thread."""
    _local.link = link
    try:
        yield
    finally:
        _local.link = None


def _claim_link() -> _Link | None:
    """Take the link offered in this thread, if any (each offer is taken at most once)."""
    link: _Link | None = getattr(_local, "link", None)
    _local.link = None
    return link


def _mark_stopped(actor: pykka.Actor) -> None:
    """Make ``actor`` dead now, as Pykka's own failure path does: unregistered, stopped flag set.

    The actor's loop then ends after the current message; its queued asks get
    ``ActorDeadError`` and its queued tells are dropped, as with any Pykka stop.
    """
    pykka.ActorRegistry.unregister(actor.actor_ref)
    actor.actor_stopped.set()


def _crash_from(error: BaseException, actor: object) -> RuntimeError:
    crash = RuntimeError(f"{type(error).__name__} raised in {actor}: {error!r}")
    crash.__cause__ = error
    return crash


def start_linked(
    start: Callable[[], pykka.ActorRef[Any]],
    parent: pykka.ActorRef[Any],
    names: tuple[Hashable, ...] = (),
) -> tuple[pykka.ActorRef[Any], _Link | None]:
    """Call ``start`` with a link on offer; wait for the child's ``on_start`` if it took it.

    The wait has no time limit (as in OTP), except that :func:`abandon_starts` ends it at
    interpreter exit; the child is then asked to stop, and no longer reports to ``parent``.

    Returns:
        The child's ref, and its link, or ``None`` if the started actor does not speak the
        protocol (its death can then only be noticed by polling ``is_alive()``).

    Raises:
        BaseException: Whatever ``start`` raised, or the child's ``on_start`` failure.
        TypeError: If ``start`` did not return an ``ActorRef``.
        RuntimeError: If the interpreter is exiting (see :func:`abandon_starts`).
    """
    if _exiting:
        raise RuntimeError(_EXITING)
    link = _Link(parent, names)
    with _offering(link):
        ref = start()
    if not isinstance(ref, pykka.ActorRef):
        link.parent = None
        msg = f"a child's start function must return a pykka.ActorRef, not {type(ref).__name__}"
        raise TypeError(msg)
    if link.urn != ref.actor_urn:
        link.parent = None  # taken by some other actor, or by none: not this child's link
        return ref, None
    with _starts_lock:
        _starts.add(link)
        exiting = _exiting
    try:
        if exiting:
            link.abandon_start(RuntimeError(_EXITING))
        link.started.wait()
    finally:
        with _starts_lock:
            _starts.discard(link)
    if link.abandoned:
        logger.warning("exiting: abandoned the start of %s, still in on_start", ref)
        link.parent = None  # no one supervises it now: its exit is no news
        ref.stop(block=False)  # handled once (if ever) its on_start returns
    if link.start_error is not None:
        raise link.start_error
    return ref, link


_EXITING = "the program is exiting: child starts are abandoned"


def abandon_starts() -> None:
    """At interpreter exit: end every wait for a child's ``on_start``; refuse new starts.

    A supervisor blocked on a child whose ``on_start`` never returns would otherwise never
    handle the stop that the exit hook sends it. Each abandoned start fails with a
    ``RuntimeError`` and is logged at WARNING; the child is asked to stop once its
    ``on_start`` returns.
    """
    global _exiting
    with _starts_lock:
        _exiting = True
        links = list(_starts)
    for link in links:
        link.abandon_start(RuntimeError(_EXITING))


def _after_fork_in_child() -> None:
    # No start of the parent's is in progress here (its supervisors' threads are gone).
    global _starts_lock, _exiting
    _starts_lock = threading.Lock()
    _starts.clear()
    _exiting = False


os.register_at_fork(after_in_child=_after_fork_in_child)


def stop_child(ref: pykka.ActorRef[Any], link: _Link | None, shutdown: Shutdown) -> bool:
    """Ask a child to stop; wait for it within ``shutdown``, as OTP's ``shutdown`` option says.

    A linked child is waited for until it has reported its exit and its thread has ended.
    For an unlinked one, Pykka's stop reply is awaited (a stop racing the actor's own death
    can go unanswered, a Pykka race: once the actor is seen dead, that wait is bounded).
    ``"brutal_kill"`` only asks: a Python thread cannot be killed.

    Returns:
        ``False`` if ``shutdown`` seconds passed before the child stopped.
    """
    if link is not None:
        link.parent = None  # its exit report is expected now, not news
    reply = ref.stop(block=False)
    if shutdown == "brutal_kill":
        return True
    timeout = None if shutdown is None else float(shutdown)
    deadline = None if timeout is None else time.monotonic() + timeout
    if link is None:
        return _wait_for_stop_reply(reply, ref, deadline)
    if not link.exited.wait(timeout):
        return False
    thread = link.thread
    if thread is not None and thread is not threading.current_thread():
        thread.join(None if deadline is None else max(0.0, deadline - time.monotonic()))
    return True


def _wait_for_stop_reply(
    reply: pykka.Future[bool], ref: pykka.ActorRef[Any], deadline: float | None
) -> bool:
    dead_since: float | None = None
    while True:
        now = time.monotonic()
        if deadline is not None and now >= deadline:
            return False
        try:
            reply.get(timeout=0.05 if deadline is None else min(0.05, deadline - now))
        except pykka.Timeout:
            if not ref.is_alive():
                dead_since = dead_since or now
                if now - dead_since >= _DEAD_GRACE:
                    return True
        else:
            return True


class Linked(pykka.ThreadingActor):
    """The actor side of the link protocol, shared by supervisors and hooked children.

    Takes the link offered in the starting thread (before the actor's own ``__init__`` runs,
    so that an actor started from that ``__init__`` cannot take it), hands the predecessor's
    names to the new instance, and turns a ``BaseException`` raised in any message handler
    into a ``RuntimeError`` crash of this one actor: left alone, Pykka would report a normal
    stop and then stop every actor in the process. Subclasses say what a crash does
    (:meth:`_goth_actors_crash`) and report their exit once (:meth:`_goth_actors_report`).
    """

    use_daemon_thread: ClassVar[bool] = True  # the tree owns the child's lifetime
    _goth_actors_links_itself: ClassVar[bool] = True
    _goth_actors_link: _Link | None
    _goth_actors_done: bool

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self._goth_actors_link = link = _claim_link()
        self._goth_actors_done = False
        try:
            super().__init__(*args, **kwargs)
        except BaseException:
            # The actor will never run: make sure names it registered in __init__ are free.
            stopped = getattr(self, "actor_stopped", None)
            if isinstance(stopped, threading.Event):
                stopped.set()
            raise
        if link is not None:
            link.urn = self.actor_urn
            _reregister(list(link.names), self.actor_ref)

    def _goth_actors_running(self) -> None:
        """Called first thing in ``on_start``, on the actor's own thread."""
        link = self._goth_actors_link
        if link is not None:
            link.thread = threading.current_thread()

    def _handle_receive(self, message: Any) -> Any:
        # Pykka's single dispatch point for tell, ask and proxy calls (a private method,
        # stable since Pykka 2; tests pin the behaviour that depends on it).
        try:
            return super()._handle_receive(message)
        except Exception:
            raise
        except BaseException as error:
            crash = _crash_from(error, self)
            logger.error("%s: %s in a handler; the actor crashes", self, type(error).__name__)
            self._goth_actors_crash(crash, error)
            raise crash from error

    def _goth_actors_crash(self, crash: RuntimeError, error: BaseException) -> None:
        """What a ``BaseException`` in a handler does, before Pykka sees ``crash``."""
        raise NotImplementedError

    def _goth_actors_report(self, reason: BaseException | None) -> None:
        """Report the exit to the supervisor, once (later calls do nothing)."""
        if self._goth_actors_done:
            return
        self._goth_actors_done = True
        if self._goth_actors_link is not None:
            self._goth_actors_link.report_exit(reason)


class _Hooks(Linked):
    """The wrappers :func:`hooked_class` puts in front of a user's actor class."""

    def on_start(self) -> None:
        self._goth_actors_running()
        try:
            super().on_start()
        except Exception as error:
            _mark_stopped(self)
            self._goth_actors_report(error)
            raise
        except BaseException as error:
            crash = _crash_from(error, self)
            _mark_stopped(self)
            self._goth_actors_report(crash)
            raise crash from error
        link = self._goth_actors_link
        if link is not None:
            link.set_started()

    def _goth_actors_crash(self, crash: RuntimeError, error: BaseException) -> None:
        _mark_stopped(self)
        self._goth_actors_failure(type(crash), crash, error.__traceback__)

    def on_failure(
        self,
        exception_type: type[BaseException] | None,
        exception_value: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        if not self._goth_actors_done:
            self._goth_actors_failure(exception_type, exception_value, traceback)

    def on_stop(self) -> None:
        try:
            super().on_stop()
        except Exception as error:
            self._goth_actors_report(error)
            raise
        except BaseException as error:
            crash = _crash_from(error, self)
            self._goth_actors_report(crash)
            raise crash from error
        self._goth_actors_report(None)

    def _goth_actors_failure(
        self,
        exception_type: type[BaseException] | None,
        exception_value: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        try:
            super().on_failure(exception_type, exception_value, traceback)
        except BaseException:
            logger.exception("%s: on_failure raised", self)
        finally:
            self._goth_actors_report(exception_value or RuntimeError(f"{self} crashed"))


def hooked_class(actor_class: type[pykka.ThreadingActor]) -> type[pykka.ThreadingActor]:
    """Return ``actor_class``, or a same-named subclass of it that reports to its supervisor.

    The subclass runs on a daemon thread. Classes that speak the link protocol themselves
    (supervisors, already-hooked classes) are returned as they are. The subclass is built once
    per class and cached.

    Raises:
        TypeError: If ``actor_class`` is not a ``pykka.ThreadingActor`` subclass.
    """
    if not (isinstance(actor_class, type) and issubclass(actor_class, pykka.ThreadingActor)):
        msg = f"expected a pykka.ThreadingActor subclass, got {actor_class!r}"
        raise TypeError(msg)
    if getattr(actor_class, "_goth_actors_links_itself", False):
        return actor_class
    with _hooked_lock:
        hooked = _hooked.get(actor_class)
        if hooked is None:
            namespace = {
                "__module__": actor_class.__module__,
                "__qualname__": actor_class.__qualname__,
                "__doc__": actor_class.__doc__,
            }
            hooked = type(actor_class.__name__, (_Hooks, actor_class), namespace)
            _hooked[actor_class] = hooked
        return hooked

"""The actor side of links: ``Linked``, shared by supervisors and the classes they build.

Users' actors do not know the link protocol and need not: `hooked_class` builds, once
per class, a subclass with the same name whose hooks wrap the user's own ones (the user's
methods are called through ``super()``). The wrappers

- catch an ``on_start`` failure, which Pykka reports to no hook at all;
- mark the actor dead (``actor_stopped``) *before* reporting, so that a successor can take the
  dead actor's registered names at once;
- turn a ``BaseException`` (``SystemExit``, ``KeyboardInterrupt``...) raised in any handler into
  a ``RuntimeError`` crash of that one actor. Left alone, Pykka would leave a zombie (in
  ``on_start``) or stop every actor in the process (in a message handler).

Every `Linked` actor also

- has a closable inbox (``_inbox.Inbox``): an ask that comes too late fails at once;
- frees what it holds when its thread cannot start (``RuntimeError: can't start new thread``
  at a pids limit): Pykka registers an actor before it starts its thread, and would leave a
  zombie that holds its names for ever;
- can be killed (``_inbox.kill``), for ``brutal_kill`` and a ``shutdown`` that ran out;
- **owns** what it starts: a supervisor (or any ``Linked`` actor) started on a ``Linked``
  actor's thread, outside a supervisor's start, is linked to that actor, as OTP's
  ``start_link`` links to its caller. When the owner stops or crashes, what it owns is stopped
  first; when something it owns exits abnormally (a supervisor that gave up), the owner
  crashes with `LinkExit`, and its own supervisor decides. A plain Pykka actor its supervisor
  hooked (``_plain``) owns what it starts in the same way.

The subclass also runs on a daemon thread (``use_daemon_thread = True``, whatever the user's
class says): the tree owns the child's lifetime, and the supervisor's exit hook stops it, in
order and through its ``on_stop``, when the program ends.
"""

from __future__ import annotations

import contextlib
import logging
import os
import threading
from types import TracebackType
from typing import Any, ClassVar

import pykka

from goth_actors.otp._errors import LinkExit
from goth_actors.otp._inbox import Inbox, close, kill
from goth_actors.otp._link import _claim_link, _Link
from goth_actors.otp._plain import _current, _OwnedExit
from goth_actors.otp._registry import _reregister

__all__ = ["Linked", "disown", "hooked_class"]

logger = logging.getLogger("goth_actors.otp")

_hooked_lock = threading.Lock()
_hooked: dict[type[pykka.ThreadingActor], type[pykka.ThreadingActor]] = {}


def _after_fork_in_child() -> None:
    global _hooked_lock
    _hooked_lock = threading.Lock()  # another thread may have held it at the fork


os.register_at_fork(after_in_child=_after_fork_in_child)


def _mark_stopped(actor: pykka.Actor) -> None:
    """Makes ``actor`` dead now, as Pykka's own failure path does: unregistered, stopped flag set.

    The actor's loop then ends after the current message; its queued asks get
    ``ActorDeadError`` and its queued tells are dropped, as with any Pykka stop.
    """
    pykka.ActorRegistry.unregister(actor.actor_ref)
    actor.actor_stopped.set()


def disown(ref: pykka.ActorRef[Any]) -> None:
    """Forgets ``ref`` in the actor running on this thread, if it owns it (it is dead)."""
    actor = getattr(_current, "actor", None)  # a Linked actor, or a hooked plain one
    if actor is not None:
        actor._goth_actors_disowned(ref.actor_urn)  # noqa: SLF001  # on the owner's thread


def _crash_from(error: BaseException, actor: object) -> RuntimeError:
    crash = RuntimeError(f"{type(error).__name__} raised in {actor}: {error!r}")
    crash.__cause__ = error
    return crash


class Linked(pykka.ThreadingActor):
    """The actor side of the link protocol, shared by supervisors and hooked children.

    Takes the link offered in the starting thread (before the actor's own ``__init__`` runs,
    so that an actor started from that ``__init__`` cannot take it), hands the predecessor's
    names to the new instance, and turns a ``BaseException`` raised in any message handler
    into a ``RuntimeError`` crash of this one actor: left alone, Pykka would report a normal
    stop and then stop every actor in the process. Subclasses say what a crash does
    (`_goth_actors_crash`) and report their exit once (`_goth_actors_report`).
    """

    use_daemon_thread: ClassVar[bool] = True  # the tree owns the child's lifetime
    _goth_actors_links_itself: ClassVar[bool] = True
    _goth_actors_link: _Link | None
    _goth_actors_done: bool
    _goth_actors_owner: pykka.ActorRef[Any] | None
    _goth_actors_owned: list[pykka.ActorRef[Any]] | None

    @staticmethod
    def _create_actor_inbox() -> Inbox:
        return Inbox()

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self._goth_actors_link = link = _claim_link()
        self._goth_actors_done = False
        self._goth_actors_owner = self._goth_actors_owned = None
        # An actor started from another's __init__ belongs to that one (it runs on its
        # starter's thread, where the running actor is the starter's starter).
        outer: Linked | None = getattr(_current, "constructing", None)
        owner = None if link is not None else (outer or getattr(_current, "actor", None))
        _current.constructing = self
        try:
            super().__init__(*args, **kwargs)
        except BaseException:
            # The actor will never run: make sure names it registered in __init__ are free,
            # and what it started there is stopped.
            stopped = getattr(self, "actor_stopped", None)
            if isinstance(stopped, threading.Event):
                stopped.set()
            owned: list[pykka.ActorRef[Any]] = self._goth_actors_owned or []
            for ref in reversed(owned):
                with contextlib.suppress(pykka.ActorDeadError):
                    ref.stop(block=True)
            raise
        finally:
            _current.constructing = outer
        if link is not None:
            link.urn = self.actor_urn
            link.kill = self._goth_actors_kill
            _reregister(list(link.names), self.actor_ref)
        elif owner is not None and owner is not self:
            self._goth_actors_owner = owner.actor_ref
            # On the owner's thread; an orphaned plain actor declines: this is a root then.
            if owner._goth_actors_adopt(self.actor_ref) is False:  # noqa: SLF001
                self._goth_actors_owner = None

    def _start_actor_loop(self) -> None:
        try:
            super()._start_actor_loop()
        except BaseException as error:
            # No thread (say, "can't start new thread" at a pids limit): Pykka has registered
            # the actor already; free it, and its names, for the next try.
            _mark_stopped(self)
            if self._goth_actors_link is not None:
                self._goth_actors_link.parent = None  # the starter learns from the exception
            self._goth_actors_disown()
            self._goth_actors_report(error)
            raise

    def _actor_loop_teardown(self) -> None:
        close(self.actor_inbox)  # before the last drain: no ask can slip in after it
        super()._actor_loop_teardown()
        if not self._goth_actors_done:  # killed: no hook of ours ran
            self._goth_actors_report(RuntimeError(f"{self} was killed"))

    def _goth_actors_kill(self) -> None:
        kill(self)

    def _goth_actors_running(self) -> None:
        """Called first thing in ``on_start``, on the actor's own thread."""
        _current.actor = self
        link = self._goth_actors_link
        if link is not None:
            link.thread = threading.current_thread()

    def _goth_actors_disown(self) -> None:
        owner, self._goth_actors_owner = self._goth_actors_owner, None
        actor = getattr(_current, "actor", None)
        if owner is not None and actor is not None and actor.actor_urn == owner.actor_urn:
            actor._goth_actors_disowned(self.actor_urn)  # noqa: SLF001  # on the owner's thread

    def _handle_receive(self, message: Any) -> Any:
        # Pykka's single dispatch point for tell, ask and proxy calls (a private method,
        # stable since Pykka 2; tests pin the behaviour that depends on it).
        if isinstance(message, _OwnedExit):
            return self._goth_actors_owned_exit(message)
        try:
            return super()._handle_receive(message)
        except Exception:
            raise
        except BaseException as error:
            crash = _crash_from(error, self)
            logger.error("%s: %s in a handler; the actor crashes", self, type(error).__name__)
            self._goth_actors_crash(crash, error)
            raise crash from error

    def _goth_actors_adopt(self, ref: pykka.ActorRef[Any]) -> bool:
        if self._goth_actors_owned is None:
            self._goth_actors_owned = []
        self._goth_actors_owned.append(ref)
        return True

    def _goth_actors_disowned(self, urn: str) -> None:
        owned = self._goth_actors_owned or []
        owned[:] = [ref for ref in owned if ref.actor_urn != urn]

    def _goth_actors_owned_exit(self, message: _OwnedExit) -> None:
        self._goth_actors_disowned(message.ref.actor_urn)
        if message.reason is not None:
            raise LinkExit(message.ref, message.reason)  # told: this actor crashes

    def _goth_actors_crash(self, crash: RuntimeError, error: BaseException) -> None:
        """What a ``BaseException`` in a handler does, before Pykka sees ``crash``."""
        raise NotImplementedError

    def _goth_actors_report(self, reason: BaseException | None) -> None:
        """Stops what this actor owns, then reports its exit, once (later calls do nothing)."""
        if self._goth_actors_done:
            return
        self._goth_actors_done = True
        owned, self._goth_actors_owned = self._goth_actors_owned, None
        for ref in reversed(owned or []):
            with contextlib.suppress(pykka.ActorDeadError):
                ref.stop(block=True)
        owner = self._goth_actors_owner
        if owner is not None:
            with contextlib.suppress(pykka.ActorDeadError):
                owner.tell(_OwnedExit(self.actor_ref, reason))
        if self._goth_actors_link is not None:
            self._goth_actors_link.report_exit(reason)


class _Hooks(Linked):
    """The wrappers `hooked_class` puts in front of a user's actor class."""

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
    """Returns ``actor_class``, or a same-named subclass of it that reports to its supervisor.

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

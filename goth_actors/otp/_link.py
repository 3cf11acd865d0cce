"""Links: how a supervisor learns that a child started, and how and when it died.

Pykka has no links or monitors (pykka issue 42), so this module installs them. A supervisor
starts each child inside an *offer*: it puts a `_Link` in a thread-local slot and calls
the child's start function. An actor class that knows the protocol (``_hooks.py``: supervisors
and the classes ``ChildSpec.for_actor`` builds) takes the offered link in its ``__init__``
(which Pykka runs in the starter's thread) and from then on reports through it:

- ``started``, once ``on_start`` returned (or failed: ``start_error``);
- ``exited``, exactly once, with the exit reason: ``None`` for a normal stop, otherwise the
  exception. It then tells its supervisor a `_ChildExit` message.

A plain Pykka actor (built by a plain start function) cannot take the link: it has none of the
framework's hooks, so its supervisor installs them on the instance (``_plain.hook``). It does
so when the actor is registered, before its thread starts: while a start function runs,
``pykka.ActorRegistry.register`` (replaced on import, as ``_roots`` replaces ``stop_all``)
hooks each plain actor registered on the supervisor's thread to a link of its own, and the
child keeps the one whose actor the start function returned. The hooks thus see the actor's
whole life: its ``on_start`` is awaited, its exit reported at once with its reason, and what it
starts from its ``on_start`` on is its own (``_plain``). A child whose actor was registered
elsewhere (another thread) is hooked once its start function returns (``_plain.watch``).
Either way the supervisor waits for ``on_start`` and learns of the exit at once; nothing is
polled.

A supervisor waits for a child's ``on_start`` with no time limit, as OTP does. At interpreter
exit `abandon_starts` ends every such wait (and refuses new starts), so that a child
stuck in ``on_start`` cannot keep its supervisor from stopping.

`request_stop` and `await_stop` stop a child as OTP's ``shutdown`` option says:
ask, wait, then kill (``_inbox.kill``: the child ends after its current message, its queued
asks fail with ``ActorDeadError``, its ``on_stop`` does not run; a Python thread cannot be
interrupted, so a handler that never returns keeps its thread); ``"brutal_kill"`` kills at
once. Two halves, so that a supervisor can ask many children at once and wait for them all.
"""

from __future__ import annotations

import contextlib
import logging
import os
import threading
import time
from collections.abc import Callable, Hashable
from dataclasses import dataclass
from typing import Any, Literal

import pykka

from goth_actors.otp._inbox import actor_of
from goth_actors.otp._plain import hook, watch

__all__ = [
    "Shutdown",
    "abandon_starts",
    "await_stop",
    "deadline_of",
    "request_stop",
    "start_linked",
]

logger = logging.getLogger("goth_actors.otp")

Shutdown = float | Literal["brutal_kill"] | None
"""Seconds to wait for a child to stop; ``None`` waits forever; ``"brutal_kill"`` not at all."""

_local = threading.local()
_starts_lock = threading.Lock()
_starts: set[_Link] = set()  # links whose child's on_start a supervisor is waiting for
_exiting = False  # set at interpreter exit: no new start, no wait for an on_start


class _Latch:
    """A one-shot event on a bare lock: what ``threading.Event`` does, in a tenth of the memory.

    Set it once (its owner's lock guards that); any number of threads may wait.
    """

    __slots__ = ("_lock", "_set")

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._lock.acquire()
        self._set = False

    def set(self) -> None:
        if not self._set:
            self._set = True
            self._lock.release()

    def is_set(self) -> bool:
        return self._set

    def wait(self, timeout: float | None = None) -> bool:
        if self._set:
            return True
        if self._lock.acquire(timeout=-1 if timeout is None else timeout):
            self._lock.release()  # the next waiter's turn
            return True
        return self._set


class _Link:
    """One start of one child: the channel from the child back to its supervisor."""

    __slots__ = (
        "__weakref__",
        "_lock",
        "abandoned",
        "exited",
        "kill",
        "names",
        "orphan",
        "parent",
        "reason",
        "start_error",
        "started",
        "thread",
        "urn",
    )

    def __init__(
        self, parent: pykka.ActorRef[Any] | None, names: tuple[Hashable, ...] = ()
    ) -> None:
        self.parent = parent
        self.names = names  # registry names the new instance takes over from its predecessor
        self.urn: str | None = None  # set by the actor that takes the link
        self.thread: threading.Thread | None = None  # the actor's thread, set in on_start
        self.kill: Callable[[], None] | None = None  # ends the actor at once (set by it)
        self.orphan: Callable[[], None] | None = None  # a hooked plain actor's: owns nothing
        self.started = _Latch()
        self.start_error: BaseException | None = None
        self.abandoned = False  # the starter stopped waiting for on_start (interpreter exit)
        self.exited = _Latch()
        self.reason: BaseException | None = None
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return (
            f"<_Link urn={self.urn} started={self.started.is_set()} exited={self.exited.is_set()}>"
        )

    def set_started(self) -> None:
        with self._lock:
            self.started.set()

    def abandon_start(self, error: BaseException) -> bool:
        """Makes the wait for ``on_start`` end with ``error``, unless it has already ended."""
        with self._lock:
            if self.started.is_set():
                return False
            self.abandoned = True
            self.start_error = error
            self.started.set()
            return True

    def report_exit(self, reason: BaseException | None) -> None:
        """Records the exit (first call only), wakes waiters, tells the supervisor."""
        with self._lock:
            if self.exited.is_set():
                return
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


def _claim_link() -> _Link | None:
    """Takes the link offered in this thread, if any (each offer is taken at most once)."""
    link: _Link | None = getattr(_local, "link", None)
    _local.link = None
    return link


def start_linked(
    start: Callable[[], pykka.ActorRef[Any] | None],
    parent: pykka.ActorRef[Any],
    names: tuple[Hashable, ...] = (),
) -> tuple[pykka.ActorRef[Any], _Link] | None:
    """Calls ``start`` with a link on offer; waits for the child's ``on_start``.

    The wait has no time limit (as in OTP), except that `abandon_starts` ends it at
    interpreter exit; the child is then asked to stop, and no longer reports to ``parent``.

    Returns:
        The child's ref and its link, or ``None`` if ``start`` returned ``None`` (OTP's
        ``ignore``: nothing was started).

    Raises:
        BaseException: Whatever ``start`` raised, or the child's ``on_start`` failure.
        TypeError: If ``start`` returned something other than an ``ActorRef`` or ``None``.
        RuntimeError: If the interpreter is exiting (see `abandon_starts`).
    """
    if _exiting:
        raise RuntimeError(_EXITING)
    offered = _Link(parent, names)
    _local.link = offered  # offered to the first linkable actor constructed in this thread
    _local.plain = taken = [offered]  # and a link each for the plain actors registered
    try:
        ref = start()
    except BaseException:
        for each in taken:
            each.parent = None  # no child: what it may have started reports to no one
            if each.orphan is not None:
                each.orphan()
        raise
    finally:
        _local.link = _local.plain = None
    urn = ref.actor_urn if isinstance(ref, pykka.ActorRef) else None
    link: _Link | None = None
    for each in taken:
        if urn is not None and each.urn == urn and link is None:
            link = each
        else:
            each.parent = None  # taken, if at all, by an actor that is not this child
            if each.orphan is not None:  # a plain actor started beside it: no one's child
                each.orphan()
    if ref is None:
        return None
    if not isinstance(ref, pykka.ActorRef):
        msg = f"a child's start function must return a pykka.ActorRef, not {type(ref).__name__}"
        raise TypeError(msg)
    if link is None:  # its actor was not registered here: hooked now, on_start maybe run
        link = _Link(parent, names)
        if not watch(ref, link):
            raise RuntimeError(f"{ref} stopped before it started")
    _wait_started(link)
    if link.abandoned:
        logger.warning("exiting: abandoned the start of %s, still in on_start", ref)
        link.parent = None  # no one supervises it now: its exit is no news
        ref.stop(block=False)  # handled once (if ever) its on_start returns
    if link.start_error is not None:
        raise link.start_error
    return ref, link


def _wait_started(link: _Link) -> None:
    if link.started.is_set():
        return
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


_EXITING = "the program is exiting: child starts are abandoned"


def abandon_starts() -> None:
    """At interpreter exit: ends every wait for a child's ``on_start``; refuses new starts.

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
    # The forking thread may be in a start function: its offer is the parent's, not ours.
    _local.link = _local.plain = None


os.register_at_fork(after_in_child=_after_fork_in_child)


def request_stop(ref: pykka.ActorRef[Any], link: _Link, shutdown: Shutdown) -> None:
    """Asks the child to stop (kills it at once for ``brutal_kill``); its exit is no news now."""
    link.parent = None  # its exit report is expected now, not news
    if shutdown == "brutal_kill":
        _kill(link)
    else:
        ref.stop(block=False)


def await_stop(link: _Link, shutdown: Shutdown, deadline: float | None) -> bool:
    """Waits for the exit of a child asked to stop until ``deadline``, then kills it.

    Returns:
        ``False`` if the child did not stop in time (it was killed: it ends after its current
        message, without its ``on_stop``).
    """
    if shutdown == "brutal_kill":
        return True
    remaining = None if deadline is None else max(0.0, deadline - time.monotonic())
    if not link.exited.wait(remaining):
        _kill(link)
        return False
    thread = link.thread
    if thread is not None and thread is not threading.current_thread():
        thread.join(None if deadline is None else max(0.0, deadline - time.monotonic()))
    return True


def deadline_of(shutdown: Shutdown, now: float) -> float | None:
    """When a stop asked at ``now`` (``time.monotonic()``) runs out of ``shutdown``."""
    if shutdown is None or shutdown == "brutal_kill":
        return None
    return now + shutdown


def _kill(link: _Link) -> None:
    if link.kill is not None:
        link.kill()


# Pykka's own register, kept on the class the first time: a reload of this module must wrap
# it again, not the wrapper (which would call itself for every actor started).
_pykka_register: Callable[..., None] = (
    vars(pykka.ActorRegistry)
    .get("_goth_actors_pykka_register", pykka.ActorRegistry.register)
    .__func__
)
pykka.ActorRegistry._goth_actors_pykka_register = classmethod(_pykka_register)  # type: ignore[attr-defined]  # noqa: SLF001


def _register(cls: type[pykka.ActorRegistry], actor_ref: pykka.ActorRef[Any]) -> None:
    """``pykka.ActorRegistry.register``, which also hooks a plain actor a start function starts.

    Pykka registers an actor after its ``__init__``, before it starts its thread. On a thread
    running a child's start function (`start_linked`), a plain actor (one that does not take
    links itself) is hooked here to a link of its own, so that its hooks see its ``on_start``.
    """
    _pykka_register(cls, actor_ref)
    taken: list[_Link] | None = getattr(_local, "plain", None)  # the offered link first
    if taken is None:
        return
    actor = actor_of(actor_ref)
    if actor is None or getattr(actor, "_goth_actors_links_itself", False):
        return
    link = _Link(taken[0].parent, taken[0].names)
    taken.append(link)
    hook(actor, link)


setattr(pykka.ActorRegistry, "register", classmethod(_register))  # noqa: B010

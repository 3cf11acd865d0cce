"""Inboxes that close, and actors that can be killed.

**Closing.** Pykka's ``ask`` checks ``is_alive()`` and then puts the message in the inbox; an
actor that ends between the two (its loop has drained the inbox and returned) answers no one,
and an ask without a timeout waits for ever. Every actor the framework starts has an
`Inbox` that is closed, under the queue's own lock, *before* its last drain: what is put
after that is answered at once, ``ActorDeadError`` for an ask (``None`` for a stop request, as
Pykka answers it) and nothing for a tell. A call never hangs on a dead actor, as in OTP.

**Killing** (`kill`, OTP's ``kill``, for ``brutal_kill`` and a ``shutdown`` that ran
out): the actor is unregistered and marked stopped at once, so it ends after its current
message; its queued asks fail with ``ActorDeadError`` and its ``on_stop`` does not run. A
Python thread cannot be interrupted: a handler that never returns keeps its thread.

An actor built by a plain start function of the user's has an ordinary ``queue.Queue``: the
link module turns it into an `Inbox` in place when it watches that actor.
"""

from __future__ import annotations

import contextlib
import queue
from typing import Any, NamedTuple, cast

import pykka
from pykka.messages import ProxyGetAttr, _ActorStop

__all__ = ["Inbox", "actor_of", "close", "kill", "make_closable"]


class _Wake(NamedTuple):
    """An envelope-shaped nudge for a loop waiting on its inbox; Pykka answers it itself."""

    message: Any = ProxyGetAttr(attr_path=("actor_urn",))
    reply_to: Any = None


_WAKE = _Wake()


def _refuse(envelope: Any) -> None:
    """Answers a message that reached a closed inbox, as Pykka's own last drain does."""
    reply_to = getattr(envelope, "reply_to", None)
    if reply_to is None:
        return
    with contextlib.suppress(queue.Full):  # already answered
        if isinstance(envelope.message, _ActorStop):
            reply_to.set(None)
        else:
            error = pykka.ActorDeadError("the actor stopped before handling the message")
            reply_to.set_exception(exc_info=(pykka.ActorDeadError, error, None))


class Inbox(queue.Queue[Any]):
    """A Pykka inbox that refuses messages once closed (see the module docstring)."""

    closed = False  # a class default, so that a plain queue.Queue can become one in place

    def __init__(self) -> None:
        # One condition where queue.Queue keeps three: an inbox is unbounded (put never waits
        # for room), no one joins it and only its actor gets from it, so the other two would
        # only cost memory and collector time (4 tracked objects each), once per actor. The
        # whole of queue.Queue's state is made by its own __init__ (it grows: 3.13 added
        # shutdown), and the two spare conditions are freed at once.
        super().__init__()
        self.not_full = self.all_tasks_done = self.not_empty

    def task_done(self) -> None:
        """Not for an inbox: it has one condition, and a joiner could take its reader's wake."""
        raise TypeError("an actor's inbox is not joinable (no task_done or join)")

    def join(self) -> None:
        """Not for an inbox: it has one condition, and a joiner could take its reader's wake."""
        raise TypeError("an actor's inbox is not joinable (no task_done or join)")

    def _put(self, item: Any) -> None:  # called by put() under self.mutex
        if self.closed and item is not _WAKE:
            _refuse(item)
            return
        super()._put(item)

    def close(self) -> None:
        """Refuses every message put from now on."""
        with self.mutex:
            self.closed = True

    def wait_for_message(self, timeout: float) -> None:
        """Returns once the inbox holds a message, or after ``timeout`` seconds."""
        with self.not_empty:
            if not self._qsize():
                self.not_empty.wait(timeout)


def make_closable(inbox: object) -> None:
    """Turns a plain Pykka inbox (a ``queue.Queue``) into an `Inbox`, in place."""
    if type(inbox) is queue.Queue:
        inbox.__class__ = Inbox  # same layout, plus the closed flag


def close(inbox: object) -> None:
    """Closes ``inbox`` if it is an `Inbox` (the framework's actors all have one)."""
    if isinstance(inbox, Inbox):
        inbox.close()


def actor_of(ref: pykka.ActorRef[Any]) -> pykka.Actor | None:
    """The actor behind ``ref``, while it exists (Pykka keeps a weak reference to it)."""
    weak = getattr(ref, "_actor_weakref", None)  # private, stable since Pykka 2
    actor = weak() if callable(weak) else None
    return actor if isinstance(actor, pykka.Actor) else None


def kill(actor: pykka.Actor) -> None:
    """Ends ``actor`` after its current message, without its ``on_stop`` (OTP's ``kill``)."""
    pykka.ActorRegistry.unregister(actor.actor_ref)
    actor.actor_stopped.set()
    with contextlib.suppress(Exception):
        actor.actor_inbox.put(cast("Any", _WAKE))  # a loop waiting for a message sees the stop

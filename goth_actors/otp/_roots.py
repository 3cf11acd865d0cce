"""Prompt exit: the root supervisors alive in this process, stopped in order at interpreter exit.

Supervisors, and the children ``ChildSpec.for_actor`` builds, run on daemon threads, and the
first root supervisor registers a ``threading._register_atexit`` hook. Python runs such hooks
when the main thread finishes, *before* it joins non-daemon threads (plain ``atexit`` hooks run
after). The hook (`stop_roots`) abandons every child start still waiting for an
``on_start``, then stops every live root tree, newest first, each in order and every child
within its ``shutdown``, and waits for that at most `EXIT_TIMEOUT` seconds in all. It logs
at WARNING whatever it stopped waiting for; that dies with the process. An actor on a
non-daemon thread (a child built by a plain ``start`` function, say) is still joined by the
interpreter, as any non-daemon thread is: if it does not stop when asked, the program waits for
it.

``pykka.ActorRegistry.stop_all`` is replaced, on import, by a tree-aware `stop_all`: Pykka's
stops every actor newest first, children before their supervisor, which sees each exit as a
normal stop and restarts the child. This one stops only the actors that no other actor being
stopped will stop (their supervisor or owner), newest first; each supervisor then stops its
own children, in order. Actors outside any tree are stopped as before.
"""

from __future__ import annotations

import contextlib
import logging
import os
import threading
import time
from typing import Any

import pykka

from goth_actors.otp._inbox import actor_of
from goth_actors.otp._link import abandon_starts

__all__ = ["EXIT_TIMEOUT", "forget_root", "remember_root", "stop_all", "stop_roots"]

logger = logging.getLogger("goth_actors.otp")

EXIT_TIMEOUT = 5.0
"""Seconds the interpreter-exit hook waits, in all, for the live trees to stop."""

_lock = threading.Lock()
_roots: dict[str, tuple[pykka.ActorRef[Any], threading.Event]] = {}
_hook_installed = False


def remember_root(ref: pykka.ActorRef[Any], done: threading.Event) -> None:
    """Stops the tree of ``ref`` at interpreter exit; ``done`` is set once it has stopped."""
    global _hook_installed
    with _lock:
        _roots[ref.actor_urn] = (ref, done)
        if not _hook_installed:
            _hook_installed = True
            register_atexit = getattr(threading, "_register_atexit", None)
            if register_atexit is not None:
                with contextlib.suppress(RuntimeError):  # raised once the interpreter exits
                    register_atexit(stop_roots)


def forget_root(ref: pykka.ActorRef[Any]) -> None:
    """The tree of ``ref`` has stopped (or was never a root): nothing to do at exit."""
    with _lock:
        _roots.pop(ref.actor_urn, None)


def stop_roots(timeout: float | None = None) -> None:
    """At interpreter exit: stops every live root supervisor, newest first, each tree in order.

    Runs before non-daemon threads are joined. First it abandons every child start still
    waiting for an ``on_start`` (and refuses new ones: see ``abandon_starts``), so that no
    supervisor stays blocked in a start; then it stops the trees, and waits for them
    ``timeout`` seconds in all (default: `EXIT_TIMEOUT`, read at exit).
    """
    if timeout is None:
        timeout = EXIT_TIMEOUT
    abandon_starts()
    with _lock:
        roots = list(_roots.values())
    deadline = time.monotonic() + timeout
    late: list[pykka.ActorRef[Any]] = []
    for ref, done in reversed(roots):
        ref.stop(block=False)
        if not done.wait(max(0.0, deadline - time.monotonic())):
            late.append(ref)
    for ref in late:
        logger.warning(
            "exiting: %s did not stop within %s s; no longer waiting for it", ref, timeout
        )


def _stopped_with(ref: pykka.ActorRef[Any]) -> str | None:
    """The URN of the supervisor or owner that stops ``ref`` when it stops, if any."""
    actor = actor_of(ref)
    link = getattr(actor, "_goth_actors_link", None)
    parent = getattr(link, "parent", None)
    if isinstance(parent, pykka.ActorRef) and parent.is_alive():
        return parent.actor_urn
    owner = getattr(actor, "_goth_actors_owner", None)
    if isinstance(owner, pykka.ActorRef) and owner.is_alive():
        return owner.actor_urn
    return None


def stop_all(
    cls: type[pykka.ActorRegistry] = pykka.ActorRegistry,
    *,
    block: bool = True,
    timeout: float | None = None,
) -> list[Any]:
    """``pykka.ActorRegistry.stop_all``, made tree-aware (see the module docstring).

    Examples:
        >>> import pykka
        >>> from goth_actors.otp import ChildSpec, Supervisor
        >>> events = []
        >>> sup = Supervisor.start(
        ...     [ChildSpec.for_actor(pykka.ThreadingActor, id="a")], on_event=events.append
        ... )
        >>> _ = pykka.ActorRegistry.stop_all()  # the supervisor, which stops "a" itself
        >>> [event.kind for event in events]  # no "child_exited", no "child_restarted"
        ['child_started', 'supervisor_exited']
    """
    refs = cls.get_all()
    urns = {ref.actor_urn for ref in refs}
    ordered = [ref for ref in reversed(refs) if _stopped_with(ref) not in urns]
    if block:
        return [ref.stop(block=True, timeout=timeout) for ref in ordered]
    return [ref.stop(block=False, timeout=timeout) for ref in ordered]


setattr(pykka.ActorRegistry, "stop_all", classmethod(stop_all))  # noqa: B010


def _after_fork_in_child() -> None:
    # The parent's supervisors have no thread here: nothing to stop at exit.
    global _lock
    _lock = threading.Lock()
    _roots.clear()
    refs = getattr(pykka.ActorRegistry, "_actor_refs", None)
    if isinstance(refs, list):
        for ref in refs:
            dead = threading.Event()  # every actor of the parent is gone here
            dead.set()
            ref.actor_stopped = dead
        refs.clear()
        setattr(pykka.ActorRegistry, "_actor_refs_lock", threading.RLock())  # noqa: B010


os.register_at_fork(after_in_child=_after_fork_in_child)

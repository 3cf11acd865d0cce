"""The library's own root supervisor, and what it remembers of the servers ``start_link`` started.

``start_link`` without ``supervisor=`` puts the server under one root supervisor, a
``DynamicSupervisor`` started on first use and stopped at interpreter exit (or by
``goth_actors.shutdown``): its servers stop in parallel, so an exit with N servers busy
in an exchange takes one ``SERVER_SHUTDOWN``, not N. The `Root` below is that
supervisor's bookkeeping: which supervisor each server was started under (so ``stop(name)``
can remove it there), the specs of the servers under the root (so a forked child can start
them again), and the names whose server stayed in the parent process. An entry goes when its
server is gone for good (the spec's ``on_final_exit`` calls `Root.forget`). There is one
instance, `root`.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Hashable
from dataclasses import dataclass
from typing import Any, cast

import pykka

from goth_actors._errors import AlreadyStarted
from goth_actors.otp import (
    ChildNotFound,
    ChildSpec,
    DynamicSupervisor,
    delete_child,
    start_child,
    terminate_child,
    whereis,
)

__all__ = ["DEFAULT_SUPERVISOR_MAX_RESTARTS", "SUPERVISOR_WAIT", "Root", "root"]

DEFAULT_SUPERVISOR_MAX_RESTARTS = 1_000_000
"""The default root supervisor's ``max_restarts`` (within 1 s): in practice it never gives up.

One server in a crash loop must not take its siblings down with it. Each server paces its own
restarts with its backoff, and a restart that fails is retried with the same backoff
(``RestartBackoff``), so a crash loop is never a hot loop either.
"""

SUPERVISOR_WAIT = 30.0
"""Seconds to wait for a supervisor to start or stop a server (each bounded by its own timeouts)."""


@dataclass(frozen=True, slots=True)
class _Entry:
    parent: pykka.ActorRef[Any]
    spec: ChildSpec
    origin: object  # the server's options: which start this entry is about
    under_root: bool


class Root:
    """The library's root supervisor and what it knows of the servers it started."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.supervisor_ref: pykka.ActorRef[Any] | None = None
        self.entries: dict[Hashable, _Entry] = {}
        self.forked_away: set[Hashable] = set()  # names whose server stayed in the parent

    def supervisor(self) -> pykka.ActorRef[Any]:
        """The root supervisor, started now if it is not running."""
        with self.lock:
            if self.supervisor_ref is None or not self.supervisor_ref.is_alive():
                self.supervisor_ref = DynamicSupervisor.start(
                    max_restarts=DEFAULT_SUPERVISOR_MAX_RESTARTS,
                    max_seconds=1.0,
                    link=False,  # a root, even when the first start_link runs in an actor
                )
            return self.supervisor_ref

    def origin(self, name: Hashable) -> object:
        """What started ``name``'s server (its options), or ``None`` if the root has none."""
        entry = self.entries.get(name)
        return None if entry is None else entry.origin

    def knows(self, name: Hashable) -> bool:
        """Whether a server ``start_link`` started under ``name`` is present (maybe restarting)."""
        return name in self.entries

    def start(
        self,
        name: Hashable,
        spec: ChildSpec,
        origin: object,
        parent: pykka.ActorRef[Any] | None,
        *,
        again: bool = False,
    ) -> pykka.ActorRef[Any]:
        """Starts ``spec`` under ``parent`` (default: the root) and remembers where it runs.

        Raises:
            AlreadyStarted: ``start_link`` started a server under ``name`` already (it is
                running or restarting), unless ``again``. A name whose server stayed in the
                parent of a forked process is free in the child.
        """
        under = self.supervisor() if parent is None else parent
        with self.lock:  # the check and the claim together: two starts of one name race here
            if name in self.entries and name not in self.forked_away and not again:
                raise AlreadyStarted(name)
            self.entries[name] = _Entry(under, spec, origin, parent is None)
            self.forked_away.discard(name)
        try:
            ref = start_child(under, spec, timeout=SUPERVISOR_WAIT)
        except BaseException:
            self.forget(name, origin)
            raise
        return cast("pykka.ActorRef[Any]", ref)

    def forget(self, name: Hashable, origin: object) -> None:
        """The server ``origin`` started under ``name`` is gone for good (any thread)."""
        with self.lock:
            entry = self.entries.get(name)
            if entry is not None and entry.origin is origin:
                del self.entries[name]

    def remove(self, name: Hashable) -> None:
        """Takes ``name``'s server out of the supervisor it was started under, if any."""
        entry = self.entries.pop(name, None)
        self.forked_away.discard(name)
        if entry is None or not entry.parent.is_alive():
            return
        # Bounded by the child's own shutdown, after which the supervisor kills a busy server.
        ref = whereis(name)
        with contextlib.suppress(ChildNotFound, pykka.ActorDeadError, pykka.Timeout):
            terminate_child(entry.parent, name if ref is None else ref, timeout=SUPERVISOR_WAIT)
        if not issubclass(entry.parent.actor_class, DynamicSupervisor):
            with contextlib.suppress(ChildNotFound, pykka.ActorDeadError, pykka.Timeout):
                delete_child(entry.parent, name, timeout=SUPERVISOR_WAIT)

    def shutdown(self, timeout: float) -> list[Hashable]:
        """Stops the root supervisor and its servers; returns the names they held."""
        with self.lock:
            ref, self.supervisor_ref = self.supervisor_ref, None
        names = [name for name, entry in self.entries.items() if entry.under_root]
        if ref is not None and ref.is_alive():
            with contextlib.suppress(pykka.Timeout):
                ref.stop(block=True, timeout=timeout)
        for name in names:
            self.entries.pop(name, None)
        self.forked_away.clear()
        return names

    def after_fork_in_child(self, names: list[Hashable]) -> None:
        """In a forked child: no supervisor runs; ``names``' servers stayed in the parent."""
        self.lock = threading.Lock()
        self.supervisor_ref = None
        self.entries = {n: e for n, e in self.entries.items() if e.under_root}
        self.forked_away = set(names)

    def restart_after_fork(self, name: Hashable) -> pykka.ActorRef[Any] | None:
        """Starts again, in this forked child, the server ``name`` had in the parent.

        Returns the running server, or ``None`` when there is none yet: another thread is
        starting it (wait for it while `knows` says so), or the name's server was under a
        supervisor of the user's (`knows` is then false: no actor survives a fork, and the
        library cannot know how that tree is to be rebuilt).
        """
        with self.lock:
            if name not in self.forked_away:
                return whereis(name)
            self.forked_away.discard(name)
            entry = self.entries.get(name)
        if entry is None:
            return None
        return self.start(name, entry.spec, entry.origin, None, again=True)


root = Root()
"""The one `Root` of this process."""

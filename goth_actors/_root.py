"""The library's own root supervisor, and what it remembers of the servers ``start_link`` started.

``start_link`` without ``supervisor=`` puts the server under one root supervisor, started on
first use and stopped at interpreter exit (or by :func:`goth_actors.shutdown`). The
:class:`Root` below is that supervisor's bookkeeping: which supervisor each server was started
under (so ``stop(name)`` can remove it there), the specs of the servers under the root (so a
forked child can start them again), and the names whose server stayed in the parent process.
There is one instance, :data:`root`.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Hashable
from typing import Any, cast

import pykka

from goth_actors.otp import (
    ChildNotFound,
    ChildRunning,
    ChildSpec,
    DeleteChild,
    StartChild,
    Supervisor,
    TerminateChild,
    whereis,
)

__all__ = ["DEFAULT_SUPERVISOR_MAX_RESTARTS", "SUPERVISOR_WAIT", "Root", "root"]

DEFAULT_SUPERVISOR_MAX_RESTARTS = 1_000_000
"""The default root supervisor's ``max_restarts`` (within 1 s): in practice it never gives up.

One server in a crash loop must not take its siblings down with it. Each server paces its own
restarts with its backoff, so a crash loop is never a hot loop either.
"""

SUPERVISOR_WAIT = 30.0
"""Seconds to wait for a supervisor to start or stop a server (each bounded by its own timeouts)."""


class Root:
    """The library's root supervisor and what it knows of the servers it started."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.supervisor_ref: pykka.ActorRef[Any] | None = None
        self.parents: dict[Hashable, pykka.ActorRef[Any]] = {}
        self.started: dict[Hashable, ChildSpec] = {}  # under the root supervisor, by name
        self.forked_away: set[Hashable] = set()  # names whose server stayed in the parent

    def supervisor(self) -> pykka.ActorRef[Any]:
        """The root supervisor, started now if it is not running."""
        with self.lock:
            if self.supervisor_ref is None or not self.supervisor_ref.is_alive():
                self.supervisor_ref = Supervisor.start(
                    max_restarts=DEFAULT_SUPERVISOR_MAX_RESTARTS, max_seconds=1.0
                )
            return self.supervisor_ref

    def start(
        self, name: Hashable, spec: ChildSpec, parent: pykka.ActorRef[Any] | None
    ) -> pykka.ActorRef[Any]:
        """Start ``spec`` under ``parent`` (default: the root) and remember where it runs."""
        under = self.supervisor() if parent is None else parent
        ref = cast("pykka.ActorRef[Any]", under.ask(StartChild(spec), timeout=SUPERVISOR_WAIT))
        self.parents[name] = under
        if parent is None:
            self.started[name] = spec
        return ref

    def remove(self, name: Hashable) -> None:
        """Take ``name``'s server out of the supervisor it was started under, if any."""
        parent = self.parents.pop(name, None)
        self.started.pop(name, None)
        self.forked_away.discard(name)
        if parent is not None and parent.is_alive():
            try:
                # Bounded by the child's own shutdown, after which the supervisor abandons a
                # busy server: the id is then free for a new start.
                parent.ask(TerminateChild(name), timeout=SUPERVISOR_WAIT)
                parent.ask(DeleteChild(name), timeout=SUPERVISOR_WAIT)
            except (ChildNotFound, ChildRunning, pykka.ActorDeadError, pykka.Timeout):
                pass  # already gone from that supervisor

    def shutdown(self, timeout: float) -> list[Hashable]:
        """Stop the root supervisor and its servers; return the names they held."""
        with self.lock:
            ref, self.supervisor_ref = self.supervisor_ref, None
        if ref is not None and ref.is_alive():
            with contextlib.suppress(pykka.Timeout):
                ref.stop(block=True, timeout=timeout)
        names = list(self.started)
        self.parents.clear()
        self.started.clear()
        self.forked_away.clear()
        return names

    def after_fork_in_child(self, names: list[Hashable]) -> None:
        """In a forked child: no supervisor runs; ``names``' servers stayed in the parent."""
        self.lock = threading.Lock()
        self.supervisor_ref = None
        self.parents.clear()
        self.forked_away = set(names)

    def restart_after_fork(self, name: Hashable) -> pykka.ActorRef[Any] | None:
        """Start again, in this forked child, the server ``name`` had in the parent.

        Returns ``None`` for a name whose server was under a supervisor of the user's: no
        actor survives a fork, and the library cannot know how that tree is to be rebuilt.
        """
        with self.lock:
            if name not in self.forked_away:
                return whereis(name)
            self.forked_away.discard(name)
            spec = self.started.get(name)
        if spec is None:
            return None
        return self.start(name, spec, None)


root = Root()
"""The one :class:`Root` of this process."""

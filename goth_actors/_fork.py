"""``os.fork()``: what a forked child does with the parent's servers, supervisors and actors.

A forked child has none of the parent's threads: no actor, supervisor or timer. Servers started
by ``start_link`` under the library's supervisor are started again in the child the first time
``fetch`` needs them (their cached token, still valid, is served meanwhile). The others were in
supervisors of the user's, which did not survive the fork: ``fetch`` says so instead of waiting
for an actor that will never answer. Every actor ref of the parent is marked dead, so that an
``ask`` fails at once with ``ActorDeadError``.

Pykka keeps its refs in ``ActorRegistry._actor_refs`` (a private name, stable since Pykka 1):
it is read with ``getattr`` and left alone if Pykka changes it.
"""

from __future__ import annotations

import os
import threading
from typing import Any

import pykka

from goth_actors import _table
from goth_actors._root import root

__all__: list[str] = []


def _pykka_refs() -> list[pykka.ActorRef[Any]]:
    refs = getattr(pykka.ActorRegistry, "_actor_refs", None)
    return list(refs) if isinstance(refs, list) else []


def _after_fork_in_child() -> None:
    root.after_fork_in_child(list(_table.servers))
    for ref in _pykka_refs():
        # Every actor of the parent is gone here: make the refs say so (ActorDeadError).
        dead = threading.Event()
        dead.set()
        ref.actor_stopped = dead
    refs = getattr(pykka.ActorRegistry, "_actor_refs", None)
    if isinstance(refs, list):
        refs.clear()
        setattr(pykka.ActorRegistry, "_actor_refs_lock", threading.RLock())  # noqa: B010


os.register_at_fork(after_in_child=_after_fork_in_child)

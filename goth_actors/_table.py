"""The servers' table: what each token server publishes for callers (Goth's ``Goth.Registry``).

Names are one namespace, in ``goth_actors.otp``'s registry: ``whereis(name)`` finds a token
server or any other registered actor. What a server *publishes* (its token, its status) lives
here instead, in a table of its own that user code never writes, so that a user's
``register("x", ref)`` or ``update_value("x", 5, ref=ref)`` can never be mistaken for a server.

Concurrency: one module-level ``dict`` of immutable `Published` values. Writers (the
servers, on their own threads) replace a value under a lock; readers (``goth_actors.fetch``
on its hot path) take no lock at all: a single ``dict.get`` sees either the old value or the
new one, never a mix. A value outlives its server: a server that crashes and is restarted
hands its token to its successor, which *claims* the slot by actor URN, after which the old
instance (if it still runs, killed by its supervisor) can no longer write.

A slot is created only by a server starting (``publish(..., create=True)`` from its
``__init__``) and removed when its server is gone for good (`forget`, from the
``on_final_exit`` of its child spec, or from ``stop``): a late write from an old instance can
never bring a forgotten name back.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Hashable
from dataclasses import dataclass, replace

from goth_actors._protocol import Source, Token
from goth_actors._status import ServerStatus

__all__ = ["Published", "claim", "forget", "publish", "published", "servers"]

servers: dict[Hashable, Published] = {}
"""Name → what its server published; read without a lock by ``fetch``."""

_lock = threading.Lock()


@dataclass(frozen=True, slots=True)
class Published:
    """What a server publishes: read by callers without a lock.

    Attributes:
        owner: The actor URN of the server that wrote it.
        token: The held token, or ``None``.
        fresh_until: The wall-clock time after which ``token`` is no longer handed out.
        clock: The server's wall clock.
        status: The server's status as of this write.
        source: The server's source (a successor with another source inherits nothing).
        origin: What started the server (its options object, one per child spec): only the
            spec that owns the slot can forget it.
    """

    owner: str
    token: Token | None
    fresh_until: float
    clock: Callable[[], float]
    status: ServerStatus
    source: Source
    origin: object = None

    def fresh(self) -> bool:
        """Whether ``token`` may be handed out now (``fetch``'s hot path inlines this)."""
        return self.fresh_until > self.clock()


def published(name: Hashable) -> Published | None:
    """What the server named ``name`` published, or ``None``; lock-free.

    Raises:
        TypeError: ``name`` is not hashable.
    """
    return servers.get(name)


def claim(name: Hashable, owner: str, origin: object) -> Published | None:
    """Makes ``owner`` the only writer of ``name``'s slot; returns what was there before."""
    with _lock:
        previous = servers.get(name)
        if previous is not None and previous.owner != owner:
            # Until the new owner publishes, the old value stays readable, but the old owner
            # can no longer write: mark the slot as the new owner's.
            servers[name] = replace(previous, owner=owner, origin=origin)
        return previous


def publish(name: Hashable, value: Published, *, create: bool = False) -> bool:
    """Stores ``value`` if its owner owns the slot (or, with ``create``, it is empty)."""
    with _lock:
        current = servers.get(name)
        if (current is None and not create) or (
            current is not None and current.owner != value.owner
        ):
            return False
        servers[name] = value
        return True


def forget(name: Hashable, *, origin: object = None) -> bool:
    """Removes ``name``'s slot, only while ``origin`` started its server, when given."""
    with _lock:
        current = servers.get(name)
        if current is None or (origin is not None and current.origin is not origin):
            return False
        del servers[name]
        return True


def _after_fork_in_child() -> None:
    global _lock
    _lock = threading.Lock()


os.register_at_fork(after_in_child=_after_fork_in_child)

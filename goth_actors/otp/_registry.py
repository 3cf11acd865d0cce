"""The name registry: any hashable name → the actor holding it, plus a value that outlives it.

Elixir's ``Registry`` (``keys: :unique``) for Pykka, with one difference: an entry is not
deleted when its actor dies. The entry keeps its ``value`` and only stops resolving to an actor;
the next live actor registered under the name inherits the value, so a restarted actor finds
what its predecessor stored. (The token servers publish their tokens in a table of their own,
``goth_actors._table``, which works the same way but that user code never writes.)

Concurrency: entries live in one module-level ``dict`` and are immutable
(`RegistryEntry` is frozen). Writers build a new entry and store it under a lock;
readers (`lookup`, `whereis`) take no lock at all: a single ``dict.get`` sees either
the old entry or the new one, never a mix. A hit costs well under a microsecond.

Holders are compared by actor URN (``ActorRef`` objects are not unique per actor). A holder is
live while ``ref.is_alive()``; a name may therefore be registered from the actor's
``__init__``, which runs in the starter's thread before the actor's own thread exists.
"""

from __future__ import annotations

import contextlib
import os
import threading
from collections.abc import Hashable
from dataclasses import dataclass, replace
from typing import Any

import pykka

from goth_actors.otp._errors import AlreadyRegistered

__all__ = [
    "Name",
    "RegistryEntry",
    "lookup",
    "register",
    "unregister",
    "update_value",
    "whereis",
]

_entries: dict[Hashable, RegistryEntry] = {}
_by_urn: dict[str, list[Hashable]] = {}  # holder's actor URN -> the names it holds
_write_lock = threading.Lock()


@dataclass(frozen=True, slots=True)
class Name:
    """A registered name where an actor is expected, looked up when it is used.

    For [`send_after`][goth_actors.otp.send_after], whose destination is an ``ActorRef`` or a
    ``Name`` (an Erlang registered name, or Elixir's ``{:via, Registry, key}``): the name is
    resolved when the timer fires, and a name that no live actor holds then drops the message.
    The child-management functions ([`start_child`][goth_actors.otp.start_child]...) take one
    too.

    Attributes:
        name: Any hashable value registered with [`register`][goth_actors.otp.register].

    Raises:
        TypeError: If ``name`` is not hashable.

    Examples:
        >>> Name(("tenant", 42))
        Name(name=('tenant', 42))
    """

    name: Hashable

    def __post_init__(self) -> None:
        _check_hashable(self.name)


def _index(name: Hashable, old: RegistryEntry | None, ref: pykka.ActorRef[Any] | None) -> None:
    """Keeps ``_by_urn`` right when ``name`` passes from ``old``'s holder to ``ref`` (locked)."""
    if old is not None and old.ref is not None:
        names = _by_urn.get(old.ref.actor_urn)
        if names is not None:
            with contextlib.suppress(ValueError):
                names.remove(name)
            if not names:
                del _by_urn[old.ref.actor_urn]
    if ref is not None:
        _by_urn.setdefault(ref.actor_urn, []).append(name)


@dataclass(frozen=True, slots=True)
class RegistryEntry:
    """One name in the registry, as a reader sees it at one instant.

    An entry is not deleted when its actor dies (unlike in Elixir's ``Registry``): it keeps its
    ``value`` and only stops resolving to an actor, and the next live actor registered under
    the name inherits the value, so a restarted child finds what its predecessor stored. It
    goes with [`unregister`][goth_actors.otp.unregister], or when a supervisor's child is gone
    for good. Entries are immutable, so that readers need no lock.

    Attributes:
        name: The registered name.
        ref: The actor that holds (or last held) the name, or ``None`` if none does: the
            holder's process was forked away, or its supervisor gave up on it (a child
            killed by ``brutal_kill`` or after its ``shutdown``). It may be dead: use
            [`whereis`][goth_actors.otp.whereis] for a live actor.
        value: Whatever the holder stored with [`update_value`][goth_actors.otp.update_value]
            (``None`` at first). It outlives the actor and passes to the next holder of the
            name.

    Examples:
        >>> import pykka
        >>> ref = pykka.ThreadingActor.start()
        >>> register("doc-entry", ref)
        >>> entry = lookup("doc-entry")
        >>> entry.ref is ref, entry.value, entry.alive
        (True, None, True)
        >>> _ = ref.stop(); _ = unregister("doc-entry")
    """

    name: Hashable
    ref: pykka.ActorRef[Any] | None
    value: object = None

    @property
    def alive(self) -> bool:
        """Whether the holder is a live actor."""
        return self.ref is not None and self.ref.is_alive()


def _unhashable(name: object, error: TypeError) -> TypeError:
    result = TypeError(f"registry names must be hashable; {type(name).__name__} is not: {name!r}")
    result.__cause__ = error
    return result


def _check_hashable(name: object) -> None:
    try:
        hash(name)
    except TypeError as error:
        raise _unhashable(name, error) from error


def lookup(name: Hashable) -> RegistryEntry | None:
    """Returns the entry for ``name``, or ``None``; lock-free.

    The entry is returned even when its holder has died: its ``value`` outlives the actor.

    Raises:
        TypeError: If ``name`` is not hashable.

    Examples:
        >>> lookup("nobody-registered-this") is None
        True
    """
    try:
        return _entries.get(name)
    except TypeError as error:
        raise _unhashable(name, error) from error


def whereis(name: Hashable) -> pykka.ActorRef[Any] | None:
    """Returns the live actor registered under ``name``, or ``None``; lock-free.

    A single dict read and ``is_alive()``: well under a microsecond.

    Raises:
        TypeError: If ``name`` is not hashable.

    Examples:
        >>> import pykka
        >>> ref = pykka.ThreadingActor.start()
        >>> register(("tokens", "default"), ref)
        >>> whereis(("tokens", "default")) is ref
        True
        >>> _ = ref.stop()
        >>> whereis(("tokens", "default")) is None   # a dead actor's name is free
        True
        >>> unregister(("tokens", "default"))
        True
    """
    try:
        entry = _entries.get(name)
    except TypeError as error:
        raise _unhashable(name, error) from error
    if entry is None:
        return None
    ref = entry.ref
    if ref is None or not ref.is_alive():
        return None
    return ref


def register(name: Hashable, ref: pykka.ActorRef[Any]) -> None:
    """Registers the actor behind ``ref`` under ``name``.

    The name can be taken only if it is free: unknown, or held by a dead actor. In the second
    case the entry's ``value`` is kept for the new holder. Registering an actor again under a
    name it already holds does nothing. An actor may hold several names.

    It is safe to call from the actor's ``__init__`` (after ``super().__init__()``).

    Args:
        name: Any hashable object: a string, a tuple, a number...
        ref: The actor to register; it must be alive.

    Raises:
        AlreadyRegistered: If another live actor holds ``name``.
        pykka.ActorDeadError: If the actor behind ``ref`` is dead.
        TypeError: If ``name`` is not hashable.

    Examples:
        >>> import pykka
        >>> from goth_actors.otp import AlreadyRegistered
        >>> ref, other = pykka.ThreadingActor.start(), pykka.ThreadingActor.start()
        >>> register("worker", ref)
        >>> try:
        ...     register("worker", other)
        ... except AlreadyRegistered as error:
        ...     print(error)
        the name 'worker' is already registered to a live actor
        >>> _ = ref.stop(); _ = other.stop(); _ = unregister("worker")
    """
    _check_hashable(name)
    if not ref.is_alive():
        msg = f"cannot register {name!r}: {ref} is dead"
        raise pykka.ActorDeadError(msg)
    with _write_lock:
        entry = _entries.get(name)
        if entry is None:
            _entries[name] = RegistryEntry(name, ref)
            _index(name, None, ref)
            return
        holder = entry.ref
        if holder is not None and holder.actor_urn == ref.actor_urn:
            return
        if holder is not None and holder.is_alive():
            raise AlreadyRegistered(name)
        _entries[name] = replace(entry, ref=ref)
        _index(name, entry, ref)


def unregister(name: Hashable, *, ref: pykka.ActorRef[Any] | None = None) -> bool:
    """Removes ``name`` from the registry, and its value with it.

    Args:
        name: The name to remove.
        ref: If given, remove the name only while this actor (compared by URN) holds it, so
            an old instance cannot remove its successor's name.

    Returns:
        Whether an entry was removed.

    Raises:
        TypeError: If ``name`` is not hashable.

    Examples:
        >>> unregister("never-registered")
        False
    """
    _check_hashable(name)
    with _write_lock:
        entry = _entries.get(name)
        if entry is None:
            return False
        if ref is not None and (entry.ref is None or entry.ref.actor_urn != ref.actor_urn):
            return False
        del _entries[name]
        _index(name, entry, None)
        return True


def update_value(name: Hashable, value: object, *, ref: pykka.ActorRef[Any]) -> bool:
    """Stores ``value`` in the entry for ``name``, if ``ref`` is the name's current holder.

    The holder is compared by actor URN, so a dying old instance can never overwrite what its
    successor stored. Readers see the new value at once (see
    [`lookup`][goth_actors.otp.lookup]).

    Args:
        name: The registered name.
        value: Any object; readers share it, so make it immutable.
        ref: The actor doing the write; normally ``self.actor_ref``.

    Returns:
        ``True`` if stored; ``False`` if the name is unknown or held by another actor.

    Raises:
        TypeError: If ``name`` is not hashable.

    Examples:
        >>> import pykka
        >>> ref = pykka.ThreadingActor.start()
        >>> register("cache", ref)
        >>> update_value("cache", "a token", ref=ref)
        True
        >>> lookup("cache").value
        'a token'
        >>> _ = ref.stop(); unregister("cache")
        True
    """
    _check_hashable(name)
    with _write_lock:
        entry = _entries.get(name)
        if entry is None or entry.ref is None or entry.ref.actor_urn != ref.actor_urn:
            return False
        _entries[name] = replace(entry, value=value)
        return True


def _after_fork_in_child() -> None:
    """In a forked child no actor of the parent exists: names stop resolving, values stay."""
    global _write_lock
    _write_lock = threading.Lock()
    _by_urn.clear()
    for name, entry in list(_entries.items()):
        if entry.ref is not None:
            _entries[name] = replace(entry, ref=None)


os.register_at_fork(after_in_child=_after_fork_in_child)


def _names_of(ref: pykka.ActorRef[Any]) -> list[Hashable]:
    """Returns the names ``ref`` holds."""
    with _write_lock:
        return list(_by_urn.get(ref.actor_urn, ()))


def _release_names(ref: pykka.ActorRef[Any]) -> list[Hashable]:
    """Takes every name from ``ref``, alive or not; keeps the values; returns the names.

    For a supervisor that has given up on a child it could not stop (``brutal_kill``, or past
    its ``shutdown``): the names resolve to no actor, so the successor can take them, and the
    old instance, still running, can no longer `update_value` them.
    """
    with _write_lock:
        names = _by_urn.pop(ref.actor_urn, [])
        for name in names:
            _entries[name] = replace(_entries[name], ref=None)
    return names


def _drop_names(ref: pykka.ActorRef[Any] | None, names: tuple[Hashable, ...] = ()) -> None:
    """Unregisters what ``ref`` holds, and ``names`` unless another actor holds them now.

    For a supervisor whose child is gone for good: its names die with it, values included.
    """
    with _write_lock:
        held = _by_urn.pop(ref.actor_urn, []) if ref is not None else []
        for name in held:
            _entries.pop(name, None)
        for name in names:
            entry = _entries.get(name)
            if entry is not None and (entry.ref is None or not entry.ref.is_alive()):
                del _entries[name]
                _index(name, entry, None)


def _reregister(names: list[Hashable], ref: pykka.ActorRef[Any]) -> list[Hashable]:
    """Registers ``ref`` under each name it can take; returns the names it could not."""
    refused: list[Hashable] = []
    for name in names:
        try:
            register(name, ref)
        except (AlreadyRegistered, pykka.ActorDeadError):
            refused.append(name)
    return refused

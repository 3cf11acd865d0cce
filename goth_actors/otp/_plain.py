"""A plain Pykka actor in a tree: the hooks a supervisor puts on the instance, and its owned trees.

A child built by a plain start function (``ChildSpec("id", lambda: MyActor.start())``) has
none of the framework's hooks, so its supervisor installs them on the instance (`hook`):
Pykka's ``_actor_loop_setup``, ``_actor_loop_teardown`` and ``_handle_failure`` (private names,
stable since Pykka 2, pinned by the tests) are replaced on that one instance. Its inbox becomes
closable, its ``on_start`` is awaited (through a ``ProxyCall``, a message Pykka handles itself,
which ``on_receive`` never sees), and its exit is reported as soon as its loop ends, with the
exception when Pykka saw one.

The supervisor installs them when the actor is registered, *before* its thread starts
(``_link``'s ``ActorRegistry.register``), so that from its ``on_start`` on the actor **owns**
what it starts, as a ``Linked`` actor does: a supervisor (or any ``Linked`` actor) started on
its thread is linked to it (`_current` names it there). When the owner's loop ends, for a
stop or a crash, what it owns is stopped first, newest first, and then its exit is reported;
when something it owns exits abnormally (a supervisor that gave up), an `_OwnedExit`
message makes the owner crash with ``LinkExit``. That message is intercepted in front of the
user's handlers, on the instance, from the first tree it owns: an actor that owns nothing pays
nothing per message.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

import pykka
from pykka.messages import ProxyCall

from goth_actors.otp._errors import LinkExit
from goth_actors.otp._inbox import actor_of, close, kill, make_closable

__all__ = ["hook", "watch"]

_current = threading.local()  # .actor: the actor (Linked, or hooked plain) whose thread this is


class _Link(Protocol):
    """What the hooks need of ``_link._Link`` (imported from here, not there: no cycle)."""

    urn: str | None
    thread: threading.Thread | None
    kill: Callable[[], None] | None
    orphan: Callable[[], None] | None

    def set_started(self) -> None: ...

    def report_exit(self, reason: BaseException | None) -> None: ...


@dataclass(frozen=True, slots=True)
class _OwnedExit:
    """Told to an owner when an actor it owns has exited (``reason`` ``None``: normally)."""

    ref: pykka.ActorRef[Any]
    reason: BaseException | None


class _PlainOwner:
    """What a hooked plain actor owns; its bound methods go on the instance, as a Linked's.

    An actor that turns out not to be the child (another actor its start function started)
    is `orphan`: it owns nothing from then on, as a plain actor outside any tree.
    """

    __slots__ = ("actor", "lock", "orphaned", "owned")

    def __init__(self, actor: pykka.Actor) -> None:
        self.actor = actor
        self.owned: list[pykka.ActorRef[Any]] | None = None
        self.orphaned = False
        self.lock = threading.Lock()  # adopt (the owner's thread) against orphan (the starter's)

    def adopt(self, ref: pykka.ActorRef[Any]) -> bool:
        """Owns ``ref`` (called on the owner's own thread, where the tree was constructed).

        Returns:
            ``False`` if this actor owns nothing (`orphan`): ``ref`` is then a root.
        """
        with self.lock:
            if self.orphaned:
                return False
            self._adopt(ref)
        return True

    def orphan(self) -> None:
        """This actor is no one's child: it owns nothing, and what it owned is a root again."""
        with self.lock:
            self.orphaned = True
            owned, self.owned = self.owned, None
        for ref in owned or []:
            tree = actor_of(ref)
            if tree is not None:
                tree._goth_actors_owner = None  # type: ignore[attr-defined]  # noqa: SLF001

    def _adopt(self, ref: pykka.ActorRef[Any]) -> None:
        if self.owned is None:
            self.owned = []
            handle: Callable[[Any], Any] = self.actor._handle_receive  # noqa: SLF001

            def handle_receive(message: Any) -> Any:
                if isinstance(message, _OwnedExit):
                    return self.owned_exit(message)
                return handle(message)

            vars(self.actor)["_handle_receive"] = handle_receive  # read by the next message
        self.owned.append(ref)

    def disowned(self, urn: str) -> None:
        owned = self.owned or []
        owned[:] = [ref for ref in owned if ref.actor_urn != urn]

    def owned_exit(self, message: _OwnedExit) -> None:
        self.disowned(message.ref.actor_urn)
        if message.reason is not None and not self.orphaned:
            raise LinkExit(message.ref, message.reason)  # told: this actor crashes

    def stop_owned(self) -> None:
        owned, self.owned = self.owned, None
        for ref in reversed(owned or []):
            with contextlib.suppress(pykka.ActorDeadError):
                ref.stop(block=True)


def hook(actor: pykka.Actor, link: _Link) -> None:
    """Hooks ``actor`` (a plain Pykka actor) to ``link``; see the module docstring.

    Installed before the actor's thread starts, the hooks see all of its life; installed
    later (`watch`), a tree it started before they were is a root. If the actor is already
    dead, its exit is reported on ``link`` at once.
    """
    inbox: object = actor.actor_inbox
    make_closable(inbox)
    # Pykka's private hooks (stable since Pykka 2), replaced on this instance only:
    setup: Callable[[], None] = actor._actor_loop_setup  # noqa: SLF001
    teardown: Callable[[], None] = actor._actor_loop_teardown  # noqa: SLF001
    handle_failure: Callable[..., None] = actor._handle_failure  # noqa: SLF001
    reasons: list[BaseException | None] = []
    owner = _PlainOwner(actor)

    def hooked_setup() -> None:
        _current.actor = actor  # what it starts from now on is its own
        setup()

    def hooked_failure(*exc_info: Any) -> None:
        reasons.append(exc_info[1])
        handle_failure(*exc_info)

    def hooked_teardown() -> None:
        close(inbox)
        teardown()
        owner.stop_owned()
        link.report_exit(reasons[0] if reasons else None)

    def started() -> None:
        _current.actor = actor
        link.thread = threading.current_thread()
        link.set_started()

    vars(actor).update(
        _actor_loop_setup=hooked_setup,
        _handle_failure=hooked_failure,
        _actor_loop_teardown=hooked_teardown,
        _goth_actors_started=started,
        _goth_actors_link=link,
        _goth_actors_adopt=owner.adopt,
        _goth_actors_disowned=owner.disowned,
    )
    link.urn = actor.actor_urn
    link.kill = lambda: kill(actor)
    link.orphan = owner.orphan
    try:
        # Pykka runs this call itself (on_receive never sees it), after on_start returned.
        actor.actor_ref.tell(ProxyCall(attr_path=("_goth_actors_started",), args=(), kwargs={}))
    except pykka.ActorDeadError:
        # Dead before the hooks could matter: its loop ended (or is ending) without them.
        link.report_exit(RuntimeError(f"{actor.actor_ref} stopped before it started"))


def watch(ref: pykka.ActorRef[Any], link: _Link) -> bool:
    """Hooks the actor behind ``ref``, already running, to ``link``.

    For a child whose actor was not registered on its supervisor's thread during its start
    function (started on another thread, say): its ``on_start`` may have run already.

    Returns:
        ``False`` if the actor is already gone. Otherwise ``link.started`` is set once the
        actor's ``on_start`` has returned, and its exit is reported on ``link`` when its loop
        ends (with the exception Pykka saw, if any; ``None`` for a stop).
    """
    actor = actor_of(ref)
    if actor is None:
        return False
    hook(actor, link)
    return True

"""Owners started by plain start functions: a tree started inside such a child belongs to it.

``ChildSpec("id", lambda: MyActor.start())`` builds a plain Pykka actor, which knows nothing of
links; its supervisor hooks it before its thread starts, so that from its ``on_start`` on, a
tree it starts stops when it stops or crashes, as OTP's ``start_link`` links to its caller.
"""

from __future__ import annotations

import concurrent.futures
from typing import Any

import pykka
import pytest
from _actors import (
    Crash,
    Journal,
    StartSupervisor,
    child,
    journal_fixture,  # noqa: F401  # the journal fixture
    start_supervisor_fixture,  # noqa: F401  # the start_supervisor fixture
    wait_dead,
    worker,
)

from goth_actors.otp import (
    AlreadyRegistered,
    ChildSpec,
    FailedToStartChild,
    LinkExit,
    MaxRestartsExceeded,
    Supervisor,
    terminate_child,
    whereis,
)


class Owner(pykka.ThreadingActor):
    """A plain actor that starts a tree of its own: in on_start, or when told "build"."""

    def __init__(
        self, journal: Journal, *, at_start: bool = True, max_restarts: int = 3, fail: bool = False
    ) -> None:
        super().__init__()
        self.journal = journal
        self.at_start = at_start
        self.max_restarts = max_restarts
        self.fail = fail
        self.tree: pykka.ActorRef[Any] | None = None

    def on_start(self) -> None:
        if self.at_start:
            self.build()
        if self.fail:
            raise ValueError("owner failed in on_start")

    def build(self) -> None:
        self.tree = Supervisor.start(
            [worker("inner", self.journal)], max_restarts=self.max_restarts
        )

    def on_receive(self, message: Any) -> Any:
        if message == "build":
            self.build()
        if message == "crash":
            raise ValueError("owner crashed")
        return self.tree


def trees(sup: pykka.ActorRef[Any]) -> list[pykka.ActorRef[Any]]:
    """The live supervisors other than ``sup``."""
    return [ref for ref in pykka.ActorRegistry.get_by_class(Supervisor) if ref is not sup]


def test_a_tree_started_in_the_on_start_of_a_plain_started_child_stops_when_the_child_crashes(
    start_supervisor: StartSupervisor, journal: Journal
) -> None:
    sup, events = start_supervisor([ChildSpec("owner", lambda: Owner.start(journal))])
    first_tree = child(sup, "owner").ask("tree", timeout=5.0)
    for _ in range(3):
        child(sup, "owner").tell("crash")
        events.wait_for("child_restarted", "owner")
    wait_dead(first_tree)
    assert len(trees(sup)) == 1  # one tree per live owner: the restarts leaked none
    assert journal.lines.count("start inner") == 4
    assert journal.lines.count("stop inner") == 3
    sup.stop()  # and the last tree stops with its owner (the leak check sees no actor left)
    assert trees(sup) == []


def test_a_tree_started_in_a_later_handler_of_a_plain_started_child_is_its_own(
    start_supervisor: StartSupervisor, journal: Journal
) -> None:
    spec = ChildSpec("owner", lambda: Owner.start(journal, at_start=False))
    sup, events = start_supervisor([spec])
    tree = child(sup, "owner").ask("build", timeout=5.0)
    child(sup, "owner").tell("crash")
    events.wait_for("child_restarted", "owner")
    wait_dead(tree)  # stopped with the owner that started it
    assert trees(sup) == []  # and the new owner has built none yet
    child(sup, "owner").ask("build", timeout=5.0)
    terminate_child(sup, "owner")  # a stop, not a crash: the tree stops too
    assert trees(sup) == []
    assert journal.lines == ["start inner", "stop inner", "start inner", "stop inner"]


def test_a_plain_child_that_dies_in_on_start_right_after_starting_a_tree_leaves_no_tree(
    journal: Journal,
) -> None:
    spec = ChildSpec("owner", lambda: Owner.start(journal, fail=True))
    with pytest.raises(FailedToStartChild):
        Supervisor.start([spec])
    assert pykka.ActorRegistry.get_all() == []  # its tree stopped before the start failed
    assert journal.lines == ["start inner", "stop inner"]


def test_a_tree_a_plain_child_owns_that_gives_up_crashes_the_child(
    start_supervisor: StartSupervisor, journal: Journal
) -> None:
    sup, events = start_supervisor(
        [ChildSpec("owner", lambda: Owner.start(journal, max_restarts=0))]
    )
    tree = child(sup, "owner").ask("tree", timeout=5.0)
    child(tree, "inner").tell(Crash())
    exited = events.wait_for("child_exited", "owner")
    assert isinstance(exited.reason, LinkExit)
    assert isinstance(exited.reason.reason, MaxRestartsExceeded)
    events.wait_for("child_restarted", "owner")
    assert len(trees(sup)) == 1


def test_stop_all_with_a_plain_owner_stops_its_tree_through_it_as_a_shutdown(
    journal: Journal,
) -> None:
    from _actors import Events

    events = Events()
    Supervisor.start([ChildSpec("owner", lambda: Owner.start(journal))], on_event=events)
    pykka.ActorRegistry.stop_all()
    assert pykka.ActorRegistry.get_all() == []
    assert ("child_restarted", "owner") not in events.drain()
    assert journal.lines == ["start inner", "stop inner"]


class NamesATree(pykka.ThreadingActor):
    """Starts a named tree in on_start; a second one under the same name cannot start."""

    def on_start(self) -> None:
        self.tree = Supervisor.start([], name="the-tree")
        with pytest.raises(AlreadyRegistered):
            Supervisor.start([], name="the-tree")


def test_a_tree_that_could_not_take_its_name_is_not_left_in_its_plain_owner(
    start_supervisor: StartSupervisor,
) -> None:
    sup, _ = start_supervisor([ChildSpec("owner", lambda: NamesATree.start())])
    terminate_child(sup, "owner")  # stops the one tree it owns, and nothing hangs
    assert whereis("the-tree") is None
    assert trees(sup) == []


class Helper(pykka.ThreadingActor):
    """A plain actor the start function starts besides the child."""


def test_a_start_function_that_starts_a_helper_first_still_supervises_its_child(
    start_supervisor: StartSupervisor, journal: Journal
) -> None:
    helpers: list[pykka.ActorRef[Any]] = []

    def start() -> pykka.ActorRef[Any]:
        helpers.append(Helper.start())
        return Owner.start(journal)

    sup, events = start_supervisor([ChildSpec("owner", start)])
    try:
        helpers[0].stop()  # not the child: its stop is no news to the supervisor
        first_tree = child(sup, "owner").ask("tree", timeout=5.0)
        child(sup, "owner").tell("crash")
        events.wait_for("child_restarted", "owner")
        wait_dead(first_tree)  # the child, hooked before it ran, owned its tree
        assert [kind for kind, _ in events.drain()].count("child_exited") == 1
    finally:
        for ref in helpers:
            ref.stop()


def test_a_child_started_on_another_thread_is_still_supervised(
    start_supervisor: StartSupervisor, journal: Journal
) -> None:
    # Registered on a pool's thread, it is hooked once its start function returns: a tree
    # it starts in a later handler is its own (one from its on_start may be a root).
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        spec = ChildSpec(
            "owner", lambda: pool.submit(Owner.start, journal, at_start=False).result()
        )
        sup, events = start_supervisor([spec])
        tree = child(sup, "owner").ask("build", timeout=5.0)
        child(sup, "owner").tell("crash")
        events.wait_for("child_restarted", "owner")
        wait_dead(tree)


def test_an_actor_a_start_function_starts_beside_its_child_owns_nothing(
    start_supervisor: StartSupervisor, journal: Journal
) -> None:
    # Hooked when registered (it might have been the child), it is no one's child once the
    # function returned another: as a plain actor outside any tree, it owns nothing, so a tree
    # it starts neither stops with it nor crashes it when it gives up.
    helpers: list[pykka.ActorRef[Any]] = []

    def start() -> pykka.ActorRef[Any]:
        helpers.append(Owner.start(journal, at_start=False, max_restarts=0))
        return pykka.ThreadingActor.start()

    start_supervisor([ChildSpec("plain", start)])
    helper = helpers[0]
    tree = helper.ask("build", timeout=5.0)
    try:
        child(tree, "inner").tell(Crash())
        wait_dead(tree)  # the tree gave up
        assert helper.is_alive()  # and its starter did not crash of it
        second = helper.ask("build", timeout=5.0)
        helper.stop()
        assert second.is_alive()  # a root: it did not stop with its starter
        second.stop()
    finally:
        helper.stop()

"""DynamicSupervisor: children started at run time, found by ref, stopped in parallel."""

from __future__ import annotations

import copy
import threading
import time
from typing import Any

import pykka
import pytest
from _actors import Crash, Events, Journal, Worker, journal_fixture, wait_dead  # noqa: F401

from goth_actors.otp import (
    ChildCounts,
    ChildInfo,
    ChildNotFound,
    ChildSpec,
    ConfigError,
    DynamicSupervisor,
    MaxChildren,
    MaxRestartsExceeded,
    Supervisor,
    count_children,
    delete_child,
    restart_child,
    start_child,
    terminate_child,
    which_children,
)


def tenant(number: int, journal: Journal, **options: Any) -> ChildSpec:
    return ChildSpec.for_actor(Worker, f"t{number}", journal, id=("tenant", number), **options)


@pytest.fixture
def tenants() -> Any:
    events = Events()
    sup = DynamicSupervisor.start(max_children=3, on_event=events)
    sup.events = events  # type: ignore[attr-defined]
    yield sup
    sup.stop()


def test_children_start_at_run_time_and_are_found_by_ref(
    tenants: pykka.ActorRef[DynamicSupervisor], journal: Journal
) -> None:
    first = start_child(tenants, tenant(1, journal))
    second = start_child(tenants, tenant(1, journal))  # ids need not be unique
    assert first.ask("ping", timeout=5.0) == second.ask("ping", timeout=5.0) == "pong"
    assert which_children(tenants) == [
        ChildInfo(("tenant", 1), first, "worker"),
        ChildInfo(("tenant", 1), second, "worker"),
    ]
    assert count_children(tenants) == ChildCounts(specs=2, active=2, supervisors=0, workers=2)


def test_max_children_is_enforced(
    tenants: pykka.ActorRef[DynamicSupervisor], journal: Journal
) -> None:
    refs = [start_child(tenants, tenant(n, journal)) for n in range(3)]
    with pytest.raises(MaxChildren) as caught:
        start_child(tenants, tenant(3, journal))
    assert caught.value.max_children == 3
    terminate_child(tenants, refs[0])
    start_child(tenants, tenant(3, journal))


def test_terminating_a_child_by_ref_forgets_it(
    tenants: pykka.ActorRef[DynamicSupervisor], journal: Journal
) -> None:
    ref = start_child(tenants, tenant(1, journal))
    terminate_child(tenants, ref)
    assert not ref.is_alive()
    assert count_children(tenants).specs == 0  # forgotten, spec and all
    with pytest.raises(ChildNotFound):
        terminate_child(tenants, ref)
    assert journal.lines == ["start t1", "stop t1"]


def test_restart_child_and_delete_child_do_not_apply(
    tenants: pykka.ActorRef[DynamicSupervisor], journal: Journal
) -> None:
    ref = start_child(tenants, tenant(1, journal))
    with pytest.raises(TypeError, match="start_child again"):
        restart_child(tenants, ref)
    with pytest.raises(TypeError, match="terminate_child"):
        delete_child(tenants, ref)


@pytest.mark.parametrize(
    ("restart", "crash", "restarted"),
    [
        ("permanent", False, True),
        ("transient", True, True),
        ("transient", False, False),
        ("temporary", True, False),
    ],
)
def test_a_child_is_restarted_by_its_restart_type_or_forgotten(
    restart: str,
    crash: bool,
    restarted: bool,
    tenants: pykka.ActorRef[DynamicSupervisor],
    journal: Journal,
) -> None:
    events: Events = tenants.events  # type: ignore[attr-defined]
    old = start_child(tenants, tenant(1, journal, restart=restart))
    old.tell(Crash() if crash else "stop yourself")
    events.wait_for("child_exited")
    if restarted:
        new = events.wait_for("child_restarted").ref
        assert which_children(tenants) == [ChildInfo(("tenant", 1), new, "worker")]
    else:
        assert which_children(tenants) == []


def test_restarts_of_all_children_count_towards_one_intensity(journal: Journal) -> None:
    events = Events()
    sup = DynamicSupervisor.start(max_restarts=1, on_event=events)
    refs = [start_child(sup, tenant(n, journal)) for n in range(2)]
    refs[0].tell(Crash())
    events.wait_for("child_restarted")
    refs[1].tell(Crash())
    exited = events.wait_for("supervisor_exited")
    assert isinstance(exited.reason, MaxRestartsExceeded)
    wait_dead(sup)


class SlowToStop(pykka.ThreadingActor):
    def __init__(self, stopping: threading.Barrier) -> None:
        super().__init__()
        self.stopping = stopping

    def on_stop(self) -> None:
        self.stopping.wait(5.0)  # every child must be stopping at once to get past this


def test_children_are_stopped_in_parallel_when_the_supervisor_stops() -> None:
    stopping = threading.Barrier(5)
    sup = DynamicSupervisor.start()
    for _ in range(5):
        start_child(sup, ChildSpec.for_actor(SlowToStop, stopping, shutdown=10.0))
    sup.stop()
    assert not stopping.broken  # one after another, the barrier would have broken


def test_a_dynamic_supervisor_fits_in_a_tree_and_comes_back_empty(journal: Journal) -> None:
    events = Events()
    root = Supervisor.start(
        [ChildSpec.for_actor(DynamicSupervisor, id="tenants", max_restarts=0)], on_event=events
    )
    try:
        tenants = which_children(root)[0].ref
        assert tenants is not None
        assert which_children(root)[0].type == "supervisor"
        first = start_child(tenants, tenant(1, journal))
        first.tell(Crash())
        events.wait_for("child_restarted", "tenants")  # it gave up; its parent restarted it
        wait_dead(first)
        again = which_children(root)[0].ref
        assert again is not None
        assert again.actor_urn != tenants.actor_urn
        assert count_children(again).specs == 0  # a new instance, empty, as in OTP
    finally:
        root.stop()


def test_its_options_are_checked(journal: Journal) -> None:
    with pytest.raises(ConfigError) as caught:
        DynamicSupervisor.start(max_children=-1)
    assert caught.value.field == "max_children"
    with pytest.raises(ConfigError) as caught:
        ChildSpec.for_actor(DynamicSupervisor, id="d", max_restarts="3")
    assert caught.value.field == "max_restarts"
    sup = DynamicSupervisor.start()
    try:
        with pytest.raises(ConfigError):
            start_child(sup, tenant(1, journal, restart="transient", significant=True))
    finally:
        sup.stop()


# -- the promises of issue 12, on the parallel path too ----------------------------------------


def test_a_named_dynamic_supervisor_is_reached_by_name_and_a_start_that_says_not_now_adds_nothing(
    journal: Journal,
) -> None:
    sup = DynamicSupervisor.start(name="tenants")
    try:
        assert start_child("tenants", ChildSpec("later", lambda: None), timeout=5.0) is None
        ref = start_child("tenants", tenant(1, journal), timeout=5.0)
        assert count_children("tenants", timeout=5.0) == ChildCounts(1, 1, 0, 1)
        terminate_child("tenants", ref, timeout=5.0)
        assert which_children("tenants", timeout=5.0) == []
    finally:
        sup.stop()
    with pytest.raises(pykka.ActorDeadError):
        count_children("tenants")


def test_a_child_crashing_in_on_stop_while_a_dynamic_supervisor_shuts_down_is_a_shutdown_error(
    journal: Journal,
) -> None:
    events = Events()
    sup = DynamicSupervisor.start(on_event=events)
    start_child(sup, tenant(1, journal))
    start_child(
        sup, ChildSpec.for_actor(Worker, "t2", journal, fail_on_stop=True, id=("tenant", 2))
    )
    sup.stop()
    error = events.wait_for("shutdown_error", ("tenant", 2))
    assert isinstance(error.reason, OSError)
    assert ("child_restarted", ("tenant", 2)) not in events.drain()
    assert sorted(journal.lines) == ["start t1", "start t2", "stop t1", "stop t2"]


def test_stop_all_on_a_dynamic_supervisor_is_a_shutdown_not_a_row_of_crashes(
    journal: Journal,
) -> None:
    events = Events()
    sup = DynamicSupervisor.start(max_restarts=0, on_event=events)
    for number in range(5):
        start_child(sup, tenant(number, journal))
    pykka.ActorRegistry.stop_all()
    assert pykka.ActorRegistry.get_all() == []
    assert [kind for kind, _ in events.drain()[5:]] == ["supervisor_exited"]
    assert events.seen[-1].reason is None  # no child's stop was taken for a crash
    wait_dead(sup)


def test_an_ask_racing_the_death_of_a_dynamic_child_fails_at_once(
    tenants: pykka.ActorRef[DynamicSupervisor], journal: Journal
) -> None:
    ref = start_child(tenants, tenant(1, journal))
    racing = copy.copy(ref)
    racing.actor_stopped = threading.Event()  # its is_alive() check passes: the race
    terminate_child(tenants, ref)
    wait_dead(ref)
    started = time.monotonic()
    with pytest.raises(pykka.ActorDeadError):
        racing.ask("ping", timeout=5.0)
    assert time.monotonic() - started < 1.0

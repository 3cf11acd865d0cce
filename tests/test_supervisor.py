"""Supervision of plain, user-defined Pykka actors: deaths, strategies, restarts, intensity."""

from __future__ import annotations

import logging
import queue
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pykka
import pytest
from _actors import (
    Crash,
    Events,
    Gate,
    Journal,
    Plain,
    StartSupervisor,
    Worker,
    child,
    journal_fixture,  # noqa: F401  # the journal fixture
    refs,
    start_supervisor_fixture,  # noqa: F401  # the start_supervisor fixture
    wait_dead,
    worker,
)

from goth_actors.otp import (
    ChildCounts,
    ChildInfo,
    ChildRestarts,
    ChildSpec,
    ConfigError,
    CountChildren,
    DeleteChild,
    FailedToStartChild,
    FakeTime,
    MaxRestartsExceeded,
    RestartChild,
    StartChild,
    Supervisor,
    SupervisorEvent,
    TerminateChild,
    WhichChildren,
    lookup,
    register,
    unregister,
    update_value,
    whereis,
)

REPO = Path(__file__).resolve().parent.parent

# -- every way of dying ------------------------------------------------------------------------


def test_a_crash_in_a_told_message_is_seen_and_the_child_restarted(
    start_supervisor: StartSupervisor, journal: Journal
) -> None:
    sup, events = start_supervisor([worker("a", journal)])
    old = child(sup, "a")
    old.tell(Crash())
    exited = events.wait_for("child_exited", "a")
    assert isinstance(exited.reason, ValueError)
    assert exited.ref is old
    restarted = events.wait_for("child_restarted", "a")
    assert restarted.ref is child(sup, "a")
    assert restarted.ref is not old
    assert restarted.ref.ask("ping", timeout=5.0) == "pong"
    assert journal.lines == ["start a", "failure a", "start a"]


def test_a_crash_in_on_start_during_a_restart_is_retried_and_counted(
    start_supervisor: StartSupervisor, journal: Journal, fake_time: FakeTime
) -> None:
    start_failures: list[BaseException] = []
    sup, events = start_supervisor(
        [worker("a", journal, start_failures=start_failures)], time=fake_time
    )
    start_failures.append(ValueError("not yet"))
    child(sup, "a").tell(Crash())
    failed = events.wait_for("child_start_failed", "a")
    assert isinstance(failed.reason, ValueError)
    fake_time.advance(0.1)  # the pause before the retry
    events.wait_for("child_restarted", "a")
    assert sup.ask(ChildRestarts("a"), timeout=5.0) == 2
    assert child(sup, "a").ask("ping", timeout=5.0) == "pong"


@pytest.mark.parametrize(
    "stop",
    [
        lambda ref: ref.stop(),
        lambda ref: ref.tell("stop yourself"),
        lambda ref: ref.proxy().stop(),
        lambda ref: pykka.ActorRegistry.get_by_urn(ref.actor_urn).stop(),
    ],
    ids=["ref.stop()", "self.stop()", "proxy.stop()", "via the registry"],
)
def test_a_stop_from_anywhere_is_a_normal_exit(
    stop: Callable[[pykka.ActorRef[Any]], object],
    start_supervisor: StartSupervisor,
    journal: Journal,
) -> None:
    sup, events = start_supervisor([worker("a", journal, restart="transient")])
    stop(child(sup, "a"))
    assert events.wait_for("child_exited", "a").reason is None
    assert refs(sup) == {"a": None}
    assert sup.ask(CountChildren(), timeout=5.0) == ChildCounts(1, 0, 0, 1)


def test_an_exception_in_an_asked_message_goes_back_to_the_caller_and_the_child_lives_on(
    start_supervisor: StartSupervisor, journal: Journal
) -> None:
    sup, _ = start_supervisor([worker("a", journal)])
    ref = child(sup, "a")
    with pytest.raises(ValueError, match="boom"):
        ref.ask(Crash(), timeout=5.0)
    assert ref.ask("ping", timeout=5.0) == "pong"
    assert child(sup, "a") is ref


@pytest.mark.parametrize("error_type", [SystemExit, KeyboardInterrupt])
def test_a_base_exception_in_a_told_message_crashes_only_that_child(
    error_type: type[BaseException], start_supervisor: StartSupervisor, journal: Journal
) -> None:
    sup, events = start_supervisor([worker("a", journal), worker("b", journal)])
    a, b = child(sup, "a"), child(sup, "b")
    a.tell(Crash(error_type))
    exited = events.wait_for("child_exited", "a")
    assert isinstance(exited.reason, RuntimeError)
    assert isinstance(exited.reason.__cause__, error_type)
    events.wait_for("child_restarted", "a")
    assert sup.is_alive()
    assert child(sup, "b") is b
    assert b.ask("ping", timeout=5.0) == "pong"
    assert journal.lines.count("failure a") == 1


@pytest.mark.parametrize(
    "ask",
    [
        lambda ref: ref.ask(Crash(SystemExit), timeout=5.0),
        lambda ref: ref.proxy().explode().get(timeout=5.0),
    ],
    ids=["ask", "proxy call"],
)
def test_a_base_exception_in_an_asked_message_reaches_the_caller_and_crashes_the_child(
    ask: Callable[[pykka.ActorRef[Any]], object],
    start_supervisor: StartSupervisor,
    journal: Journal,
) -> None:
    sup, events = start_supervisor([worker("a", journal)])
    old = child(sup, "a")
    with pytest.raises(RuntimeError, match="SystemExit"):
        ask(old)
    events.wait_for("child_restarted", "a")
    assert not old.is_alive()
    assert journal.lines.count("failure a") == 1


def test_a_base_exception_in_on_start_is_a_failed_start_not_a_zombie(journal: Journal) -> None:
    spec = worker("a", journal, start_failures=[KeyboardInterrupt()])
    with pytest.raises(FailedToStartChild) as caught:
        Supervisor.start([spec])
    assert isinstance(caught.value.reason, RuntimeError)
    assert isinstance(caught.value.reason.__cause__, KeyboardInterrupt)
    assert pykka.ActorRegistry.get_all() == []


class InterruptingTime(FakeTime):
    """A FakeTime whose monotonic clock raises KeyboardInterrupt; read only to count a restart."""

    def monotonic(self) -> float:
        raise KeyboardInterrupt


def test_a_base_exception_inside_a_supervisor_is_its_crash_not_a_normal_stop_nor_a_stop_all(
    start_supervisor: StartSupervisor, journal: Journal
) -> None:
    bystander = Plain.start()  # in no tree: Pykka's stop_all would stop it too
    interrupting = InterruptingTime()
    inner_events = Events()
    inner = ChildSpec.for_actor(
        Supervisor,
        [worker("w", journal)],
        id="inner",
        restart="transient",  # restarted after a crash only, not after a normal stop
        time=interrupting,
        on_event=inner_events,
    )
    try:
        sup, events = start_supervisor([inner])
        old_inner = child(sup, "inner")
        child(old_inner, "w").tell(Crash())
        exited = events.wait_for("child_exited", "inner")
        assert isinstance(exited.reason, RuntimeError)
        assert isinstance(exited.reason.__cause__, KeyboardInterrupt)
        assert inner_events.wait_for("supervisor_exited").reason is exited.reason
        events.wait_for("child_restarted", "inner")
        assert child(sup, "inner") is not old_inner
        assert bystander.is_alive()
        assert sup.is_alive()
    finally:
        bystander.stop()
        interrupting.close()


def test_an_exception_in_on_stop_makes_the_exit_a_crash(
    start_supervisor: StartSupervisor, journal: Journal
) -> None:
    sup, events = start_supervisor([worker("a", journal, restart="transient", fail_on_stop=True)])
    child(sup, "a").stop()
    assert isinstance(events.wait_for("child_exited", "a").reason, OSError)
    events.wait_for("child_restarted", "a")


class PlainWorker(pykka.ThreadingActor):
    """Started by a plain start function: no hooks of ours in its class."""

    def __init__(self, journal: Journal) -> None:
        super().__init__()
        self.journal = journal

    def on_start(self) -> None:
        self.journal.add("start plain")

    def on_receive(self, message: Any) -> Any:
        if message == "crash":
            raise ValueError("plain boom")
        return message


def test_a_child_from_a_plain_start_function_is_watched_and_its_exit_seen_at_once_with_its_reason(
    start_supervisor: StartSupervisor, journal: Journal
) -> None:
    sup, events = start_supervisor(
        [ChildSpec("plain", lambda: PlainWorker.start(journal), restart="transient")]
    )
    old = child(sup, "plain")
    assert old.ask("hello", timeout=5.0) == "hello"  # its on_receive saw nothing of ours
    old.tell("crash")
    exited = events.wait_for("child_exited", "plain")  # no poll: at once
    assert isinstance(exited.reason, ValueError)
    assert str(exited.reason) == "plain boom"
    new = events.wait_for("child_restarted", "plain").ref
    assert new is not old
    new.stop()
    assert events.wait_for("child_exited", "plain").reason is None  # a normal stop
    assert refs(sup) == {"plain": None}  # transient: not restarted
    assert journal.lines == ["start plain", "start plain"]


def test_a_plain_childs_on_start_is_waited_for_without_a_message_it_could_see(
    journal: Journal,
) -> None:
    entered, go = threading.Event(), threading.Event()
    started: queue.Queue[pykka.ActorRef[Any]] = queue.Queue()
    spec = ChildSpec("slow", lambda: Gate.start(entered, go))
    threading.Thread(target=lambda: started.put(Supervisor.start([spec]))).start()
    assert entered.wait(5.0)
    with pytest.raises(queue.Empty):
        started.get(timeout=0.05)  # still in on_start: the supervisor is waiting
    go.set()
    sup = started.get(timeout=5.0)
    try:
        assert child(sup, "slow").is_alive()
    finally:
        sup.stop()


def test_two_supervisors_can_share_one_fake_time(
    start_supervisor: StartSupervisor, journal: Journal, fake_time: FakeTime
) -> None:
    first_failures: list[BaseException] = []
    second_failures: list[BaseException] = []
    first, first_events = start_supervisor(
        [worker("a", journal, start_failures=first_failures, restart_delay=1.0)], time=fake_time
    )
    second, second_events = start_supervisor(
        [worker("b", journal, start_failures=second_failures, restart_delay=2.0)],
        time=fake_time,
    )
    first_failures.append(ValueError("not yet"))
    second_failures.append(ValueError("not yet"))
    child(first, "a").tell(Crash())
    child(second, "b").tell(Crash())
    first_events.wait_for("child_start_failed", "a")
    second_events.wait_for("child_start_failed", "b")
    fake_time.advance(1.0)  # the first one's retry is due, not the second's
    first_events.wait_for("child_restarted", "a")
    assert refs(second) == {"b": None}  # a retry told by advance is handled before this
    fake_time.advance(1.0)
    second_events.wait_for("child_restarted", "b")
    assert child(second, "b").ask("ping", timeout=5.0) == "pong"


def test_a_supervisor_started_by_a_plain_start_function_is_still_linked(
    start_supervisor: StartSupervisor, journal: Journal
) -> None:
    def start_sub() -> pykka.ActorRef[Any]:
        return Supervisor.start([worker("w", journal)], max_restarts=0)

    sup, events = start_supervisor([ChildSpec("sub", start_sub, type="supervisor")])
    sub = child(sup, "sub")
    child(sub, "w").tell(Crash())
    exited = events.wait_for("child_exited", "sub")
    assert isinstance(exited.reason, MaxRestartsExceeded)
    events.wait_for("child_restarted", "sub")


def test_hooked_children_keep_their_class_name_and_are_instances_of_their_class(
    start_supervisor: StartSupervisor, journal: Journal
) -> None:
    sup, _ = start_supervisor([worker("a", journal)])
    ref = child(sup, "a")
    assert ref.actor_class.__name__ == "Worker"
    assert issubclass(ref.actor_class, Worker)
    assert pykka.ActorRegistry.get_by_class(Worker) == [ref]
    assert any(t.name.startswith("Worker-") for t in threading.enumerate())


# -- start-up ----------------------------------------------------------------------------------


def test_children_start_in_order_and_a_failed_start_stops_the_started_ones_in_reverse(
    journal: Journal,
) -> None:
    specs = [
        worker("a", journal),
        worker("b", journal),
        worker("c", journal, start_failures=[ValueError("c cannot start")]),
        worker("d", journal),
    ]
    with pytest.raises(FailedToStartChild) as caught:
        Supervisor.start(specs)
    assert caught.value.id == "c"
    assert isinstance(caught.value.reason, ValueError)
    assert "'c'" in str(caught.value)
    assert journal.lines == ["start a", "start b", "stop b", "stop a"]
    assert pykka.ActorRegistry.get_all() == []


def fail_to_start() -> pykka.ActorRef[Any]:
    raise OSError("no such thing")


@pytest.mark.parametrize(
    ("start", "reason_type"),
    [(fail_to_start, OSError), (lambda: "not a ref", TypeError)],
    ids=["raises", "returns something else"],
)
def test_a_start_function_that_fails_is_a_failed_start(
    start: Callable[[], Any], reason_type: type[BaseException]
) -> None:
    with pytest.raises(FailedToStartChild) as caught:
        Supervisor.start([ChildSpec("x", start)])
    assert isinstance(caught.value.reason, reason_type)


def test_a_nested_supervisor_that_cannot_start_fails_its_parent_start(journal: Journal) -> None:
    inner = worker("w", journal, start_failures=[ValueError("no")])
    with pytest.raises(FailedToStartChild) as caught:
        Supervisor.start([worker("a", journal), ChildSpec.for_actor(Supervisor, [inner], id="sub")])
    assert caught.value.id == "sub"
    assert isinstance(caught.value.reason, FailedToStartChild)
    assert caught.value.reason.id == "w"
    assert journal.lines == ["start a", "stop a"]


@pytest.mark.parametrize(
    ("build", "field"),
    [
        (lambda: Supervisor.start(strategy="one_for_some"), "strategy"),
        (lambda: Supervisor.start(max_restarts=-1), "max_restarts"),
        (lambda: Supervisor.start(max_seconds=0), "max_seconds"),
        (lambda: Supervisor.start([ChildSpec("x", Plain.start)] * 2), "children"),
        (lambda: Supervisor.start(["not a spec"]), "children"),
        (lambda: ChildSpec("x", Plain.start, restart="sometimes"), "restart"),  # type: ignore[arg-type]
        (lambda: ChildSpec("x", Plain.start, shutdown=-1.0), "shutdown"),
        (lambda: ChildSpec("x", Plain.start, shutdown="never"), "shutdown"),  # type: ignore[arg-type]
        (lambda: ChildSpec("x", Plain.start, type="manager"), "type"),  # type: ignore[arg-type]
        (lambda: ChildSpec("x", "Plain.start"), "start"),  # type: ignore[arg-type]
        (lambda: ChildSpec(["x"], Plain.start), "id"),
        (lambda: ChildSpec.for_actor(object), "actor_class"),  # type: ignore[arg-type]
    ],
)
def test_invalid_options_are_config_errors_naming_the_field(
    build: Callable[[], object], field: str
) -> None:
    with pytest.raises(ConfigError) as caught:
        build()
    assert caught.value.field == field


def test_child_spec_defaults_follow_otp() -> None:
    worker_spec = ChildSpec.for_actor(Plain)
    assert (worker_spec.id, worker_spec.restart, worker_spec.shutdown, worker_spec.type) == (
        Plain,
        "permanent",
        5.0,
        "worker",
    )
    sub_spec = ChildSpec.for_actor(Supervisor, [], id="sub")
    assert (sub_spec.shutdown, sub_spec.type) == (None, "supervisor")
    assert ChildSpec("x", Plain.start, shutdown="brutal_kill").shutdown == "brutal_kill"


# -- strategies --------------------------------------------------------------------------------


def test_one_for_one_restarts_only_the_dead_child(
    start_supervisor: StartSupervisor, journal: Journal
) -> None:
    sup, events = start_supervisor([worker(n, journal) for n in "abc"])
    before = refs(sup)
    before["b"].tell(Crash())  # type: ignore[union-attr]
    events.wait_for("child_restarted", "b")
    after = refs(sup)
    assert (after["a"], after["c"]) == (before["a"], before["c"])
    assert journal.since("start c") == ["failure b", "start b"]


def test_one_for_all_stops_the_others_in_reverse_and_restarts_all_in_order(
    start_supervisor: StartSupervisor, journal: Journal
) -> None:
    sup, events = start_supervisor([worker(n, journal) for n in "abc"], strategy="one_for_all")
    child(sup, "b").tell(Crash())
    events.wait_for("child_restarted", "c")
    assert journal.since("failure b") == ["stop c", "stop a", "start a", "start b", "start c"]
    assert [sup.ask(ChildRestarts(n), timeout=5.0) for n in "abc"] == [1, 1, 1]


def test_rest_for_one_restarts_the_dead_child_and_those_started_after_it(
    start_supervisor: StartSupervisor, journal: Journal
) -> None:
    sup, events = start_supervisor([worker(n, journal) for n in "abcd"], strategy="rest_for_one")
    a = child(sup, "a")
    child(sup, "b").tell(Crash())
    events.wait_for("child_restarted", "d")
    assert journal.since("failure b") == ["stop d", "stop c", "start b", "start c", "start d"]
    assert child(sup, "a") is a


def test_a_strategy_restart_drops_temporary_siblings_instead_of_restarting_them(
    start_supervisor: StartSupervisor, journal: Journal
) -> None:
    sup, events = start_supervisor(
        [worker("a", journal), worker("t", journal, restart="temporary")],
        strategy="one_for_all",
    )
    child(sup, "a").tell(Crash())
    events.wait_for("child_restarted", "a")
    assert list(refs(sup)) == ["a"]
    assert journal.since("failure a") == ["stop t", "start a"]


# -- restart types -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("restart", "crash", "restarted"),
    [
        ("permanent", True, True),
        ("permanent", False, True),
        ("transient", True, True),
        ("transient", False, False),
        ("temporary", True, False),
        ("temporary", False, False),
    ],
)
def test_the_restart_type_decides_whether_an_exited_child_comes_back(
    restart: str,
    crash: bool,
    restarted: bool,
    start_supervisor: StartSupervisor,
    journal: Journal,
) -> None:
    sup, events = start_supervisor([worker("a", journal, restart=restart)])
    old = child(sup, "a")
    old.tell(Crash() if crash else "stop yourself")
    events.wait_for("child_exited", "a")
    children = refs(sup)
    if restarted:
        events.wait_for("child_restarted", "a")
        assert child(sup, "a") is not old
    elif restart == "temporary":
        assert children == {}  # dropped from the children
    else:
        assert children == {"a": None}


# -- intensity ---------------------------------------------------------------------------------


def test_too_many_restarts_make_the_supervisor_stop_its_children_and_exit(
    start_supervisor: StartSupervisor, journal: Journal, caplog: pytest.LogCaptureFixture
) -> None:
    sup, events = start_supervisor(
        [worker("a", journal), worker("b", journal), worker("c", journal)], max_restarts=2
    )
    with caplog.at_level(logging.ERROR, logger="goth_actors.otp"):
        for _ in range(2):
            child(sup, "b").tell(Crash())
            events.wait_for("child_restarted", "b")
        child(sup, "b").tell(Crash())
        gave_up = events.wait_for("supervisor_gave_up")
        exited = events.wait_for("supervisor_exited")
    assert isinstance(gave_up.reason, MaxRestartsExceeded)
    assert exited.reason is gave_up.reason
    assert exited.reason.last_child == "b"
    assert isinstance(exited.reason.last_reason, ValueError)
    assert (exited.reason.max_restarts, exited.reason.max_seconds) == (2, 5.0)
    assert journal.since("failure b") == ["stop c", "stop a"]
    wait_dead(sup)
    assert any("gave up" in r.getMessage() for r in caplog.records if r.levelno == logging.ERROR)


def test_restarts_older_than_max_seconds_do_not_count(
    start_supervisor: StartSupervisor, journal: Journal, fake_time: FakeTime
) -> None:
    sup, events = start_supervisor([worker("a", journal)], max_restarts=1, time=fake_time)
    for _ in range(4):
        child(sup, "a").tell(Crash())
        events.wait_for("child_restarted", "a")
        fake_time.advance(5.001)  # OTP counts a restart exactly max_seconds old
    assert sup.is_alive()
    child(sup, "a").tell(Crash())
    events.wait_for("child_restarted", "a")
    child(sup, "a").tell(Crash())  # the second restart within 5 s: more than max_restarts=1
    events.wait_for("supervisor_exited")


def test_with_max_restarts_zero_the_first_exit_ends_the_supervisor(
    start_supervisor: StartSupervisor, journal: Journal
) -> None:
    sup, events = start_supervisor([worker("a", journal)], max_restarts=0)
    child(sup, "a").stop()
    assert isinstance(events.wait_for("supervisor_exited").reason, MaxRestartsExceeded)


class FailsItsRestart(pykka.ThreadingActor):
    """Its first restart (its second start) blocks in on_start until released, then fails."""

    def __init__(self, starts: list[int], entered: threading.Event, go: threading.Event) -> None:
        super().__init__()
        self.starts, self.entered, self.go = starts, entered, go

    def on_start(self) -> None:
        self.starts.append(len(self.starts) + 1)
        if len(self.starts) == 2:
            self.entered.set()
            self.go.wait(5.0)
            raise ValueError("the restart fails")

    def on_receive(self, message: Any) -> Any:
        if message == "crash":
            raise ValueError("boom")


def test_a_child_terminated_while_its_restart_fails_is_not_restarted_by_the_stale_retry(
    start_supervisor: StartSupervisor, fake_time: FakeTime
) -> None:
    starts: list[int] = []
    entered, go = threading.Event(), threading.Event()
    spec = ChildSpec.for_actor(FailsItsRestart, starts, entered, go, id="w")
    sup, events = start_supervisor([spec], max_restarts=10, time=fake_time)
    child(sup, "w").tell("crash")
    assert entered.wait(5.0)  # the supervisor is inside the failing restart
    terminated = sup.ask(TerminateChild("w"), block=False)  # queued behind it
    go.set()
    events.wait_for("child_start_failed", "w")  # its retry is armed
    fake_time.advance(1.0)  # the retry is told now, behind TerminateChild
    assert terminated.get(timeout=5.0) is None
    assert refs(sup) == {"w": None}  # asked after the retry was handled: it was ignored
    assert starts == [1, 2]
    assert ("child_restarted", "w") not in events.drain()


def test_a_failing_restart_is_retried_after_a_short_pause_and_every_retry_counts(
    start_supervisor: StartSupervisor,
    journal: Journal,
    fake_time: FakeTime,
) -> None:
    start_failures: list[BaseException] = []
    spec = worker("a", journal, start_failures=start_failures)
    sup, events = start_supervisor([spec], max_restarts=2, max_seconds=5.0, time=fake_time)
    start_failures += [ValueError("still failing")] * 3
    child(sup, "a").tell(Crash())
    assert events.wait_for("child_start_failed", "a").restarts == 1
    fake_time.advance(0.05)  # the pause is min(0.1, max_seconds / (2 * (max_restarts + 1)))
    assert sup.ask(ChildRestarts("a"), timeout=5.0) == 1  # not retried yet
    fake_time.advance(0.06)
    assert events.wait_for("child_start_failed", "a").restarts == 2
    fake_time.advance(0.2)
    exited = events.wait_for("supervisor_exited")
    assert isinstance(exited.reason, MaxRestartsExceeded)
    assert isinstance(exited.reason.last_reason, ValueError)


def test_a_nested_supervisor_that_gives_up_is_restarted_by_its_parent_as_a_crashed_child(
    start_supervisor: StartSupervisor, journal: Journal
) -> None:
    sub_spec = ChildSpec.for_actor(Supervisor, [worker("w", journal)], id="sub", max_restarts=0)
    sup, events = start_supervisor([sub_spec])
    old_sub = child(sup, "sub")
    child(old_sub, "w").tell(Crash())
    exited = events.wait_for("child_exited", "sub")
    assert isinstance(exited.reason, MaxRestartsExceeded)
    assert exited.reason.last_child == "w"
    events.wait_for("child_restarted", "sub")
    new_sub = child(sup, "sub")
    assert new_sub is not old_sub
    assert child(new_sub, "w").ask("ping", timeout=5.0) == "pong"
    assert journal.lines == ["start w", "failure w", "start w"]


def test_giving_up_escalates_through_every_level_to_the_root(
    start_supervisor: StartSupervisor, journal: Journal
) -> None:
    leaf = ChildSpec.for_actor(
        Supervisor, [worker("w", journal), worker("x", journal)], id="leaf", max_restarts=0
    )
    middle = ChildSpec.for_actor(
        Supervisor, [worker("m", journal), leaf], id="middle", max_restarts=0
    )
    root, events = start_supervisor([worker("r", journal), middle], max_restarts=0)
    child(child(child(root, "middle"), "leaf"), "w").tell(Crash())
    exited = events.wait_for("supervisor_exited")
    assert isinstance(exited.reason, MaxRestartsExceeded)
    assert exited.reason.last_child == "middle"
    middle_reason = exited.reason.last_reason
    assert isinstance(middle_reason, MaxRestartsExceeded)
    assert middle_reason.last_child == "leaf"
    assert journal.since("failure w") == ["stop x", "stop m", "stop r"]
    wait_dead(root)


# -- dynamic children --------------------------------------------------------------------------


def test_start_child_adds_a_running_child_and_refuses_an_id_already_present(
    start_supervisor: StartSupervisor, journal: Journal
) -> None:
    sup, events = start_supervisor([worker("a", journal)])
    proxy = sup.proxy()
    ref = proxy.start_child(worker("b", journal)).get(timeout=5.0)
    assert ref.ask("ping", timeout=5.0) == "pong"
    assert events.wait_for("child_started", "b").ref is ref
    assert proxy.which_children().get(timeout=5.0) == [
        ChildInfo("a", child(sup, "a"), "worker"),
        ChildInfo("b", ref, "worker"),
    ]
    with pytest.raises(ValueError, match="already running"):
        proxy.start_child(worker("b", journal)).get(timeout=5.0)
    proxy.terminate_child("b").get(timeout=5.0)
    with pytest.raises(ValueError, match="already present"):
        proxy.start_child(worker("b", journal)).get(timeout=5.0)


def test_a_child_that_fails_in_start_child_is_not_added(
    start_supervisor: StartSupervisor, journal: Journal
) -> None:
    sup, _ = start_supervisor([])
    spec = worker("bad", journal, start_failures=[ValueError("nope")])
    with pytest.raises(FailedToStartChild, match="nope"):
        sup.ask(StartChild(spec), timeout=5.0)
    assert sup.ask(WhichChildren(), timeout=5.0) == []


def test_terminate_restart_and_delete_child_work_as_in_otp(
    start_supervisor: StartSupervisor, journal: Journal
) -> None:
    sup, events = start_supervisor([worker("a", journal)])
    old = child(sup, "a")
    assert sup.ask(TerminateChild("a"), timeout=5.0) is None
    assert not old.is_alive()
    assert refs(sup) == {"a": None}  # terminated, not restarted, spec kept
    new = sup.ask(RestartChild("a"), timeout=5.0)
    assert new.ask("ping", timeout=5.0) == "pong"
    with pytest.raises(RuntimeError, match="running"):
        sup.ask(RestartChild("a"), timeout=5.0)
    with pytest.raises(RuntimeError, match="running"):
        sup.ask(DeleteChild("a"), timeout=5.0)
    sup.ask(TerminateChild("a"), timeout=5.0)
    sup.ask(DeleteChild("a"), timeout=5.0)
    assert refs(sup) == {}
    for message in (TerminateChild("a"), RestartChild("a"), DeleteChild("a"), ChildRestarts("a")):
        with pytest.raises(LookupError, match="no child"):
            sup.ask(message, timeout=5.0)
    assert events.drain() == [("child_started", "a"), ("child_started", "a")]
    assert journal.lines == ["start a", "stop a", "start a", "stop a"]


def test_terminating_a_temporary_child_deletes_its_spec(
    start_supervisor: StartSupervisor, journal: Journal
) -> None:
    sup, _ = start_supervisor([worker("t", journal, restart="temporary")])
    sup.proxy().terminate_child("t").get(timeout=5.0)
    assert refs(sup) == {}


def test_count_children_counts_specs_active_supervisors_and_workers(
    start_supervisor: StartSupervisor, journal: Journal
) -> None:
    sup, _ = start_supervisor(
        [
            worker("a", journal),
            worker("b", journal),
            ChildSpec.for_actor(Supervisor, [worker("c", journal)], id="sub"),
        ]
    )
    sup.ask(TerminateChild("b"), timeout=5.0)
    counts = sup.ask(CountChildren(), timeout=5.0)
    assert counts == ChildCounts(specs=3, active=2, supervisors=1, workers=2)
    assert sup.proxy().count_children().get(timeout=5.0) == counts


def test_child_restarts_counts_each_childs_restarts(
    start_supervisor: StartSupervisor, journal: Journal
) -> None:
    sup, events = start_supervisor([worker("a", journal), worker("b", journal)])
    for expected in (1, 2):
        child(sup, "a").tell(Crash())
        assert events.wait_for("child_restarted", "a").restarts == expected
    assert sup.proxy().child_restarts("a").get(timeout=5.0) == 2
    assert sup.ask(ChildRestarts("b"), timeout=5.0) == 0


# -- orderly shutdown --------------------------------------------------------------------------


def test_stopping_a_tree_stops_every_child_in_reverse_start_order_then_the_supervisor(
    journal: Journal,
) -> None:
    events = Events()
    sub = ChildSpec.for_actor(Supervisor, [worker("b", journal), worker("c", journal)], id="sub")
    sup = Supervisor.start([worker("a", journal), sub, worker("d", journal)], on_event=events)
    assert journal.lines == ["start a", "start b", "start c", "start d"]
    assert sup.stop() is True
    assert journal.since("start d") == ["stop d", "stop c", "stop b", "stop a"]
    assert events.wait_for("supervisor_exited").reason is None


class SlowToStop(pykka.ThreadingActor):
    def __init__(self, release: threading.Event) -> None:
        super().__init__()
        self.release = release

    def on_stop(self) -> None:
        self.release.wait(5.0)


@pytest.mark.parametrize("shutdown", [0.02, "brutal_kill"])
def test_a_child_that_does_not_stop_within_its_shutdown_is_no_longer_waited_for(
    shutdown: float | str, caplog: pytest.LogCaptureFixture
) -> None:
    release = threading.Event()
    spec = ChildSpec.for_actor(SlowToStop, release, id="slow", shutdown=shutdown)
    sup = Supervisor.start([spec])
    slow = child(sup, "slow")
    started = time.monotonic()
    with caplog.at_level(logging.WARNING, logger="goth_actors.otp"):
        sup.stop()
    assert time.monotonic() - started < 2.0
    release.set()
    wait_dead(slow)
    if shutdown != "brutal_kill":
        assert "did not stop within" in caplog.text


def test_after_a_tree_is_stopped_no_thread_of_ours_is_left(
    journal: Journal, fake_time: FakeTime
) -> None:
    before = set(threading.enumerate())
    sub = ChildSpec.for_actor(Supervisor, [worker("b", journal)], id="sub")
    sup = Supervisor.start(
        [worker("a", journal), sub, ChildSpec("plain", Plain.start)], time=fake_time
    )
    assert len(set(threading.enumerate()) - before) >= 5
    sup.stop()
    fake_time.close()  # the timers' thread is the FakeTime's, not the tree's
    for thread in set(threading.enumerate()) - before:
        thread.join(2.0)
    assert set(threading.enumerate()) - before == set()


# -- names -------------------------------------------------------------------------------------


class Named(pykka.ThreadingActor):
    """Registers itself under its name in __init__, as the token server does."""

    def __init__(self, name: str) -> None:
        super().__init__()
        self.name = name
        register(name, self.actor_ref)

    def on_receive(self, message: Any) -> Any:
        if message == "crash":
            raise ValueError("boom")
        if isinstance(message, tuple) and message[0] == "store":
            return update_value(self.name, message[1], ref=self.actor_ref)
        return None


def test_a_self_registering_child_keeps_its_name_and_value_across_restarts(
    start_supervisor: StartSupervisor,
) -> None:
    sup, events = start_supervisor([ChildSpec.for_actor(Named, "named-server", id="n")])
    try:
        old = whereis("named-server")
        assert old is child(sup, "n")
        assert old.ask(("store", "cached"), timeout=5.0) is True
        old.tell("crash")
        new = events.wait_for("child_restarted", "n").ref
        assert whereis("named-server") is new is not old
        entry = lookup("named-server")
        assert entry is not None
        assert entry.value == "cached"
    finally:
        unregister("named-server")


def test_a_child_registered_from_outside_is_registered_again_when_restarted(
    start_supervisor: StartSupervisor, journal: Journal
) -> None:
    sup, events = start_supervisor([worker("a", journal)], strategy="one_for_all")
    try:
        register(("worker", "a"), child(sup, "a"))
        child(sup, "a").tell(Crash())
        new = events.wait_for("child_restarted", "a").ref
        assert whereis(("worker", "a")) is new
    finally:
        unregister(("worker", "a"))


class BusyNamed(Named):
    """A Named that can be kept busy in a handler, then tries to store a value late."""

    def __init__(self, name: str, holding: threading.Event, release: threading.Event) -> None:
        super().__init__(name)
        self.holding, self.release = holding, release
        self.late_writes: queue.Queue[bool] = queue.Queue()

    def on_receive(self, message: Any) -> Any:
        if message == "hold":
            self.holding.set()
            self.release.wait(5.0)
            self.late_writes.put(update_value(self.name, "late", ref=self.actor_ref))
            return None
        return super().on_receive(message)


@pytest.mark.parametrize("shutdown", ["brutal_kill", 0.02])
def test_a_child_given_up_on_in_a_restart_hands_its_names_to_its_successor(
    shutdown: float | str, start_supervisor: StartSupervisor
) -> None:
    holding, release = threading.Event(), threading.Event()
    busy = ChildSpec.for_actor(BusyNamed, "busy", holding, release, id="a", shutdown=shutdown)
    crashing = ChildSpec.for_actor(Named, "crashing", id="b")
    sup, events = start_supervisor([busy, crashing], strategy="one_for_all")
    old = child(sup, "a")
    late_writes = old.proxy().late_writes.get(timeout=5.0)
    try:
        assert old.ask(("store", "cached"), timeout=5.0) is True
        old.tell("hold")
        assert holding.wait(5.0)
        child(sup, "b").tell("crash")  # one_for_all: "a" is stopped, but is busy
        new = events.wait_for("child_restarted", "a").ref
        events.wait_for("child_restarted", "b")
        assert not old.is_alive()  # killed: dead at once, though still in its handler
        assert late_writes.empty()  # its handler has not returned yet
        assert whereis("busy") is new is not old
        entry = lookup("busy")
        assert entry is not None
        assert entry.value == "cached"
        release.set()
        assert late_writes.get(timeout=5.0) is False  # the old instance can no longer write
        wait_dead(old)
        entry = lookup("busy")
        assert entry is not None
        assert (entry.ref, entry.value) == (new, "cached")
        assert sup.ask(ChildRestarts("a"), timeout=5.0) == 1  # one restart, no failed retries
        sup.stop()
        wait_dead(new)  # brutal_kill: the stop did not wait for it
    finally:
        release.set()
        unregister("busy")
        unregister("crashing")


# -- observers and process exit ----------------------------------------------------------------


@pytest.mark.parametrize("error_type", [RuntimeError, KeyboardInterrupt, SystemExit])
def test_an_observer_that_raises_does_not_break_the_supervisor(
    error_type: type[BaseException], journal: Journal, caplog: pytest.LogCaptureFixture
) -> None:
    events = Events()
    bystander = Plain.start()

    def observer(event: SupervisorEvent) -> None:
        events(event)
        raise error_type("observer bug")

    sup = Supervisor.start([worker("a", journal)], on_event=observer)
    try:
        child(sup, "a").tell(Crash())
        events.wait_for("child_restarted", "a")
        assert sup.ask(ChildRestarts("a"), timeout=5.0) == 1
        assert bystander.is_alive()
    finally:
        sup.stop()
        bystander.stop()
    assert events.wait_for("supervisor_exited").reason is None
    assert "observer raised" in caplog.text


PROGRAM = textwrap.dedent(
    """
    import pykka
    from goth_actors.otp import ChildSpec, Supervisor

    class Worker(pykka.ThreadingActor):  # non-daemon threads, like most users' actors
        def __init__(self, name):
            super().__init__()
            self.name = name

        def on_stop(self):
            print("stopped", self.name, flush=True)

    def main():
        inner = ChildSpec.for_actor(Supervisor, [ChildSpec.for_actor(Worker, "b", id="b")], id="s")
        Supervisor.start([ChildSpec.for_actor(Worker, "a", id="a"), inner])
        print("main returns", flush=True)

    main()
    """
)


@pytest.mark.slow
def test_a_program_that_returns_without_stopping_its_tree_exits_promptly(tmp_path: Path) -> None:
    script = tmp_path / "forgetful.py"
    script.write_text(PROGRAM)
    started = time.monotonic()
    result = subprocess.run(
        [sys.executable, str(script)], capture_output=True, text=True, timeout=20, cwd=REPO
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.split("\n")[:3] == ["main returns", "stopped b", "stopped a"]
    assert time.monotonic() - started < 10.0


class WhichThread(pykka.ThreadingActor):  # use_daemon_thread is False, Pykka's default
    def on_receive(self, message: Any) -> Any:
        return threading.current_thread().daemon


def test_children_built_by_for_actor_run_on_daemon_threads_and_plain_ones_keep_theirs(
    start_supervisor: StartSupervisor, fake_time: FakeTime
) -> None:
    sup, _ = start_supervisor(
        [ChildSpec.for_actor(WhichThread, id="built"), ChildSpec("plain", WhichThread.start)],
        time=fake_time,
    )
    assert child(sup, "built").ask("daemon?", timeout=5.0) is True
    assert child(sup, "plain").ask("daemon?", timeout=5.0) is False


def run_program(tmp_path: Path, program: str) -> tuple[subprocess.CompletedProcess[str], float]:
    script = tmp_path / "program.py"
    script.write_text(textwrap.dedent(program))
    started = time.monotonic()
    result = subprocess.run(
        [sys.executable, str(script)], capture_output=True, text=True, timeout=30, cwd=REPO
    )
    return result, time.monotonic() - started


STUCK_IN_A_HANDLER = """
    import logging, threading
    import pykka
    from goth_actors.otp import ChildSpec, Supervisor

    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(message)s")
    working = threading.Event()

    class Busy(pykka.ThreadingActor):  # a non-daemon class, as most users' actors are
        def on_receive(self, message):
            working.set()
            threading.Event().wait()  # say, a network call with no timeout

    class Worker(pykka.ThreadingActor):
        def on_stop(self):
            print("stopped worker", flush=True)

    Supervisor.start(
        [ChildSpec.for_actor(Worker, id="w"), ChildSpec.for_actor(Busy, id="b", shutdown=0.05)]
    )
    [busy] = pykka.ActorRegistry.get_by_class(Busy)
"""


@pytest.mark.slow
def test_a_program_exits_promptly_past_a_child_that_never_stops(tmp_path: Path) -> None:
    result, elapsed = run_program(
        tmp_path,
        STUCK_IN_A_HANDLER
        + """
    busy.tell("work")
    assert working.wait(10.0)
    print("main returns", flush=True)
    """,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.split("\n")[:2] == ["main returns", "stopped worker"]
    assert "did not stop within 0.05 s" in result.stderr
    assert elapsed < 10.0


@pytest.mark.slow
def test_the_exit_hook_waits_for_the_trees_no_longer_than_its_deadline(tmp_path: Path) -> None:
    result, elapsed = run_program(
        tmp_path,
        STUCK_IN_A_HANDLER.replace('id="b", shutdown=0.05', 'id="b", shutdown=None')
        + """
    import goth_actors.otp._roots
    goth_actors.otp._roots.EXIT_TIMEOUT = 0.2
    busy.tell("work")
    assert working.wait(10.0)
    print("main returns", flush=True)
    """,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.split("\n")[:1] == ["main returns"]
    assert "did not stop within 0.2 s; no longer waiting for it" in result.stderr
    assert elapsed < 10.0


@pytest.mark.slow
def test_a_program_exits_promptly_while_a_restart_is_stuck_in_on_start(tmp_path: Path) -> None:
    result, elapsed = run_program(
        tmp_path,
        """
        import logging, threading
        import pykka
        from goth_actors.otp import ChildSpec, Supervisor

        logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(message)s")
        restarting = threading.Event()

        class Stuck(pykka.ThreadingActor):
            starts = 0

            def on_start(self):
                Stuck.starts += 1
                if Stuck.starts > 1:
                    restarting.set()
                    threading.Event().wait()  # say, a connect with no timeout

            def on_receive(self, message):
                raise ValueError("crash")

        class Worker(pykka.ThreadingActor):
            def on_stop(self):
                print("stopped worker", flush=True)

        Supervisor.start(
            [ChildSpec.for_actor(Worker, id="w"), ChildSpec.for_actor(Stuck, id="s")]
        )
        [stuck] = pykka.ActorRegistry.get_by_class(Stuck)
        stuck.tell("crash")
        assert restarting.wait(10.0)
        print("main returns", flush=True)
        """,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.split("\n")[:2] == ["main returns", "stopped worker"]
    assert "abandoned the start of Stuck" in result.stderr
    assert elapsed < 10.0


@pytest.mark.slow
def test_the_supervision_example_runs_and_exits_cleanly() -> None:
    result = subprocess.run(
        [sys.executable, str(REPO / "examples" / "supervision.py")],
        capture_output=True,
        text=True,
        timeout=20,
        cwd=REPO,
    )
    assert result.returncode == 0, result.stderr
    assert "restarted" in result.stdout

"""OTP's promises at the edges, with plain Pykka actors: under crashes, races and shutdowns.

Each test pins down a way supervision once broke: an ask racing a child's death, retries lost
with a stopped scheduler, a tree started inside an actor outliving it, ``stop_all`` seen as
crashes, generator children used up, shutdown errors unreported, timers to non-refs.
"""

from __future__ import annotations

import copy
import logging
import queue
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, ClassVar

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
    AlreadyRegistered,
    ChildAlreadyPresent,
    ChildAlreadyStarted,
    ChildSpec,
    ConfigError,
    FailedToStartChild,
    FakeTime,
    LinkExit,
    MaxRestartsExceeded,
    Name,
    StartChild,
    Supervisor,
    count_children,
    delete_child,
    register,
    restart_child,
    send_after,
    start_child,
    stop_default_scheduler,
    terminate_child,
    unregister,
    whereis,
    which_children,
)

REPO = Path(__file__).resolve().parent.parent


def stale(ref: pykka.ActorRef[Any]) -> pykka.ActorRef[Any]:
    """A ref that still says "alive": an ask through it arrives as in the race with a death.

    Pykka's ``ask`` checks ``is_alive()`` and then puts the message in the inbox; this ref's
    check always passes, so its ask lands after the actor has drained its inbox for good.
    """
    racing = copy.copy(ref)
    racing.actor_stopped = threading.Event()  # never set
    return racing


# -- 1. an ask racing a death --------------------------------------------------------------------


@pytest.mark.parametrize(
    "spec",
    [
        lambda journal: worker("a", journal),
        lambda journal: ChildSpec("a", lambda: Worker.start("a", journal)),  # plain start
        lambda journal: ChildSpec.for_actor(Supervisor, [], id="a"),
    ],
    ids=["for_actor", "plain start function", "a supervisor"],
)
def test_an_ask_that_arrives_after_a_childs_death_fails_at_once_with_actor_dead_error(
    spec: Callable[[Journal], ChildSpec], start_supervisor: StartSupervisor, journal: Journal
) -> None:
    sup, _events = start_supervisor([spec(journal)])
    ref = child(sup, "a")
    racing = stale(ref)
    terminate_child(sup, "a")
    wait_dead(ref)
    started = time.monotonic()
    with pytest.raises(pykka.ActorDeadError):
        racing.ask("ping", timeout=5.0)  # never answered at all, before
    assert time.monotonic() - started < 1.0


# -- 2. a supervisor's own retries -------------------------------------------------------------


def test_a_failed_restart_is_retried_even_when_the_process_wide_scheduler_is_stopped(
    start_supervisor: StartSupervisor, journal: Journal
) -> None:
    failures: list[BaseException] = []
    sup, events = start_supervisor([worker("a", journal, start_failures=failures)])
    failures.append(ValueError("not yet"))
    child(sup, "a").tell(Crash())
    events.wait_for("child_start_failed", "a")
    stop_default_scheduler()  # a public function: it used to drop the retry for good
    events.wait_for("child_restarted", "a")
    assert child(sup, "a").ask("ping", timeout=5.0) == "pong"


def test_a_failing_restart_backs_off_and_is_logged_at_a_bounded_rate(
    start_supervisor: StartSupervisor,
    journal: Journal,
    fake_time: FakeTime,
    caplog: pytest.LogCaptureFixture,
) -> None:
    failures: list[BaseException] = [ValueError("still failing")] * 40
    delays: list[int] = []

    def delay(failures: int) -> float:
        delays.append(failures)
        return 0.5

    sup, events = start_supervisor(
        [worker("a", journal, start_failures=[], restart_delay=delay)],
        max_restarts=1_000,
        time=fake_time,
    )
    ref = child(sup, "a")
    worker_failures = ref.proxy().start_failures.get(timeout=5.0)
    worker_failures.extend(failures)
    with caplog.at_level(logging.DEBUG, logger="goth_actors.otp"):
        ref.tell(Crash())
        events.wait_for("child_start_failed", "a")
        for _ in range(30):  # 15 s of failed retries, one every 0.5 s
            fake_time.advance(0.5)
            events.wait_for("child_start_failed", "a")
    assert delays[:3] == [1, 2, 3]  # consecutive failures, counted for the delay
    errors = [r for r in caplog.records if r.levelno == logging.ERROR and "restarting" in r.message]
    assert len(errors) == 2  # one at once, one 10 s later with the count of the quiet ones
    assert "more failures since the last report" in errors[1].getMessage()


def test_the_default_backoff_doubles_from_a_short_pause(
    start_supervisor: StartSupervisor, journal: Journal, fake_time: FakeTime
) -> None:
    failures: list[BaseException] = []
    sup, events = start_supervisor(
        [worker("a", journal, start_failures=failures)], max_restarts=100, time=fake_time
    )
    failures.extend([ValueError("no")] * 3)
    child(sup, "a").tell(Crash())
    events.wait_for("child_start_failed", "a")
    # min(0.1, 5 / (2 * 101)) ~ 0.025, then doubling: 0.05, then 0.1
    for pause, outcome in [
        (0.03, "child_start_failed"),
        (0.05, "child_start_failed"),
        (0.1, "child_restarted"),
    ]:
        fake_time.advance(pause)
        events.wait_for(outcome, "a")
    assert child(sup, "a").ask("ping", timeout=5.0) == "pong"


# -- 3. links: a tree started inside an actor belongs to it ------------------------------------


class Owner(pykka.ThreadingActor):
    """Starts a supervision tree of its own in on_start, as many real actors do."""

    def __init__(self, journal: Journal, max_restarts: int = 3) -> None:
        super().__init__()
        self.journal = journal
        self.max_restarts = max_restarts

    def on_start(self) -> None:
        self.tree = Supervisor.start(
            [worker("inner", self.journal)], max_restarts=self.max_restarts
        )

    def on_receive(self, message: Any) -> Any:
        if message == "tree":
            return self.tree
        if message == "crash":
            raise ValueError("owner crashed")
        return None


def test_a_supervisor_started_inside_a_supervised_actor_stops_when_that_actor_crashes(
    start_supervisor: StartSupervisor, journal: Journal
) -> None:
    sup, events = start_supervisor([ChildSpec.for_actor(Owner, journal, id="owner")])
    first_tree = child(sup, "owner").ask("tree", timeout=5.0)
    for _ in range(3):
        child(sup, "owner").tell("crash")
        events.wait_for("child_restarted", "owner")
    wait_dead(first_tree)
    trees = [ref for ref in pykka.ActorRegistry.get_by_class(Supervisor) if ref is not sup]
    assert len(trees) == 1  # one tree per live owner, none leaked by the restarts
    assert journal.lines.count("start inner") == 4
    assert journal.lines.count("stop inner") == 3


class UnlinkedOwner(Owner):
    def on_start(self) -> None:
        self.tree = Supervisor.start([worker("inner", self.journal)], link=False)


def test_a_supervisor_started_with_link_false_is_a_root_wherever_it_is_started(
    start_supervisor: StartSupervisor, journal: Journal
) -> None:
    sup, events = start_supervisor([ChildSpec.for_actor(UnlinkedOwner, journal, id="owner")])
    tree = child(sup, "owner").ask("tree", timeout=5.0)
    try:
        child(sup, "owner").tell("crash")
        events.wait_for("child_restarted", "owner")
        assert tree.is_alive()
    finally:
        tree.stop()
        child(sup, "owner").ask("tree", timeout=5.0).stop()


def test_an_owned_supervisor_that_gives_up_crashes_its_owner(
    start_supervisor: StartSupervisor, journal: Journal
) -> None:
    sup, events = start_supervisor([ChildSpec.for_actor(Owner, journal, 0, id="owner")])
    tree = child(sup, "owner").ask("tree", timeout=5.0)
    child(tree, "inner").tell(Crash())
    exited = events.wait_for("child_exited", "owner")
    assert isinstance(exited.reason, LinkExit)
    assert isinstance(exited.reason.reason, MaxRestartsExceeded)
    events.wait_for("child_restarted", "owner")


def test_a_supervisor_started_outside_any_actor_is_a_root_linked_to_no_one(
    journal: Journal,
) -> None:
    owner = Owner.start(journal)  # not started by a supervisor: nothing of ours in it
    tree = owner.ask("tree", timeout=5.0)
    owner.stop()
    assert tree.is_alive()  # a plain Pykka actor owns nothing
    tree.stop()


# -- 4. stop_all on a tree ---------------------------------------------------------------------


def test_stop_all_on_a_tree_is_a_shutdown_in_order_not_a_row_of_crashes(journal: Journal) -> None:
    events = Events()
    sub = ChildSpec.for_actor(Supervisor, [worker("c", journal), worker("d", journal)], id="sub")
    Supervisor.start(
        [worker("a", journal), worker("b", journal), sub, worker("e", journal)],
        max_restarts=1,
        on_event=events,
    )
    bystander = Plain.start()
    pykka.ActorRegistry.stop_all()
    assert pykka.ActorRegistry.get_all() == []
    assert not bystander.is_alive()
    assert journal.since("start e") == ["stop e", "stop d", "stop c", "stop b", "stop a"]
    assert events.drain()[4:] == [("supervisor_exited", None)]  # no restart, no giving up
    assert events.seen[-1].reason is None


# -- 5. generator children ---------------------------------------------------------------------


def test_children_given_as_a_generator_come_back_with_a_restarted_sub_supervisor(
    start_supervisor: StartSupervisor, journal: Journal
) -> None:
    children = (worker(name, journal) for name in "ab")
    sub = ChildSpec.for_actor(Supervisor, children, id="sub", max_restarts=0)
    sup, events = start_supervisor([sub])
    child(child(sup, "sub"), "a").tell(Crash())
    events.wait_for("child_restarted", "sub")
    assert list(refs(child(sup, "sub"))) == ["a", "b"]


def test_a_spec_option_typo_fails_when_the_spec_is_built(journal: Journal) -> None:
    with pytest.raises(ConfigError, match="did you mean restart") as caught:
        ChildSpec.for_actor(Worker, "a", journal, restart_type="transient")
    assert caught.value.field == "restart_type"
    with pytest.raises(ConfigError) as caught:
        ChildSpec.for_actor(Supervisor, [], id="sub", strategy="one_for_some")
    assert caught.value.field == "strategy"


# -- 6. errors during shutdown -----------------------------------------------------------------


def test_a_crash_in_on_stop_during_terminate_child_is_reported_as_a_shutdown_error(
    start_supervisor: StartSupervisor, journal: Journal, caplog: pytest.LogCaptureFixture
) -> None:
    sup, events = start_supervisor([worker("a", journal, fail_on_stop=True)])
    with caplog.at_level(logging.ERROR, logger="goth_actors.otp"):
        terminate_child(sup, "a")
    error = events.wait_for("shutdown_error", "a")
    assert isinstance(error.reason, OSError)
    assert "shutdown error" in caplog.text
    assert refs(sup) == {"a": None}  # terminated: not restarted


def test_a_child_crashing_while_its_supervisor_shuts_down_is_reported_as_a_shutdown_error(
    journal: Journal,
) -> None:
    events = Events()
    sup = Supervisor.start([worker("a", journal)], on_event=events)
    a = child(sup, "a")
    entered, gate = threading.Event(), threading.Event()
    late = sup.ask(StartChild(ChildSpec.for_actor(Gate, entered, gate, id="gate")), block=False)
    assert entered.wait(5.0)  # the supervisor is busy in that start
    sup.stop(block=False)  # queued first...
    a.tell(Crash())  # ...then the crash: its exit report is queued behind the stop
    wait_dead(a)
    gate.set()
    late.get(timeout=5.0)
    error = events.wait_for("shutdown_error", "a")
    assert isinstance(error.reason, ValueError)
    assert ("child_restarted", "a") not in events.drain()
    wait_dead(sup)


# -- 7. timers -----------------------------------------------------------------------------------


class Inbox(pykka.ThreadingActor):
    def __init__(self, received: queue.Queue[Any]) -> None:
        super().__init__()
        self.received = received

    def on_receive(self, message: Any) -> None:
        self.received.put(message)


@pytest.mark.parametrize(
    "dest",
    [lambda ref: ref.proxy(), lambda ref: "a name", lambda ref: None],
    ids=["a proxy", "a bare name", "None"],
)
def test_send_after_refuses_a_destination_that_is_not_a_ref_or_a_name_at_the_call(
    dest: Callable[[pykka.ActorRef[Any]], object], fake_time: FakeTime
) -> None:
    ref = Inbox.start(queue.Queue())
    try:
        with pytest.raises(TypeError, match="ActorRef or a Name"):
            send_after(dest(ref), "tick", 1.0, scheduler=fake_time.scheduler)  # type: ignore[arg-type]
    finally:
        ref.stop()


def test_send_after_to_a_name_finds_the_holder_when_the_timer_fires(fake_time: FakeTime) -> None:
    first_received: queue.Queue[Any] = queue.Queue()
    second_received: queue.Queue[Any] = queue.Queue()
    first, second = Inbox.start(first_received), Inbox.start(second_received)
    try:
        register("target", first)
        send_after(Name("target"), "tick", 5.0, scheduler=fake_time.scheduler)
        send_after(Name("nobody"), "lost", 5.0, scheduler=fake_time.scheduler)
        first.stop()
        register("target", second)  # the name moved before the timer fired
        fake_time.advance(5.0)
        assert second_received.get(timeout=5.0) == "tick"
        assert first_received.empty()
    finally:
        second.stop()
        unregister("target")


# -- OTP's additions: ignore, significant children, transient sub-supervisors, names ------------


def test_a_start_function_that_returns_none_is_ignored_and_its_spec_kept(
    start_supervisor: StartSupervisor, journal: Journal
) -> None:
    calls: list[str] = []

    def not_now() -> None:
        calls.append("asked")

    sup, _events = start_supervisor([ChildSpec("later", not_now), worker("a", journal)])
    assert refs(sup) == {"later": None, "a": child(sup, "a")}
    assert start_child(sup, ChildSpec("also", not_now)) is None
    assert restart_child(sup, "later") is None
    assert count_children(sup).active == 1
    assert calls == ["asked"] * 3


@pytest.mark.parametrize("auto_shutdown", ["any_significant", "all_significant"])
def test_a_significant_childs_exit_shuts_its_supervisor_down(
    auto_shutdown: str, journal: Journal
) -> None:
    events = Events()
    sup = Supervisor.start(
        [
            worker("a", journal, restart="transient", significant=True),
            worker("b", journal, restart="temporary", significant=True),
            worker("c", journal),
        ],
        auto_shutdown=auto_shutdown,  # type: ignore[arg-type]
        on_event=events,
    )
    child(sup, "a").tell("stop yourself")
    events.wait_for("child_exited", "a")
    if auto_shutdown == "all_significant":
        assert sup.is_alive()
        child(sup, "b").tell(Crash())  # a temporary one: any exit counts
    assert events.wait_for("supervisor_exited").reason is None  # a shutdown, not a crash
    wait_dead(sup)
    assert "stop c" in journal.lines


def test_significant_children_are_refused_unless_auto_shutdown_is_on(journal: Journal) -> None:
    with pytest.raises(ConfigError) as caught:
        ChildSpec.for_actor(Worker, "a", journal, id="a", significant=True)
    assert caught.value.field == "significant"  # a permanent child cannot be significant
    with pytest.raises(ConfigError, match="auto_shutdown"):
        Supervisor.start([worker("a", journal, restart="transient", significant=True)])


def test_a_transient_sub_supervisor_that_gives_up_exits_as_a_shutdown_and_is_not_restarted(
    start_supervisor: StartSupervisor, journal: Journal
) -> None:
    sub = ChildSpec.for_actor(
        Supervisor, [worker("w", journal)], id="sub", max_restarts=0, restart="transient"
    )
    sup, events = start_supervisor([sub, worker("x", journal)], max_restarts=0)
    child(child(sup, "sub"), "w").tell(Crash())
    exited = events.wait_for("child_exited", "sub")
    assert isinstance(exited.reason, MaxRestartsExceeded)
    assert refs(sup)["sub"] is None
    assert sup.is_alive()  # max_restarts=0, yet no restart was counted
    assert ("child_restarted", "sub") not in events.drain()


def test_a_named_supervisor_is_reached_by_name_with_calls_that_time_out(journal: Journal) -> None:
    sup = Supervisor.start([worker("a", journal)], name="workers")
    try:
        assert whereis("workers") is sup
        with pytest.raises(ChildAlreadyStarted) as caught:
            start_child("workers", worker("a", journal), timeout=5.0)
        assert caught.value.ref is child(sup, "a")  # OTP's {already_started, Pid}
        terminate_child(Name("workers"), "a", timeout=5.0)
        with pytest.raises(ChildAlreadyPresent) as present:
            start_child("workers", worker("a", journal))
        assert not isinstance(present.value, ChildAlreadyStarted)  # already_present
        delete_child("workers", "a")
        assert which_children("workers") == []
    finally:
        sup.stop()
    with pytest.raises(pykka.ActorDeadError):
        which_children("workers")


def test_a_call_with_a_timeout_raises_instead_of_hanging(journal: Journal) -> None:
    entered, gate = threading.Event(), threading.Event()
    sup = Supervisor.start()
    try:
        sup.ask(StartChild(ChildSpec.for_actor(Gate, entered, gate, id="gate")), block=False)
        assert entered.wait(5.0)
        with pytest.raises(pykka.Timeout):
            count_children(sup, timeout=0.01)
    finally:
        gate.set()
        sup.stop()


class Busy(pykka.ThreadingActor):
    def __init__(self, journal: Journal, holding: threading.Event, go: threading.Event) -> None:
        super().__init__()
        self.journal, self.holding, self.go = journal, holding, go

    def on_receive(self, message: Any) -> Any:
        if message == "hold":
            self.holding.set()
            assert self.go.wait(5.0)
            self.journal.add("held")
        return message

    def on_stop(self) -> None:
        self.journal.add("on_stop")


def test_brutal_kill_ends_a_child_after_its_message_failing_its_queued_asks_without_on_stop(
    start_supervisor: StartSupervisor, journal: Journal
) -> None:
    holding, go = threading.Event(), threading.Event()
    spec = ChildSpec.for_actor(Busy, journal, holding, go, id="b", shutdown="brutal_kill")
    sup, _ = start_supervisor([spec])
    busy = child(sup, "b")
    busy.tell("hold")
    assert holding.wait(5.0)
    queued = busy.ask("queued", block=False)
    terminate_child(sup, "b")  # returns at once: a killed child is not waited for
    assert not busy.is_alive()
    go.set()
    with pytest.raises(pykka.ActorDeadError):
        queued.get(timeout=5.0)
    with pytest.raises(pykka.ActorDeadError):
        busy.ask("late", timeout=5.0)
    wait_dead(busy)
    assert journal.lines == ["held"]  # its message finished; no on_stop


def test_a_failed_start_child_reports_the_reason_and_adds_nothing(
    start_supervisor: StartSupervisor, journal: Journal
) -> None:
    sup, _ = start_supervisor([])
    with pytest.raises(FailedToStartChild, match="nope"):
        start_child(sup, worker("bad", journal, start_failures=[ValueError("nope")]))
    assert which_children(sup) == []


PLAIN_AT_A_THREAD_LIMIT = """
import os, resource, threading, time
import pykka
from goth_actors.otp import ChildSpec, Supervisor, register, whereis

class Named(pykka.ThreadingActor):  # a plain actor that registers a name in __init__
    def __init__(self):
        super().__init__()
        register("named", self.actor_ref)

    def on_receive(self, message):
        return "pong"

failed = []
three_failed = threading.Event()

def observe(event):
    if event.kind == "child_start_failed":
        failed.append(event)
        if len(failed) >= 3:
            three_failed.set()

sup = Supervisor.start([ChildSpec.for_actor(Named, id="n", restart_delay=0.05)],
                       max_restarts=1_000_000, max_seconds=1.0, on_event=observe)
old = whereis("named")
real = os.geteuid() == 0 and hasattr(resource, "RLIMIT_NPROC")
start = threading.Thread.start
blocked = [False]
if real:
    os.setgid(65534)
    os.setuid(65534)  # RLIMIT_NPROC does not bind root
else:
    def refusing(thread):
        if blocked[0]:
            raise RuntimeError("can't start new thread")
        return start(thread)
    threading.Thread.start = refusing
hard = resource.getrlimit(resource.RLIMIT_NPROC)[1]
blocked[0] = True
if real:
    resource.setrlimit(resource.RLIMIT_NPROC, (1, hard))
old.stop()
assert three_failed.wait(10.0)  # failed restarts, retried every 0.05 s
blocked[0] = False
if real:
    resource.setrlimit(resource.RLIMIT_NPROC, (hard, hard))
deadline = time.monotonic() + 10.0
while True:
    ref = whereis("named")
    if ref is not None and ref is not old:
        print(ref.ask("ping", timeout=5.0))
        break
    assert time.monotonic() < deadline
    time.sleep(0.01)
"""


@pytest.mark.slow
def test_a_child_whose_thread_cannot_start_frees_its_name_and_comes_back_later() -> None:
    result = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(PLAIN_AT_A_THREAD_LIMIT)],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=REPO,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.strip() == "pong"


class NamesATree(pykka.ThreadingActor):
    """Starts a named tree in on_start; a second one under the same name cannot start."""

    def __init__(self, journal: Journal) -> None:
        super().__init__()
        self.journal = journal

    def on_start(self) -> None:
        self.tree = Supervisor.start([], name="the-tree")
        with pytest.raises(AlreadyRegistered):
            Supervisor.start([], name="the-tree")
        self.journal.add("refused")


def test_a_supervisor_whose_name_is_taken_is_not_left_behind_in_its_owner(
    start_supervisor: StartSupervisor, journal: Journal
) -> None:
    sup, _ = start_supervisor([ChildSpec.for_actor(NamesATree, journal, id="owner")])
    assert journal.lines == ["refused"]
    terminate_child(sup, "owner")  # stopping the owner stops its tree, and nothing hangs
    assert whereis("the-tree") is None


# ---------------------------------------------------------------- review: edges of the edges


class HoldsItsThread(pykka.ThreadingActor):
    """Holds its thread in a message until told to let go."""

    def __init__(self, working: threading.Event, release: threading.Event) -> None:
        super().__init__()
        self.working = working
        self.release = release

    def on_receive(self, message: Any) -> None:
        self.working.set()
        self.release.wait(5.0)


def test_a_killed_sub_supervisor_takes_its_children_with_it(
    start_supervisor: StartSupervisor, journal: Journal
) -> None:
    sub = ChildSpec.for_actor(Supervisor, [worker("w", journal)], id="sub", shutdown="brutal_kill")
    root, _ = start_supervisor([sub])
    inner = child(root, "sub")
    w = child(inner, "w")
    terminate_child(root, "sub")
    wait_dead(inner)
    wait_dead(w)  # OTP: the killed supervisor's links take its children down
    assert "stop w" in journal.lines


def test_a_sub_supervisor_killed_past_its_shutdown_while_busy_stops_its_children(
    start_supervisor: StartSupervisor, journal: Journal
) -> None:
    working, release = threading.Event(), threading.Event()
    sub = ChildSpec.for_actor(Supervisor, [worker("w", journal)], id="sub", shutdown=0.05)
    root, _ = start_supervisor([sub])
    inner = child(root, "sub")
    w = child(inner, "w")
    start_child(
        inner, ChildSpec.for_actor(HoldsItsThread, working, release, id="busy", shutdown=5.0)
    )
    try:
        child(inner, "busy").tell("work")
        assert working.wait(5.0)
        terminate_child(root, "sub")  # the sub-supervisor is killed past its 0.05 s
    finally:
        release.set()
    wait_dead(inner)
    wait_dead(w)


def test_a_shutdown_too_long_to_wait_for_is_refused_when_the_spec_is_built() -> None:
    for shutdown in (float("inf"), 1e10):
        with pytest.raises(ConfigError, match="shutdown"):
            ChildSpec.for_actor(Plain, id="p", shutdown=shutdown)
    plain = pykka.ThreadingActor.start()
    try:
        with pytest.raises(ValueError, match="timeout"):
            count_children(plain, timeout=1e10)
    finally:
        plain.stop()


def test_all_significant_waits_for_a_significant_child_whose_restart_is_being_retried(
    journal: Journal,
) -> None:
    events = Events()
    a_failures: list[BaseException] = []
    with FakeTime() as fake:
        sup = Supervisor.start(
            [
                worker(
                    "a",
                    journal,
                    restart="transient",
                    significant=True,
                    start_failures=a_failures,
                    restart_delay=60.0,
                ),
                worker("b", journal, restart="transient", significant=True),
            ],
            auto_shutdown="all_significant",
            on_event=events,
            time=fake,
        )
        try:
            a_failures.append(RuntimeError("not yet"))  # a's restart fails and waits a minute
            child(sup, "a").tell(Crash())
            events.wait_for("child_start_failed", "a")
            child(sup, "b").stop()  # b exits normally: a is still significant and restarting
            events.wait_for("child_exited", "b")
            assert sup.is_alive()
            assert ("supervisor_exited", None) not in events.drain()
        finally:
            sup.stop()


class CatchesAFailedTree(pykka.ThreadingActor):
    """Starts a tree in on_start that fails to start, and carries on."""

    def __init__(self, caught: threading.Event) -> None:
        super().__init__()
        self.caught = caught

    def on_start(self) -> None:
        bad = ChildSpec.for_actor(
            Worker, "bad", Journal(), id="bad", start_failures=[RuntimeError("no")]
        )
        try:
            Supervisor.start([bad])
        except FailedToStartChild:
            self.caught.set()


def test_an_actor_that_catches_its_trees_failed_start_lives_on(
    start_supervisor: StartSupervisor,
) -> None:
    caught = threading.Event()
    root, events = start_supervisor([ChildSpec.for_actor(CatchesAFailedTree, caught, id="o")])
    assert caught.wait(5.0)
    owner = child(root, "o")
    assert owner.ask("still there?", timeout=5.0) is None
    assert ("child_exited", "o") not in events.drain()


class BuildsAHelperTree(pykka.ThreadingActor):
    """Starts a helper supervisor from its own __init__ (on its supervisor's thread)."""

    helpers: ClassVar[list[pykka.ActorRef[Any]]] = []

    def __init__(self) -> None:
        super().__init__()
        BuildsAHelperTree.helpers.append(Supervisor.start([ChildSpec.for_actor(Plain, id="p")]))


def test_a_tree_started_in_a_childs_init_belongs_to_the_child_not_its_supervisor(
    start_supervisor: StartSupervisor,
) -> None:
    BuildsAHelperTree.helpers.clear()
    root, events = start_supervisor([ChildSpec.for_actor(BuildsAHelperTree, id="b")])
    first = BuildsAHelperTree.helpers[0]
    child(root, "b").stop()  # a normal exit of a permanent child: restarted
    events.wait_for("child_restarted", "b")
    wait_dead(first)  # the old instance's helper tree went with it
    assert [h.is_alive() for h in BuildsAHelperTree.helpers] == [False, True]


def test_a_framework_inbox_wakes_its_reader_with_one_condition_for_everything() -> None:
    from goth_actors.otp._inbox import Inbox

    inbox = Inbox()
    assert inbox.not_empty is inbox.not_full is inbox.all_tasks_done  # 1 condition, not 3
    got: list[object] = []
    reader = threading.Thread(target=lambda: got.extend(inbox.get() for _ in range(3)))
    reader.start()
    for item in ("a", "b", "c"):
        inbox.put(item)
    reader.join(5.0)
    assert got == ["a", "b", "c"]
    assert inbox.empty()
    inbox.close()
    inbox.put("late")  # refused once closed
    assert inbox.empty()
    with pytest.raises(TypeError, match="not joinable"):  # a joiner could take get()'s wake
        inbox.join()
    with pytest.raises(TypeError, match="not joinable"):
        inbox.task_done()


@pytest.mark.slow
def test_reloading_the_link_module_wraps_pykkas_register_once_not_its_own_wrapper() -> None:
    # IPython's autoreload, or a test that reloads modules: every actor start must still work.
    program = textwrap.dedent(
        """
        import importlib, sys
        import pykka
        import goth_actors.otp._link as link
        importlib.reload(link)
        sys.setrecursionlimit(200)
        ref = pykka.ThreadingActor.start()
        ref.stop()
        print("started and stopped")
        """
    )
    result = subprocess.run(
        [sys.executable, "-c", program], capture_output=True, text=True, timeout=60, check=False
    )
    assert result.stdout.strip() == "started and stopped", result.stderr[-2000:]

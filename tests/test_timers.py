"""Timers: send_after on one scheduler thread, and FakeTime, which drives them in tests."""

from __future__ import annotations

import math
import queue
import threading
import time
from collections.abc import Iterator
from typing import Any

import pykka
import pytest

from goth_actors.otp import (
    ConfigError,
    FakeTime,
    Scheduler,
    default_scheduler,
    send_after,
    stop_default_scheduler,
)


class Inbox(pykka.ThreadingActor):
    """Puts every message it receives on a queue the test reads."""

    def __init__(self, received: queue.Queue[Any]) -> None:
        super().__init__()
        self.received = received

    def on_receive(self, message: Any) -> None:
        self.received.put(message)


@pytest.fixture
def received() -> queue.Queue[Any]:
    return queue.Queue()


@pytest.fixture
def inbox(received: queue.Queue[Any]) -> Iterator[pykka.ActorRef[Inbox]]:
    ref = Inbox.start(received)
    yield ref
    ref.stop()


def drain(received: queue.Queue[Any], expected: int) -> list[Any]:
    """Wait for ``expected`` messages (the actor may not have handled them yet)."""
    return [received.get(timeout=5.0) for _ in range(expected)]


def test_a_timer_tells_its_message_once_its_delay_has_passed(
    fake_time: FakeTime,
    inbox: pykka.ActorRef[Inbox],
    received: queue.Queue[Any],
) -> None:
    handle = fake_time.scheduler.send_after(inbox, "tick", 10.0)
    fake_time.advance(9.999)
    assert handle.pending
    fake_time.advance(0.001)
    assert not handle.pending
    assert drain(received, 1) == ["tick"]


def test_timers_fire_in_due_order_and_equal_deadlines_in_the_order_they_were_armed(
    fake_time: FakeTime,
    inbox: pykka.ActorRef[Inbox],
    received: queue.Queue[Any],
) -> None:
    for delay, message in [(3.0, "c"), (1.0, "a"), (2.0, "b1"), (2.0, "b2"), (5.0, "late")]:
        fake_time.scheduler.send_after(inbox, message, delay)
    fake_time.advance(3.0)
    assert drain(received, 4) == ["a", "b1", "b2", "c"]
    assert fake_time.scheduler.pending == 1
    assert received.empty()


def test_advancing_the_clock_fires_timers_one_step_at_a_time(
    fake_time: FakeTime,
    inbox: pykka.ActorRef[Inbox],
    received: queue.Queue[Any],
) -> None:
    for second in range(1, 6):
        fake_time.scheduler.send_after(inbox, second, float(second))
    fired = []
    for _ in range(5):
        fake_time.advance(1.0)
        fired += drain(received, 1)
    assert fired == [1, 2, 3, 4, 5]


def test_a_cancelled_timer_never_fires_and_cancel_says_whether_it_was_pending(
    fake_time: FakeTime,
    inbox: pykka.ActorRef[Inbox],
    received: queue.Queue[Any],
) -> None:
    cancelled = fake_time.scheduler.send_after(inbox, "cancelled", 1.0)
    kept = fake_time.scheduler.send_after(inbox, "kept", 2.0)
    assert cancelled.cancel() is True
    assert cancelled.cancel() is False
    assert not cancelled.pending
    assert fake_time.scheduler.pending == 1
    fake_time.advance(5.0)
    assert drain(received, 1) == ["kept"]
    assert kept.cancel() is False  # a no-op once fired
    assert received.empty()


def test_cancelling_most_timers_compacts_the_heap_and_keeps_the_rest_in_order(
    fake_time: FakeTime,
    inbox: pykka.ActorRef[Inbox],
    received: queue.Queue[Any],
) -> None:
    handles = [fake_time.scheduler.send_after(inbox, i, 1.0 + i) for i in range(300)]
    for i, handle in enumerate(handles):
        if i % 10:
            assert handle.cancel()
    assert fake_time.scheduler.pending == 30
    assert len(fake_time.scheduler._heap) < 150  # tombstones were swept
    fake_time.advance(301.0)
    assert drain(received, 30) == list(range(0, 300, 10))


def test_a_timer_whose_actor_has_died_is_dropped_quietly(
    fake_time: FakeTime,
    inbox: pykka.ActorRef[Inbox],
    received: queue.Queue[Any],
    caplog: pytest.LogCaptureFixture,
) -> None:
    doomed = Inbox.start(received)
    fake_time.scheduler.send_after(doomed, "to the dead", 1.0)
    fake_time.scheduler.send_after(inbox, "to the living", 2.0)
    doomed.stop()
    with caplog.at_level("WARNING", logger="goth_actors"):
        fake_time.advance(2.0)
    assert drain(received, 1) == ["to the living"]
    assert received.empty()
    assert not caplog.records


def test_a_zero_or_negative_delay_fires_without_advancing_the_clock(
    fake_time: FakeTime,
    inbox: pykka.ActorRef[Inbox],
    received: queue.Queue[Any],
) -> None:
    fake_time.scheduler.send_after(inbox, "now", -5.0)
    assert drain(received, 1) == ["now"]


@pytest.mark.parametrize(
    ("delay", "named"), [(math.nan, "NaN"), (math.inf, "not inf"), (-math.inf, "not -inf")]
)
def test_a_nan_or_infinite_delay_is_refused(
    delay: float, named: str, fake_time: FakeTime, inbox: pykka.ActorRef[Inbox]
) -> None:
    with pytest.raises(ValueError, match=named):
        fake_time.scheduler.send_after(inbox, "never", delay)
    assert fake_time.scheduler.pending == 0


def test_a_timer_due_later_than_the_os_can_wait_keeps_the_thread_serving(
    inbox: pykka.ActorRef[Inbox], received: queue.Queue[Any]
) -> None:
    scheduler = Scheduler(name="far-timers")  # the real clock: the thread waits with a timeout
    try:
        far = scheduler.send_after(inbox, "far", 1e10)  # past threading.TIMEOUT_MAX
        scheduler.send_after(inbox, "soon", 0.001)
        assert drain(received, 1) == ["soon"]
        assert scheduler.running
        assert far.pending
    finally:
        scheduler.stop()


class BreaksInThread:
    """A real clock that raises once when read by the timer thread named ``thread_name``."""

    def __init__(self, thread_name: str) -> None:
        self.thread_name = thread_name
        self.broke = False

    def __call__(self) -> float:
        if threading.current_thread().name == self.thread_name and not self.broke:
            self.broke = True
            raise RuntimeError("the clock broke")
        return time.monotonic()


@pytest.mark.filterwarnings("ignore::pytest.PytestUnhandledThreadExceptionWarning")
def test_a_timer_thread_that_dies_is_replaced_by_the_next_send_after(
    inbox: pykka.ActorRef[Inbox], received: queue.Queue[Any]
) -> None:
    scheduler = Scheduler(BreaksInThread("dying-timers"), name="dying-timers")
    try:
        scheduler.send_after(inbox, "lost with the thread", 60.0)
        [thread] = [t for t in threading.enumerate() if t.name == "dying-timers"]
        thread.join(5.0)
        assert not thread.is_alive()
        assert not scheduler.running
        scheduler.send_after(inbox, "served by a new thread", 0.0)
        assert drain(received, 1) == ["served by a new thread"]
    finally:
        scheduler.stop()


def test_one_daemon_thread_serves_every_timer_and_starts_only_when_needed(
    fake_time: FakeTime, inbox: pykka.ActorRef[Inbox]
) -> None:
    scheduler = fake_time.scheduler
    assert not scheduler.running
    before = threading.active_count()
    handles = [scheduler.send_after(inbox, i, 60.0 + i) for i in range(1000)]
    assert threading.active_count() == before + 1
    [thread] = [t for t in threading.enumerate() if t.name == "goth-actors-fake-timers"]
    assert thread.daemon
    for handle in handles:
        handle.cancel()
    scheduler.stop()
    assert not thread.is_alive()


def test_stop_drops_pending_timers_and_a_later_send_after_starts_a_new_thread(
    fake_time: FakeTime, inbox: pykka.ActorRef[Inbox], received: queue.Queue[Any]
) -> None:
    scheduler = fake_time.scheduler
    dropped = scheduler.send_after(inbox, "dropped", 1.0)
    scheduler.stop()
    assert not scheduler.running
    assert not dropped.pending
    assert dropped.cancel() is False
    scheduler.send_after(inbox, "after restart", 1.0)
    assert scheduler.running
    fake_time.advance(1.0)
    assert drain(received, 1) == ["after restart"]


def test_the_thread_ends_by_itself_once_no_timer_is_pending(
    fake_time: FakeTime, inbox: pykka.ActorRef[Inbox], received: queue.Queue[Any]
) -> None:
    # A scheduler of its own on the fake clock, for a short idle_timeout (FakeTime's is 1 s).
    scheduler = Scheduler(fake_time.monotonic, manual=True, idle_timeout=0.01, name="idle-timers")
    try:
        scheduler.send_after(inbox, "only", 1.0)
        [thread] = [t for t in threading.enumerate() if t.name == "idle-timers"]
        fake_time.advance(1.0)
        scheduler.deliver_due()  # advance delivers only for the FakeTime's own scheduler
        assert drain(received, 1) == ["only"]
        thread.join(5.0)
        assert not thread.is_alive()
        assert not scheduler.running
    finally:
        scheduler.stop()


def test_advancing_a_fake_time_with_no_timers_returns_at_once() -> None:
    with FakeTime(monotonic=100.0) as fake:
        fake.advance(3600.0)
        assert fake.monotonic() == 3700.0
        assert not fake.scheduler.running


@pytest.mark.parametrize("seconds", [-1.0, math.nan, math.inf])
def test_a_fake_time_refuses_to_advance_backwards_or_by_nan_or_infinity(
    seconds: float, fake_time: FakeTime
) -> None:
    wall, monotonic = fake_time.time(), fake_time.monotonic()
    with pytest.raises(ConfigError) as caught:
        fake_time.advance(seconds)
    assert caught.value.field == "seconds"
    assert isinstance(caught.value, ValueError)
    assert (fake_time.time(), fake_time.monotonic()) == (wall, monotonic)


class Recorder(pykka.ActorRef[Any]):
    """A stand-in ref that notes what it is told, in the thread that tells it."""

    def __init__(self) -> None:  # no actor behind it
        self.told: list[Any] = []

    @property
    def ref(self) -> pykka.ActorRef[Any]:
        return self

    def tell(self, message: Any) -> None:
        self.told.append(message)


def test_advance_moves_both_clocks_and_returns_once_the_timers_due_have_been_told() -> None:
    recorder = Recorder()
    with FakeTime(wall=1_700_000_000.0, monotonic=5.0) as fake:
        due = fake.scheduler.send_after(recorder.ref, "due", 10.0)
        later = fake.scheduler.send_after(recorder.ref, "later", 10.5)
        fake.advance(10.0)
        assert recorder.told == ["due"]  # already told when advance returned: no waiting
        assert (fake.time(), fake.monotonic()) == (1_700_000_010.0, 15.0)
        assert (due.pending, later.pending) == (False, True)


def test_jump_moves_only_the_wall_clock_so_no_timer_fires(fake_time: FakeTime) -> None:
    recorder = Recorder()
    wall = fake_time.time()
    handle = fake_time.scheduler.send_after(recorder.ref, "tick", 10.0)
    fake_time.jump(3600.0)
    fake_time.scheduler.deliver_due()  # the timer thread looks again, and finds nothing due
    assert fake_time.time() == wall + 3600.0
    assert fake_time.monotonic() == 0.0
    assert handle.pending
    assert recorder.told == []


def test_jump_may_move_the_wall_clock_back() -> None:
    with FakeTime(wall=1_700_000_000.0, monotonic=42.0) as fake:
        fake.jump(-7200.0)
        assert (fake.time(), fake.monotonic()) == (1_699_992_800.0, 42.0)


@pytest.mark.parametrize("seconds", [math.nan, math.inf, -math.inf])
def test_jump_refuses_nan_or_infinity(seconds: float, fake_time: FakeTime) -> None:
    wall = fake_time.time()
    with pytest.raises(ConfigError) as caught:
        fake_time.jump(seconds)
    assert caught.value.field == "seconds"
    assert fake_time.time() == wall


def test_a_fake_time_starts_at_the_real_wall_clock_and_at_monotonic_zero(
    fake_time: FakeTime,
) -> None:
    assert abs(fake_time.time() - time.time()) < 60.0
    assert fake_time.monotonic() == 0.0


@pytest.mark.parametrize(
    ("options", "field"),
    [
        ({"wall": math.nan}, "wall"),
        ({"wall": math.inf}, "wall"),
        ({"monotonic": -math.inf}, "monotonic"),
        ({"monotonic": "0"}, "monotonic"),
    ],
)
def test_a_fake_time_refuses_a_start_that_is_not_a_finite_number(
    options: dict[str, Any], field: str
) -> None:
    with pytest.raises(ConfigError) as caught:
        FakeTime(**options)
    assert caught.value.field == field


def test_closing_a_fake_time_drops_its_pending_timers_and_ends_its_thread() -> None:
    recorder = Recorder()
    with FakeTime() as fake:
        handle = fake.scheduler.send_after(recorder.ref, "never", 1.0)
        assert fake.scheduler.running
    assert not handle.pending
    assert not fake.scheduler.running
    fake.advance(1.0)
    assert recorder.told == []


class ReentrantTarget(pykka.ActorRef[Any]):
    """A stand-in ref whose tell arms a timer from another thread and waits for it."""

    def __init__(self, scheduler: Scheduler) -> None:  # no actor behind it
        self.scheduler = scheduler
        self.armed_from_other_thread = threading.Event()

    def tell(self, message: Any) -> None:
        def arm() -> None:
            self.scheduler.send_after(self, "again", 3600.0)
            self.armed_from_other_thread.set()

        other = threading.Thread(target=arm)
        other.start()
        other.join(5.0)


def test_the_timer_thread_does_not_hold_its_lock_while_telling(fake_time: FakeTime) -> None:
    target = ReentrantTarget(fake_time.scheduler)
    fake_time.scheduler.send_after(target, "first", 1.0)
    fake_time.advance(1.0)
    assert target.armed_from_other_thread.is_set()


def test_send_after_uses_the_default_scheduler_on_the_real_clock(
    inbox: pykka.ActorRef[Inbox], received: queue.Queue[Any]
) -> None:
    try:
        handle = send_after(inbox, "real", 0.005)
        assert handle.due <= default_scheduler().clock() + 0.005
        assert drain(received, 1) == ["real"]
    finally:
        stop_default_scheduler()
    assert not default_scheduler().running


def test_real_clock_timers_fire_in_order(
    inbox: pykka.ActorRef[Inbox], received: queue.Queue[Any]
) -> None:
    scheduler = Scheduler()
    try:
        base = scheduler.clock() + 0.005  # dues 1-9 ms after base, however slow arming is
        for due_ms in (9, 3, 6, 1):
            scheduler.send_after(inbox, due_ms, base + due_ms / 1000 - scheduler.clock())
        assert drain(received, 4) == [1, 3, 6, 9]
    finally:
        scheduler.stop()

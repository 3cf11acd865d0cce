"""os.fork() after servers are running: the child either gets tokens or a clear error.

Never a hang, never a socket shared with the parent. Each test forks; the child reports one
line through a pipe and leaves with os._exit.
"""

from __future__ import annotations

import functools
import importlib
import os
import pkgutil
import queue
import select
import threading
import time
import warnings
from collections.abc import Callable
from typing import Any

import pykka
import pytest
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader

import goth_actors
from goth_actors import (
    ChildSpec,
    RefreshToken,
    ServerNotFound,
    Supervisor,
    child_spec,
    fetch,
    start_link,
)
from goth_actors._root import root
from goth_actors.integrations.opentelemetry import instrument
from goth_actors.otp._inbox import actor_of
from goth_actors.testing import FakeTime, GoogleEmulator

pytestmark = [
    pytest.mark.slow,  # each test forks a process
    pytest.mark.usefixtures("shutdown_servers"),
    pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork"),
]


def _in_child(body: Callable[[], str], timeout: float = 20.0) -> str:
    """Runs ``body`` in a forked child; returns what it returned (or its error), bounded.

    Every lock of the runtime must be usable in the child, whichever thread held it at the
    fork, and every scheduler must start afresh there.
    """
    read_end, write_end = os.pipe()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # 3.12+: fork with threads
        pid = os.fork()
    if pid == 0:  # the child
        os.close(read_end)
        try:
            answer = body()
        except BaseException as exc:
            answer = f"error {type(exc).__name__}: {exc}"
        os.write(write_end, answer.encode()[:4000])
        os._exit(0)
    os.close(write_end)
    try:
        ready, _, _ = select.select([read_end], [], [], timeout)
        if not ready:
            os.kill(pid, 9)
            pytest.fail(f"the forked child did not answer within {timeout} s")
        answer = os.read(read_end, 4096).decode()
    finally:
        os.close(read_end)
        os.waitpid(pid, 0)
    return answer


def test_a_forked_child_is_served_and_restarts_the_server_it_needs(
    emulator: GoogleEmulator, fake_time: FakeTime
) -> None:
    start_link(
        name="app",
        source=RefreshToken(emulator.authorized_user()),
        prefetch="sync",
        time=fake_time,
    )
    parent_token = fetch("app")

    def child() -> str:
        from goth_actors._protocol import http_client as _http

        cached = fetch("app")  # the parent's token is still valid: served from memory
        fake_time.jump(7200.0)  # now it has expired: the child needs a server of its own
        fresh = fetch("app", timeout=10.0)
        own_session = _http._shared is not None and _http._shared[0] == os.getpid()
        goth_actors.shutdown()
        return f"{cached == parent_token} {fresh != parent_token} {own_session}"

    assert _in_child(child) == "True True True"
    assert fetch("app") == parent_token  # the parent's server is untouched
    assert len(emulator.requests_to("token")) == 2


def test_a_server_under_the_users_supervisor_gives_a_clear_error_in_the_child(
    emulator: GoogleEmulator, fake_time: FakeTime
) -> None:
    supervisor = Supervisor.start(
        [child_spec(name="mine", source=RefreshToken(emulator.authorized_user()), time=fake_time)]
    )
    try:
        fetch("mine")

        def child() -> str:
            fake_time.jump(7200.0)  # the parent's token has expired here
            started = time.monotonic()
            try:
                fetch("mine", timeout=30.0)
            except ServerNotFound as exc:
                return f"{time.monotonic() - started < 5.0} {exc}"
            return "no error"

        answer = _in_child(child)
        assert answer.startswith("True ")
        assert "os.fork()" in answer
    finally:
        supervisor.stop()


def test_the_child_has_no_live_actor_of_the_parent(emulator: GoogleEmulator) -> None:
    start_link(name="app", source=RefreshToken(emulator.authorized_user()), prefetch="sync")

    def child() -> str:
        import pykka

        alive = [ref for ref in pykka.ActorRegistry.get_all() if ref.is_alive()]
        return f"{len(alive)} {goth_actors.whereis('app')}"

    assert _in_child(child) == "0 None"


def test_a_fake_times_scheduler_whose_lock_was_held_at_the_fork_works_in_the_child(
    fake_time: FakeTime,
) -> None:
    held, release = threading.Event(), threading.Event()

    def hold() -> None:
        with fake_time.scheduler._cond:  # the parent's scheduler thread, at the wrong moment
            held.set()
            release.wait(5.0)

    holder = threading.Thread(target=hold)
    holder.start()
    assert held.wait(5.0)
    try:

        def child() -> str:
            import pykka

            ref = pykka.ThreadingActor.start()
            fake_time.scheduler.send_after(ref, "tick", 1.0)
            pending = fake_time.scheduler.pending
            fake_time.scheduler.stop()
            ref.stop()
            return str(pending)

        assert _in_child(child, timeout=10.0) == "1"
    finally:
        release.set()
        holder.join()


class BlocksSubclassing(pykka.ThreadingActor):
    """Holds up the building of its supervised subclass (and the lock around it) on demand."""

    building = threading.Event()
    release = threading.Event()

    def __init_subclass__(cls, **kwargs: object) -> None:
        super().__init_subclass__(**kwargs)
        BlocksSubclassing.building.set()
        BlocksSubclassing.release.wait(10.0)


class Other(pykka.ThreadingActor):
    pass


def test_a_fork_while_another_thread_builds_a_child_spec_does_not_deadlock_the_child() -> None:
    builder = threading.Thread(target=lambda: ChildSpec.for_actor(BlocksSubclassing))
    builder.start()
    try:
        assert BlocksSubclassing.building.wait(5.0)  # the other thread holds the lock now

        def child() -> str:
            return str(ChildSpec.for_actor(Other).start)

        assert _in_child(child, timeout=10.0) == "Other.start()"
    finally:
        BlocksSubclassing.release.set()
        builder.join(5.0)


class Recorder(pykka.ThreadingActor):
    def __init__(self, received: queue.Queue[object]) -> None:
        super().__init__()
        self.received = received

    def on_receive(self, message: object) -> None:
        self.received.put(message)


def test_a_fake_time_and_its_timers_work_in_a_forked_child() -> None:
    received: queue.Queue[object] = queue.Queue()
    parent_target = Recorder.start(received)
    with FakeTime() as fake:
        fake.scheduler.send_after(parent_target, "parent", 60.0)  # its thread is running
        try:

            def child() -> str:
                here: queue.Queue[object] = queue.Queue()
                ref = Recorder.start(here)
                fake.scheduler.send_after(ref, "tick", 1.0)
                fake.advance(60.0)  # "tick" is told; the parent's timer is not in the child
                answer = f"{here.get(timeout=5.0)} {fake.scheduler.pending}"
                ref.stop()
                return answer

            assert _in_child(child) == "tick 0"
        finally:
            parent_target.stop()


def test_many_threads_of_a_forked_child_all_get_the_restarted_servers_token(
    emulator: GoogleEmulator, fake_time: FakeTime
) -> None:
    start_link(
        name="app",
        source=RefreshToken(emulator.authorized_user()),
        prefetch="sync",
        time=fake_time,
    )

    def child() -> str:
        fake_time.jump(7200.0)  # the parent's token has expired: every thread misses at once
        gate = threading.Barrier(8)
        answers: list[str] = []

        def caller() -> None:
            gate.wait(5.0)
            try:
                answers.append(fetch("app", timeout=10.0).token[:4])
            except goth_actors.GothError as error:
                answers.append(type(error).__name__)

        threads = [threading.Thread(target=caller) for _ in range(8)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(15.0)
        goth_actors.shutdown()
        return " ".join(sorted(set(answers)))

    answer = _in_child(child)
    assert "ServerNotFound" not in answer
    assert len(answer.split()) == 1  # one token for all eight


def test_a_forked_child_can_start_the_server_its_parent_started_under_the_same_name(
    emulator: GoogleEmulator,
) -> None:
    user = emulator.authorized_user()
    start_link(name="app", source=RefreshToken(user), prefetch="sync")

    def child() -> str:  # as a gunicorn post_fork or Celery worker_process_init hook does
        start_link(name="app", source=RefreshToken(user), prefetch="sync")
        running = goth_actors.status("app").state
        goth_actors.shutdown()
        return running

    assert _in_child(child) == "ok"


def _every_lock_of_the_library() -> dict[str, Callable[[], Any]]:
    """Each module-level lock of every goth_actors module (and the root's, and Pykka's registry
    lock, which the runtime takes), as a getter: the child must read the name afresh."""
    lock_types = (type(threading.Lock()), type(threading.RLock()), threading.Condition)
    getters: dict[str, Callable[[], Any]] = {}
    names = ["goth_actors"]
    names += [info.name for info in pkgutil.walk_packages(goth_actors.__path__, "goth_actors.")]
    for name in names:
        module = importlib.import_module(name)
        for attr, value in vars(module).items():
            if isinstance(value, lock_types):
                getters[f"{name}.{attr}"] = functools.partial(getattr, module, attr)
    getters["goth_actors._root.root.lock"] = lambda: root.lock
    getters["pykka.ActorRegistry._actor_refs_lock"] = lambda: pykka.ActorRegistry._actor_refs_lock
    return getters


def test_every_lock_of_the_library_is_free_in_a_forked_child_whoever_held_it() -> None:
    getters = _every_lock_of_the_library()
    # Locks of instances that outlive a fork: an OpenTelemetry instrumentation (its event
    # subscription carries on in the child).
    instrumentation = instrument(MeterProvider(metric_readers=[InMemoryMetricReader()]))
    getters["Instrumentation._lock"] = lambda: instrumentation._lock
    assert "goth_actors.testing._emulator_store._pool_lock" in getters
    assert "goth_actors._table._lock" in getters
    assert "goth_actors.otp._hooks._hooked_lock" in getters
    held = [getter() for getter in getters.values()]
    for lock in held:
        assert lock.acquire(timeout=5.0)  # as another thread would be holding it at the fork
    try:

        def child() -> str:
            stuck = []
            for name, getter in getters.items():
                lock = getter()
                if not lock.acquire(blocking=False):
                    stuck.append(name)
                else:
                    lock.release()
            return " ".join(stuck) or "all free"

        assert _in_child(child, timeout=10.0) == "all free"
    finally:
        for lock in reversed(held):
            lock.release()
        instrumentation.uninstrument()


def test_a_fork_inside_a_start_function_leaves_the_forked_process_none_of_the_parents_offer() -> (
    None
):
    # multiprocessing's fork carries on in the forking thread, here a supervisor's in the middle
    # of a start function: in the new process, actors and trees start as anywhere else.
    answers: list[str] = []

    def start() -> pykka.ActorRef[Any]:
        def child() -> str:
            plain = pykka.ThreadingActor.start()
            tree = Supervisor.start([])
            try:
                hooked = "_goth_actors_link" in vars(actor_of(plain))
                offered = actor_of(tree)._goth_actors_link is not None
                return f"hooked={hooked} offered={offered}"
            finally:
                tree.stop()
                plain.stop()

        answers.append(_in_child(child))
        return pykka.ThreadingActor.start()

    sup = Supervisor.start([ChildSpec("c", start)])
    sup.stop()
    assert answers == ["hooked=False offered=False"]

"""Plain, user-defined Pykka actors and the helpers the supervision tests share."""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Callable, Hashable, Iterator
from dataclasses import dataclass
from typing import Any

import pykka
import pytest

from goth_actors.otp import ChildSpec, Supervisor, SupervisorEvent, WhichChildren


class Journal:
    """A thread-safe record of what the actors did, in order."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._lines: list[str] = []

    def add(self, line: str) -> None:
        with self._lock:
            self._lines.append(line)

    @property
    def lines(self) -> list[str]:
        with self._lock:
            return list(self._lines)

    def since(self, line: str) -> list[str]:
        lines = self.lines
        return lines[len(lines) - lines[::-1].index(line) :]


@dataclass(frozen=True)
class Crash:
    error_type: type[BaseException] = ValueError


class Worker(pykka.ThreadingActor):
    """An ordinary Pykka actor that notes its life in a journal."""

    def __init__(
        self,
        name: str,
        journal: Journal,
        *,
        start_failures: list[BaseException] | None = None,
        fail_on_stop: bool = False,
    ) -> None:
        super().__init__()
        self.name = name
        self.journal = journal
        self.start_failures = start_failures
        self.fail_on_stop = fail_on_stop

    def on_start(self) -> None:
        if self.start_failures:
            raise self.start_failures.pop(0)
        self.journal.add(f"start {self.name}")

    def on_stop(self) -> None:
        self.journal.add(f"stop {self.name}")
        if self.fail_on_stop:
            raise OSError("on_stop failed")

    def on_failure(self, *exc_info: object) -> None:
        self.journal.add(f"failure {self.name}")

    def explode(self) -> None:
        raise SystemExit("called through a proxy")

    def on_receive(self, message: Any) -> Any:
        match message:
            case Crash(error_type=error_type):
                raise error_type("boom")
            case "stop yourself":
                self.stop()
            case "ping":
                return "pong"
        return None


class Plain(pykka.ThreadingActor):
    pass


class Gate(pykka.ThreadingActor):
    """Blocks in on_start until the test opens the gate (so its supervisor waits there)."""

    def __init__(self, entered: threading.Event, gate: threading.Event) -> None:
        super().__init__()
        self.entered, self.gate = entered, gate

    def on_start(self) -> None:
        self.entered.set()
        assert self.gate.wait(5.0)


class Events:
    """An on_event observer the test can wait on."""

    def __init__(self) -> None:
        self._queue: queue.Queue[SupervisorEvent] = queue.Queue()
        self.seen: list[SupervisorEvent] = []

    def __call__(self, event: SupervisorEvent) -> None:
        self._queue.put(event)

    def wait_for(
        self, kind: str, child_id: Hashable = "*", timeout: float = 5.0
    ) -> SupervisorEvent:
        deadline = time.monotonic() + timeout
        while True:
            try:
                event = self._queue.get(timeout=max(0.0, deadline - time.monotonic()))
            except queue.Empty:
                kinds = [(e.kind, e.child_id) for e in self.seen]
                raise AssertionError(f"no {kind} for {child_id!r}; saw {kinds}") from None
            self.seen.append(event)
            if event.kind == kind and (child_id == "*" or event.child_id == child_id):
                return event

    def drain(self) -> list[tuple[str, Hashable]]:
        """Take every event already told, without waiting; return all seen so far."""
        while not self._queue.empty():
            self.seen.append(self._queue.get())
        return [(e.kind, e.child_id) for e in self.seen]


StartSupervisor = Callable[..., tuple[pykka.ActorRef[Supervisor], Events]]


@pytest.fixture(name="start_supervisor")
def start_supervisor_fixture() -> Iterator[StartSupervisor]:
    started: list[pykka.ActorRef[Supervisor]] = []

    def start(
        children: list[ChildSpec], **options: Any
    ) -> tuple[pykka.ActorRef[Supervisor], Events]:
        events = Events()
        ref = Supervisor.start(children, on_event=events, **options)
        started.append(ref)
        return ref, events

    yield start
    for ref in reversed(started):
        ref.stop()


@pytest.fixture(name="journal")
def journal_fixture() -> Journal:
    return Journal()


def worker(name: str, journal: Journal, **options: Any) -> ChildSpec:
    return ChildSpec.for_actor(Worker, name, journal, id=name, **options)


def child(sup: pykka.ActorRef[Supervisor], child_id: Hashable) -> pykka.ActorRef[Any]:
    for info in sup.ask(WhichChildren(), timeout=5.0):
        if info.id == child_id:
            assert info.ref is not None, f"{child_id!r} is not running"
            ref: pykka.ActorRef[Any] = info.ref
            return ref
    raise AssertionError(f"no child {child_id!r}")


def refs(sup: pykka.ActorRef[Supervisor]) -> dict[Hashable, pykka.ActorRef[Any] | None]:
    return {info.id: info.ref for info in sup.ask(WhichChildren(), timeout=5.0)}


def wait_dead(ref: pykka.ActorRef[Any]) -> None:
    assert ref.actor_stopped.wait(5.0), f"{ref} is still alive"

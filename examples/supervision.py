"""Supervision with plain Pykka actors: crash, restart, names that follow, and orderly stop.

Run it: ``uv run python examples/supervision.py`` (it takes well under a second).

The tree it builds::

    root (one_for_one)
    ├── counter          a plain pykka.ThreadingActor, registered as "counter"
    ├── pipeline (rest_for_one)
    │   ├── reader
    │   └── writer       restarted with reader, because it was started after it
    └── jobs (DynamicSupervisor)
        └── ...          started and terminated at run time, found by ref
"""

from __future__ import annotations

import logging
import queue
from typing import Any

import pykka

from goth_actors import ChildSpec, MaxRestartsExceeded, Supervisor, whereis
from goth_actors.otp import (
    DynamicSupervisor,
    SupervisorEvent,
    count_children,
    lookup,
    register,
    start_child,
    terminate_child,
    update_value,
    which_children,
)


class Counter(pykka.ThreadingActor):
    """Counts; keeps its total in the registry entry, which outlives the actor."""

    def __init__(self) -> None:
        super().__init__()
        register("counter", self.actor_ref)  # in __init__: named before its first message
        entry = lookup("counter")
        self.total: int = entry.value if entry and isinstance(entry.value, int) else 0

    def on_receive(self, message: Any) -> Any:
        if not isinstance(message, int):
            raise TypeError(f"cannot count {message!r}")  # told: this crashes the actor
        self.total += message
        update_value("counter", self.total, ref=self.actor_ref)
        return self.total


class Stage(pykka.ThreadingActor):
    """A pipeline stage that says when it starts and stops."""

    def __init__(self, name: str) -> None:
        super().__init__()
        self.name = name

    def on_start(self) -> None:
        print(f"  {self.name} started")

    def on_stop(self) -> None:
        print(f"  {self.name} stopped")

    def on_receive(self, message: Any) -> Any:
        if message == "jam":
            raise RuntimeError(f"{self.name} jammed")
        return message


def wait_for(events: queue.Queue[SupervisorEvent], kind: str, child_id: object) -> Any:
    while True:
        event = events.get(timeout=5.0)
        if event.kind == kind and event.child_id == child_id:
            return event


def main() -> None:
    logging.basicConfig(level=logging.WARNING, format="  [log] %(name)s: %(message)s")
    # Pykka logs every crash with its traceback; the supervisor's one-line reports suffice here.
    logging.getLogger("pykka").setLevel(logging.CRITICAL)
    events: queue.Queue[SupervisorEvent] = queue.Queue()
    pipeline_events: queue.Queue[SupervisorEvent] = queue.Queue()
    pipeline = ChildSpec.for_actor(
        Supervisor,
        [
            ChildSpec.for_actor(Stage, "reader", id="reader"),
            ChildSpec.for_actor(Stage, "writer", id="writer"),
        ],
        id="pipeline",
        strategy="rest_for_one",
        on_event=pipeline_events.put,
    )
    print("starting the tree")
    root = Supervisor.start(
        [
            ChildSpec.for_actor(Counter, id="counter"),
            pipeline,
            ChildSpec.for_actor(DynamicSupervisor, id="jobs", max_children=100),
        ],
        on_event=events.put,
        name="root",
    )

    counter = whereis("counter")
    assert counter is not None
    print("counter total:", counter.ask(5, timeout=5.0))
    counter.tell("five")  # a crash in a told message
    restarted = wait_for(events, "child_restarted", "counter")
    print(f"counter crashed and was restarted ({restarted.restarts} restart);")
    new_counter = whereis("counter")
    assert new_counter is not None
    assert new_counter is not counter
    print(
        "  the name points at the new actor, the total survived:", new_counter.ask(1, timeout=5.0)
    )

    print("reader jams: rest_for_one stops writer, restarts reader then writer")
    sub = which_children("root")[1].ref  # the functions take a ref or a name, and a timeout
    assert sub is not None
    reader = which_children(sub)[0].ref
    assert reader is not None
    reader.tell("jam")
    wait_for(pipeline_events, "child_restarted", "writer")

    jobs = which_children(root)[2].ref
    assert jobs is not None
    job = start_child(jobs, ChildSpec.for_actor(Stage, "job 1"), timeout=5.0)
    print("a job started at run time answers:", job.ask("hello", timeout=5.0))
    terminate_child(jobs, job)  # by ref: the dynamic supervisor forgets it
    print("jobs left:", count_children(jobs).specs)

    print("children:", [(c.id, c.type) for c in which_children(root)])
    print("counts:", count_children(root))

    fragile_events: queue.Queue[SupervisorEvent] = queue.Queue()
    fragile = Supervisor.start(
        [ChildSpec.for_actor(Stage, "fragile", id="fragile")],
        max_restarts=0,
        on_event=fragile_events.put,
    )
    fragile_stage = which_children(fragile)[0].ref
    assert fragile_stage is not None
    fragile_stage.tell("jam")
    exit_event = wait_for(fragile_events, "supervisor_exited", None)
    assert isinstance(exit_event.reason, MaxRestartsExceeded)
    print("a supervisor with max_restarts=0 gave up:", exit_event.reason)

    print("stopping the tree: children stop in reverse start order")
    root.stop()
    print("done")


if __name__ == "__main__":
    main()

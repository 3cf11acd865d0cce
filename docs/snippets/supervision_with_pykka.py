"""The examples of the guide "Supervision with Pykka", run by the tests: no token anywhere.

Run it: ``uv run python docs/snippets/supervision_with_pykka.py``.
"""

import logging

logging.getLogger("pykka").setLevel(logging.CRITICAL)  # Pykka logs each crash's traceback

# --8<-- [start:actors]
import queue

import pykka

from goth_actors.otp import ChildSpec, Supervisor, lookup, register, update_value, whereis


class Cache(pykka.ThreadingActor):
    """A key-value cache: a plain Pykka actor, nothing of ours to inherit."""

    def __init__(self) -> None:
        super().__init__()
        register("cache", self.actor_ref)  # the name follows the actor through restarts
        entry = lookup("cache")
        self.data = dict(entry.value) if entry and entry.value else {}  # kept in the registry

    def on_receive(self, message):
        key, value = message  # anything else crashes the actor (when told)
        self.data[key] = value
        update_value("cache", dict(self.data), ref=self.actor_ref)
        return len(self.data)


class Worker(pykka.ThreadingActor):
    def on_receive(self, message):
        return f"done: {message}"


# --8<-- [end:actors]


# --8<-- [start:tree]
events = queue.Queue()
root = Supervisor.start(
    [
        ChildSpec.for_actor(Cache, id="cache"),
        ChildSpec.for_actor(Worker, id="worker", restart="transient", shutdown=1.0),
    ],
    strategy="one_for_one",
    max_restarts=3,
    max_seconds=5.0,
    on_event=events.put,  # SupervisorEvent: child_started, child_exited, child_restarted...
)
cache = whereis("cache")
print(cache.ask(("answer", 42), timeout=5.0))
# --8<-- [end:tree]

# --8<-- [start:crash]
cache.tell("not a pair")  # a crash in a told message: the supervisor restarts the cache
while (event := events.get(timeout=5.0)).kind != "child_restarted":
    pass
print(event.child_id, "restarted;", whereis("cache") is not cache)
print(whereis("cache").ask(("question", None), timeout=5.0))  # 2: the data came through
# --8<-- [end:crash]

# --8<-- [start:children]
from goth_actors.otp import StartChild

proxy = root.proxy()
extra = proxy.start_child(ChildSpec.for_actor(Worker, id="extra")).get(timeout=5.0)
print(extra.ask("job", timeout=5.0))
print([child.id for child in proxy.which_children().get(timeout=5.0)])
print(proxy.count_children().get(timeout=5.0))
proxy.terminate_child("extra").get(timeout=5.0)  # stopped; its spec stays
proxy.delete_child("extra").get(timeout=5.0)
root.ask(StartChild(ChildSpec.for_actor(Worker, id="again")), timeout=5.0)  # the same, as a message
# --8<-- [end:children]

# --8<-- [start:stop]
root.stop()  # children stop newest first, then the supervisor
print(whereis("cache"))
# --8<-- [end:stop]

# --8<-- [start:timers]
from goth_actors.otp import FakeTime, send_after


class Ticker(pykka.ThreadingActor):
    def __init__(self, scheduler) -> None:
        super().__init__()
        self.scheduler, self.ticks = scheduler, 0

    def on_start(self) -> None:
        send_after(self.actor_ref, "tick", 10.0, scheduler=self.scheduler)

    def on_receive(self, message):
        if message == "tick":
            self.ticks += 1
            send_after(self.actor_ref, "tick", 10.0, scheduler=self.scheduler)
        return self.ticks


with FakeTime() as fake:  # time that moves only when the test says so
    tree = Supervisor.start([ChildSpec.for_actor(Ticker, fake.scheduler, id="ticker")], time=fake)
    ticker = tree.proxy().which_children().get(timeout=5.0)[0].ref
    for _ in range(3):
        fake.advance(10.0)  # returns once the tick then due was told to the ticker
        print(ticker.ask("count", timeout=5.0))  # 1, 2, 3, at once: nothing sleeps
    tree.stop()
# --8<-- [end:timers]

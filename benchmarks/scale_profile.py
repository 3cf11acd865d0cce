"""Where a token server's start goes: benchmark 6's start, split by thread, against its floors.

Run: ``uv run python benchmarks/scale_profile.py [--count 2000] [--rounds 5]``

Four ways to start ``--count`` actors, each run in a fresh process, interleaved over
``--rounds`` rounds (the machine is shared: compare medians of one run of this script):

- ``bare``: bare Pykka actors, each started by the main thread, each answering one ask
  (benchmark 6's baseline);
- ``hooked``: the same actors as children of one ``DynamicSupervisor``
  (``ChildSpec.for_actor``, one ``start_child`` each), each answering one ask: the floor of
  any supervised child;
- ``minimal``: a supervised actor that does the least a token server does: on start it tells
  itself a message, makes a token, publishes it in a dict under a lock and arms a timer;
- ``servers``: token servers as benchmark 6 starts them (an in-process ``http_client``),
  each holding a token and answering a ``Fetch``.

For each: CPU per start (``time.process_time``), and for each kind of thread (main, the
supervisor, the children) its CPU and context switches per start, from
``/proc/self/task/*/schedstat``; the time spent in garbage collection per start (``gc``
callbacks), and the tracked objects each start leaves (``gc.get_objects``, in a separate
smaller run). Linux only.
"""

from __future__ import annotations

import argparse
import collections
import gc
import json
import os
import statistics
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

KINDS = ("bare", "hooked", "minimal", "servers")
ROOT = Path(__file__).resolve().parent.parent


def _schedstat() -> dict[int, tuple[int, int]]:
    """Per thread id: nanoseconds on a CPU and timeslices (context switches)."""
    out = {}
    for tid in os.listdir("/proc/self/task"):
        try:
            with open(f"/proc/self/task/{tid}/schedstat") as file:
                ran, _, slices = map(int, file.read().split())
        except OSError:
            continue
        out[int(tid)] = (ran, slices)
    return out


def _by_thread_kind(before: dict[int, tuple[int, int]], count: int) -> dict[str, list[float]]:
    names = {t.native_id: t.name for t in threading.enumerate()}
    main = threading.main_thread().native_id
    kinds: dict[str, list[float]] = collections.defaultdict(lambda: [0.0, 0.0])
    for tid, (ran, slices) in _schedstat().items():
        ran0, slices0 = before.get(tid, (0, 0))
        kind = "main" if tid == main else names.get(tid, "?").split("-")[0]
        kinds[kind][0] += (ran - ran0) / count / 1e3  # µs per start
        kinds[kind][1] += (slices - slices0) / count
    return {kind: [round(v, 2) for v in values] for kind, values in kinds.items()}


class _GcClock:
    """CPU time spent in garbage collection, from gc callbacks."""

    def __init__(self) -> None:
        self.seconds = 0.0
        self._started: dict[int, float] = {}
        gc.callbacks.append(self._callback)

    def _callback(self, phase: str, info: dict[str, Any]) -> None:  # noqa: ARG002
        ident = threading.get_ident()
        if phase == "start":
            self._started[ident] = time.thread_time()
        elif ident in self._started:
            self.seconds += time.thread_time() - self._started.pop(ident)


def _instant(**request: Any) -> Any:  # noqa: ARG001
    from goth_actors import HttpResponse

    return HttpResponse(
        200,
        {"Metadata-Flavor": "Google"},
        {"access_token": "ya29.scale", "expires_in": 3600, "token_type": "Bearer"},
    )


def _starter(kind: str) -> tuple[Any, Any]:
    """``(start(n) -> ref, ask(ref))`` for ``kind``; what runs before is warm-up."""
    import pykka

    import goth_actors
    from goth_actors.otp import ChildSpec, DynamicSupervisor, default_scheduler, start_child

    class Idle(pykka.ThreadingActor):
        use_daemon_thread = True

    if kind == "bare":
        return (lambda _: Idle.start()), (lambda ref: ref.ask("ping", timeout=60.0))
    supervisor = DynamicSupervisor.start()
    if kind == "hooked":
        return (
            lambda n: start_child(supervisor, ChildSpec.for_actor(Idle, id=n)),
            lambda ref: ref.ask("ping", timeout=60.0),
        )
    if kind == "minimal":
        table: dict[object, object] = {}
        lock = threading.Lock()

        @dataclass(frozen=True, slots=True)
        class Minted:
            token: str
            expires: float

        class Tick:
            pass

        class Minimal(pykka.ThreadingActor):
            def __init__(self, name: object) -> None:
                super().__init__()
                self.name = name
                with lock:
                    table[name] = None

            def on_start(self) -> None:
                self.actor_ref.tell(Tick())

            def on_receive(self, message: Any) -> Any:
                if isinstance(message, Tick):
                    minted = Minted("ya29.minimal", time.time() + 3600.0)
                    with lock:
                        table[self.name] = minted
                    default_scheduler().send_after(self.actor_ref, Tick(), 3000.0)
                return table[self.name]

        return (
            lambda n: start_child(supervisor, ChildSpec.for_actor(Minimal, n, id=n)),
            lambda ref: ref.ask("ping", timeout=60.0),
        )
    source = goth_actors.Metadata(url="http://127.0.0.1:9")  # never called: _instant answers
    return (
        lambda n: start_child(
            supervisor, goth_actors.child_spec(name=n, source=source, http_client=_instant)
        ),
        lambda ref: ref.ask(goth_actors.Fetch(), timeout=60.0),
    )


def measure(kind: str, count: int) -> dict[str, Any]:
    """Starts ``count`` actors of ``kind`` and measures the start (run in a fresh process)."""
    start, ask = _starter(kind)
    ask(start(("warm", 0)))
    gc.collect()
    time.sleep(0.1)
    gc_clock = _GcClock()
    before, cpu = _schedstat(), time.process_time()
    refs = [start(("n", n)) for n in range(count)]
    for ref in refs:
        ask(ref)
    cpu = time.process_time() - cpu
    threads = _by_thread_kind(before, count)
    gc_us = gc_clock.seconds / count * 1e6
    # Tracked objects each start leaves, on a smaller batch.
    gc.collect()
    tracked = len(gc.get_objects())
    more = [start(("more", n)) for n in range(200)]
    for ref in more:
        ask(ref)
    time.sleep(0.2)
    gc.collect()
    objects = (len(gc.get_objects()) - tracked) / len(more)
    return {"cpu_us": cpu / count * 1e6, "gc_us": gc_us, "objects": objects, "threads": threads}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=2000)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--kinds", default=",".join(KINDS))
    parser.add_argument("--measure", choices=KINDS, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.measure:
        print(json.dumps(measure(args.measure, args.count)), flush=True)
        os._exit(0)  # the actors are daemons: no orderly stop to wait for
    kinds = args.kinds.split(",")
    runs: dict[str, list[dict[str, Any]]] = {kind: [] for kind in kinds}
    for _ in range(args.rounds):
        for kind in kinds:
            done = subprocess.run(
                [sys.executable, __file__, "--measure", kind, "--count", str(args.count)],
                capture_output=True,
                text=True,
                cwd=ROOT,
                timeout=600,
                check=True,
            )
            runs[kind].append(json.loads(done.stdout.strip().splitlines()[-1]))
    bare = statistics.median(run["cpu_us"] for run in runs[kinds[0]])
    print(f"{args.count:,} starts, median of {args.rounds} interleaved runs (CPU per start)")
    for kind in kinds:
        cpu = statistics.median(run["cpu_us"] for run in runs[kind])
        gc_us = statistics.median(run["gc_us"] for run in runs[kind])
        objects = statistics.median(run["objects"] for run in runs[kind])
        print(
            f"{kind:8} {cpu:6.0f} µs  ({cpu / bare:.2f}x {kinds[0]})  gc {gc_us:5.1f} µs  "
            f"{objects:5.1f} tracked objects each"
        )
        last = runs[kind][-1]["threads"]
        for thread_kind, (us, switches) in sorted(last.items(), key=lambda item: -item[1][0]):
            if us >= 1.0:
                print(f"           {thread_kind:20} {us:6.1f} µs  {switches:4.2f} switches")


if __name__ == "__main__":
    main()

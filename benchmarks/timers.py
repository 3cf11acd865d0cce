"""Benchmark: 10,000 pending timers on goth_actors' scheduler vs. threading.Timer.

Run: ``uv run python benchmarks/timers.py [--timers 10000] [--baseline 200] [--repeat 5]``

Measures, for the heap scheduler with ``--timers`` pending timers (due in an hour):

- extra threads: threads started by arming them, beyond the one scheduler thread;
- memory per timer: Python allocations (tracemalloc) and resident memory (RSS) per timer;
- arm and cancel cost per timer (best of ``--repeat`` runs);
- lateness when 1,000 timers fall due over 100 ms (p50 / p99 / max).

The baseline is one ``threading.Timer`` per timer, for ``--baseline`` timers (a thread each,
so far fewer), measured the same way in the same run. Ratios are baseline / scheduler, per
timer. Prints a table and writes ``benchmarks/results/timers.json``.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import platform
import statistics
import sys
import threading
import time
import tracemalloc
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pykka

from goth_actors.otp import Scheduler, TimerHandle

RESULTS = Path(__file__).resolve().parent / "results" / "timers.json"
FAR = 3600.0


class Sink(pykka.ThreadingActor):
    """Records when each timer message arrives."""

    def __init__(self) -> None:
        super().__init__()
        self.arrivals: list[tuple[float, float]] = []

    def on_receive(self, message: Any) -> None:
        self.arrivals.append((message, time.monotonic()))


def rss_bytes() -> int:
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def memory_per_timer(
    arm: Callable[[], list[Any]], disarm: Callable[[list[Any]], None], n: int
) -> tuple[float, float]:
    """Bytes per pending timer: resident memory (RSS), then Python allocations (tracemalloc).

    Run it before anything else allocates and frees timers: freed memory is kept by the
    allocator and would be reused, hiding the RSS growth.
    """
    gc.collect()
    rss_before = rss_bytes()
    armed = arm()
    rss = rss_bytes() - rss_before
    disarm(armed)
    del armed
    gc.collect()
    tracemalloc.start()
    before = tracemalloc.get_traced_memory()[0]
    armed = arm()
    traced = tracemalloc.get_traced_memory()[0] - before - sys.getsizeof(armed)
    tracemalloc.stop()
    disarm(armed)
    return rss / n, traced / n


def scheduler_costs(ref: pykka.ActorRef[Any], n: int, repeat: int) -> dict[str, float]:
    scheduler = Scheduler(idle_timeout=60.0)
    scheduler.send_after(ref, "warm-up", FAR).cancel()  # the one thread exists from here on
    threads_before = threading.active_count()

    def disarm(armed: list[TimerHandle]) -> None:
        for handle in armed:
            handle.cancel()

    rss, traced = memory_per_timer(
        lambda: [scheduler.send_after(ref, "tick", FAR) for _ in range(n)], disarm, n
    )
    handles: list[TimerHandle] = []

    def arm() -> float:
        handles.clear()
        started = time.perf_counter()
        for _ in range(n):
            handles.append(scheduler.send_after(ref, "tick", FAR))
        return (time.perf_counter() - started) / n

    def cancel() -> float:
        started = time.perf_counter()
        for handle in handles:
            handle.cancel()
        return (time.perf_counter() - started) / n

    arm_s, cancel_s = [], []
    for _ in range(repeat):
        arm_s.append(arm())
        extra_threads = threading.active_count() - threads_before
        cancel_s.append(cancel())

    scheduler.stop()
    return {
        "timers": n,
        "extra_threads": extra_threads,
        "arm_us": min(arm_s) * 1e6,
        "cancel_us": min(cancel_s) * 1e6,
        "bytes_per_timer_traced": traced,
        "bytes_per_timer_rss": rss,
    }


def thread_timer_costs(ref: pykka.ActorRef[Any], n: int, repeat: int) -> dict[str, float]:
    def arm_and_cancel() -> tuple[float, float, int]:
        before = threading.active_count()
        started = time.perf_counter()
        timers = [threading.Timer(FAR, ref.tell, ("tick",)) for _ in range(n)]
        for timer in timers:
            timer.start()
        arm = (time.perf_counter() - started) / n
        extra = threading.active_count() - before
        started = time.perf_counter()
        for timer in timers:
            timer.cancel()
        cancel = (time.perf_counter() - started) / n
        for timer in timers:
            timer.join()
        return arm, cancel, extra

    def arm() -> list[threading.Timer]:
        timers = [threading.Timer(FAR, ref.tell, ("tick",)) for _ in range(n)]
        for timer in timers:
            timer.start()
        return timers

    def disarm(timers: list[threading.Timer]) -> None:
        for timer in timers:
            timer.cancel()
        for timer in timers:
            timer.join()

    rss, traced = memory_per_timer(arm, disarm, n)
    runs = [arm_and_cancel() for _ in range(repeat)]
    return {
        "timers": n,
        "extra_threads": max(r[2] for r in runs),
        "arm_us": min(r[0] for r in runs) * 1e6,
        "cancel_us": min(r[1] for r in runs) * 1e6,
        "bytes_per_timer_traced": traced,
        "bytes_per_timer_rss": rss,
    }


def lateness(n: int = 1000, spread: float = 0.1) -> dict[str, float]:
    scheduler = Scheduler()
    sink = Sink.start()
    try:
        start = time.monotonic() + 0.05
        for i in range(n):
            due = start + spread * i / n
            scheduler.send_after(sink, due, due - time.monotonic())
        deadline = time.monotonic() + 10.0
        while time.monotonic() < deadline:
            arrivals = sink.proxy().arrivals.get(timeout=5.0)
            if len(arrivals) == n:
                break
            time.sleep(0.01)
        late = sorted((arrived - due) * 1000 for due, arrived in arrivals)
    finally:
        sink.stop()
        scheduler.stop()
    return {
        "timers": n,
        "spread_ms": spread * 1000,
        "p50_ms": statistics.median(late),
        "p99_ms": late[int(len(late) * 0.99) - 1],
        "max_ms": late[-1],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--timers", type=int, default=10_000)
    parser.add_argument("--baseline", type=int, default=200)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()

    target = Sink.start()
    try:
        heap = scheduler_costs(target, args.timers, args.repeat)
        timer = thread_timer_costs(target, args.baseline, args.repeat)
    finally:
        target.stop()
    late = lateness()

    ratio_keys = ["arm_us", "cancel_us", "bytes_per_timer_traced", "bytes_per_timer_rss"]
    ratios = {k: timer[k] / heap[k] if heap[k] > 0 else None for k in ratio_keys}
    rows = [
        ("pending timers", f"{heap['timers']:,}", f"{timer['timers']:,}", ""),
        ("extra threads", f"{heap['extra_threads']}", f"{timer['extra_threads']}", ""),
        ("arm, per timer (µs)", f"{heap['arm_us']:.2f}", f"{timer['arm_us']:.1f}", "arm_us"),
        (
            "cancel, per timer (µs)",
            f"{heap['cancel_us']:.2f}",
            f"{timer['cancel_us']:.1f}",
            "cancel_us",
        ),
        (
            "Python memory per timer (B)",
            f"{heap['bytes_per_timer_traced']:.0f}",
            f"{timer['bytes_per_timer_traced']:.0f}",
            "bytes_per_timer_traced",
        ),
        (
            "resident memory per timer (B)",
            f"{heap['bytes_per_timer_rss']:.0f}",
            f"{timer['bytes_per_timer_rss']:.0f}",
            "bytes_per_timer_rss",
        ),
    ]
    print(
        f"goth_actors timers vs threading.Timer — Python {platform.python_version()}, "
        f"{os.cpu_count()} CPUs, best of {args.repeat}"
    )
    print(f"{'':32}{'scheduler':>12}{'Timer':>12}{'Timer/scheduler':>18}")
    for label, ours, theirs, key in rows:
        ratio = ratios.get(key) if key else None
        shown = f"{ratio:.0f}x" if ratio is not None else ""
        print(f"{label:32}{ours:>12}{theirs:>12}{shown:>18}")
    print(
        f"lateness, {late['timers']:,} timers due over {late['spread_ms']:.0f} ms: "
        f"p50 {late['p50_ms']:.2f} ms, p99 {late['p99_ms']:.2f} ms, max {late['max_ms']:.2f} ms"
    )

    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(
        json.dumps(
            {
                "python": platform.python_version(),
                "platform": platform.platform(),
                "cpus": os.cpu_count(),
                "repeat": args.repeat,
                "scheduler": heap,
                "threading_timer": timer,
                "ratios_timer_over_scheduler": ratios,
                "lateness": late,
            },
            indent=2,
        )
        + "\n"
    )
    print(f"wrote {RESULTS}")


if __name__ == "__main__":
    main()

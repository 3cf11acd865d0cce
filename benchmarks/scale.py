"""Benchmark 6: 1,000 token servers in one process, and 10,000 pending timers.

Each measurement runs in a fresh Python process (``python -m benchmarks.scale MODE``, which
prints JSON), so resident memory and thread counts start from the same clean state:

- ``servers``: ``servers`` token servers on a metadata source (the emulator runs in a process of
  its own, so its connection threads do not count), started with ``prefetch="async"``: time to
  start them, time until all hold a token, resident memory per server (RSS delta / N, from
  ``/proc/self/statm``), threads added, pending timers on the default scheduler, the cached
  ``fetch`` cost with N servers against one, and ``shutdown()`` time.
- ``actors``: the baseline, the same number of bare Pykka actors on daemon threads (what a
  token server is built on), measured the same way.
- ``timers``: ``timers`` pending timers on goth_actors' scheduler against ``threading.Timer``
  (``benchmarks/timers.py``'s measurements, reused).
"""

from __future__ import annotations

import argparse
import gc
import json
import statistics
import subprocess
import sys
import threading
import time
import timeit
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from benchmarks._common import (
    Params,
    Section,
    Target,
    fmt_count,
    fmt_ns,
    fmt_ratio,
    fmt_time,
    os_thread_count,
    ratio,
    rss_bytes,
)

ROOT = Path(__file__).resolve().parent.parent
HIT_REPEAT = 5
HIT_LOOPS = 200_000


# ------------------------------------------------------------------- measured in a subprocess


@contextmanager
def _emulator_process() -> Iterator[str]:
    """``goth-actors emulator --port 0`` in its own process; yields its base URL."""
    process = subprocess.Popen(
        [sys.executable, "-m", "goth_actors._cli", "emulator", "--port", "0"],
        stdout=subprocess.PIPE,
        text=True,
        cwd=ROOT,
    )
    try:
        assert process.stdout is not None
        first = process.stdout.readline()  # "emulator listening on http://127.0.0.1:PORT"
        if "listening on " not in first:
            raise RuntimeError(f"the emulator did not start: {first!r}")
        yield first.split("listening on ", 1)[1].strip()
    finally:
        process.terminate()
        process.wait(timeout=30)
        if process.stdout is not None:
            process.stdout.close()


def _fetch_hit_ns(name: object) -> float:
    import goth_actors

    timer = timeit.Timer("fetch(name)", globals={"fetch": goth_actors.fetch, "name": name})
    return statistics.median(timer.repeat(HIT_REPEAT, HIT_LOOPS)) / HIT_LOOPS * 1e9


def _settled_readings() -> tuple[int, int, int]:
    gc.collect()
    time.sleep(0.2)  # let finished threads (HTTP, Pykka start-up) leave
    gc.collect()
    return rss_bytes(), threading.active_count(), os_thread_count()


def measure_servers(count: int) -> dict[str, Any]:
    """Starts ``count`` token servers on a metadata source and measures them."""
    import goth_actors
    from goth_actors.otp import default_scheduler

    with _emulator_process() as url:
        source = goth_actors.Metadata(url=url)
        # Warm up: the root supervisor, the timer thread, the HTTP session, every import. The
        # warm server stays, so the timer thread does not idle out between the readings.
        goth_actors.start_link(name="warm", source=source, prefetch="sync")
        goth_actors.fetch("warm")
        hit_one = _fetch_hit_ns("warm")
        pending_before = default_scheduler().pending
        rss_before, threads_before, tasks_before = _settled_readings()

        names = [("scale", i) for i in range(count)]
        started = time.perf_counter()
        for name in names:
            goth_actors.start_link(name=name, source=source, prefetch="async")
        start_s = time.perf_counter() - started
        for name in names:
            goth_actors.fetch(name, timeout=120.0)
        ready_s = time.perf_counter() - started

        rss_after, threads_after, tasks_after = _settled_readings()
        pending = default_scheduler().pending - pending_before
        hit_many = _fetch_hit_ns(names[count // 2])
        states = [goth_actors.status(name).state for name in names]
        started = time.perf_counter()
        goth_actors.shutdown()
        shutdown_s = time.perf_counter() - started
    return {
        "servers": count,
        "start_s": start_s,
        "ready_s": ready_s,
        "rss_delta_bytes": rss_after - rss_before,
        "rss_per_server_bytes": (rss_after - rss_before) / count,
        "threads_added": threads_after - threads_before,
        "os_threads_added": tasks_after - tasks_before,
        "pending_timers": pending,
        "ok": states.count("ok"),
        "fetch_hit_ns_1_server": hit_one,
        "fetch_hit_ns_n_servers": hit_many,
        "shutdown_s": shutdown_s,
        "threads_left_after_shutdown": threading.active_count() - 1,
    }


def measure_actors(count: int) -> dict[str, Any]:
    """Starts ``count`` bare Pykka actors on daemon threads and measures them (the baseline)."""
    import pykka

    class Idle(pykka.ThreadingActor):
        use_daemon_thread = True

    warm = Idle.start()
    warm.ask("ping", timeout=10.0)
    warm.stop()
    rss_before, threads_before, tasks_before = _settled_readings()
    started = time.perf_counter()
    refs = [Idle.start() for _ in range(count)]
    start_s = time.perf_counter() - started
    for ref in refs:
        ref.ask("ping", timeout=60.0)
    ready_s = time.perf_counter() - started
    rss_after, threads_after, tasks_after = _settled_readings()
    started = time.perf_counter()
    for ref in reversed(refs):
        ref.stop(block=False)
    pykka.ActorRegistry.stop_all(timeout=60.0)
    shutdown_s = time.perf_counter() - started
    return {
        "actors": count,
        "start_s": start_s,
        "ready_s": ready_s,
        "rss_delta_bytes": rss_after - rss_before,
        "rss_per_actor_bytes": (rss_after - rss_before) / count,
        "threads_added": threads_after - threads_before,
        "os_threads_added": tasks_after - tasks_before,
        "shutdown_s": shutdown_s,
    }


def measure_timers(count: int, baseline: int, repeat: int) -> dict[str, Any]:
    """``benchmarks/timers.py``'s pending-timer costs: the scheduler against threading.Timer."""
    from benchmarks import timers

    target = timers.Sink.start()
    try:
        heap = timers.scheduler_costs(target, count, repeat)
        thread_timers = timers.thread_timer_costs(target, baseline, repeat)
    finally:
        target.stop()
    return {"scheduler": heap, "threading_timer": thread_timers}


def _subprocess(*args: str) -> dict[str, Any]:
    done = subprocess.run(
        [sys.executable, "-m", "benchmarks.scale", *args],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=600,
        check=False,
    )
    if done.returncode != 0:
        raise RuntimeError(f"benchmarks.scale {' '.join(args)} failed:\n{done.stderr[-3000:]}")
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


# ------------------------------------------------------------------------------------ section


def scale(p: Params) -> Section:
    """Benchmark 6: 1,000 token servers and 10,000 timers, each in a fresh process."""
    servers = _subprocess("servers", "--count", str(p.servers))
    actors = _subprocess("actors", "--count", str(p.servers))
    timer_costs = _subprocess(
        "timers", "--count", str(p.timers), "--baseline", str(p.timer_baseline), "--repeat", "3"
    )
    n = p.servers
    kib = 1024
    rows = [
        [
            f"start {n:,} (`start_link`, async prefetch)",
            fmt_time(servers["start_s"]),
            fmt_time(actors["start_s"]),
            fmt_ratio(ratio(servers["start_s"], actors["start_s"])),
        ],
        [
            "until all hold a token (answer an ask)",
            fmt_time(servers["ready_s"]),
            fmt_time(actors["ready_s"]),
            fmt_ratio(ratio(servers["ready_s"], actors["ready_s"])),
        ],
        [
            "resident memory per server (RSS delta / N)",
            f"{servers['rss_per_server_bytes'] / kib:.1f} KiB",
            f"{actors['rss_per_actor_bytes'] / kib:.1f} KiB",
            fmt_ratio(ratio(servers["rss_per_server_bytes"], actors["rss_per_actor_bytes"])),
        ],
        [
            "threads added",
            fmt_count(servers["threads_added"]),
            fmt_count(actors["threads_added"]),
            "",
        ],
        ["pending timers on the default scheduler", fmt_count(servers["pending_timers"]), "-", ""],
        [
            f"cached `fetch`, {n:,} servers vs 1 server",
            f"{fmt_ns(servers['fetch_hit_ns_n_servers'])} ns",
            f"{fmt_ns(servers['fetch_hit_ns_1_server'])} ns (1 server)",
            fmt_ratio(ratio(servers["fetch_hit_ns_n_servers"], servers["fetch_hit_ns_1_server"])),
        ],
        [
            "`shutdown()` / stop all",
            fmt_time(servers["shutdown_s"]),
            fmt_time(actors["shutdown_s"]),
            fmt_ratio(ratio(servers["shutdown_s"], actors["shutdown_s"])),
        ],
    ]
    heap, thread_timer = timer_costs["scheduler"], timer_costs["threading_timer"]
    timer_rows = [
        ["pending timers", fmt_count(heap["timers"]), fmt_count(thread_timer["timers"]), ""],
        [
            "extra threads",
            fmt_count(heap["extra_threads"]),
            fmt_count(thread_timer["extra_threads"]),
            "",
        ],
    ]
    for key, label in [
        ("arm_us", "arm, per timer (µs)"),
        ("cancel_us", "cancel, per timer (µs)"),
        ("bytes_per_timer_traced", "Python memory per timer (B)"),
        ("bytes_per_timer_rss", "resident memory per timer (B)"),
    ]:
        timer_rows.append(
            [
                label,
                f"{heap[key]:,.2f}" if key.endswith("us") else f"{heap[key]:,.0f}",
                f"{thread_timer[key]:,.1f}" if key.endswith("us") else f"{thread_timer[key]:,.0f}",
                fmt_ratio(ratio(thread_timer[key], heap[key])),
            ]
        )
    return Section(
        key="scale",
        title=f"6. Scale: {n:,} token servers in one process; {p.timers:,} pending timers",
        headers=[f"{n:,} servers", "token servers", "bare Pykka actors (baseline)", "ratio"],
        rows=rows,
        more_tables=[
            (
                [
                    "pending timers",
                    "goth_actors scheduler",
                    "threading.Timer (baseline)",
                    "Timer / ours",
                ],
                timer_rows,
            )
        ],
        notes=[
            "Each measurement runs in a fresh process. Token servers use a metadata source on "
            "an emulator in another process; the baseline is bare `pykka.ThreadingActor`s on "
            "daemon threads, as token servers are. RSS from `/proc/self/statm`, read after "
            "every server holds its token.",
            f"Pending timers: `benchmarks/timers.py`'s measurements, best of 3; "
            f"`threading.Timer` is measured with {p.timer_baseline:,} timers (a thread each) "
            "and compared per timer.",
            f"{servers['ok']:,} of {n:,} servers were in state `ok`; "
            f"{servers['threads_left_after_shutdown']} thread(s) besides the main one were "
            "left after `shutdown()`.",
        ],
        targets=[
            Target(
                f"6. {n:,} servers: one thread and one timer each",
                f"{n:,} threads, {n:,} timers",
                f"{servers['threads_added']:,} threads, {servers['pending_timers']:,} timers",
                servers["threads_added"] == n and servers["pending_timers"] == n,
            ),
            Target(
                f"6. {p.timers:,} pending timers",
                "no thread per timer",
                f"{heap['extra_threads']} extra threads",
                heap["extra_threads"] == 0,
            ),
        ],
        data={"servers": servers, "actors": actors, "timers": timer_costs},
    )


def main() -> None:
    """``python -m benchmarks.scale servers|actors|timers``: one measurement, as JSON."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("mode", choices=["servers", "actors", "timers"])
    parser.add_argument("--count", type=int, default=1000)
    parser.add_argument("--baseline", type=int, default=200)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    if args.mode == "servers":
        result = measure_servers(args.count)
    elif args.mode == "actors":
        result = measure_actors(args.count)
    else:
        result = measure_timers(args.count, args.baseline, args.repeat)
    sys.stdout.write(json.dumps(result) + "\n")


if __name__ == "__main__":
    main()

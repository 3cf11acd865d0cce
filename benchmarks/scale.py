"""Benchmark 6: Goth per tenant: 10,000 token servers under one DynamicSupervisor; 10,000 timers.

Each measurement runs in a fresh Python process (``python -m benchmarks.scale MODE``, which
prints JSON), so resident memory and thread counts start from the same clean state. The two
sides are run ``SCALE_RUNS`` times each, interleaved, and each figure is the best of the runs:
the machine is shared, and the best run is the one least disturbed.

- ``tenants``: ``servers`` token servers started one by one with
  ``goth_actors.otp.start_child(tenants, goth_actors.child_spec(name=("tenant", n), ...))``
  under one ``DynamicSupervisor``. To measure the runtime and not the crypto, they share one
  metadata source and an in-process ``http_client`` that answers at once. "Started" means
  every server holds a token and has answered an ask (``Fetch``). Then: resident memory per
  server (RSS delta / N, ``/proc/self/statm``), threads added, pending timers, the cached
  ``fetch`` cost with N servers against one, the time to stop the supervisor (its children
  stop in parallel) and the threads left after that.
- ``actors``: the baseline, the same number of bare Pykka actors on daemon threads (what a
  token server is built on), each of which has answered one ask; stopped with
  ``ActorRegistry.stop_all()``.
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
from collections.abc import Mapping
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
SCALE_RUNS = 3  # runs of each side; every time figure is the best of them


# ------------------------------------------------------------------- measured in a subprocess


def _instant(
    *,
    method: str,  # noqa: ARG001
    url: str,  # noqa: ARG001
    headers: Mapping[str, str],  # noqa: ARG001
    body: bytes,  # noqa: ARG001
    timeout: float,  # noqa: ARG001
) -> Any:
    """An in-process metadata server that answers at once (no crypto, no socket)."""
    from goth_actors import HttpResponse

    return HttpResponse(
        200,
        {"Metadata-Flavor": "Google"},
        {"access_token": "ya29.scale", "expires_in": 3600, "token_type": "Bearer"},
    )


def _fetch_hit_ns(name: object) -> float:
    import goth_actors

    timer = timeit.Timer("fetch(name)", globals={"fetch": goth_actors.fetch, "name": name})
    return statistics.median(timer.repeat(HIT_REPEAT, HIT_LOOPS)) / HIT_LOOPS * 1e9


def _settled_readings() -> tuple[int, int, int]:
    gc.collect()
    time.sleep(0.2)  # let finished threads (Pykka start-up) leave
    gc.collect()
    return rss_bytes(), threading.active_count(), os_thread_count()


def measure_tenants(count: int) -> dict[str, Any]:
    """Starts ``count`` token servers under one DynamicSupervisor and measures them."""
    import goth_actors
    from goth_actors.otp import DynamicSupervisor, default_scheduler, start_child

    source = goth_actors.Metadata(url="http://127.0.0.1:9")  # never called: _instant answers
    tenants = DynamicSupervisor.start()
    # Warm up every import and the timer thread; the warm server stays, so the timer thread
    # does not idle out between the readings.
    start_child(tenants, goth_actors.child_spec(name="warm", source=source, http_client=_instant))
    goth_actors.whereis("warm").ask(goth_actors.Fetch(), timeout=10.0)
    hit_one = _fetch_hit_ns("warm")
    pending_before = default_scheduler().pending
    rss_before, threads_before, tasks_before = _settled_readings()

    names = [("tenant", n) for n in range(count)]
    started, cpu = time.perf_counter(), time.process_time()
    refs = [
        start_child(tenants, goth_actors.child_spec(name=name, source=source, http_client=_instant))
        for name in names
    ]
    start_s = time.perf_counter() - started
    for ref in refs:
        ref.ask(goth_actors.Fetch(), timeout=120.0)
    ready_s, ready_cpu_s = time.perf_counter() - started, time.process_time() - cpu

    rss_after, threads_after, tasks_after = _settled_readings()
    pending = default_scheduler().pending - pending_before
    hit_many = _fetch_hit_ns(names[count // 2])
    states = [goth_actors.status(name).state for name in names]
    started = time.perf_counter()
    tenants.stop()
    stop_s = time.perf_counter() - started
    gone = sum(1 for name in names if goth_actors.cached(name) is None)
    goth_actors.otp.stop_default_scheduler()
    time.sleep(0.2)
    return {
        "servers": count,
        "start_s": start_s,
        "ready_s": ready_s,
        "ready_cpu_s": ready_cpu_s,
        "rss_delta_bytes": rss_after - rss_before,
        "rss_per_server_bytes": (rss_after - rss_before) / count,
        "threads_added": threads_after - threads_before,
        "os_threads_added": tasks_after - tasks_before,
        "pending_timers": pending,
        "ok": states.count("ok"),
        "fetch_hit_ns_1_server": hit_one,
        "fetch_hit_ns_n_servers": hit_many,
        "stop_s": stop_s,
        "forgotten_after_stop": gone,
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
    started, cpu = time.perf_counter(), time.process_time()
    refs = [Idle.start() for _ in range(count)]
    start_s = time.perf_counter() - started
    for ref in refs:
        ref.ask("ping", timeout=60.0)
    ready_s, ready_cpu_s = time.perf_counter() - started, time.process_time() - cpu
    rss_after, threads_after, tasks_after = _settled_readings()
    started = time.perf_counter()
    pykka.ActorRegistry.stop_all(timeout=60.0)
    stop_s = time.perf_counter() - started
    return {
        "actors": count,
        "start_s": start_s,
        "ready_s": ready_s,
        "ready_cpu_s": ready_cpu_s,
        "rss_delta_bytes": rss_after - rss_before,
        "rss_per_actor_bytes": (rss_after - rss_before) / count,
        "threads_added": threads_after - threads_before,
        "os_threads_added": tasks_after - tasks_before,
        "stop_s": stop_s,
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


def _best(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """Each numeric figure at its best (lowest) over ``runs``; the rest from the first run."""
    best = dict(runs[0])
    for key, value in runs[0].items():
        if isinstance(value, float):
            best[key] = min(run[key] for run in runs)
    return best


def scale(p: Params) -> Section:
    """Benchmark 6: N token servers under one DynamicSupervisor, and 10,000 timers."""
    n = p.servers
    tenant_runs, actor_runs = [], []
    for _ in range(SCALE_RUNS if p.mode != "smoke" else 1):
        tenant_runs.append(_subprocess("tenants", "--count", str(n)))
        actor_runs.append(_subprocess("actors", "--count", str(n)))
    servers, actors = _best(tenant_runs), _best(actor_runs)
    timer_costs = _subprocess(
        "timers", "--count", str(p.timers), "--baseline", str(p.timer_baseline), "--repeat", "3"
    )
    kib = 1024
    start_ratio = ratio(servers["ready_s"], actors["ready_s"])
    memory_ratio = ratio(servers["rss_per_server_bytes"], actors["rss_per_actor_bytes"])
    fetch_ratio = ratio(servers["fetch_hit_ns_n_servers"], servers["fetch_hit_ns_1_server"])
    rows = [
        [
            f"start {n:,} (`start_child`, one call each)",
            fmt_time(servers["start_s"]),
            fmt_time(actors["start_s"]),
            fmt_ratio(ratio(servers["start_s"], actors["start_s"])),
        ],
        [
            "until all hold a token and answered an ask",
            fmt_time(servers["ready_s"]),
            fmt_time(actors["ready_s"]),
            fmt_ratio(start_ratio),
        ],
        [
            "CPU time for that",
            fmt_time(servers["ready_cpu_s"]),
            fmt_time(actors["ready_cpu_s"]),
            fmt_ratio(ratio(servers["ready_cpu_s"], actors["ready_cpu_s"])),
        ],
        [
            "resident memory per server (RSS delta / N)",
            f"{servers['rss_per_server_bytes'] / kib:.1f} KiB",
            f"{actors['rss_per_actor_bytes'] / kib:.1f} KiB",
            fmt_ratio(memory_ratio),
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
            fmt_ratio(fetch_ratio),
        ],
        [
            "stop all (the supervisor: children in parallel)",
            fmt_time(servers["stop_s"]),
            fmt_time(actors["stop_s"]),
            fmt_ratio(ratio(servers["stop_s"], actors["stop_s"])),
        ],
        [
            "threads left after the stop",
            fmt_count(servers["threads_left_after_shutdown"]),
            "-",
            "",
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
    runs = SCALE_RUNS if p.mode != "smoke" else 1
    return Section(
        key="scale",
        title=f"6. Goth per tenant: {n:,} token servers under one DynamicSupervisor; "
        f"{p.timers:,} pending timers",
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
            "Each measurement runs in a fresh process; both sides run "
            f"{runs} time(s), interleaved, and each figure is the best run. The servers share "
            "one metadata source and an in-process `http_client` that answers at once (the "
            "runtime is measured, not the crypto or the network); the baseline is bare "
            "`pykka.ThreadingActor`s on daemon threads, as token servers are. RSS from "
            "`/proc/self/statm`, read once every server holds its token.",
            f"Pending timers: `benchmarks/timers.py`'s measurements, best of 3; "
            f"`threading.Timer` is measured with {p.timer_baseline:,} timers (a thread each) "
            "and compared per timer.",
            f"{servers['ok']:,} of {n:,} servers were in state `ok`; "
            f"{servers['forgotten_after_stop']:,} were forgotten (`cached` is `None`) once "
            "their supervisor stopped.",
        ],
        targets=[
            Target(
                f"6. {n:,} servers: start within 1.5x of bare actors",
                "<= 1.5x",
                fmt_ratio(start_ratio),
                start_ratio <= 1.5,
            ),
            Target(
                f"6. {n:,} servers: memory within 1.5x of bare actors",
                "<= 1.5x",
                fmt_ratio(memory_ratio),
                memory_ratio <= 1.5,
            ),
            Target(
                f"6. {n:,} servers: `fetch` unchanged",
                "<= 1.2x the cost with 1 server",
                fmt_ratio(fetch_ratio),
                fetch_ratio <= 1.2,
            ),
            Target(
                f"6. {n:,} servers: every thread gone after the stop",
                "0 threads left",
                f"{servers['threads_left_after_shutdown']} left",
                servers["threads_left_after_shutdown"] == 0,
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
    """``python -m benchmarks.scale tenants|actors|timers``: one measurement, as JSON."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("mode", choices=["tenants", "actors", "timers"])
    parser.add_argument("--count", type=int, default=1000)
    parser.add_argument("--baseline", type=int, default=200)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    if args.mode == "tenants":
        result = measure_tenants(args.count)
    elif args.mode == "actors":
        result = measure_actors(args.count)
    else:
        result = measure_timers(args.count, args.baseline, args.repeat)
    sys.stdout.write(json.dumps(result) + "\n")


if __name__ == "__main__":
    main()

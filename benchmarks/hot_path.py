"""Benchmarks 1 and 2: the cost of a cached ``fetch``, alone and from many threads.

1. ``fetch`` hit latency, timed like ``timeit`` (a tight loop, the median of several repeats,
   per operation), against a bare ``dict.get`` of the same token, google-auth's cached path
   (``credentials.valid`` + ``credentials.token``, and ``before_request``) and a Pykka ``ask``
   round trip to the same token server.
2. Aggregate ``fetch`` throughput from 1, 4 and 16 threads, against ``dict.get`` from the same
   threads, lock-free and under one ``threading.Lock``.

Run alone: ``uv run python -m benchmarks --only hot_path,throughput``.
"""

from __future__ import annotations

import statistics
import threading
import time
import timeit
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import goth_actors
from benchmarks._common import (
    API_URL,
    Params,
    Section,
    Target,
    auth_request,
    fmt_count,
    fmt_ns,
    fmt_ratio,
    join_all,
    ratio,
    run_threads,
    service_account_credentials,
)
from goth_actors.testing import GoogleEmulator

NAME = "bench-hot"
BATCH = 1000
"""Calls between two looks at the stop flag in the throughput loop."""


@contextmanager
def _served_token() -> Iterator[dict[str, Any]]:
    """A running token server with its token, and google-auth credentials holding a token."""
    with GoogleEmulator() as emulator, auth_request() as request:
        key = emulator.service_account()
        goth_actors.start_link(name=NAME, source=goth_actors.ServiceAccount(key), prefetch="sync")
        try:
            token = goth_actors.fetch(NAME)
            credentials = service_account_credentials(key)
            credentials.refresh(request)
            ref = goth_actors.whereis(NAME)
            assert ref is not None
            lock = threading.Lock()
            table: dict[object, Any] = {NAME: token}

            def wrapped(name: object) -> Any:
                return table.get(name)

            def locked(name: object) -> Any:
                with lock:
                    return table.get(name)

            yield {
                "name": NAME,
                "d": table,
                "wrapped": wrapped,
                "locked": locked,
                "clock": time.time,
                "fetch": goth_actors.fetch,
                "creds": credentials,
                "request": request,
                "url": API_URL,
                "ref": ref,
                "Fetch": goth_actors.Fetch,
            }
        finally:
            goth_actors.shutdown()


# ----------------------------------------------------------------------------- 1. hit latency

# (key, label, statement); every statement runs in the namespace built by _served_token.
_OPERATIONS = [
    ("empty", "empty loop (`pass`): loop overhead, in every row", "pass"),
    ("dict_get", "**baseline**: `d.get(name)` of the same token", "d.get(name)"),
    ("function", "a function that returns `d.get(name)`", "wrapped(name)"),
    ("clock", "`time.time()`", "clock()"),
    ("fetch", "**`goth_actors.fetch(name)`**, cached", "fetch(name)"),
    ("ga_valid", "google-auth `creds.valid and creds.token`", "creds.valid and creds.token"),
    (
        "ga_before_request",
        'google-auth `creds.before_request(request, "GET", url, {})`',
        'creds.before_request(request, "GET", url, {})',
    ),
    ("ask", "Pykka `ref.ask(Fetch(), timeout=5.0)`, same server", "ref.ask(Fetch(), timeout=5.0)"),
]


def _loop_count(timer: timeit.Timer, seconds: float) -> int:
    """How many loops make one timed repeat last about ``seconds`` (like timeit's autorange)."""
    number = 1
    while True:
        elapsed = timer.timeit(number)
        if elapsed >= seconds / 10 or number >= 10**8:
            return max(1, round(number * seconds / max(elapsed, 1e-9)))
        number *= 10


def hit_latency(p: Params) -> Section:
    """Benchmark 1: ns per cached ``fetch`` against its baselines, in one process."""
    with _served_token() as namespace:
        timers = {key: timeit.Timer(stmt, globals=namespace) for key, _, stmt in _OPERATIONS}
        numbers = {key: _loop_count(timer, p.loop_seconds) for key, timer in timers.items()}
        samples: dict[str, list[float]] = {key: [] for key in timers}
        for _ in range(p.repeat):  # round robin, so drift hits every operation alike
            for key, timer in timers.items():
                samples[key].append(timer.timeit(numbers[key]) / numbers[key] * 1e9)
    median = {key: statistics.median(values) for key, values in samples.items()}
    best = {key: min(values) for key, values in samples.items()}
    empty = median["empty"]
    net = {key: max(value - empty, 0.0) for key, value in median.items()}

    rows = []
    for key, label, _ in _OPERATIONS:
        rows.append(
            [
                label,
                fmt_ns(median[key]),
                fmt_ns(best[key]),
                "" if key == "empty" else fmt_ratio(ratio(median[key], median["dict_get"])),
                "" if key == "empty" else fmt_ratio(ratio(median[key], median["fetch"])),
            ]
        )
    fetch_vs_dict = ratio(median["fetch"], median["dict_get"])
    net_fetch_vs_dict = ratio(net["fetch"], net["dict_get"])
    ask_vs_fetch = ratio(median["ask"], median["fetch"])
    return Section(
        key="hit_latency",
        title="1. `fetch` hit latency (ns per call)",
        headers=["operation", "median ns/op", "best ns/op", "x dict.get", "x fetch"],
        rows=rows,
        notes=[
            f"`timeit` loops, each repeat about {p.loop_seconds:g} s; median and best of "
            f"{p.repeat} repeats, run round robin. Ratios are of medians and include the loop "
            f"overhead (first row). Net of it, `fetch` is "
            f"{fmt_ratio(net_fetch_vs_dict)} `dict.get`.",
            "`fetch` is a function call, a dict read, an expiry check against `time.time()` "
            "and a return; the third and fourth rows are the floor any function API with a "
            "wall-clock check starts from.",
        ],
        targets=[
            Target(
                "1. fetch hit vs dict.get",
                "within 3x",
                fmt_ratio(fetch_vs_dict),
                fetch_vs_dict <= 3.0,
            ),
            Target(
                "1. Pykka ask vs fetch hit",
                "about two orders of magnitude (≥ 100x)",
                fmt_ratio(ask_vs_fetch),
                ask_vs_fetch >= 100.0,
            ),
        ],
        data={
            "repeat": p.repeat,
            "loops": numbers,
            "ns_per_op_median": median,
            "ns_per_op_best": best,
            "ns_per_op_net_of_loop": net,
            "samples_ns": samples,
            "fetch_over_dict_get": fetch_vs_dict,
            "fetch_over_dict_get_net": net_fetch_vs_dict,
            "ask_over_fetch": ask_vs_fetch,
            "ga_valid_over_fetch": ratio(median["ga_valid"], median["fetch"]),
            "ga_before_request_over_fetch": ratio(median["ga_before_request"], median["fetch"]),
        },
    )


# ------------------------------------------------------------------------------ 2. throughput


def _ops_per_second(
    op: Callable[[object], object], name: object, threads: int, seconds: float
) -> float:
    """Aggregate calls per second of ``op(name)`` from ``threads`` threads in tight loops."""
    stop = threading.Event()
    barrier = threading.Barrier(threads + 1)
    counts = [0] * threads
    ends = [0.0] * threads

    def work(index: int) -> None:
        call, key, stopped = op, name, stop.is_set
        barrier.wait()
        done = 0
        while not stopped():
            for _ in range(BATCH):
                call(key)
            done += BATCH
        counts[index] = done
        ends[index] = time.perf_counter()

    workers = run_threads(threads, work)
    barrier.wait()
    started = time.perf_counter()
    time.sleep(seconds)
    stop.set()
    join_all(workers)
    return sum(counts) / (max(ends) - started)


def throughput(p: Params) -> Section:
    """Benchmark 2: aggregate cached ``fetch`` calls per second from 1, 4 and 16 threads."""
    results: dict[int, dict[str, float]] = {}
    with _served_token() as namespace:
        ops = {
            "fetch": namespace["fetch"],
            "dict_get": namespace["d"].get,
            "locked_dict_get": namespace["locked"],
        }
        for threads in p.thread_counts:
            results[threads] = {
                key: _ops_per_second(op, NAME, threads, p.throughput_seconds)
                for key, op in ops.items()
            }
    single = results[p.thread_counts[0]]["fetch"]
    rows = []
    for threads, rates in results.items():
        rows.append(
            [
                str(threads),
                fmt_count(rates["fetch"]),
                fmt_ratio(ratio(rates["fetch"], single)),
                fmt_count(rates["dict_get"]),
                fmt_ratio(ratio(rates["fetch"], rates["dict_get"])),
                fmt_count(rates["locked_dict_get"]),
            ]
        )
    return Section(
        key="throughput",
        title="2. Aggregate `fetch` throughput (cached token)",
        headers=[
            "threads",
            "fetch ops/s",
            "x 1 thread",
            "dict.get ops/s",
            "fetch / dict.get",
            "dict.get under a Lock, ops/s",
        ],
        rows=rows,
        notes=[
            f"Each thread calls in a tight loop for {p.throughput_seconds:g} s; ops/s is all "
            "threads' calls over the wall time. With the GIL, threads share one core's worth "
            "of Python: the aim is no collapse as threads are added (compare the Lock column).",
        ],
        data={"seconds": p.throughput_seconds, "ops_per_second": results},
    )

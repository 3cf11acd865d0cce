"""Benchmarks 4 and 5: how many requests the token endpoint sees when many callers want a token.

4. Cold-start herd: ``herd`` threads call at once on a server that has no token yet, while the
   endpoint takes ``herd_delay`` to answer. Against google-auth credentials shared by the same
   threads, each calling ``before_request`` as ``AuthorizedSession`` does (it refreshes when the
   token is not valid).
5. Outage: the token endpoint answers 503 to every token request for ``outage_seconds`` while
   ``outage_callers`` threads keep asking; the server starts cold at the outage's start, as an
   app would. Requests seen, against the most the server's backoff allows in that time, and
   against the same callers on shared google-auth credentials (whose retry timing is its own).

The emulator counts requests: it is the endpoint's own view, not the client's.
"""

from __future__ import annotations

import random
import statistics
import threading
import time
from collections.abc import Callable
from typing import Any

import goth_actors
from benchmarks._common import (
    API_URL,
    Params,
    Section,
    Target,
    auth_request,
    fmt_count,
    fmt_ratio,
    fmt_time,
    join_all,
    ratio,
    run_threads,
    service_account_credentials,
    summary,
)
from goth_actors._protocol import Backoff
from goth_actors.testing import GoogleEmulator

NAME = "bench-load"
OUTAGE_FAULTS = 1_000_000
"""Token requests armed to fail at the outage's start: more than any run makes."""
BACKOFF_SIMULATIONS = 10_000


# ------------------------------------------------------------------------------------ 4. herd


def _stampede(
    threads: int, call: Callable[[], object], before: Callable[[], None], slow: float
) -> dict[str, Any]:
    """Releases ``threads`` threads at once on ``call()``; ``before()`` runs just before.

    A caller that took ``slow`` seconds or more counts as one that waited for an exchange.
    """
    barrier = threading.Barrier(threads + 1)
    latencies: list[float] = []
    errors: list[str] = []
    lock = threading.Lock()

    def caller(_: int) -> None:
        barrier.wait()
        began = time.perf_counter()
        try:
            call()
        except Exception as exc:
            with lock:
                errors.append(f"{type(exc).__name__}: {str(exc)[:200]}")
        finished = time.perf_counter() - began
        with lock:
            latencies.append(finished)

    workers = run_threads(threads, caller)
    before()
    started = time.perf_counter()
    barrier.wait()
    join_all(workers)
    return {
        "wall_s": time.perf_counter() - started,
        "latency_s": summary(latencies),
        "waited": sum(1 for latency in latencies if latency >= slow),
        "errors": len(errors),
        "error_kinds": sorted({error.split(":")[0] for error in errors}),
        "first_error": errors[0] if errors else None,
    }


def herd(p: Params) -> Section:
    """Benchmark 4: requests the endpoint saw when ``herd`` threads hit a cold server."""
    results: dict[str, dict[str, Any]] = {}
    with GoogleEmulator() as emulator:
        key = emulator.service_account()
        emulator.delay(p.herd_delay)
        try:

            def start() -> None:
                goth_actors.start_link(
                    name=NAME, source=goth_actors.ServiceAccount(key), prefetch="async"
                )

            results["goth_actors"] = _stampede(
                p.herd, lambda: goth_actors.fetch(NAME, timeout=30.0), start, p.herd_delay / 2
            )
            results["goth_actors"]["requests"] = len(emulator.requests_to("token"))
        finally:
            goth_actors.shutdown()
        emulator.clear_requests()

        credentials = service_account_credentials(key)
        with auth_request() as request:

            def call() -> None:
                credentials.before_request(request, "GET", API_URL, {})

            results["google_auth"] = _stampede(p.herd, call, lambda: None, p.herd_delay / 2)
        results["google_auth"]["requests"] = len(emulator.requests_to("token"))

    ours, theirs = results["goth_actors"], results["google_auth"]
    labels = {
        "goth_actors": "**goth_actors `fetch`** (cold server)",
        "google_auth": "google-auth `before_request`, shared credentials",
    }
    rows = [
        [
            labels[key],
            str(p.herd),
            str(result["waited"]),
            str(result["requests"]),
            str(result["errors"]),
            fmt_time(result["latency_s"]["p50"]),
            fmt_time(result["latency_s"]["max"]),
            fmt_time(result["wall_s"]),
        ]
        for key, result in results.items()
    ]
    return Section(
        key="herd",
        title=f"4. Cold-start herd: {p.herd} threads at once, endpoint answers in "
        f"{p.herd_delay * 1000:.0f} ms",
        headers=[
            "callers",
            "threads",
            "waited for an exchange",
            "token requests seen",
            "errors",
            "caller wait p50",
            "caller wait max",
            "all served after",
        ],
        rows=rows,
        notes=[
            "The threads wait on a barrier; goth_actors' server is started (async prefetch) "
            "just before the barrier opens, so every caller arrives while its one exchange "
            "is in flight. google-auth's credentials start with no token. A caller that took "
            "half the endpoint's delay or more counts as having waited for an exchange.",
            f"google-auth: {fmt_ratio(ratio(theirs['requests'], max(ours['requests'], 1)))} "
            "the requests; it has no single flight (google-auth issue 1780).",
            *(
                f"{labels[key]}: {result['errors']} caller(s) failed, first: "
                f"{result['first_error']}"
                for key, result in results.items()
                if result["errors"]
            ),
        ],
        targets=[
            Target(
                f"4. cold-start herd of {p.herd}",
                "1 token request",
                f"{ours['requests']} (google-auth: {theirs['requests']})",
                ours["requests"] == 1 and ours["errors"] == 0,
            )
        ],
        data={"threads": p.herd, "endpoint_delay_s": p.herd_delay, **results},
    )


# ---------------------------------------------------------------------------------- 5. outage


def attempts_bound(seconds: float, backoff_min: float) -> int:
    """The most attempts a server can make in ``seconds``.

    Every retry delay is at least ``backoff_min`` (for every backoff type), and the first
    attempt comes at once.
    """
    return 1 + int(seconds / backoff_min)


def simulated_attempts(seconds: float, backoff_min: float, backoff_max: float) -> dict[str, float]:
    """Attempts in ``seconds`` of the default backoff (``rand_exp``), by simulation.

    Exchanges are taken as instant, so this slightly overstates what a real server makes.
    """
    rng = random.Random(1)
    counts = []
    for _ in range(BACKOFF_SIMULATIONS):
        backoff = Backoff("rand_exp", backoff_min, backoff_max, rng=rng)
        elapsed, attempts = 0.0, 1
        while True:
            elapsed += backoff.next()
            if elapsed > seconds:
                break
            attempts += 1
        counts.append(attempts)
    counts.sort()
    return {
        "mean": statistics.fmean(counts),
        "p99": counts[int(len(counts) * 0.99) - 1],
        "max": counts[-1],
    }


def _pound(p: Params, call: Callable[[], object], emulator: GoogleEmulator) -> dict[str, Any]:
    """``outage_callers`` threads call ``call()`` every ``outage_period`` through the outage."""
    stop = threading.Event()
    lock = threading.Lock()
    calls: list[float] = []
    errors = [0]

    def caller(index: int) -> None:
        stop.wait(p.outage_period * index / p.outage_callers)
        while not stop.is_set():
            began = time.perf_counter()
            try:
                call()
            except Exception:
                with lock:
                    errors[0] += 1
            with lock:
                calls.append(time.perf_counter() - began)
            stop.wait(p.outage_period)

    workers = run_threads(p.outage_callers, caller)
    time.sleep(p.outage_seconds)
    seen = len(emulator.requests_to("token"))
    stop.set()
    emulator.reset()  # the outage ends: callers stuck in a retry now succeed and finish
    join_all(workers, timeout=p.outage_backoff[1] + 60.0)
    return {"requests": seen, "calls": len(calls), "errors": errors[0], "wait_s": summary(calls)}


def outage(p: Params) -> Section:
    """Benchmark 5: token requests during an outage with many callers, against the bound."""
    low, high = p.outage_backoff
    results: dict[str, dict[str, Any]] = {}
    with GoogleEmulator() as emulator:
        key = emulator.service_account()
        emulator.fail_next(OUTAGE_FAULTS, 503)
        try:
            goth_actors.start_link(
                name=NAME,
                source=goth_actors.ServiceAccount(key),
                backoff_min=low,
                backoff_max=high,
                prefetch="async",
            )
            results["goth_actors"] = _pound(
                p, lambda: goth_actors.fetch(NAME, timeout=1.0), emulator
            )
            results["goth_actors"]["status"] = repr(goth_actors.status(NAME))
        finally:
            goth_actors.shutdown()

        emulator.fail_next(OUTAGE_FAULTS, 503)
        credentials = service_account_credentials(key)
        with auth_request() as request:
            results["google_auth"] = _pound(
                p, lambda: credentials.before_request(request, "GET", API_URL, {}), emulator
            )

    bound = attempts_bound(p.outage_seconds, low)
    simulated = simulated_attempts(p.outage_seconds, low, high)
    ours, theirs = results["goth_actors"], results["google_auth"]
    scale_note = (
        "the defaults' timescale"
        if p.outage_seconds == 30.0 and (low, high) == (1.0, 30.0)
        else f"{30.0 / p.outage_seconds:g}x compressed: a {p.outage_seconds:g} s outage with "
        f"backoff {low:g}-{high:g} s stands for a 30 s outage with "
        f"{low * 30.0 / p.outage_seconds:g}-{high * 30.0 / p.outage_seconds:g} s"
    )
    rows = [
        [
            "**goth_actors** (cold server, `rand_exp` backoff)",
            str(ours["requests"]),
            f"{bound} (simulated mean {simulated['mean']:.1f}, max {simulated['max']:.0f})",
            fmt_count(ours["calls"]),
            fmt_count(ours["errors"]),
            fmt_time(ours["wait_s"]["p50"]),
            fmt_time(ours["wait_s"]["max"]),
        ],
        [
            "google-auth `before_request`, shared credentials (own retries, unscaled)",
            str(theirs["requests"]),
            "-",
            fmt_count(theirs["calls"]),
            fmt_count(theirs["errors"]),
            fmt_time(theirs["wait_s"]["p50"]),
            fmt_time(theirs["wait_s"]["max"]),
        ],
    ]
    return Section(
        key="outage",
        title=f"5. Endpoint load during a {p.outage_seconds:g} s outage, "
        f"{p.outage_callers} callers",
        headers=[
            "callers",
            "token requests seen",
            "backoff bound",
            "caller calls",
            "failed",
            "caller wait p50",
            "caller wait max",
        ],
        rows=rows,
        notes=[
            f"Every token request fails with 503 for {p.outage_seconds:g} s; each of "
            f"{p.outage_callers} callers calls every {p.outage_period * 1000:g} ms. Timescale: "
            f"{scale_note}.",
            f"Bound: the first attempt at once, then every retry delay at least backoff_min "
            f"({low:g} s): 1 + ⌊{p.outage_seconds:g} / {low:g}⌋ = {bound}. The simulated "
            f"figures run the server's own `Backoff` {BACKOFF_SIMULATIONS:,} times.",
            "google-auth retries each refresh itself (3 attempts, sleeping about 1 s then "
            "2 s), per caller: its load grows with the callers, ours does not. Caller calls "
            "are the calls that returned; google-auth's callers are blocked in the retries "
            "most of the time, ours fail at once with the last error while no token exists.",
        ],
        targets=[
            Target(
                f"5. outage, {p.outage_callers} callers",
                f"requests ≤ backoff bound ({bound})",
                f"{ours['requests']} (google-auth: {theirs['requests']})",
                1 <= ours["requests"] <= bound,
            )
        ],
        data={
            "outage_s": p.outage_seconds,
            "backoff_min_s": low,
            "backoff_max_s": high,
            "callers": p.outage_callers,
            "caller_period_s": p.outage_period,
            "bound": bound,
            "simulated": simulated,
            **results,
        },
    )

"""Benchmark 8: event-loop lag while 1,000 coroutines fetch from a cold server (500 ms endpoint).

A ticker task sleeps ``loop_tick`` (1 ms) in a loop and records how late each wake-up is: the
longest of those gaps is the loop's lag, the time during which no other coroutine of the
application (no request handler, no heartbeat) could run. Meanwhile ``loop_tasks`` tasks each
want a token from a server that has none yet, whose endpoint takes ``loop_delay`` to answer.
Every run starts a new server, then the ticker, then the tasks:

- floor: the same tasks awaiting an ``asyncio.Event`` that the loop sets after ``loop_delay``:
  what starting and waking that many tasks costs asyncio itself, with no token at all.
- ``await goth_actors.fetch_async(name)``.
- ``goth_actors.fetch(name)`` called from the coroutines: the first call blocks the loop for
  the whole exchange (the trap of calling sync code, or awaiting a Pykka future, in a coroutine).
- ``await asyncio.to_thread(goth_actors.fetch, name)``: the usual workaround, which sends every
  call, hit or miss, through the default thread pool.

The tasks arrive ``loop_wave`` (100) per turn of the loop, as requests on many connections do:
started all in one turn, a thousand tasks stall the loop for milliseconds by themselves, before
any of them asks for a token (asyncio's own cost, which the two "all at once" rows show next to
ours). Each case runs ``loop_repeat`` times, round robin, and the median run is reported with
the worst; "all served" is when the last task had its token, from the first task's start.
"""

from __future__ import annotations

import asyncio
import gc
import statistics
import time
from collections.abc import Awaitable, Callable
from typing import Any

import goth_actors
from benchmarks._common import Params, Section, Target, fmt_time, summary
from goth_actors.testing import GoogleEmulator

NAME = "bench-loop"
SETTLE = 0.02
"""Seconds the ticker runs alone before the tasks start, while the server's first exchange is
already in flight (the endpoint takes far longer than this)."""

Call = Callable[[], Awaitable[object]]


async def _measure(p: Params, prepare: Callable[[], Call], wave: int) -> dict[str, Any]:
    """Starts the ticker, then ``p.loop_tasks`` tasks of ``prepare()``, ``wave`` per turn."""
    call = prepare()  # starting the server is not measured: the ticker starts after it
    gc.collect()  # every run starts with the same garbage: none
    pauses: list[tuple[float, float]] = []  # (when a collection ended, how long it took)

    def collected(phase: str, _info: dict[str, int]) -> None:
        now = time.perf_counter()
        if phase == "start":
            pauses.append((now, 0.0))
        elif pauses:
            pauses[-1] = (now, now - pauses[-1][0])

    gc.callbacks.append(collected)
    ticks: list[tuple[float, float]] = []  # (when it woke, how late)
    done = asyncio.Event()

    async def ticker() -> None:
        clock, tick = time.perf_counter, p.loop_tick
        while not done.is_set():
            before = clock()
            await asyncio.sleep(tick)
            woke = clock()
            ticks.append((woke, woke - before - tick))

    ticking = asyncio.create_task(ticker())
    await asyncio.sleep(SETTLE)
    started = time.perf_counter()
    tasks: list[asyncio.Future[object]] = []
    while len(tasks) < p.loop_tasks:
        count = min(wave, p.loop_tasks - len(tasks))
        tasks += [asyncio.ensure_future(call()) for _ in range(count)]
        await asyncio.sleep(0)  # one turn of the loop: those tasks take their first step
    results = await asyncio.gather(*tasks, return_exceptions=True)
    served = time.perf_counter() - started
    await asyncio.sleep(5 * p.loop_tick)  # a few calm ticks after the last task
    done.set()
    await ticking
    gc.callbacks.remove(collected)
    lateness = [late for woke, late in ticks if woke >= started]
    worst_at = max(((late, woke) for woke, late in ticks if woke >= started), default=(0.0, 0.0))
    gc_pauses = [took for ended, took in pauses if ended >= started]
    errors = [r for r in results if isinstance(r, BaseException)]
    return {
        "lag": summary(lateness),
        "worst_tick_at_s": worst_at[1] - started,
        "ticks": len(lateness),
        "served_s": served,
        "gc_pauses": len(gc_pauses),
        "gc_pause_max_s": max(gc_pauses, default=0.0),
        "errors": len(errors),
        "first_error": repr(errors[0])[:200] if errors else None,
    }


def _floor(p: Params, wave: int) -> dict[str, Any]:
    def prepare() -> Call:
        ready = asyncio.Event()
        asyncio.get_running_loop().call_later(SETTLE + p.loop_delay, ready.set)
        return ready.wait

    return asyncio.run(_measure(p, prepare, wave))


def _with_server(
    emulator: GoogleEmulator, p: Params, make: Callable[[], Call], wave: int
) -> dict[str, Any]:
    key = emulator.service_account()
    emulator.delay(p.loop_delay)
    try:

        def prepare() -> Call:
            goth_actors.start_link(name=NAME, source=goth_actors.ServiceAccount(key))
            # The server is cold, its first exchange in flight: the endpoint has the request
            # (its signing and sending are over) and takes loop_delay to answer.
            emulator.wait_for_requests(1, "token")
            return make()

        outcome = asyncio.run(_measure(p, prepare, wave))
        outcome["token_requests"] = len(emulator.requests_to("token"))
    finally:
        goth_actors.shutdown()
        emulator.reset()
    return outcome


def _fetch_async() -> Call:
    fetch_async = goth_actors.fetch_async
    return lambda: fetch_async(NAME)


def _sync_fetch() -> Call:
    fetch = goth_actors.fetch

    async def call() -> object:
        return fetch(NAME)

    return call


def _to_thread() -> Call:
    fetch = goth_actors.fetch
    return lambda: asyncio.to_thread(fetch, NAME)


def _combine(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """One case's repeated runs: medians, the worst run, and the sums that must be zero."""
    maxes = [run["lag"]["max"] for run in runs]
    return {
        "lag_max_median": statistics.median(maxes),
        "lag_max_worst": max(maxes),
        "lag_p99_median": statistics.median(run["lag"]["p99"] for run in runs),
        "served_s_median": statistics.median(run["served_s"] for run in runs),
        "gc_pause_max_s": max(run["gc_pause_max_s"] for run in runs),
        "errors": sum(run["errors"] for run in runs),
        "token_requests_max": max(run.get("token_requests", 0) for run in runs),
        "runs": runs,
    }


LABELS = {
    "floor": "floor: the same tasks awaiting an `asyncio.Event` (no token)",
    "fetch_async": "**`await goth_actors.fetch_async(name)`**",
    "sync_fetch": "`goth_actors.fetch(name)` called in the coroutines",
    "to_thread": "`await asyncio.to_thread(goth_actors.fetch, name)`",
    "floor_at_once": "floor, all tasks started in one turn",
    "fetch_async_at_once": "`fetch_async`, all tasks started in one turn",
}


def loop_lag(p: Params) -> Section:
    """Benchmark 8: the event loop's lag while coroutines wait for a cold server's token."""
    wave, burst = p.loop_wave, p.loop_tasks
    cases: dict[str, Callable[[GoogleEmulator], dict[str, Any]]] = {
        "floor": lambda _: _floor(p, wave),
        "fetch_async": lambda emulator: _with_server(emulator, p, _fetch_async, wave),
        "sync_fetch": lambda emulator: _with_server(emulator, p, _sync_fetch, wave),
        "to_thread": lambda emulator: _with_server(emulator, p, _to_thread, wave),
        "floor_at_once": lambda _: _floor(p, burst),
        "fetch_async_at_once": lambda emulator: _with_server(emulator, p, _fetch_async, burst),
    }
    measured: dict[str, list[dict[str, Any]]] = {key: [] for key in cases}
    with GoogleEmulator() as emulator:
        for _ in range(p.loop_repeat):  # round robin: the machine's noise hits every case alike
            for key, case in cases.items():
                measured[key].append(case(emulator))
    runs = {key: _combine(outcomes) for key, outcomes in measured.items()}
    rows = [
        [
            LABELS[key],
            fmt_time(run["lag_max_median"]),
            fmt_time(run["lag_max_worst"]),
            fmt_time(run["lag_p99_median"]),
            fmt_time(run["served_s_median"]),
            str(run["errors"]),
            "" if key.startswith("floor") else str(run["token_requests_max"]),
        ]
        for key, run in runs.items()
    ]
    ours, blocking = runs["fetch_async"]["lag_max_median"], runs["sync_fetch"]["lag_max_median"]
    floor = runs["floor"]["lag_max_median"]
    return Section(
        key="loop_lag",
        title=(
            f"8. Event-loop lag: {p.loop_tasks:,} coroutines on a cold server, "
            f"endpoint {p.loop_delay * 1000:.0f} ms"
        ),
        headers=[
            f"{p.loop_tasks:,} tasks, {wave} per loop turn; ticker every "
            f"{p.loop_tick * 1000:g} ms; median of {p.loop_repeat} runs",
            "lag (worst tick)",
            "worst run",
            "lag p99",
            "all served",
            "errors",
            "token requests",
        ],
        rows=rows,
        notes=[
            "Lag: how late the ticker woke up at worst in a run (the median run, and the worst "
            "run), i.e. how long nothing else could run on the loop; p99 over its ticks. The "
            "floor rows are what asyncio itself costs to start and wake the same tasks, plus "
            "the machine's own noise (other processes share its 2 cores).",
            "All tasks started in one turn: asyncio's own cost of starting a thousand tasks "
            "at once is most of the lag (the floor), with or without a token to wait for; "
            "`fetch_async` adds about 2 µs per waiting task to it.",
            "`to_thread` keeps the loop free but sends every call, hit or miss, through the "
            "default thread pool: each costs a thread hop, and the pool is shared with the "
            "application's own blocking work.",
            "The emulator (the endpoint) runs in the same process, its threads competing for "
            "the GIL when the token is issued; Google's endpoint would not.",
        ],
        targets=[
            Target(
                "8. event-loop lag, 1,000 tasks on a cold server",
                "< 5 ms with `fetch_async`, against ~500 ms with sync `fetch`",
                f"{fmt_time(ours)} against {fmt_time(blocking)} (asyncio floor "
                f"{fmt_time(floor)}; medians of {p.loop_repeat} runs)",
                ours < 5e-3 and blocking > 0.5 * p.loop_delay,
            )
        ],
        data={
            "tasks": p.loop_tasks,
            "wave": wave,
            "tick_s": p.loop_tick,
            "endpoint_delay_s": p.loop_delay,
            "repeat": p.loop_repeat,
            "runs": runs,
        },
    )

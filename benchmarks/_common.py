"""What every benchmark shares: run presets, statistics, process readings and table output.

Every figure a benchmark reports is a count, or a ratio against a baseline measured in the same
run: the machine is small and noisy, so absolute times only mean something next to each other.
"""

from __future__ import annotations

import math
import os
import statistics
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from typing import Any, Literal

import requests

Mode = Literal["full", "quick", "smoke"]

CLOUD_PLATFORM = "https://www.googleapis.com/auth/cloud-platform"
API_URL = "https://storage.googleapis.com/storage/v1/b"
"""The URL handed to google-auth's ``before_request``; nothing is ever sent to it."""


@dataclass(frozen=True, slots=True)
class Params:
    """How hard each benchmark pushes; `params` has the three presets.

    Attributes:
        mode: ``"full"`` (the published numbers), ``"quick"`` (a smoke run of every benchmark
            in under a minute) or ``"smoke"`` (tiny, for the test suite: counts only).
        repeat: Timed repeats of each hot-path loop; medians are over these.
        loop_seconds: Seconds each timed hot-path loop should take (sets the loop count).
        throughput_seconds: Seconds each thread count of the throughput benchmark runs.
        thread_counts: Thread counts of the throughput benchmark.
        refresh_callers: Caller threads during the slow refresh.
        refresh_period: Seconds between one caller's calls (its schedule).
        refresh_delay: Seconds the token endpoint takes to answer during the refresh.
        refresh_tail: Seconds the callers go on after the refresh should have finished.
        herd: Threads that call at once on a cold server.
        herd_delay: Seconds the token endpoint takes to answer during the herd.
        outage_seconds: How long the token endpoint fails.
        outage_backoff: ``(backoff_min, backoff_max)`` of the server during the outage.
        outage_callers: Caller threads during the outage.
        outage_period: Seconds between one caller's calls during the outage.
        servers: Token servers started by the scale benchmark.
        timers: Pending timers armed by the scale benchmark.
        timer_baseline: ``threading.Timer`` objects armed as the timers' baseline.
        cli_runs: Processes started per command by the CLI benchmark.
        loop_tasks: Coroutines that want a token at once in the event-loop lag benchmark.
        loop_wave: How many of them start per turn of the event loop.
        loop_tick: Seconds the lag benchmark's ticker task sleeps between wake-ups.
        loop_delay: Seconds the token endpoint takes to answer in the lag benchmark.
        loop_repeat: Runs of each case of the lag benchmark; it reports their median.
    """

    mode: Mode
    repeat: int
    loop_seconds: float
    throughput_seconds: float
    thread_counts: tuple[int, ...]
    refresh_callers: int
    refresh_period: float
    refresh_delay: float
    refresh_tail: float
    herd: int
    herd_delay: float
    outage_seconds: float
    outage_backoff: tuple[float, float]
    outage_callers: int
    outage_period: float
    servers: int
    timers: int
    timer_baseline: int
    cli_runs: int
    loop_tasks: int
    loop_wave: int
    loop_tick: float
    loop_delay: float
    loop_repeat: int


def params(mode: Mode) -> Params:
    """The preset for a mode: ``"full"``, ``"quick"`` or ``"smoke"``."""
    if mode == "full":
        return Params(
            mode=mode,
            repeat=9,
            loop_seconds=0.2,
            throughput_seconds=2.0,
            thread_counts=(1, 4, 16),
            refresh_callers=8,
            refresh_period=0.001,
            refresh_delay=0.5,
            refresh_tail=1.0,
            herd=200,
            herd_delay=0.2,
            outage_seconds=30.0,
            outage_backoff=(1.0, 30.0),  # the defaults of start_link
            outage_callers=50,
            outage_period=0.01,
            servers=10_000,
            timers=10_000,
            timer_baseline=200,
            cli_runs=20,
            loop_tasks=1000,
            loop_wave=100,
            loop_tick=0.001,
            loop_delay=0.5,
            loop_repeat=5,
        )
    full = params("full")
    if mode == "quick":
        return replace(
            full,
            mode=mode,
            repeat=5,
            loop_seconds=0.02,
            throughput_seconds=0.5,
            outage_seconds=3.0,
            outage_backoff=(0.1, 3.0),  # the defaults, on a timescale ten times shorter
            servers=2000,
            cli_runs=5,
            loop_repeat=3,
        )
    return replace(
        full,
        mode=mode,
        repeat=3,
        loop_seconds=0.002,
        throughput_seconds=0.05,
        refresh_callers=4,
        refresh_period=0.002,
        refresh_delay=0.2,
        refresh_tail=0.2,
        outage_seconds=0.5,
        outage_backoff=(0.05, 0.5),
        outage_callers=10,
        servers=100,
        timers=1000,
        timer_baseline=20,
        cli_runs=1,
        loop_tasks=100,
        loop_wave=20,
        loop_delay=0.1,
        loop_repeat=1,
    )


# ------------------------------------------------------------------------------------ results


@dataclass
class Target:
    """A target from the issue, and whether this run met it."""

    benchmark: str
    target: str
    measured: str
    met: bool


@dataclass
class Section:
    """One benchmark's outcome: a Markdown table, notes, targets and the raw data for JSON."""

    key: str
    title: str
    headers: Sequence[str]
    rows: Sequence[Sequence[str]]
    notes: list[str] = field(default_factory=list)
    targets: list[Target] = field(default_factory=list)
    data: dict[str, Any] = field(default_factory=dict)
    more_tables: list[tuple[Sequence[str], Sequence[Sequence[str]]]] = field(default_factory=list)

    def markdown(self) -> str:
        """The section as Markdown: a heading, the tables, then the notes as a list."""
        lines = [f"## {self.title}", "", *table(self.headers, self.rows)]
        for headers, rows in self.more_tables:
            lines += ["", *table(headers, rows)]
        if self.notes:
            lines += ["", *(f"- {note}" for note in self.notes)]
        return "\n".join(lines)


def table(
    headers: Sequence[str], rows: Sequence[Sequence[str]], *, numeric: bool = True
) -> list[str]:
    """A Markdown table: the first column left-aligned, the others right-aligned if numeric."""
    align = ["---", *("---:" if numeric else "---" for _ in headers[1:])]
    out = [f"| {' | '.join(headers)} |", f"| {' | '.join(align)} |"]
    out += [f"| {' | '.join(row)} |" for row in rows]
    return out


# ---------------------------------------------------------------------------------- statistics


def percentile(sorted_values: Sequence[float], p: float) -> float:
    """The nearest-rank ``p``-th percentile (``p`` in 0..100) of already sorted values."""
    if not sorted_values:
        return math.nan
    rank = max(1, math.ceil(p / 100 * len(sorted_values)))
    return sorted_values[min(rank, len(sorted_values)) - 1]


def summary(values: Sequence[float]) -> dict[str, float]:
    """``count``, ``p50``, ``p99``, ``max`` and ``mean`` of some values."""
    ordered = sorted(values)
    return {
        "count": len(ordered),
        "p50": percentile(ordered, 50),
        "p99": percentile(ordered, 99),
        "max": ordered[-1] if ordered else math.nan,
        "mean": statistics.fmean(ordered) if ordered else math.nan,
    }


def ratio(numerator: float, denominator: float) -> float:
    """``numerator / denominator``, NaN when the denominator is not positive."""
    return numerator / denominator if denominator > 0 else math.nan


# ----------------------------------------------------------------------------------- formatting


def fmt_ns(ns: float) -> str:
    """Nanoseconds, with a precision that suits the size."""
    return f"{ns:,.1f}" if ns < 100 else f"{ns:,.0f}"


def fmt_time(seconds: float) -> str:
    """A duration in the unit that suits it: ns, µs, ms or s."""
    if math.isnan(seconds):
        return "-"
    if seconds < 1e-6:
        return f"{seconds * 1e9:.0f} ns"
    if seconds < 1e-3:
        return f"{seconds * 1e6:.1f} µs"
    if seconds < 1.0:
        return f"{seconds * 1e3:.1f} ms"
    return f"{seconds:.2f} s"


def fmt_ratio(value: float) -> str:
    """A ratio as ``12.3x`` (one decimal below 100, none above)."""
    if math.isnan(value):
        return "-"
    return f"{value:.2f}x" if value < 10 else f"{value:.1f}x" if value < 100 else f"{value:,.0f}x"


def fmt_count(value: float) -> str:
    """A count or a rate with thousands separators."""
    return f"{value:,.0f}"


# ------------------------------------------------------------------------------------- process


def rss_bytes() -> int:
    """This process's resident memory, from ``/proc/self/statm``."""
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def os_thread_count() -> int:
    """Threads of this process as the kernel counts them (``/proc/self/task``)."""
    return len(os.listdir("/proc/self/task"))


@contextmanager
def auth_request() -> Iterator[Any]:
    """A google-auth ``Request`` over its own ``requests.Session``, closed afterwards.

    One shared ``Request`` is what ``AuthorizedSession`` gives every thread that uses it.
    """
    import google.auth.transport.requests

    session = requests.Session()
    try:
        yield google.auth.transport.requests.Request(session)
    finally:
        session.close()


def service_account_credentials(key: dict[str, str]) -> Any:
    """google-auth service-account credentials for an emulator key, with cloud-platform."""
    from google.oauth2 import service_account

    from_info: Callable[..., Any] = service_account.Credentials.from_service_account_info
    return from_info(key, scopes=[CLOUD_PLATFORM])


def run_threads(count: int, target: Callable[[int], None]) -> list[threading.Thread]:
    """Starts ``count`` daemon threads running ``target(index)``; returns them."""
    threads = [
        threading.Thread(target=target, args=(i,), name=f"bench-{i}", daemon=True)
        for i in range(count)
    ]
    for thread in threads:
        thread.start()
    return threads


def join_all(threads: Sequence[threading.Thread], timeout: float = 60.0) -> None:
    """Joins threads within one overall deadline; raises if one is still running."""
    deadline = time.monotonic() + timeout
    for thread in threads:
        thread.join(max(0.0, deadline - time.monotonic()))
    stuck = [t.name for t in threads if t.is_alive()]
    if stuck:
        raise RuntimeError(f"benchmark threads did not finish: {stuck[:5]}")

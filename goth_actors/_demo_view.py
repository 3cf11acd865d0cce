"""What ``goth-actors demo`` counts and shows: callers, the servers' events, the live view.

`Tally` counts the token servers' events (on their threads) and queues the ones worth
telling; `View` tells them, draws the live table (rich on a terminal, plain lines
otherwise) and prints the summary. The scenario itself is in `_demo`.
"""

from __future__ import annotations

import math
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any, TextIO

import goth_actors
from goth_actors import Event, GothError, TokenEndpointError, TokenError, TransportError

__all__ = ["CALLERS", "SERVERS", "Caller", "Histogram", "Tally", "View", "rows"]

CALLERS = 4
SERVERS = ("service-account", "user", "metadata")


class Histogram:
    """Latency histogram in nanoseconds: 16 buckets per power of two (about 4% wide)."""

    def __init__(self) -> None:
        self.counts: Counter[int] = Counter()
        self.total = 0

    def add(self, nanoseconds: int) -> None:
        self.counts[int(math.log2(max(nanoseconds, 1)) * 16)] += 1
        self.total += 1

    def merge(self, other: Histogram) -> None:
        self.counts.update(other.counts)
        self.total += other.total

    def quantile(self, q: float) -> float:
        """The q-quantile in microseconds (the bucket's upper edge), or 0 when empty."""
        if not self.total:
            return 0.0
        rank = q * self.total
        seen = 0
        for bucket in sorted(self.counts):
            seen += self.counts[bucket]
            if seen >= rank:
                return float(2 ** ((bucket + 1) / 16) / 1000)
        return 0.0


@dataclass
class Caller:
    """One thread that fetches all three tokens without pause."""

    stop: threading.Event
    histogram: Histogram = field(default_factory=Histogram)
    errors: Counter[str] = field(default_factory=Counter)  # read once the thread has ended
    error_count: int = 0  # read live
    fetches: int = 0

    def run(self) -> None:
        clock = time.perf_counter_ns
        while not self.stop.is_set():
            for _ in range(50):
                for name in SERVERS:
                    started = clock()
                    try:
                        goth_actors.fetch(name, timeout=2.0)
                    except GothError as exc:
                        self.errors[f"{name}: {type(exc).__name__}"] += 1
                        self.error_count += 1
                    self.histogram.add(clock() - started)
                    self.fetches += 1
            time.sleep(0.001)  # a service does other work between requests


def reason(error: TokenError | None) -> str:
    """A failure in a few words: ``HTTP 503 temporarily_unavailable, Retry-After 3 s``."""
    if isinstance(error, TokenEndpointError):
        text = f"HTTP {error.status}" + (f" {error.error}" if error.error else "")
        if error.retry_after is not None:
            text += f", Retry-After {error.retry_after:g} s"
        return text
    if isinstance(error, TransportError):
        return "connection refused" if "refused" in str(error).lower() else "could not connect"
    return type(error).__name__


class Tally:
    """Counts what the servers did, from their events; queues what the view should tell.

    `on_event` runs on the servers' threads; the rest on the demo's.
    """

    def __init__(self, max_retries: dict[str, int | None]) -> None:
        self.max_retries = max_retries
        self._lock = threading.Lock()
        self.counts: Counter[tuple[str, str]] = Counter()
        self.tokens_issued = 0
        self.served_503 = 0
        self.refused = 0
        self.crashes = 0
        self.restarts = 0
        self.tokens_lost = 0
        self._last_success: dict[str, float] = {}
        self._streak: Counter[str] = Counter()  # failures since the last token, across restarts
        self._told: dict[str, str] = {}  # the last failure reason told, per server
        self._to_tell: list[tuple[Event, int]] = []

    def on_event(self, event: Event) -> None:
        name, kind = str(event.name), event.kind
        with self._lock:
            self.counts[(name, kind)] += 1
            if kind == "success":
                self.tokens_issued += 1
                self._last_success[name] = event.time
                if self._streak[name]:
                    self._to_tell.append((event, self._streak[name]))
                self._streak[name] = 0
                self._told.pop(name, None)
            elif kind == "failure":
                self._streak[name] += 1
                error = event.error
                if isinstance(error, TokenEndpointError) and error.status == 503:
                    self.served_503 += 1
                elif isinstance(error, TransportError):
                    self.refused += 1
                if self._told.get(name) != reason(error):  # a new kind of failure
                    self._told[name] = reason(error)
                    self._to_tell.append((event, 0))
            elif kind == "crash":
                self.crashes += 1
                self._to_tell.append((event, 0))
            elif kind == "restart":
                self.restarts += 1
                self._to_tell.append((event, self.counts[(name, kind)]))

    def all_succeeded_since(self, since: float) -> bool:
        """Whether every server got a token after ``since`` (unix seconds)."""
        with self._lock:
            return all(self._last_success.get(name, -math.inf) > since for name in SERVERS)

    def narration(self, started: float, callers: list[Caller]) -> list[str]:
        """The lines to tell about what happened since the last call."""
        with self._lock:
            events, self._to_tell = self._to_tell, []
        return [self._line(event, number, started, callers) for event, number in events]

    def _line(self, event: Event, number: int, started: float, callers: list[Caller]) -> str:
        name = str(event.name)
        head = f"[t={event.time - started:5.1f}s] {name}"
        if event.kind == "success":
            left = (event.expires or event.time) - event.time
            return f"{head}: fresh token after {number} failed attempts, {left:.0f} s to live"
        if event.kind == "failure":
            return f"{head}: refresh failed, {reason(event.error)}; {_served(name)}"
        if event.kind == "crash":
            return (
                f"{head} crashed: {event.attempt} failed attempts in a row, over its "
                f"max_retries={self.max_retries[name]} ({reason(event.error)}); its supervisor "
                "restarts it"
            )
        cached = goth_actors.cached(name)
        if cached is None:
            with self._lock:
                self.tokens_lost += 1
        errors = sum(caller.error_count for caller in callers)
        kept = "token LOST" if cached is None else "token kept"
        return (
            f"{head} restarted by its supervisor (restart {number}), {kept}: "
            f"{_served(name)}; caller errors so far: {errors}"
        )


def _served(name: object) -> str:
    token = goth_actors.cached(name)
    if token is None:
        return "callers have no valid token"
    return f"callers still get the cached token ({token.expires - time.time():.0f} s left)"


def rows(tally: Tally) -> list[dict[str, Any]]:
    """One row per server, for the live view."""
    result = []
    now = time.time()
    for name in SERVERS:
        try:
            current = goth_actors.status(name)
        except GothError:
            current = None
        expires = current.expires if current is not None else None
        limit = tally.max_retries[name]
        result.append(
            {
                "server": name,
                "max_retries": "∞" if limit is None else str(limit),
                "state": current.state if current is not None else "gone",
                "expires_in": "-" if expires is None else f"{expires - now:.0f}s",
                "tokens": tally.counts[(name, "success")],
                "failures": tally.counts[(name, "failure")],
                "restarts": tally.counts[(name, "restart")],
            }
        )
    return result


_COLUMNS = ("server", "max_retries", "state", "expires_in", "tokens", "failures", "restarts")
_COLOURS = {"ok": "green", "retrying": "yellow", "fetching": "cyan", "down": "red"}


class View:
    """The live view: a rich table on a terminal, plain lines otherwise; silent for JSON."""

    def __init__(self, out: TextIO, *, plain: bool, quiet: bool) -> None:
        self.out = out
        self.quiet = quiet
        self.live: Any = None
        self.last_plain = -math.inf
        if quiet or plain or not out.isatty():
            return
        try:
            from rich.console import Console
            from rich.live import Live
        except ImportError:
            return
        self.live = Live(console=Console(file=out), refresh_per_second=4, transient=False)

    def __enter__(self) -> View:
        if self.live is not None:
            self.live.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        if self.live is not None:
            self.live.__exit__(None, None, None)

    def say(self, line: str) -> None:
        """Tells one line, above the live table."""
        if self.quiet:
            return
        if self.live is not None:
            self.live.console.print(line, markup=False, highlight=False, soft_wrap=True)
        else:
            print(line, file=self.out, flush=True)

    def update(
        self, step: str, elapsed: float, table: list[dict[str, Any]], callers: list[Caller]
    ) -> None:
        """Redraws the table (on a terminal), or prints it every 2 s (plain)."""
        if self.quiet:
            return
        fetches = sum(caller.fetches for caller in callers)
        errors = sum(caller.error_count for caller in callers)
        callers_line = f"callers: {len(callers)} threads, {fetches:,} fetches, {errors} errors"
        if self.live is not None:
            self.live.update(_rich(f"t={elapsed:5.1f}s  {step}", table, callers_line))
            return
        if elapsed - self.last_plain < 2.0:
            return
        self.last_plain = elapsed
        lines = [
            f"  t={elapsed:5.1f}s  {row['server']:<16} max_retries {row['max_retries']:<2} "
            f"{row['state']:<9} expires in {row['expires_in']:>5}  tokens {row['tokens']:>3}  "
            f"failures {row['failures']:>3}  restarts {row['restarts']:>2}"
            for row in table
        ]
        lines.append(f"  t={elapsed:5.1f}s  {callers_line}")
        print("\n".join(lines), file=self.out, flush=True)

    def summary(self, summary: dict[str, Any]) -> None:
        """Prints the end-of-run summary, each figure named for what it counts."""
        lines = [
            "",
            f"summary after {summary['duration_s']} s",
            f"  caller fetches        {summary['fetches']:,} (p50 {summary['fetch_p50_us']} µs, "
            f"p99 {summary['fetch_p99_us']} µs)",
            f"  caller errors         {summary['caller_errors']}",
            f"  tokens issued         {summary['tokens_issued']} (first tokens and refreshes)",
            f"  503 answers           {summary['served_503']} (outage one)",
            f"  refused connections   {summary['refused_connections']} "
            "(outage two: they never reach the endpoint)",
            f"  emulator requests     {summary['endpoint_requests']} "
            "(each answered with a token or a 503)",
            f"  crashes, restarts     {summary['crashes']}, {summary['restarts']} "
            "(user only: max_retries=2)",
        ]
        for promise, held in summary["promises"].items():
            lines.append(f"  {'held  ' if held else 'BROKEN'}  {promise.replace('_', ' ')}")
        print("\n".join(lines), file=self.out, flush=True)


def _rich(header: str, table: list[dict[str, Any]], callers_line: str) -> Any:
    from rich.console import Group
    from rich.table import Table
    from rich.text import Text

    grid = Table()
    for column in _COLUMNS:
        left = column in ("server", "state")
        grid.add_column(column.replace("_", " "), justify="left" if left else "right")
    for row in table:
        # Text, not markup: the lines told above the table are printed with markup off, and
        # the live table is redrawn with the options of that print.
        cells = [Text(str(row[column])) for column in _COLUMNS]
        cells[2].stylize(_COLOURS.get(row["state"], "white"))
        grid.add_row(*cells)
    # Header and footer are lines of the terminal's width, not a title squeezed to the table's.
    return Group(
        Text(f"goth-actors demo  {header}", no_wrap=True, overflow="ellipsis"),
        grid,
        Text(callers_line, no_wrap=True, overflow="ellipsis"),
    )

"""``goth-actors demo``: three supervised token servers through an outage, on the emulator.

Everything runs in this process against :class:`~goth_actors.testing.GoogleEmulator` on
127.0.0.1: no credentials, no network. Caller threads fetch tokens without pause while a
scripted scenario plays out:

1. steady: tokens are refreshed in the background; callers never wait;
2. outage: the token endpoint answers 503 with ``Retry-After``;
3. outage: the whole emulator refuses connections; the ``user`` server exhausts its retries,
   crashes, and its supervisor restarts it, its last good token kept;
4. recovery: every server gets a fresh token.

The promise checked at the end: callers saw no error while a valid token existed.
"""

from __future__ import annotations

import json
import math
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TextIO

import goth_actors
from goth_actors import (
    ChildSpec,
    Event,
    GothError,
    Metadata,
    RefreshToken,
    ServerStatus,
    ServiceAccount,
    Supervisor,
    subscribe,
)

__all__ = ["run_demo"]

TOKEN_LIFETIME = 30.0
"""Seconds each emulated token lives: short, so refreshes happen while you watch."""

CALLERS = 4
SERVERS = ("service-account", "user", "metadata")


class _Histogram:
    """Latency histogram in nanoseconds: 16 buckets per power of two (about 4% wide)."""

    def __init__(self) -> None:
        self.counts: Counter[int] = Counter()
        self.total = 0

    def add(self, nanoseconds: int) -> None:
        self.counts[int(math.log2(max(nanoseconds, 1)) * 16)] += 1
        self.total += 1

    def merge(self, other: _Histogram) -> None:
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
class _Caller:
    """One thread that fetches all three tokens without pause."""

    stop: threading.Event
    histogram: _Histogram = field(default_factory=_Histogram)
    errors: Counter[str] = field(default_factory=Counter)
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
                    self.histogram.add(clock() - started)
                    self.fetches += 1
            time.sleep(0.001)  # a service does other work between requests


@dataclass(frozen=True)
class _Step:
    at: float
    title: str
    action: Callable[[], None]


class _View:
    """The live view: a rich table on a terminal, plain lines otherwise."""

    def __init__(self, out: TextIO, *, plain: bool, quiet: bool) -> None:
        self.out = out
        self.quiet = quiet
        self.live: Any = None
        self.last_plain = 0.0
        if quiet or plain or not out.isatty():
            return
        try:
            from rich.console import Console
            from rich.live import Live
        except ImportError:
            return
        self.live = Live(console=Console(file=out), refresh_per_second=4, transient=False)

    def __enter__(self) -> _View:
        if self.live is not None:
            self.live.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        if self.live is not None:
            self.live.__exit__(None, None, None)

    def say(self, line: str) -> None:
        if self.quiet:
            return
        if self.live is not None:
            self.live.console.print(line, markup=False, highlight=False)
        else:
            print(line, file=self.out, flush=True)

    def update(self, step: str, elapsed: float, rows: list[dict[str, Any]]) -> None:
        if self.quiet:
            return
        if self.live is not None:
            self.live.update(_rich_table(step, elapsed, rows))
            return
        if elapsed - self.last_plain < 2.0:
            return
        self.last_plain = elapsed
        for row in rows:
            print(
                f"  t={elapsed:5.1f}s  {row['server']:<16} {row['state']:<9} "
                f"expires in {row['expires_in']:>6}  refreshes {row['refreshes']:>3}  "
                f"failures {row['failures']:>3}  restarts {row['restarts']:>2}",
                file=self.out,
                flush=True,
            )


def _rich_table(step: str, elapsed: float, rows: list[dict[str, Any]]) -> Any:
    from rich.table import Table

    table = Table(title=f"goth-actors demo  t={elapsed:4.1f}s  step: {step}", title_justify="left")
    for column in ("server", "state", "expires in", "refreshes", "failures", "restarts"):
        table.add_column(column, justify="left" if column in ("server", "state") else "right")
    colours = {"ok": "green", "retrying": "yellow", "fetching": "cyan", "down": "red"}
    for row in rows:
        state = row["state"]
        table.add_row(
            row["server"],
            f"[{colours.get(state, 'white')}]{state}[/]",
            row["expires_in"],
            str(row["refreshes"]),
            str(row["failures"]),
            str(row["restarts"]),
        )
    return table


def _rows(counts: Counter[tuple[str, str]]) -> list[dict[str, Any]]:
    rows = []
    now = time.time()
    for name in SERVERS:
        try:
            current: ServerStatus | None = goth_actors.status(name)
        except GothError:
            current = None
        expires = current.expires if current is not None else None
        rows.append(
            {
                "server": name,
                "state": current.state if current is not None else "gone",
                "expires_in": "-" if expires is None else f"{expires - now:.0f}s",
                "refreshes": counts[(name, "success")],
                "failures": counts[(name, "failure")],
                "restarts": current.restarts if current is not None else 0,
            }
        )
    return rows


def run_demo(
    duration: float = 30.0, *, as_json: bool = False, plain: bool = False, out: TextIO = sys.stdout
) -> int:
    """Runs the demo scenario for about ``duration`` seconds; returns the exit status.

    Exit status 0 when the scenario held its promises (no caller error while a valid token
    existed, the crashed server restarted with its token kept, every server fresh at the
    end), 1 otherwise.
    """
    from goth_actors.testing import GoogleEmulator

    duration = max(duration, 5.0)
    counts: Counter[tuple[str, str]] = Counter()
    last_success: dict[str, float] = {}
    lock = threading.Lock()

    def count(event: Event) -> None:
        with lock:
            counts[(str(event.name), event.kind)] += 1
            if event.kind == "success":
                last_success[str(event.name)] = event.time

    view = _View(out, plain=plain, quiet=as_json)
    unsubscribe = subscribe(count)
    emulator = GoogleEmulator(token_lifetime=TOKEN_LIFETIME).start()
    supervisor = None
    stop_callers = threading.Event()
    callers = [_Caller(stop_callers) for _ in range(CALLERS)]
    threads = [
        threading.Thread(target=c.run, name=f"demo-caller-{i}", daemon=True)
        for i, c in enumerate(callers)
    ]
    requests_before_reset = 0
    recovered_at = math.inf
    try:
        scale = duration / 30.0
        refresh_after = max(1.0, 6.0 * scale)
        common: dict[str, Any] = {
            "refresh_after": refresh_after,
            "refresh_before": 5.0,
            "prefetch": "sync",
            "backoff_type": "exp",
            "backoff_min": 0.25 * scale,
            "backoff_max": scale,
        }
        specs: list[ChildSpec] = [
            goth_actors.child_spec(
                name="service-account",
                source=ServiceAccount(emulator.service_account("demo@emulator.iam")),
                max_retries=None,
                **common,
            ),
            goth_actors.child_spec(
                name="user",
                source=RefreshToken(emulator.authorized_user()),
                max_retries=2,  # gives up quickly: this is the one that crashes
                **common,
            ),
            goth_actors.child_spec(
                name="metadata",
                source=Metadata(url=emulator.metadata_url),
                max_retries=None,
                **common,
            ),
        ]
        supervisor = Supervisor.start(specs, max_restarts=50, max_seconds=duration)
        view.say(
            f"goth-actors demo: 3 token servers under one supervisor, {CALLERS} caller threads, "
            f"emulator at {emulator.url}, tokens live {TOKEN_LIFETIME:.0f}s"
        )
        for thread in threads:
            thread.start()

        def outage_503() -> None:
            retry_after = max(1, round(2 * scale))
            emulator.fail_next(100_000, 503, retry_after=retry_after, endpoint="token")

        def outage_refused() -> None:
            emulator.down()

        def recover() -> None:
            nonlocal requests_before_reset, recovered_at
            requests_before_reset += emulator.request_count()
            emulator.reset()
            emulator.up()
            recovered_at = time.time()

        steps = [
            _Step(0.0, "steady: background refreshes", lambda: None),
            _Step(0.25 * duration, "outage: token endpoint answers 503 + Retry-After", outage_503),
            _Step(0.4 * duration, "outage: connection refused", outage_refused),
            _Step(0.7 * duration, "recovery", recover),
        ]
        started = time.monotonic()
        current = steps[0].title
        pending = list(steps)
        with view:
            while (elapsed := time.monotonic() - started) < duration:
                while pending and elapsed >= pending[0].at:
                    step = pending.pop(0)
                    step.action()
                    current = step.title
                    view.say(f"[t={elapsed:4.1f}s] {current}")
                with lock:
                    snapshot = counts.copy()
                view.update(current, elapsed, _rows(snapshot))
                time.sleep(0.25)
    finally:
        stop_callers.set()
        for thread in threads:
            thread.join(5.0)
        final_rows = _rows(counts.copy())
        endpoint_requests = requests_before_reset + emulator.request_count()
        if supervisor is not None:
            supervisor.stop(timeout=10.0)
        unsubscribe()
        emulator.close()
        goth_actors.shutdown()

    histogram = _Histogram()
    errors: Counter[str] = Counter()
    for caller in callers:
        histogram.merge(caller.histogram)
        errors.update(caller.errors)
    restarts = sum(row["restarts"] for row in final_rows)
    promises = {
        "no_caller_errors": not errors,
        "a_server_crashed_and_was_restarted": restarts >= 1,
        "every_server_recovered": all(
            last_success.get(name, 0.0) > recovered_at for name in SERVERS
        ),
    }
    summary = {
        "duration_s": round(duration, 1),
        "fetches": histogram.total,
        "caller_errors": sum(errors.values()),
        "caller_errors_by_kind": dict(errors),
        "restarts": restarts,
        "endpoint_requests": endpoint_requests,
        "refreshes": sum(v for (_, kind), v in counts.items() if kind == "success"),
        "failed_attempts": sum(v for (_, kind), v in counts.items() if kind == "failure"),
        "fetch_p50_us": round(histogram.quantile(0.50), 2),
        "fetch_p99_us": round(histogram.quantile(0.99), 2),
        "promises": promises,
        "promises_held": all(promises.values()),
    }
    if as_json:
        print(json.dumps(summary), file=out)
    else:
        _print_summary(summary, out)
    return 0 if summary["promises_held"] else 1


def _print_summary(summary: dict[str, Any], out: TextIO) -> None:
    lines = [
        "",
        "summary",
        f"  fetches served        {summary['fetches']:,}",
        f"  fetch latency         p50 {summary['fetch_p50_us']} µs, "
        f"p99 {summary['fetch_p99_us']} µs",
        f"  endpoint requests     {summary['endpoint_requests']} "
        f"({summary['refreshes']} tokens, {summary['failed_attempts']} failed attempts)",
        f"  caller errors         {summary['caller_errors']}",
        f"  restarts              {summary['restarts']}",
    ]
    for promise, held in summary["promises"].items():
        lines.append(f"  {'held ' if held else 'BROKEN'}  {promise.replace('_', ' ')}")
    print("\n".join(lines), file=out, flush=True)

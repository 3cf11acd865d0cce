"""Benchmark 3: what callers see while a refresh waits 500 ms on the token endpoint.

Four runs under the same load, one after another, against the same emulator: caller threads
each call on a fixed schedule (one call per ``refresh_period``) while the token goes due for
refresh and the endpoint takes ``refresh_delay`` to answer.

- baseline: ``dict.get`` under the same harness: the floor the harness itself adds (thread
  wake-ups and the GIL), since the callers sleep between calls.
- goth_actors: ``fetch(name)``; the server's refresh timer fires 1 s after its token arrived
  (``refresh_after=1.0``: on its own it would wait for half the token's usable lifetime).
- google-auth, default (blocking): ``credentials.before_request(...)`` as ``AuthorizedSession``
  calls it, on shared credentials; the token goes stale 1 s after it arrived.
- google-auth, ``with_non_blocking_refresh()``: the same, refreshing in a background thread.

Both libraries refresh 225 s before expiry by default (google-auth's ``REFRESH_THRESHOLD``,
goth_actors' ``refresh_before``), so the emulator issues the first token with a 226 s lifetime:
google-auth goes due 1 s after it arrived. goth_actors never refreshes before half a token's
usable lifetime (no hot loop on short metadata tokens), so it is told ``refresh_after=1.0``
to go due at the same moment.

Latency is reported two ways. *Per call* is the time inside one call. *From schedule* is the
time from when the call was due on the caller's schedule to when it returned, so the calls
that queue behind a blocked one count their wait too (as wrk2 does, avoiding coordinated
omission); it includes the harness's own wake-up lateness, shown by the baseline row.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
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
from goth_actors.testing import GoogleEmulator

NAME = "bench-refresh"
REFRESH_THRESHOLD = 225.0
"""Seconds before expiry both libraries refresh by default."""
DUE_AFTER = 1.0
"""Seconds after the first token arrives that it goes due for refresh (goth_actors' minimum)."""
LONG_LIFETIME = 3599.0
SLOW_CALL = 1e-3


@dataclass
class Run:
    """What one run's callers saw."""

    service: list[float] = field(default_factory=list)
    response: list[float] = field(default_factory=list)
    errors: int = 0
    first_new: float | None = None
    requests: int = 0

    def data(self) -> dict[str, Any]:
        """Summaries of the run, for JSON."""
        return {
            "per_call": summary(self.service),
            "from_schedule": summary(self.response),
            "calls_over_1ms": sum(1 for s in self.service if s > SLOW_CALL),
            "errors": self.errors,
            "new_token_first_seen_s": self.first_new,
            "token_requests": self.requests,
        }


def _drive(call: Callable[[], object], initial: object, p: Params, seconds: float) -> Run:
    """Calls ``call()`` from the caller threads on their schedules for ``seconds``."""
    run = Run()
    lock = threading.Lock()
    callers = p.refresh_callers
    start = time.perf_counter() + 0.05
    end = start + seconds

    def caller(index: int) -> None:
        clock, sleep, period = time.perf_counter, time.sleep, p.refresh_period
        service: list[float] = []
        response: list[float] = []
        errors = 0
        first_new: float | None = None
        due = start + period * index / callers
        while due < end:
            now = clock()
            if due > now:
                sleep(due - now)
            began = clock()
            try:
                value = call()
            except Exception:
                value = initial
                errors += 1
            done = clock()
            service.append(done - began)
            response.append(done - due)
            if first_new is None and value != initial:
                first_new = done - start
            due += period
        with lock:
            run.service += service
            run.response += response
            run.errors += errors
            if first_new is not None and (run.first_new is None or first_new < run.first_new):
                run.first_new = first_new

    join_all(run_threads(callers, caller), timeout=seconds + 60.0)
    return run


def _baseline(p: Params, seconds: float) -> Run:
    table = {NAME: "ya29.baseline"}
    return _drive(lambda: table.get(NAME), "ya29.baseline", p, seconds)


def _goth(emulator: GoogleEmulator, p: Params, seconds: float) -> Run:
    key = emulator.service_account()
    emulator.token_lifetime = REFRESH_THRESHOLD + DUE_AFTER
    try:
        goth_actors.start_link(
            name=NAME,
            source=goth_actors.ServiceAccount(key),
            prefetch="sync",
            refresh_after=DUE_AFTER,
        )
        emulator.token_lifetime = LONG_LIFETIME
        initial = goth_actors.fetch(NAME).token
        emulator.clear_requests()
        emulator.delay(p.refresh_delay)
        fetch = goth_actors.fetch
        run = _drive(lambda: fetch(NAME).token, initial, p, seconds)
        run.requests = len(emulator.requests_to("token"))
    finally:
        goth_actors.shutdown()
        emulator.reset()
        emulator.token_lifetime = LONG_LIFETIME
    return run


def _google_auth(emulator: GoogleEmulator, p: Params, seconds: float, *, blocking: bool) -> Run:
    key = emulator.service_account()
    credentials = service_account_credentials(key)
    if not blocking:
        credentials.with_non_blocking_refresh()  # sets the mode in place (returns None)
    with auth_request() as request:
        emulator.token_lifetime = REFRESH_THRESHOLD + DUE_AFTER
        try:
            credentials.refresh(request)
            emulator.token_lifetime = LONG_LIFETIME
            initial = f"Bearer {credentials.token}"
            emulator.clear_requests()
            emulator.delay(p.refresh_delay)

            def call() -> object:
                headers: dict[str, str] = {}
                credentials.before_request(request, "GET", API_URL, headers)
                return headers["authorization"]

            run = _drive(call, initial, p, seconds)
            worker = credentials._refresh_worker._worker  # google-auth's background refresh
            if worker is not None:
                worker.join(30.0)
            run.requests = len(emulator.requests_to("token"))
        finally:
            emulator.reset()
            emulator.token_lifetime = LONG_LIFETIME
    return run


def refresh_latency(p: Params) -> Section:
    """Benchmark 3: caller latency during a slow refresh, against google-auth's two modes."""
    seconds = DUE_AFTER + p.refresh_delay + p.refresh_tail
    with GoogleEmulator() as emulator:
        runs = {
            "baseline": _baseline(p, seconds),
            "goth_actors": _goth(emulator, p, seconds),
            "google_auth_blocking": _google_auth(emulator, p, seconds, blocking=True),
            "google_auth_non_blocking": _google_auth(emulator, p, seconds, blocking=False),
        }
    labels = {
        "baseline": "baseline: `dict.get`, same harness",
        "goth_actors": "**goth_actors `fetch`**",
        "google_auth_blocking": "google-auth `before_request`, default (blocking)",
        "google_auth_non_blocking": "google-auth `before_request`, `with_non_blocking_refresh()`",
    }
    rows = []
    data: dict[str, Any] = {}
    for key, run in runs.items():
        data[key] = run.data()
        per_call, scheduled = data[key]["per_call"], data[key]["from_schedule"]
        rows.append(
            [
                labels[key],
                fmt_count(per_call["count"]),
                fmt_time(per_call["p50"]),
                fmt_time(per_call["p99"]),
                fmt_time(per_call["max"]),
                fmt_time(scheduled["p50"]),
                fmt_time(scheduled["p99"]),
                fmt_time(scheduled["max"]),
                "" if key == "baseline" else str(run.requests),
            ]
        )
    ours = data["goth_actors"]
    p99_call, p99_sched = ours["per_call"]["p99"], ours["from_schedule"]["p99"]
    floor = data["baseline"]["from_schedule"]["p99"]
    refreshed = ours["new_token_first_seen_s"]
    return Section(
        key="refresh_latency",
        title=f"3. Caller latency while a refresh waits {p.refresh_delay * 1000:.0f} ms",
        headers=[
            f"{p.refresh_callers} callers, 1 call / {p.refresh_period * 1000:g} ms each",
            "calls",
            "per call p50",
            "per call p99",
            "per call max",
            "from schedule p50",
            "from schedule p99",
            "from schedule max",
            "token requests",
        ],
        rows=rows,
        notes=[
            f"Each run lasts {seconds:g} s; the token goes due {DUE_AFTER:g} s in and the "
            f"endpoint answers the refresh {p.refresh_delay * 1000:.0f} ms later. goth_actors' "
            "callers first saw the new token "
            + (f"{refreshed:.2f} s in" if refreshed is not None else "never (no refresh!)")
            + ".",
            "*Per call*: time inside one call. *From schedule*: from when the call was due to "
            "when it returned, so calls queued behind a blocked one count their wait; the "
            "baseline row is the harness's own floor (sleep wake-up lateness, the GIL).",
            "Token requests: what the endpoint saw during the run; google-auth's blocking mode "
            "has no single flight, so each caller that finds the token stale refreshes it.",
        ],
        targets=[
            Target(
                "3. goth_actors p99 during a 500 ms refresh",
                "in microseconds (< 1 ms)",
                f"{fmt_time(p99_call)} per call, {fmt_time(p99_sched)} from schedule "
                f"(harness floor {fmt_time(floor)}, {fmt_ratio(ratio(p99_sched, floor))})",
                p99_call < 1e-3 and p99_sched < 1e-3,
            )
        ],
        data={
            "seconds": seconds,
            "due_after_s": DUE_AFTER,
            "endpoint_delay_s": p.refresh_delay,
            "callers": p.refresh_callers,
            "period_s": p.refresh_period,
            "runs": data,
        },
    )

"""``goth-actors demo``: three supervised token servers through two outages, on the emulator.

Everything runs in this process against `GoogleEmulator` on
127.0.0.1: no credentials, no network. Caller threads fetch tokens without pause while a
scripted timeline plays out (fractions of ``duration``, 30 s by default):

1. 0 %, steady: each server refreshes its token every tenth of the run; callers never wait;
2. 20 %, outage one: every token request is answered 503 with ``Retry-After``;
3. 45 %, outage two: the emulator refuses connections. ``user`` (``max_retries=2``) crashes
   and its supervisor restarts it with its last good token kept; the others retry for ever;
4. 70 %, recovery: every server gets a fresh token.

Refreshes come at least every tenth of the run (every second at least), so each outage meets
requests; still, outage one lasts until a 503 was served, outage two until ``user`` crashed
and was restarted, and the run until every server recovered (each waiting at most
``max(5 s, a fifth of the run)`` more), so the story holds on a short run or a slow machine.
What each server does is told as it happens (from `goth_actors.subscribe`); counting
and drawing are in `_demo_view`.

The promises checked at the end: no caller error, each outage met requests, a server crashed
and was restarted with its token kept, every server recovered.
"""

from __future__ import annotations

import json
import math
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TextIO

import goth_actors
from goth_actors import (
    ChildSpec,
    Metadata,
    RefreshToken,
    ServiceAccount,
    Supervisor,
    subscribe,
)
from goth_actors._demo_view import CALLERS, SERVERS, Caller, Histogram, Tally, View, rows

__all__ = ["run_demo"]

MIN_DURATION, MAX_DURATION = 5.0, 3600.0
MAX_RETRIES: dict[str, int | None] = {"service-account": None, "user": 2, "metadata": None}
"""``user`` gives up after two retries: it is the one that crashes and is restarted."""


@dataclass(frozen=True)
class _Step:
    at: float
    title: str
    action: Callable[[], None]
    met: Callable[[], bool] = lambda: True  # the step's fault met a request: the next may start


def run_demo(
    duration: float = 30.0, *, as_json: bool = False, plain: bool = False, out: TextIO = sys.stdout
) -> int:
    """Runs the demo scenario for about ``duration`` seconds; returns the exit status.

    Exit status 0 when the scenario held its promises, 1 otherwise.

    Raises:
        ValueError: ``duration`` is not from 5 to 3600 seconds.
    """
    from goth_actors.testing import GoogleEmulator

    if not (math.isfinite(duration) and MIN_DURATION <= duration <= MAX_DURATION):
        raise ValueError(f"duration must be from 5 to 3600 seconds, not {duration!r}")
    tally = Tally(MAX_RETRIES)
    view = View(out, plain=plain, quiet=as_json)
    # Tokens outlive both outages, whatever the duration: callers are served throughout.
    lifetime = max(30.0, duration + 15.0)
    emulator = GoogleEmulator(token_lifetime=lifetime).start()
    unsubscribe = subscribe(tally.on_event)
    supervisor = None
    stop_callers = threading.Event()
    callers = [Caller(stop_callers) for _ in range(CALLERS)]
    threads = [
        threading.Thread(target=c.run, name=f"demo-caller-{i}", daemon=True)
        for i, c in enumerate(callers)
    ]
    requests_before_reset = 0
    recovered_at = math.inf
    started_wall = time.time()
    elapsed = 0.0
    try:
        tenth = duration / 10
        retry_after = max(1, round(tenth))
        common: dict[str, Any] = {
            "refresh_after": tenth,
            "refresh_before": 5.0,
            "prefetch": "sync",
            "backoff_type": "exp",
            "backoff_min": tenth / 2,
            "backoff_max": tenth,
        }
        sources = {
            "service-account": ServiceAccount(emulator.service_account("demo@emulator.iam")),
            "user": RefreshToken(emulator.authorized_user()),
            "metadata": Metadata(url=emulator.metadata_url),
        }
        specs: list[ChildSpec] = [
            goth_actors.child_spec(
                name=name, source=sources[name], max_retries=MAX_RETRIES[name], **common
            )
            for name in SERVERS
        ]
        supervisor = Supervisor.start(specs, max_restarts=50, max_seconds=duration)
        view.say(
            f"goth-actors demo: {len(SERVERS)} token servers under one supervisor, {CALLERS} "
            f"caller threads fetching without pause, Google emulated at {emulator.url}, "
            f"tokens live {lifetime:.0f} s"
        )
        view.say(
            "  service-account and metadata retry for ever (max_retries=None); user gives up "
            "after 2 retries (max_retries=2), crashes, and its supervisor restarts it"
        )

        def outage_503() -> None:
            emulator.fail_next(1_000_000, 503, retry_after=retry_after)

        def recover() -> None:
            nonlocal requests_before_reset, recovered_at
            requests_before_reset += emulator.request_count()  # down: none arrive meanwhile
            emulator.reset()
            emulator.up()
            recovered_at = time.time()

        steps = [
            _Step(0.0, "steady: tokens refreshed in the background; callers never wait", _noop),
            _Step(
                0.2 * duration,
                f"outage one: every token request answered 503, Retry-After {retry_after} s",
                outage_503,
                met=lambda: tally.served_503 > 0,
            ),
            _Step(
                0.45 * duration,
                "outage two: the emulator refuses connections",
                emulator.down,
                met=lambda: tally.refused > 0 and tally.restarts > 0,
            ),
            _Step(0.7 * duration, "recovery: the emulator answers again", recover),
        ]
        grace = max(5.0, tenth * 2)  # how long a phase or the end waits for what it needs
        for thread in threads:
            thread.start()
        started, started_wall = time.monotonic(), time.time()
        current, pending = steps[0], list(steps)
        with view:
            while True:
                elapsed = time.monotonic() - started
                for line in tally.narration(started_wall, callers):
                    view.say(line)
                due = pending[0].at if pending else math.inf
                if elapsed >= due and (current.met() or elapsed >= due + grace):
                    current = pending.pop(0)
                    current.action()
                    view.say(f"[t={elapsed:5.1f}s] {current.title}")
                view.update(current.title, elapsed, rows(tally), callers)
                recovered = tally.all_succeeded_since(recovered_at)
                if (
                    not pending
                    and elapsed >= duration
                    and (recovered or elapsed > duration + grace)
                ):
                    break
                time.sleep(0.25)
    finally:
        stop_callers.set()
        for thread in threads:
            thread.join(5.0)
        if supervisor is not None:
            supervisor.stop(timeout=10.0)
        unsubscribe()
        endpoint_requests = requests_before_reset + emulator.request_count()
        emulator.close()
        goth_actors.shutdown()
    summary = _summary(tally, callers, elapsed, endpoint_requests, recovered_at)
    if as_json:
        print(json.dumps(summary), file=out, flush=True)
    else:
        view.summary(summary)
    return 0 if summary["promises_held"] else 1


def _noop() -> None:
    pass


def _summary(
    tally: Tally, callers: list[Caller], elapsed: float, endpoint_requests: int, recovered_at: float
) -> dict[str, Any]:
    histogram = Histogram()
    errors: Counter[str] = Counter()
    for caller in callers:
        histogram.merge(caller.histogram)
        errors.update(caller.errors)
    promises = {
        "no_caller_errors": not errors,
        "each_outage_met_requests": tally.served_503 > 0 and tally.refused > 0,
        "a_server_crashed_and_was_restarted_with_its_token_kept": (
            tally.crashes >= 1 and tally.restarts >= 1 and tally.tokens_lost == 0
        ),
        "every_server_recovered": tally.all_succeeded_since(recovered_at),
    }
    return {
        "duration_s": round(elapsed, 1),
        "fetches": histogram.total,
        "caller_errors": sum(errors.values()),
        "caller_errors_by_kind": dict(errors),
        "tokens_issued": tally.tokens_issued,
        "served_503": tally.served_503,
        "refused_connections": tally.refused,
        "crashes": tally.crashes,
        "restarts": tally.restarts,
        "endpoint_requests": endpoint_requests,
        "fetch_p50_us": round(histogram.quantile(0.50), 2),
        "fetch_p99_us": round(histogram.quantile(0.99), 2),
        "promises": promises,
        "promises_held": all(promises.values()),
    }

"""A health check built on ``status()``: healthy while a token that fetch would serve is held.

It also subscribes to the servers' events, as you would to export metrics. The emulator fails
the first two attempts, so the check first reports the retries, then health.

Run it: ``uv run python examples/health_check.py``.
"""

from __future__ import annotations

import threading
from collections import Counter

import goth_actors
from goth_actors.testing import GoogleEmulator


def health(name: str) -> tuple[bool, str]:
    """What a /healthz endpoint would answer for one token server."""
    current = goth_actors.status(name)
    detail = (
        f"state={current.state} failures={current.consecutive_failures} restarts={current.restarts}"
    )
    if current.last_error is not None:
        detail += f" last_error={type(current.last_error).__name__}"
    return current.has_valid_token, detail


def main() -> None:
    events: Counter[str] = Counter()
    healthy = threading.Event()

    def on_event(event: goth_actors.Event) -> None:
        events[event.kind] += 1
        if event.kind == "success":
            healthy.set()

    unsubscribe = goth_actors.subscribe(on_event)
    with GoogleEmulator() as emulator:
        emulator.fail_next(2, 503, endpoint="token")
        goth_actors.start_link(
            name="app",
            source=goth_actors.RefreshToken(emulator.authorized_user()),
            prefetch="sync",
            retry_delay=lambda attempt: 0.05 * attempt,
        )
        print("right after start:", health("app"))
        healthy.wait(timeout=10.0)
        print("once a token came:", health("app"))
        goth_actors.shutdown()
    unsubscribe()
    print("events:", dict(sorted(events.items())))


if __name__ == "__main__":
    main()

"""Shared fixtures: the leak check every test runs under."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator

import pykka
import pytest

LEAK_GRACE_SECONDS = 2.0


def _wait_for_threads_to_end(threads: list[threading.Thread], deadline: float) -> None:
    for thread in threads:
        thread.join(max(0.0, deadline - time.monotonic()))


@pytest.fixture(autouse=True)
def _no_leaked_actors_or_threads() -> Iterator[None]:
    """Fails a test that leaves a Pykka actor or a thread of its own running."""
    before = set(threading.enumerate())
    yield
    leaked_actors = pykka.ActorRegistry.get_all()
    if leaked_actors:
        pykka.ActorRegistry.stop_all(block=True, timeout=5.0)
        pytest.fail(f"test leaked {len(leaked_actors)} actor(s): {leaked_actors}")
    deadline = time.monotonic() + LEAK_GRACE_SECONDS
    new = [t for t in threading.enumerate() if t not in before]
    _wait_for_threads_to_end(new, deadline)
    still = [t for t in new if t.is_alive()]
    if still:
        pytest.fail(f"test leaked {len(still)} thread(s): {[t.name for t in still]}")

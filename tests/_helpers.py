"""Small helpers shared by the test modules."""

from __future__ import annotations

import time
from collections.abc import Callable

WAIT = 5.0
"""Seconds a test waits for something another thread does before it fails."""


def wait_for(predicate: Callable[[], object], timeout: float = WAIT) -> None:
    """Waits until ``predicate()`` is true: what a server does on its own thread.

    Polls every millisecond and fails after ``timeout`` seconds; it never sleeps longer than
    the condition takes (the house rule: no fixed sleeps to wait for something).
    """
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "condition not reached in time"
        time.sleep(0.001)

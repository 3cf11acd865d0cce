"""Small helpers shared by the test modules."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping

from goth_actors import HttpResponse

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


class GatedClient:
    """An ``http_client`` for a token server whose exchanges wait for the test to open the gate.

    ``entered`` is set when an exchange reaches the gate; ``calls`` counts them; ``thread`` is
    the thread of the last one (the server's). The exchange then goes to the real endpoint
    (the emulator) over HTTP.
    """

    def __init__(self, *, open: bool = False) -> None:
        self.open = threading.Event()
        self.entered = threading.Event()
        self.calls = 0
        self.thread: threading.Thread | None = None
        if open:
            self.open.set()

    def __call__(
        self, *, method: str, url: str, headers: Mapping[str, str], body: bytes, timeout: float
    ) -> HttpResponse:
        from goth_actors._protocol import default_http_client

        self.calls += 1
        self.thread = threading.current_thread()
        self.entered.set()
        if not self.open.wait(WAIT):
            raise TimeoutError("the test never opened the gate")
        return default_http_client(
            method=method, url=url, headers=headers, body=body, timeout=timeout
        )

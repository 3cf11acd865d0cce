"""``fetch_async``: a server's token in a coroutine, without blocking the event loop (asyncio).

A Pykka future is no way to wait in a coroutine: its ``__await__`` yields once and then calls
the blocking ``get()``, so ``await ref.ask(Fetch(), block=False)`` freezes the whole event loop
for the length of a token exchange. `fetch_async` instead:

- on a hit, does what `goth_actors.fetch` does: one lock-free read of the servers' table,
  one clock read, one comparison. No thread hop, no lock, and the ``await`` never yields to the
  loop.
- on a miss, joins the name's *flight*: one waiting thread per name, however many coroutines
  (on however many event loops) wait, that calls the sync `fetch`. The
  server's own single flight therefore holds for sync and async callers alike: one exchange
  with Google, whoever asks. When the flight lands, each event loop is woken once
  (``call_soon_threadsafe``) and settles all of its waiters in one callback.
- bounds each caller's wait by its own ``timeout``, on its own loop. A cancelled caller drops
  only its own future: the flight, the server and the other waiters go on.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import threading
import time
from collections.abc import Hashable
from dataclasses import dataclass, field

from goth_actors import _table
from goth_actors._api import _own_copy, fetch
from goth_actors._base import check_seconds
from goth_actors._errors import FetchTimeout, ServerNotFound
from goth_actors._protocol import Token

__all__ = ["fetch_async"]

_servers = _table.servers  # the servers' table, read directly on the hot path

Outcome = Token | BaseException


async def fetch_async(name: Hashable, timeout: float = 5.0) -> Token:
    """Awaits the server's token: at once when cached, else without blocking the event loop.

    The asyncio twin of [`fetch`][goth_actors.fetch], with the same answers and errors. A cached
    token is returned without a lock, a thread or a pause in the coroutine. Otherwise the
    coroutine waits, up to ``timeout`` seconds, for the server's attempt in flight, while the
    event loop runs on: one thread per server name waits for every coroutine of every loop, and
    the server makes one request for all of them and for any thread calling ``fetch`` at the
    same time. Cancelling the awaiting task cancels its wait only.

    Args:
        name: The token server's name, as given to [`start_link`][goth_actors.start_link].
        timeout: Seconds to wait when no token is cached (checked only then). Default 5.

    Raises:
        ServerNotFound: No server has this name (a ``LookupError``).
        FetchTimeout: No token within ``timeout`` (a ``TimeoutError``).
        TokenEndpointError, TransportError: The server's attempt failed; between retries with
            no valid token, the last error is raised at once.
        ConfigError: ``timeout`` is not a finite number of seconds, at least 0.

    Examples:
        ```python
        async def handler(request):
            token = await goth_actors.fetch_async("storage")
            ...
        ```
    """
    value = _servers.get(name)
    if value is not None and value.fresh_until > value.clock():
        return value.token  # type: ignore[return-value]  # fresh_until is -inf without one
    if value is None:
        raise ServerNotFound(f"no token server is named {name!r}")
    # A miss: join the flight. Kept inline and lean, as a thousand callers may do it at once.
    timeout = check_seconds("timeout", timeout)
    loop = asyncio.get_running_loop()
    future: asyncio.Future[Token] = loop.create_future()
    _join(name, loop, _Waiter(future, loop.time() + timeout, timeout), timeout)
    return await future


# ----------------------------------------------------------------------------------- flights

SETTLE_BATCH = 256
"""Waiters answered per turn of their event loop when a flight lands.

A thousand coroutines resuming in one turn would stall the loop for milliseconds; in batches,
other tasks (a ticker, a request handler) run between them.
"""

_EARLY = 0.001
"""Seconds before its deadline a waiter may be timed out: a loop may fire a timer that early."""


@dataclass(eq=False, slots=True)
class _Waiter:
    future: asyncio.Future[Token]
    deadline: float  # on its loop's clock
    timeout: float


class _Group:
    """One event loop's waiters on one flight, with one timer for all their timeouts.

    Runs on its loop. The flight's thread only reads ``waiters``, under the lock.
    """

    def __init__(self, name: Hashable, loop: asyncio.AbstractEventLoop) -> None:
        self.name = name
        self.loop = loop
        self.waiters: list[_Waiter] = []
        self.timer: asyncio.TimerHandle | None = None

    def add(self, waiter: _Waiter) -> None:
        """On the loop, under the lock: one more waiter; the timer serves the earliest."""
        self.waiters.append(waiter)
        if self.timer is None or waiter.deadline < self.timer.when():
            if self.timer is not None:
                self.timer.cancel()
            self.timer = self.loop.call_at(waiter.deadline, self._expire)

    def _expire(self) -> None:
        """On the loop: times out the waiters whose deadline has come, and re-arms."""
        now = self.loop.time() + _EARLY
        with _lock:
            live = []
            for waiter in self.waiters:
                if waiter.future.done():
                    continue  # cancelled by its task
                if waiter.deadline <= now:
                    message = f"no token from server {self.name!r} within {waiter.timeout} s"
                    waiter.future.set_exception(FetchTimeout(message))
                else:
                    live.append(waiter)
            self.waiters = live
            earliest = min((waiter.deadline for waiter in live), default=None)
            self.timer = None if earliest is None else self.loop.call_at(earliest, self._expire)

    def settle(self, waiters: list[_Waiter], outcome: Outcome) -> None:
        """On the loop, once the flight landed: answers the waiters, a batch per loop turn."""
        if self.timer is not None:
            self.timer.cancel()
            self.timer = None
        for waiter in waiters[:SETTLE_BATCH]:
            future = waiter.future
            if future.done():
                continue  # timed out or cancelled meanwhile
            if isinstance(outcome, BaseException):
                future.set_exception(_own_copy(outcome))  # one per waiter
            else:
                future.set_result(outcome)
        if len(waiters) > SETTLE_BATCH:
            self.loop.call_soon(self.settle, waiters[SETTLE_BATCH:], outcome)


@dataclass(eq=False)
class _Flight:
    """The coroutines waiting for one server's token, and the thread that waits for them."""

    name: Hashable
    deadline: float  # time.monotonic() by which the last of its waiters gives up
    groups: dict[asyncio.AbstractEventLoop, _Group] = field(default_factory=dict)

    def anyone_waits(self) -> bool:
        return any(
            not waiter.future.done() for group in self.groups.values() for waiter in group.waiters
        )


_flights: dict[Hashable, _Flight] = {}
_lock = threading.Lock()


def _join(name: Hashable, loop: asyncio.AbstractEventLoop, waiter: _Waiter, timeout: float) -> None:
    """Adds a waiter to ``name``'s flight, starting one (and its thread) if none is up."""
    deadline = time.monotonic() + timeout
    with _lock:
        flight = _flights.get(name)
        started = flight is None
        if flight is None:
            flight = _flights[name] = _Flight(name, deadline)
        else:
            flight.deadline = max(flight.deadline, deadline)
        group = flight.groups.get(loop)
        if group is None:
            group = flight.groups[loop] = _Group(name, loop)
        group.add(waiter)
    if not started:
        return
    thread = threading.Thread(
        target=_fly, args=(flight,), name=f"goth-fetch-async {name!r:.60}", daemon=True
    )
    try:
        thread.start()
    except BaseException as error:  # no thread to be had (a container's pids limit)
        _land(flight, error)  # every waiter gets the error through its future


def _fly(flight: _Flight) -> None:
    """The flight's thread: fetch as the sync callers do, until its waiters are answered."""
    while True:
        outcome: Outcome
        try:
            outcome = fetch(flight.name, max(flight.deadline - time.monotonic(), 0.0))
        except FetchTimeout as error:
            with _lock:  # a waiter that joined later may still be waiting: ask again for it
                if flight.deadline > time.monotonic() and flight.anyone_waits():
                    continue
            outcome = error
        except BaseException as error:
            # The server holds this error until its next message: this thread's frames (and
            # the flight, its loops) must not hang on to it. Each waiter gets a copy.
            outcome = error.with_traceback(None)
        _land(flight, outcome)
        return


def _land(flight: _Flight, outcome: Outcome) -> None:
    """Ends the flight (later callers start a new one) and answers its waiters, loop by loop."""
    with _lock:
        if _flights.get(flight.name) is flight:
            del _flights[flight.name]
        groups = [(group, list(group.waiters)) for group in flight.groups.values()]
    for group, waiters in groups:
        with contextlib.suppress(RuntimeError):  # a closed loop: nobody waits there any more
            group.loop.call_soon_threadsafe(group.settle, waiters, outcome)


def _after_fork_in_child() -> None:
    global _lock
    _lock = threading.Lock()
    _flights.clear()  # their threads and their event loops stayed in the parent


os.register_at_fork(after_in_child=_after_fork_in_child)

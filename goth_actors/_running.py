"""``running``: a token server for the length of a ``with`` or ``async with`` block.

What web frameworks call a lifespan: start the server when the application starts, stop it when
the application stops. ``with`` starts and stops in the calling thread; ``async with`` does the
same in a worker thread, so the event loop runs on even while ``prefetch="sync"`` waits for the
first token, and a task cancelled while the server starts leaves no server behind.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import Callable, Hashable
from dataclasses import dataclass, field, replace
from types import TracebackType
from typing import Any, Literal

import pykka

from goth_actors._api import _start, stop
from goth_actors._errors import ServerNotFound
from goth_actors._options import ServerOptions
from goth_actors._protocol import DEFAULT_TIMEOUT, BackoffType, HttpClient, Source
from goth_actors._root import root
from goth_actors._server import TokenServer
from goth_actors.otp import FakeTime

__all__ = ["Running", "running"]


def running(
    *,
    name: Hashable,
    source: Source,
    http_client: HttpClient | None = None,
    refresh_after: float = 3300.0,
    refresh_before: float = 225.0,
    prefetch: Literal["async", "sync"] = "async",
    max_retries: int | None = 20,
    backoff_min: float = 1.0,
    backoff_max: float = 30.0,
    backoff_type: BackoffType = "rand_exp",
    retry_delay: Callable[[int], float] | None = None,
    http_timeout: float = DEFAULT_TIMEOUT,
    time: FakeTime | None = None,
    supervisor: pykka.ActorRef[Any] | None = None,
) -> Running:
    """A context manager that runs a token server: ``with`` or ``async with``, for lifespans.

    Entering calls [`start_link`][goth_actors.start_link] with these options and gives its actor
    ref; leaving calls [`stop`][goth_actors.stop] (quietly if the server is already gone), whether
    the block ended normally or raised. ``async with`` starts and stops the server in a worker
    thread: the event loop runs on meanwhile.

    It takes [`start_link`][goth_actors.start_link]'s options, ``name`` and ``source`` among
    them, with the same defaults, validated at once.

    Raises:
        ConfigError: An option is invalid (here, before anything starts).
        AlreadyStarted: On entering, a server with this name is running.

    Examples:
        ```python
        @contextlib.asynccontextmanager
        async def lifespan(app):  # FastAPI(lifespan=lifespan), Starlette(lifespan=lifespan)
            async with goth_actors.running(name="storage", source=goth_actors.default_source()):
                yield
        ```
    """
    options = ServerOptions(
        name=name,
        source=source,
        http_client=http_client,
        refresh_after=refresh_after,
        refresh_before=refresh_before,
        prefetch=prefetch,
        max_retries=max_retries,
        backoff_min=backoff_min,
        backoff_max=backoff_max,
        backoff_type=backoff_type,
        retry_delay=retry_delay,
        http_timeout=http_timeout,
        time=time,
    )  # validates every option now, as start_link would
    return Running(options, supervisor)


class Running:
    """What `running` returns: a token server's lifespan, for ``with`` and ``async with``.

    Attributes:
        name: The server's name.
    """

    def __init__(self, options: ServerOptions, supervisor: pykka.ActorRef[Any] | None) -> None:
        self.name = options.name
        self._options = options
        self._supervisor = supervisor
        self._started: ServerOptions | None = None  # this block's server, while it runs

    def __repr__(self) -> str:
        return f"running(name={self.name!r})"

    def __enter__(self) -> pykka.ActorRef[TokenServer]:
        started = replace(self._options)  # one identity per block: its own, stopped on exit
        ref = _start(started, self._supervisor)
        self._started = started
        return ref

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc_value: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self._stop()

    async def __aenter__(self) -> pykka.ActorRef[TokenServer]:
        start = _Start()
        starting = asyncio.get_running_loop().run_in_executor(None, self._start, start)
        try:
            return await asyncio.shield(starting)
        except asyncio.CancelledError:
            with start.lock:
                start.cancelled = True
                started = start.started
            if started:  # it started just as the task was cancelled: nobody will leave it
                threading.Thread(target=self._stop, name="goth-running-stop", daemon=True).start()
            raise

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc_value: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        stopping = asyncio.get_running_loop().run_in_executor(None, self._stop)
        await asyncio.shield(stopping)  # a cancelled task still stops its server

    def _start(self, start: _Start) -> pykka.ActorRef[TokenServer]:
        """In a worker thread: start, unless the awaiting task was cancelled meanwhile."""
        ref = self.__enter__()
        with start.lock:
            start.started = not start.cancelled
            cancelled = start.cancelled
        if cancelled:
            self._stop()
        return ref

    def _stop(self) -> None:
        started, self._started = self._started, None
        if started is None or root.origin(self.name) is not started:
            return  # already stopped, by its owner or by you; another server may have the name
        with contextlib.suppress(ServerNotFound):
            stop(self.name)


@dataclass
class _Start:
    """An ``async with`` start in its thread, and whether its task was cancelled meanwhile."""

    lock: threading.Lock = field(default_factory=threading.Lock)
    started: bool = False
    cancelled: bool = False

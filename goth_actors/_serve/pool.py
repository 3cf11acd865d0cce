"""The token servers behind serve: one per distinct `Want`.

The configured wants (the default scope set, and audiences named at start) have servers from
the start and keep them. Any other want gets a server on its first request, under the one
supervisor, up to ``max_servers``; a server nobody asked for in ``idle`` seconds is stopped.

The hot path, `Pool.cached`, is one dict read, one clock read and
`goth_actors.cached`: no lock, no thread hop. A miss goes to `Pool.token`, which
waits without blocking the event loop, and makes every request for the same want wait on the
same fetch (the server itself makes one upstream request however many wait).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import itertools
import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

import goth_actors
from goth_actors import ServerStatus, Token
from goth_actors._serve.runtime import ServerSupervisor, fetch_async
from goth_actors._serve.sources import Upstream, Want
from goth_actors.otp import FakeTime

__all__ = ["Pool", "ServerName", "TooManyServers"]

logger = logging.getLogger("goth_actors.serve")

_instances = itertools.count(1)


@dataclass(frozen=True, slots=True)
class ServerName:
    """A token server's name: which serve, which want, which start of it."""

    serve: int
    want: Want
    generation: int

    def __repr__(self) -> str:
        return f"serve-{self.serve}/{self.want.describe()}#{self.generation}"


class TooManyServers(goth_actors.GothError):
    """Every one of the ``max_servers`` servers is in use: a new want is refused."""


class _Entry:
    __slots__ = ("configured", "last_used", "name")

    def __init__(self, name: ServerName, configured: bool, now: float) -> None:
        self.name = name
        self.configured = configured
        self.last_used = now


class Pool:
    """The token servers, by want (see the module).

    Args:
        upstream: Where tokens come from.
        executor: Worker threads for everything that blocks (starting and stopping servers,
            waiting for a token).
        max_servers: Servers at most, the configured ones included.
        idle: Seconds after which a server started on demand and not asked since is stopped.
        fetch_timeout: Seconds a request waits for a token that is not there yet.
        server_options: Passed to each server (``start_link``'s options).
        monotonic: The clock of ``idle``.
        on_gave_up: Called from another thread if the supervisor gives up.
        time: A `FakeTime` for tests (given to the supervisor).
    """

    def __init__(
        self,
        upstream: Upstream,
        *,
        executor: concurrent.futures.ThreadPoolExecutor,
        max_servers: int,
        idle: float,
        fetch_timeout: float,
        server_options: dict[str, Any],
        monotonic: Callable[[], float],
        on_gave_up: Callable[[BaseException], None],
        time: FakeTime | None = None,
    ) -> None:
        self.upstream = upstream
        self.max_servers = max_servers
        self.idle = idle
        self.fetch_timeout = fetch_timeout
        self._executor = executor
        self._options = server_options
        self._monotonic = monotonic
        self._on_gave_up = on_gave_up
        self._time = time
        self._serve = next(_instances)
        self._generations = itertools.count()
        self._entries: dict[Want, _Entry] = {}
        self._starting: dict[Want, asyncio.Future[_Entry]] = {}
        self._fetching: dict[Want, asyncio.Future[Token]] = {}
        self._supervisor: ServerSupervisor | None = None

    # --- lifecycle ----------------------------------------------------------------------------

    async def start(self, configured: Iterable[Want]) -> None:
        """Starts the supervisor and the configured wants' servers.

        Their first fetch runs in the background.

        Raises:
            ConfigError: A configured want's source is refused (say, a malformed scope).
            NoIdTokens: A configured audience, from credentials without ID tokens.
        """
        loop = asyncio.get_running_loop()
        self._supervisor = await loop.run_in_executor(self._executor, self._new_supervisor)
        for want in configured:
            if want not in self._entries:
                await self._start(want, configured=True)

    def _new_supervisor(self) -> ServerSupervisor:
        return ServerSupervisor(
            max_children=self.max_servers, on_gave_up=self._on_gave_up, time=self._time
        )

    async def stop(self) -> None:
        """Stops every server and the supervisor."""
        supervisor, self._supervisor = self._supervisor, None
        self._entries.clear()
        if supervisor is not None:
            await asyncio.get_running_loop().run_in_executor(self._executor, supervisor.stop)

    # --- tokens -------------------------------------------------------------------------------

    def cached(self, want: Want) -> Token | None:
        """The want's token if its server holds a fresh one, else ``None``; never waits."""
        entry = self._entries.get(want)
        if entry is None:
            return None
        entry.last_used = self._monotonic()
        return goth_actors.cached(entry.name)

    async def token(self, want: Want) -> Token:
        """The want's token, starting its server if it has none.

        Every concurrent caller for one want shares one wait.

        Raises:
            TooManyServers: A new want while ``max_servers`` servers run.
            NoIdTokens: An ID token from credentials without them.
            ConfigError: The source refuses the want (a malformed scope or audience).
            FetchTimeout: No token within ``fetch_timeout``.
            TokenError: The server's last attempt failed.
        """
        waiting = self._fetching.get(want)
        if waiting is None:
            waiting = asyncio.ensure_future(self._fetch(want))
            self._fetching[want] = waiting
            waiting.add_done_callback(_forget_when_done(self._fetching, want))
        return await asyncio.shield(waiting)

    async def _fetch(self, want: Want) -> Token:
        entry = self._entries.get(want)
        if entry is None:
            entry = await self._start(want, configured=False)
        entry.last_used = self._monotonic()
        try:
            return await fetch_async(entry.name, self.fetch_timeout)
        except goth_actors.ServerNotFound:  # stopped as idle meanwhile: start a new one
            entry = await self._start(want, configured=False)
            return await fetch_async(entry.name, self.fetch_timeout)

    async def _start(self, want: Want, *, configured: bool) -> _Entry:
        starting = self._starting.get(want)
        if starting is not None:
            return await asyncio.shield(starting)
        if len(self._entries) + len(self._starting) >= self.max_servers:
            raise TooManyServers(
                f"{self.max_servers} token servers run already (--max-servers); "
                "ask again once one is idle"
            )
        future = asyncio.get_running_loop().create_future()
        future.add_done_callback(_retrieve)
        self._starting[want] = future
        name = ServerName(self._serve, want, next(self._generations))
        try:
            await asyncio.get_running_loop().run_in_executor(
                self._executor, self._start_server, name
            )
        except asyncio.CancelledError:
            future.cancel()
            raise
        except Exception as exc:
            future.set_exception(exc)
            raise
        finally:
            del self._starting[want]
        entry = _Entry(name, configured, self._monotonic())
        self._entries[want] = entry
        future.set_result(entry)
        logger.info("started the token server for %s", want.describe())
        return entry

    def _start_server(self, name: ServerName) -> None:
        supervisor = self._supervisor
        if supervisor is None:
            raise goth_actors.ServerNotFound("serve is stopping")
        source = self.upstream.source_for(name.want)
        try:
            supervisor.start_server(name, source, **self._options)
        except OverflowError:
            raise TooManyServers(f"{self.max_servers} token servers run already") from None

    # --- idle servers -------------------------------------------------------------------------

    async def stop_idle(self) -> list[Want]:
        """Stops the servers started on demand that nobody asked for in ``idle`` seconds.

        Returns their wants.
        """
        now = self._monotonic()
        idle = [
            (want, entry)
            for want, entry in self._entries.items()
            if not entry.configured
            and now - entry.last_used >= self.idle
            and want not in self._fetching
        ]
        for want, _ in idle:
            del self._entries[want]
        supervisor = self._supervisor
        if idle and supervisor is not None:
            loop = asyncio.get_running_loop()
            for want, entry in idle:
                await loop.run_in_executor(self._executor, supervisor.stop_server, entry.name)
                logger.info("stopped the token server for %s (idle)", want.describe())
        return [want for want, _ in idle]

    # --- status -------------------------------------------------------------------------------

    def ready(self) -> bool:
        """Whether every configured server holds a fresh token."""
        configured = [e for e in self._entries.values() if e.configured]
        return bool(configured) and all(goth_actors.cached(e.name) for e in configured)

    def statuses(self) -> list[tuple[Want, bool, float, ServerStatus | None]]:
        """``(want, configured, seconds since last asked, status)`` of every server."""
        now = self._monotonic()
        rows: list[tuple[Want, bool, float, ServerStatus | None]] = []
        for want, entry in list(self._entries.items()):
            try:
                status: ServerStatus | None = goth_actors.status(entry.name)
            except goth_actors.ServerNotFound:
                status = None
            rows.append((want, entry.configured, now - entry.last_used, status))
        return rows


def _forget_when_done(
    table: dict[Want, asyncio.Future[Token]], want: Want
) -> Callable[[asyncio.Future[Token]], None]:
    """A done-callback that forgets ``want``'s shared wait and retrieves its outcome."""

    def done(future: asyncio.Future[Token]) -> None:
        if table.get(want) is future:
            del table[want]
        _retrieve(future)

    return done


def _retrieve(future: asyncio.Future[Any]) -> None:
    # Read the outcome, so that asyncio never reports an exception nobody waited for.
    if not future.cancelled():
        future.exception()

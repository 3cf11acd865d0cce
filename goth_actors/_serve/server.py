"""``MetadataServer``: the token servers, their supervisor and the HTTP endpoint, as one thing.

`MetadataServer.run` serves on the running event loop until `MetadataServer.stop`
(the command line calls it on SIGTERM, SIGINT or SIGHUP), then shuts down gracefully: nothing
new is accepted, answers in flight finish, then the token servers stop. `InThread`
runs one on a thread of its own, for tests and benchmarks.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
import threading
import time as _time
from collections.abc import Callable
from types import TracebackType
from typing import Any, Self
from urllib.parse import urlsplit

from goth_actors import GothError, Metadata, Source
from goth_actors._serve.httpd import HttpServer, Limits
from goth_actors._serve.metadata import HEADERS, MetadataRoutes
from goth_actors._serve.options import ServeOptions
from goth_actors._serve.pool import Pool
from goth_actors._serve.runtime import Identity, describe_identity
from goth_actors._serve.sources import Upstream, Want

__all__ = ["InThread", "MetadataServer", "SupervisorGaveUp"]

logger = logging.getLogger("goth_actors.serve")

SERVED_REFRESH_BEFORE = 600.0
"""Seconds before expiry the servers refresh: served tokens keep more than 10 minutes, more
than any client's own margin (google-auth 3 min 45 s, Java 5 min), so that no client ever
finds the token it was just given too old and asks again in a loop."""


class SupervisorGaveUp(GothError):
    """The token servers' supervisor gave up (too many restarts): serve stops."""


class MetadataServer:
    """Token servers behind an HTTP endpoint that speaks the metadata server's protocol.

    Args:
        source: Where tokens come from; its scopes are the default scope set.
        options: See `ServeOptions`.
        identity: Who the tokens belong to; default: read from ``source`` (for a
            `Metadata` source, asked of that server: this blocks).

    Raises:
        ValueError: The source is a metadata server at the address this one is to listen on.
        requests.RequestException: The source is a metadata server that does not answer.
    """

    def __init__(
        self, source: Source, options: ServeOptions, *, identity: Identity | None = None
    ) -> None:
        self.options = options
        _refuse_loop(source, options)
        self.upstream = Upstream(source, identity or describe_identity(source))
        fake = options.time
        self.clock: Callable[[], float] = _time.time if fake is None else fake.time
        self.monotonic: Callable[[], float] = _time.monotonic if fake is None else fake.monotonic
        self.address: tuple[str, int] | None = None
        self.failure: BaseException | None = None
        self._executor = concurrent.futures.ThreadPoolExecutor(
            max_workers=min(32, options.max_servers + 4), thread_name_prefix="goth-serve"
        )
        self._stop: asyncio.Event | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._started = _time.monotonic()
        self._reaper: asyncio.Task[None] | None = None
        self.pool = Pool(
            self.upstream,
            executor=self._executor,
            max_servers=options.max_servers,
            idle=options.idle,
            fetch_timeout=options.fetch_timeout,
            server_options={
                "refresh_before": SERVED_REFRESH_BEFORE,
                "time": fake,
                **options.server_options,
            },
            monotonic=self.monotonic,
            on_gave_up=self._gave_up,
            time=fake,
        )
        self.routes = MetadataRoutes(
            self.pool,
            self.upstream,
            clock=self.clock,
            allowed_hosts=options.allowed_hosts,
            status=self.status,
        )
        sweep = min(1.0, options.header_timeout / 4, options.keepalive_timeout / 4)
        self.http = HttpServer(
            self.routes,
            limits=Limits(
                max_connections=options.max_connections,
                header_timeout=options.header_timeout,
                keepalive_timeout=options.keepalive_timeout,
                sweep=sweep,
            ),
            headers=HEADERS,
        )

    @property
    def host_port(self) -> str:
        """``host:port`` as clients put it in ``GCE_METADATA_HOST`` (an IPv6 host bracketed)."""
        assert self.address is not None, "not listening yet"
        host, port = self.address
        return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"

    @property
    def loop(self) -> asyncio.AbstractEventLoop | None:
        """The event loop it runs on, once started."""
        return self._loop

    @property
    def url(self) -> str:
        """``http://host:port``."""
        return f"http://{self.host_port}"

    # --- running ------------------------------------------------------------------------------

    async def start(self) -> None:
        """Listens, then starts the token servers (first fetches run in the background).

        Raises:
            OSError: The address cannot be bound (nothing is left running).
            ConfigError: A configured audience or scope is refused by the source.
        """
        self._loop = asyncio.get_running_loop()
        self._stop = asyncio.Event()
        self.address = await self.http.start(self.options.host, self.options.port)
        try:
            configured = [self.upstream.default]
            configured += [Want("identity", audience=a) for a in self.options.audiences]
            await self.pool.start(configured)
        except BaseException:
            await self.shutdown()
            raise
        self._reaper = self._loop.create_task(self._reap())

    async def run(self) -> None:
        """Serves until `stop`, then shuts down gracefully; `start` first.

        Raises:
            SupervisorGaveUp: The token servers' supervisor gave up.
        """
        assert self._stop is not None, "start() first"
        await self._stop.wait()
        busy = sum(connection.busy for connection in self.http.connections)
        logger.info("stopping: %d answer(s) in flight to finish", busy)
        await self.shutdown()
        if self.failure is not None:
            raise SupervisorGaveUp(f"the token servers' supervisor gave up: {self.failure}")

    def stop(self) -> None:
        """Asks `run` to shut down; safe from any thread, and more than once."""
        loop, stop = self._loop, self._stop
        if loop is not None and stop is not None and not loop.is_closed():
            loop.call_soon_threadsafe(stop.set)

    async def shutdown(self) -> None:
        """Stops accepting, lets answers in flight finish, then stops the token servers."""
        if self._reaper is not None:
            self._reaper.cancel()
        await self.http.shutdown(self.options.grace)
        await self.pool.stop()
        self._executor.shutdown(wait=True, cancel_futures=True)

    def _gave_up(self, reason: BaseException) -> None:
        self.failure = reason
        self.stop()

    async def _reap(self) -> None:
        period = max(0.05, min(60.0, self.options.idle / 4))
        while True:
            await asyncio.sleep(period)
            try:
                await self.pool.stop_idle()
            except Exception:  # a server that would not stop: try again next time
                logger.exception("stopping idle token servers failed")

    # --- status -------------------------------------------------------------------------------

    def status(self) -> dict[str, Any]:
        """The ``/status`` page: identity, servers and counts; never a token."""
        identity = self.upstream.identity
        now = self.clock()
        servers = []
        for want, configured, idle, status in self.pool.statuses():
            row: dict[str, Any] = {
                "kind": want.kind,
                "configured": configured,
                "idle_seconds": round(idle, 1),
            }
            if want.kind == "token":
                row["scopes"] = list(want.scopes)
            else:
                row["audience"] = want.audience
            if status is not None:
                row |= {
                    "state": status.state,
                    "has_valid_token": status.has_valid_token,
                    "expires_in": None if status.expires is None else round(status.expires - now),
                    "last_refresh": status.last_refresh,
                    "consecutive_failures": status.consecutive_failures,
                    "last_error": None if status.last_error is None else str(status.last_error),
                    "restarts": status.restarts,
                }
            servers.append(row)
        return {
            "ready": self.pool.ready(),
            "source": self.upstream.kind,
            "email": identity.email,
            "project_id": identity.project_id,
            "universe_domain": identity.universe_domain,
            "default_scopes": list(self.upstream.scopes),
            "uptime_seconds": round(_time.monotonic() - self._started, 1),
            "connections": len(self.http.connections),
            "max_servers": self.options.max_servers,
            "servers": servers,
            "requests": dict(sorted(self.http.counts.items())),
        }


def _refuse_loop(source: Source, options: ServeOptions) -> None:
    """Refuses an upstream metadata server that is this server.

    ``GCE_METADATA_HOST`` left pointing at it in its own environment: every request would ask
    itself for ever.
    """
    if not isinstance(source, Metadata) or options.port == 0:
        return
    upstream = urlsplit(source.base_url())
    try:
        port = upstream.port or 80
    except ValueError:
        return
    host = upstream.hostname or ""
    ours = {options.host, "localhost", "0.0.0.0", "::"}  # noqa: S104  # names, not a bind
    if port == options.port and (host in ours or host.startswith("127.") or host == "::1"):
        raise ValueError(
            f"the upstream metadata server is this server ({upstream.netloc}): unset "
            "GCE_METADATA_HOST in serve's own environment, or give it --credentials"
        )


class InThread:
    """A `MetadataServer` on a thread of its own, with its own event loop.

    Examples:
        ```python
        with InThread(source, ServeOptions(port=0)) as serve:
            os.environ["GCE_METADATA_HOST"] = serve.server.host_port
        ```
    """

    def __init__(self, source: Source, options: ServeOptions) -> None:
        self.server = MetadataServer(source, options)
        self._ready = threading.Event()
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._main, name="goth-serve-loop", daemon=True)

    def _main(self) -> None:
        async def main() -> None:
            try:
                await self.server.start()
            except BaseException as exc:
                self._error = exc
                self._ready.set()
                return
            self._ready.set()
            await self.server.run()

        try:
            asyncio.run(main())
        except BaseException as exc:
            self._error = exc

    def start(self) -> Self:
        """Starts serving; returns once listening. Raises what the start raised."""
        self._thread.start()
        self._ready.wait()
        if self._error is not None:
            self._thread.join()
            raise self._error
        return self

    def close(self) -> None:
        """Shuts down gracefully and waits for it; raises what the server's run raised."""
        self.server.stop()
        self._thread.join()
        if self._error is not None:
            error, self._error = self._error, None
            raise error

    def call(self, function: Callable[[], Any]) -> Any:
        """Runs a coroutine function on the server's loop; returns its result (tests)."""
        loop = self.server.loop
        assert loop is not None, "not started"
        return asyncio.run_coroutine_threadsafe(function(), loop).result(timeout=30.0)

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

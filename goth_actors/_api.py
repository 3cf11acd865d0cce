"""The public functions: start_link, child_spec, fetch, stop, status, shutdown (Goth's API).

``fetch`` is the hot path. On a cached, valid token it does one dict read, one clock read and
one comparison: no lock, no queue, no message to the actor. Only a miss asks the server.
"""

from __future__ import annotations

import atexit
import contextlib
import math
import os
import threading
import time
from collections.abc import Callable
from dataclasses import replace
from typing import Any, Literal, cast

import pykka

from goth_actors import _registry, _timers
from goth_actors._backoff import BACKOFF_TYPES, BackoffType
from goth_actors._childspec import ChildSpec, DeleteChild, StartChild, TerminateChild
from goth_actors._errors import (
    AlreadyStarted,
    ChildAlreadyPresent,
    ChildNotFound,
    ChildRunning,
    ConfigError,
    FailedToStartChild,
    FetchTimeout,
    ServerNotFound,
)
from goth_actors._http import DEFAULT_TIMEOUT, HttpClient, close_default_client
from goth_actors._server import (
    ServerOptions,
    ServerStatus,
    TokenServer,
    _CallerFetch,
    published,
)
from goth_actors._sources import Source
from goth_actors._supervisor import Supervisor
from goth_actors._timers import Scheduler
from goth_actors._token import Token

__all__ = [
    "DEFAULT_SUPERVISOR_MAX_RESTARTS",
    "SERVER_SHUTDOWN",
    "child_spec",
    "fetch",
    "shutdown",
    "start_link",
    "status",
    "stop",
]

DEFAULT_SUPERVISOR_MAX_RESTARTS = 1_000_000
"""The default root supervisor's ``max_restarts`` (within 1 s): in practice it never gives up.

One server in a crash loop must not take its siblings down with it. Each server paces its own
restarts with its backoff, so a crash loop is never a hot loop either.
"""

SERVER_SHUTDOWN = 0.25
"""Seconds a supervisor waits for a token server to stop before abandoning its thread.

A server in the middle of an exchange cannot be interrupted (Python threads cannot be
killed), and it has nothing to save, so waiting longer would only delay the program's exit.
"""

_entries = _registry._entries  # the registry's dict, read directly on the hot path


# -------------------------------------------------------------------------------- validation


def _seconds(name: str, value: object, *, minimum: float = 0.0, allow_zero: bool = True) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ConfigError(name, f"must be a number of seconds, got {type(value).__name__}")
    seconds = float(value)
    if not math.isfinite(seconds):
        raise ConfigError(name, f"must be finite, got {value!r}")
    if seconds < minimum or (not allow_zero and seconds == 0):
        bound = f"greater than {minimum:g}" if not allow_zero else f"at least {minimum:g}"
        raise ConfigError(name, f"must be {bound} seconds, got {value!r}")
    return seconds


def _options(
    *,
    name: object,
    source: object,
    http_client: object,
    refresh_after: object,
    refresh_before: object,
    prefetch: object,
    max_retries: object,
    backoff_min: object,
    backoff_max: object,
    backoff_type: object,
    retry_delay: object,
    http_timeout: object,
    clock: object,
    scheduler: object,
) -> ServerOptions:
    """Validates every option before any actor starts; ConfigError names the bad one."""
    try:
        hash(name)
    except TypeError:
        raise ConfigError("name", f"must be hashable, got {type(name).__name__}") from None
    if name is None:
        raise ConfigError("name", "is required (any hashable value but None)")
    if not isinstance(source, Source):
        raise ConfigError(
            "source",
            "must be a goth_actors source (ServiceAccount, RefreshToken, Metadata, "
            "WorkloadIdentity, Impersonated or default_source()), got "
            f"{type(source).__name__}",
        )
    if http_client is not None and not callable(http_client):
        raise ConfigError("http_client", f"must be callable, got {type(http_client).__name__}")
    if prefetch not in ("async", "sync"):
        raise ConfigError("prefetch", f"must be 'async' or 'sync', got {prefetch!r}")
    if max_retries is not None and (
        isinstance(max_retries, bool) or not isinstance(max_retries, int) or max_retries < 0
    ):
        raise ConfigError(
            "max_retries", f"must be an int >= 0, or None for never, got {max_retries!r}"
        )
    if backoff_type not in BACKOFF_TYPES:
        raise ConfigError(
            "backoff_type", f"must be one of {', '.join(BACKOFF_TYPES)}, got {backoff_type!r}"
        )
    low = _seconds("backoff_min", backoff_min)
    high = _seconds("backoff_max", backoff_max, allow_zero=False)
    if low > high:
        raise ConfigError("backoff_min", f"({low:g}) is greater than backoff_max ({high:g})")
    if retry_delay is not None and not callable(retry_delay):
        raise ConfigError("retry_delay", f"must be callable, got {type(retry_delay).__name__}")
    if not callable(clock):
        raise ConfigError("clock", f"must be callable, got {type(clock).__name__}")
    if scheduler is not None and not isinstance(scheduler, Scheduler):
        raise ConfigError("scheduler", f"must be a Scheduler, got {type(scheduler).__name__}")
    return ServerOptions(
        name=name,
        source=source,
        http_client=http_client,
        refresh_after=_seconds("refresh_after", refresh_after, allow_zero=False),
        refresh_before=_seconds("refresh_before", refresh_before),
        prefetch=prefetch,
        max_retries=max_retries,
        backoff_min=low,
        backoff_max=high,
        backoff_type=backoff_type,
        retry_delay=retry_delay,
        http_timeout=_seconds("http_timeout", http_timeout, allow_zero=False),
        clock=clock,
        scheduler=scheduler,
    )


# ---------------------------------------------------------------------------- starting servers


def child_spec(
    *,
    name: object,
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
    clock: Callable[[], float] = time.time,
    scheduler: Scheduler | None = None,
) -> ChildSpec:
    """A :class:`~goth_actors.ChildSpec` that starts a token server, with ``id = name``.

    Takes the same options as :func:`start_link` except ``supervisor``, validated now. Several
    servers fit in one supervisor without the id clash Goth users hit.

    Example:
        >>> supervisor = Supervisor.start([  # doctest: +SKIP
        ...     child_spec(name="pubsub", source=ServiceAccount(key)),
        ...     child_spec(name="storage", source=Metadata()),
        ... ])
    """
    options = _options(
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
        clock=clock,
        scheduler=scheduler,
    )
    return ChildSpec.for_actor(TokenServer, options, id=name, shutdown=SERVER_SHUTDOWN)


def start_link(
    *,
    name: object,
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
    clock: Callable[[], float] = time.time,
    scheduler: Scheduler | None = None,
    supervisor: pykka.ActorRef[Any] | None = None,
) -> pykka.ActorRef[TokenServer]:
    """Starts a token server under a supervisor and returns its actor ref.

    The server prefetches a token, refreshes it before it expires, retries failures with
    backoff, and crashes (to be restarted, its last good token kept) after ``max_retries``
    failed retries in a row.

    Args:
        name: Any hashable value; :func:`fetch` finds the server by it.
        source: Where tokens come from: :class:`~goth_actors.ServiceAccount`,
            :class:`~goth_actors.RefreshToken`, :class:`~goth_actors.Metadata`,
            :class:`~goth_actors.WorkloadIdentity`, :class:`~goth_actors.Impersonated` or
            :func:`~goth_actors.default_source`.
        http_client: The HTTP client (contract in :class:`~goth_actors.HttpClient`).
            Default: a shared ``requests.Session``.
        refresh_after: Refresh at most this many seconds after a token arrived (Goth rc.4's
            ``refresh_after``, in seconds). Default 3300.
        refresh_before: Refresh at least this many seconds before it expires (Goth's
            ``refresh_before``). Default 225 (3 min 45 s, as google-auth and Go). A token
            is never refreshed before half its usable lifetime (no hot loop on short tokens).
        prefetch: ``"async"`` returns at once and fetches in the background; ``"sync"``
            makes the start (here, or a supervisor's start of a ``child_spec``) return after
            the first attempt, whether it succeeded or not.
        max_retries: Retries after a failure before the server crashes; ``0`` crashes at the
            first failure, ``None`` never. Default 20.
        backoff_min: Smallest retry delay in seconds. Default 1.
        backoff_max: Largest retry delay in seconds. Default 30.
        backoff_type: ``"exp"``, ``"rand"`` or ``"rand_exp"`` (default).
        retry_delay: ``retry_delay(attempt) -> seconds`` instead of the backoff type.
        http_timeout: Seconds to wait to connect and for each read. Default 10.
        clock: Wall clock in unix seconds (for tests). Default ``time.time``.
        scheduler: Timer scheduler (for tests with a manual clock). Default: the shared one.
        supervisor: The supervisor to start under. Default: the library's root supervisor,
            started on first use and stopped at interpreter exit.

    Raises:
        ConfigError: An option is invalid (raised before any actor starts).
        AlreadyStarted: A server with this name is running.

    Example:
        >>> start_link(name="my_app", source=ServiceAccount(json.load(open("key.json"))))
        ... # doctest: +SKIP
        >>> fetch("my_app").token  # doctest: +SKIP
    """
    spec = child_spec(
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
        clock=clock,
        scheduler=scheduler,
    )
    if _registry.whereis(name) is not None:
        raise AlreadyStarted(name)
    parent = _default_supervisor() if supervisor is None else supervisor
    try:
        ref = cast(
            "pykka.ActorRef[TokenServer]", parent.ask(StartChild(spec), timeout=_SUPERVISOR_WAIT)
        )
    except FailedToStartChild as exc:
        if isinstance(exc.reason, AlreadyStarted):
            raise AlreadyStarted(name) from None
        raise
    except ChildAlreadyPresent:  # the supervisor still has a child with this id
        raise AlreadyStarted(name) from None
    _parents[name] = parent
    if supervisor is None:
        _started[name] = spec
    return ref


# ------------------------------------------------------------------------------------ fetching


def fetch(name: object, timeout: float = 5.0) -> Token:
    """Returns the server's token: at once when cached, else waits up to ``timeout`` seconds.

    A cached token is returned without a lock or a message to the server; it is never one
    that expires within the next 10 seconds. Otherwise the caller waits for the server's
    attempt in flight (single flight: one request however many callers wait).

    Raises:
        ServerNotFound: No server has this name (a ``LookupError``).
        FetchTimeout: No token within ``timeout`` (a ``TimeoutError``).
        TokenEndpointError, TransportError: The server's attempt failed; between retries
            with no valid token, the last error is raised at once.

    Example:
        >>> token = fetch("my_app")  # doctest: +SKIP
        >>> requests.get(url, headers={"Authorization": f"Bearer {token.token}"})  # doctest: +SKIP
    """
    entry = _entries.get(name)
    if entry is not None:
        value: Any = entry.value
        if value is not None and value.fresh_until > value.clock():
            return value.token  # type: ignore[no-any-return]
    return _fetch_slow(name, timeout)


def _fetch_slow(name: object, timeout: float) -> Token:
    deadline = time.monotonic() + timeout
    pause = 0.001
    while True:
        entry = _registry.lookup(name)
        if entry is None:
            raise ServerNotFound(f"no token server is named {name!r}")
        ref = _registry.whereis(name)
        if ref is None and name in _forked_away:
            ref = _restart_after_fork(name)
        remaining = deadline - time.monotonic()
        if ref is not None:
            try:
                outcome = ref.ask(_CallerFetch(), timeout=max(remaining, 0.0))
            except pykka.Timeout:
                raise FetchTimeout(f"no token from server {name!r} within {timeout} s") from None
            except pykka.ActorDeadError:
                pass  # crashed or restarting: look the name up again
            else:
                if isinstance(outcome, BaseException):
                    raise outcome
                return cast(Token, outcome)
        # Between a crash and the restart: serve a still-valid token, or wait for the new actor.
        value = published(name)
        if value is not None and value.token is not None and value.fresh_until > value.clock():
            return value.token
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise FetchTimeout(
                f"no token from server {name!r} within {timeout} s (the server is not running)"
            )
        time.sleep(min(pause, remaining))
        pause = min(pause * 2, 0.05)


# ---------------------------------------------------------------------------------- managing


def stop(name: object, timeout: float = 5.0) -> None:
    """Stops the named server and forgets its token.

    A server started by :func:`start_link` is removed from its supervisor. One you put in your
    own supervisor with :func:`child_spec` is better stopped there, with ``TerminateChild``
    and ``DeleteChild``: this function stops the actor, and a ``permanent`` child would be
    restarted.

    The name is forgotten at once. A server in the middle of an exchange is abandoned by its
    supervisor after ``SERVER_SHUTDOWN`` seconds and stops when the exchange ends; it can no
    longer write to the registry. ``timeout`` bounds each wait on the supervisor and the actor.

    Raises:
        ServerNotFound: No server has this name.
    """
    entry = _registry.lookup(name)
    if entry is None:
        raise ServerNotFound(f"no token server is named {name!r}")
    parent = _parents.pop(name, None)
    _started.pop(name, None)
    _forked_away.discard(name)
    if parent is not None and parent.is_alive():
        try:
            # Bounded by the child's own shutdown (SERVER_SHUTDOWN), after which the
            # supervisor abandons a busy server: the id is then free for a new start.
            parent.ask(TerminateChild(name), timeout=_SUPERVISOR_WAIT)
            parent.ask(DeleteChild(name), timeout=_SUPERVISOR_WAIT)
        except (ChildNotFound, ChildRunning, pykka.ActorDeadError, pykka.Timeout):
            pass  # already gone from that supervisor
    ref = _registry.whereis(name)
    _registry.unregister(name)  # first: whatever the actor does next, the name is free
    if ref is not None:
        # A server in the middle of an exchange stops when the exchange ends; it can no longer
        # write to the registry, so there is nothing to wait for past the timeout.
        with contextlib.suppress(pykka.Timeout):
            ref.stop(block=True, timeout=timeout)


def status(name: object) -> ServerStatus:
    """The named server's health: state, expiry, last refresh, failures, restarts.

    Read from the registry, without asking the server, so it answers even while the server is
    busy with a slow exchange.

    Raises:
        ServerNotFound: No server has this name.
    """
    value = published(name)
    if value is None:
        raise ServerNotFound(f"no token server is named {name!r}")
    current = replace(value.status, has_valid_token=value.fresh_until > value.clock())
    if _registry.whereis(name) is None and current.state != "down":
        current = replace(current, state="down", next_attempt=None)
    return current


_SUPERVISOR_WAIT = 30.0
_default_lock = threading.Lock()
_default: pykka.ActorRef[Any] | None = None
_parents: dict[object, pykka.ActorRef[Any]] = {}
_started: dict[object, ChildSpec] = {}  # servers under the default supervisor, by name
_forked_away: set[object] = set()  # names whose server stayed in the parent process


def _default_supervisor() -> pykka.ActorRef[Any]:
    global _default
    with _default_lock:
        if _default is None or not _default.is_alive():
            _default = Supervisor.start(
                max_restarts=DEFAULT_SUPERVISOR_MAX_RESTARTS, max_seconds=1.0
            )
        return _default


def shutdown(timeout: float = 10.0) -> None:
    """Stops the default root supervisor and every server under it, and forgets their names.

    Runs at interpreter exit; tests call it too. Servers started under your own supervisors
    are yours to stop, and keep running: the timer thread is stopped only when no actor is
    left (otherwise it ends by itself once idle). A server in the middle of an exchange is
    abandoned after ``SERVER_SHUTDOWN`` seconds, never waited for. Safe to call more than
    once; the next :func:`start_link` starts afresh.
    """
    global _default
    with _default_lock:
        root, _default = _default, None
    if root is not None and root.is_alive():
        with contextlib.suppress(pykka.Timeout):
            root.stop(block=True, timeout=timeout)
    for name in list(_started):
        _registry.unregister(name)
    _parents.clear()
    _started.clear()
    _forked_away.clear()
    if not any(ref.is_alive() for ref in pykka.ActorRegistry.get_all()):
        # Other actors (your supervisors' servers) may still need the timer thread; it is a
        # daemon thread and ends by itself once idle.
        _timers.stop_default_scheduler()
    close_default_client()


atexit.register(shutdown)


# ----------------------------------------------------------------------------------- os.fork()


def _after_fork_in_child() -> None:
    """A forked child has none of the parent's threads: no actor, supervisor or timer.

    Servers started by :func:`start_link` under the library's supervisor are started again in
    the child the first time ``fetch`` needs them (their cached token, still valid, is served
    meanwhile). The others were in supervisors of the user's, which did not survive the fork:
    ``fetch`` says so instead of waiting for an actor that will never answer.
    """
    global _default, _default_lock
    _default = None
    _default_lock = threading.Lock()
    _parents.clear()
    _forked_away.clear()
    _forked_away.update(_registry._entries)
    for ref in _pykka_refs():
        # Every actor of the parent is gone here: make the refs say so (ActorDeadError).
        dead = threading.Event()
        dead.set()
        ref.actor_stopped = dead
    refs = getattr(pykka.ActorRegistry, "_actor_refs", None)
    if isinstance(refs, list):
        refs.clear()
        pykka.ActorRegistry._actor_refs_lock = threading.RLock()


def _pykka_refs() -> list[pykka.ActorRef[Any]]:
    refs = getattr(pykka.ActorRegistry, "_actor_refs", None)
    return list(refs) if isinstance(refs, list) else []


def _restart_after_fork(name: object) -> pykka.ActorRef[Any] | None:
    with _default_lock:
        if name not in _forked_away:
            return _registry.whereis(name)
        _forked_away.discard(name)
        spec = _started.get(name)
    if spec is None:
        raise ServerNotFound(
            f"token server {name!r} was started before os.fork() under a supervisor of yours, "
            "and no actor survives a fork: start it again in the child process"
        )
    parent = _default_supervisor()
    ref = cast("pykka.ActorRef[Any]", parent.ask(StartChild(spec), timeout=_SUPERVISOR_WAIT))
    _parents[name] = parent
    return ref


os.register_at_fork(after_in_child=_after_fork_in_child)

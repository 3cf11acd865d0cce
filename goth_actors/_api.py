"""Goth's API: start_link, child_spec, fetch, cached, refresh, stop, status, shutdown.

``fetch`` is the hot path. On a cached, valid token it does one dict read, one clock read and
one comparison: no lock, no queue, no message to the actor. Only a miss asks the server.

A server's child spec says what happens once its supervisor is done with it
(``on_final_exit``): its slot in the servers' table, token and all, is forgotten, so ``fetch``
raises ``ServerNotFound`` (the supervisor unregisters the name itself). Only a crash the
supervisor restarts keeps them, so that callers are served through the restart.

(Past 400 lines because ``start_link`` and ``child_spec`` spell out and document all thirteen
server options, as users and type checkers need; a test keeps them in step with ``_options``.)
"""

from __future__ import annotations

import atexit
import contextlib
import copy
import functools
import time as _time
from collections.abc import Callable, Hashable
from dataclasses import replace
from typing import Any, Literal, cast

import pykka

from goth_actors import (
    _fork,  # noqa: F401  # registers the os.fork() hook (_fork.py)
    _table,
)
from goth_actors._base import check_seconds
from goth_actors._errors import (
    AlreadyRegistered,
    AlreadyStarted,
    ChildAlreadyPresent,
    FailedToStartChild,
    FetchTimeout,
    ServerNotFound,
)
from goth_actors._options import ServerOptions
from goth_actors._protocol import (
    DEFAULT_TIMEOUT,
    BackoffType,
    HttpClient,
    Source,
    Token,
    close_default_client,
)
from goth_actors._root import root
from goth_actors._server import RestartBackoff, TokenServer, _CallerFetch, _CallerRefresh
from goth_actors._status import ServerStatus
from goth_actors.otp import (
    ChildSpec,
    FakeTime,
    stop_default_scheduler,
    unregister,
    whereis,
)

__all__ = [
    "SERVER_SHUTDOWN",
    "cached",
    "child_spec",
    "fetch",
    "refresh",
    "shutdown",
    "start_link",
    "status",
    "stop",
]

SERVER_SHUTDOWN = 0.25
"""Seconds a supervisor waits for a token server to stop before killing it.

A server in the middle of an exchange cannot be interrupted (a Python thread cannot be), and
it has nothing to save, so waiting longer would only delay the program's exit: killed, it is
dead at once, holds no name, and its thread ends with the exchange.
"""

_servers = _table.servers  # the servers' table, read directly on the hot path


class _Released:
    """A server spec's ``on_final_exit``: forget the slot (and the root's entry) it started."""

    __slots__ = ("options",)

    def __init__(self, options: ServerOptions) -> None:
        self.options = options

    def __repr__(self) -> str:
        return f"<forget token server {self.options.name!r}>"

    def __call__(self) -> None:
        _table.forget(self.options.name, origin=self.options)
        root.forget(self.options.name, self.options)


# ---------------------------------------------------------------------------- starting servers


def child_spec(
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
) -> ChildSpec:
    """Returns a ``ChildSpec`` that starts a token server, with ``id = name``.

    Takes the same options as [`start_link`][goth_actors.start_link] except ``supervisor``,
    validated now; put the [`ChildSpec`][goth_actors.ChildSpec] in a supervisor of yours.
    Several servers fit in one supervisor without the id clash Goth users hit. A server that
    its supervisor stops for good (terminated, deleted, the supervisor stopped, ...) releases
    its name and its token at once: [`fetch`][goth_actors.fetch] then raises
    [`ServerNotFound`][goth_actors.ServerNotFound]. A crash its supervisor restarts keeps
    both. A restart that fails (the server cannot even start) is retried after the server's
    own backoff (the spec's ``restart_delay``). The spec's ``shutdown`` is a quarter of a
    second: a server busy in an exchange cannot be interrupted and has nothing to save, so its
    supervisor kills it rather than wait.

    Raises:
        ConfigError: An option is invalid.

    Examples:
        ```python
        supervisor = Supervisor.start([
            child_spec(name="pubsub", source=ServiceAccount(key)),
            child_spec(name="storage", source=Metadata()),
        ])
        tenants = goth_actors.otp.DynamicSupervisor.start()
        goth_actors.otp.start_child(tenants, child_spec(name=("tenant", 42), source=source))
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
    )
    return _spec(options)


@functools.lru_cache(maxsize=64)
def _restart_backoff(backoff_min: float, backoff_max: float) -> RestartBackoff:
    """One (immutable) ``RestartBackoff`` for all the servers with the same backoff."""
    return RestartBackoff(backoff_min, backoff_max)


def _spec(options: ServerOptions) -> ChildSpec:
    return ChildSpec.for_actor(
        TokenServer,
        options,
        id=options.name,
        shutdown=SERVER_SHUTDOWN,
        restart_delay=_restart_backoff(options.backoff_min, options.backoff_max),
        on_final_exit=_Released(options),
    )


def start_link(
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
) -> pykka.ActorRef[TokenServer]:
    """Starts a token server under a supervisor and returns its actor ref.

    The server prefetches a token, refreshes it before it expires, retries failures with
    backoff, and crashes (to be restarted, its last good token kept) after ``max_retries``
    failed retries in a row.

    Args:
        name: Any hashable value but ``None``; [`fetch`][goth_actors.fetch] finds the server by
            it.
        source: Where tokens come from: a [`ServiceAccount`][goth_actors.ServiceAccount],
            [`RefreshToken`][goth_actors.RefreshToken], [`Metadata`][goth_actors.Metadata],
            [`WorkloadIdentity`][goth_actors.WorkloadIdentity],
            [`WorkforceUser`][goth_actors.WorkforceUser] or
            [`Impersonated`][goth_actors.Impersonated], or what
            [`default_source`][goth_actors.default_source] or
            [`source_from_credentials`][goth_actors.source_from_credentials] returns.
        http_client: The HTTP client (the contract is in
            [`HttpClient`][goth_actors.HttpClient]). Default: a shared ``requests.Session``.
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
        backoff_type: ``"exp"``, ``"rand"`` or ``"rand_exp"`` (default). Whatever the
            backoff says, a ``Retry-After`` from the endpoint is honoured when it is longer (up
            to an hour).
        retry_delay: ``retry_delay(attempt) -> seconds`` (``attempt`` counts the failures in a
            row, from 1) instead of the backoff type. If it raises or returns a negative,
            infinite or NaN delay, the error is logged and the retry waits ``backoff_max``
            seconds (at least 1).
        http_timeout: Seconds each exchange may take, connect to last byte, all its steps
            together (a deadline: a dripping endpoint cannot stretch it). Default 10.
        time: A [`FakeTime`][goth_actors.otp.FakeTime] for tests: the server reads its wall
            clock and arms its timers on its scheduler. Default ``None``: real time.
        supervisor: The supervisor to start under (its ``ActorRef``). Default: the library's
            root supervisor, started on first use and stopped at interpreter exit (or by
            [`shutdown`][goth_actors.shutdown]).

    Returns:
        The server's ``ActorRef``.

    Raises:
        ConfigError: An option is invalid (raised before any actor starts).
        AlreadyStarted: A server with this name is running.
        AlreadyRegistered: Another actor (not a token server) is registered under this name.

    Examples:
        ```python
        start_link(name="my_app", source=ServiceAccount(json.load(open("key.json"))))
        fetch("my_app").token
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
    )
    return _start(options, supervisor)


def _start(
    options: ServerOptions, supervisor: pykka.ActorRef[Any] | None
) -> pykka.ActorRef[TokenServer]:
    """Starts a server with ``options`` (its identity: ``origin`` in the table and the root)."""
    name = options.name
    holder = whereis(name)
    if holder is not None:
        if not issubclass(holder.actor_class, TokenServer):
            raise AlreadyRegistered(name)  # one namespace: an actor of yours has the name
        raise AlreadyStarted(name)
    try:
        return cast(
            "pykka.ActorRef[TokenServer]", root.start(name, _spec(options), options, supervisor)
        )
    except FailedToStartChild as exc:
        if isinstance(exc.reason, AlreadyStarted):
            raise AlreadyStarted(name) from None
        raise
    except ChildAlreadyPresent:  # the supervisor still has a child with this id
        raise AlreadyStarted(name) from None


# ------------------------------------------------------------------------------------ fetching


def fetch(name: Hashable, timeout: float = 5.0) -> Token:
    """Returns the server's token: at once when cached, else waits up to ``timeout`` seconds.

    A cached token is returned without a lock or a message to the server; it is never one
    that expires within the next 10 seconds. Otherwise the caller waits for the server's
    attempt in flight (single flight: one request however many callers wait). Between a
    crash of the server and its restart, a still-valid token is served, or the caller waits
    for the new server. In a coroutine, use [`fetch_async`][goth_actors.fetch_async].

    Args:
        name: The server's name, as given to [`start_link`][goth_actors.start_link].
        timeout: Seconds to wait when no valid token is cached (default 5). It is checked
            when it is used: a cached token returns before that.

    Returns:
        The [`Token`][goth_actors.Token].

    Raises:
        ServerNotFound: No server has this name (a ``LookupError``).
        FetchTimeout: No token within ``timeout`` (a ``TimeoutError``).
        TokenEndpointError: The server's attempt failed: the endpoint answered with an error.
            Between retries with no valid token, the last error is raised at once.
        TransportError: The server's attempt failed: no usable answer (as above).
        TypeError: ``timeout`` is not a number (``None``, ``"5"``).
        ValueError: ``timeout`` is negative, infinite or NaN.

    Examples:
        ```python
        token = fetch("my_app")
        requests.get(url, headers={"Authorization": f"Bearer {token.token}"})
        ```
    """
    value = _servers.get(name)
    if value is not None and value.fresh_until > value.clock():
        return value.token  # type: ignore[return-value]  # fresh_until is -inf without one
    return _fetch_slow(name, timeout)


def cached(name: Hashable) -> Token | None:
    """Returns the token `fetch` would return at once, or ``None``: never waits, never asks.

    For integrations that must not block (an event loop, a gRPC metadata plugin) and for
    health checks. ``None`` when the server holds no token that is valid for 10 more seconds,
    or when no server has this name. Like [`fetch`][goth_actors.fetch] on a hit: one dict
    read, no lock.

    Raises:
        TypeError: ``name`` is not hashable.

    Examples:
        >>> cached("nobody-started-this") is None
        True
    """
    value = _servers.get(name)
    if value is not None and value.fresh_until > value.clock():  # fetch's hit, inlined
        return value.token
    return None


def _fetch_slow(name: Hashable, timeout: float) -> Token:
    timeout = check_seconds("timeout", timeout, error=ValueError)
    deadline = _time.monotonic() + timeout
    pause = 0.001
    while True:
        value = _table.published(name)
        if value is None:
            raise ServerNotFound(f"no token server is named {name!r}")
        ref = whereis(name)
        if ref is None and name in root.forked_away:
            ref = root.restart_after_fork(name)
            if ref is None and not root.knows(name):
                raise ServerNotFound(
                    f"token server {name!r} was started before os.fork() under a supervisor "
                    "of yours, and no actor survives a fork: start it again in the child process"
                )
        if ref is not None and not issubclass(ref.actor_class, TokenServer):
            raise ServerNotFound(f"{name!r} names an actor that is not a token server")
        remaining = deadline - _time.monotonic()
        if ref is not None:
            try:
                outcome = ref.ask(_CallerFetch(), timeout=max(remaining, 0.0))
            except pykka.Timeout:
                raise FetchTimeout(f"no token from server {name!r} within {timeout} s") from None
            except pykka.ActorDeadError:
                pass  # crashed or restarting: look the name up again
            else:
                if isinstance(outcome, BaseException):
                    raise _own_copy(outcome)
                return cast(Token, outcome)
        # Between a crash and the restart: serve a still-valid token, or wait for the new actor.
        value = _table.published(name)
        if value is not None and value.token is not None and value.fresh():
            return value.token
        remaining = deadline - _time.monotonic()
        if remaining <= 0:
            raise FetchTimeout(
                f"no token from server {name!r} within {timeout} s (the server is not running)"
            )
        _time.sleep(min(pause, remaining))
        pause = min(pause * 2, 0.05)


def refresh(
    name: Hashable,
    *,
    unless_changed_from: str | Token | None = None,
    unless_attempted_since: float | None = None,
    timeout: float = 5.0,
) -> Token:
    """Asks the named server for a new token now (a forced refresh) and returns it.

    Concurrent calls share one exchange: the first makes it, and those queued behind it get
    its result (by default a call wants a token other than the one held when it was made).
    With ``unless_changed_from`` (a token an API rejected), the exchange is skipped if the
    server already holds another token; with ``unless_attempted_since`` (a
    ``time.monotonic()`` reading, when the rejected token was sent), if an exchange started
    since. A failure is raised here, on the caller's side (it is
    not logged by Pykka as a traceback for each call).
    [`refresh_rejected`][goth_actors.integrations.refresh_rejected] is the whole 401 logic
    built on it.

    Args:
        name: The server's name.
        unless_changed_from: The token the API rejected (the `Token`, or its ``token``
            string): no exchange if the server already holds a different valid token
            (returned instead). Default, when neither this nor ``unless_attempted_since`` is
            given: the token held at the moment of the call.
        unless_attempted_since: A ``time.monotonic()`` reading: no exchange if one started
            since then (the server's valid token is returned instead).
        timeout: Seconds to wait for the new token (default 5).

    Returns:
        The new [`Token`][goth_actors.Token] (or the newer one already held, as above).

    Raises:
        ServerNotFound: No server has this name.
        FetchTimeout: No token within ``timeout``.
        TokenEndpointError: The forced exchange failed: the endpoint answered with an error.
            While the server waits to retry an earlier failure, that error is raised at once.
        TransportError: The forced exchange failed: no usable answer (as above).
        TypeError: ``timeout`` is not a number.
        ValueError: ``timeout`` is negative, infinite or NaN.

    Examples:
        ```python
        token = refresh("my_app", unless_changed_from=rejected.token)
        ```
    """
    if unless_changed_from is None and unless_attempted_since is None:
        # Newer than the token held now: a call queued behind another's exchange gets its
        # result, while a later call makes an exchange of its own.
        held = cached(name)
        unless_changed_from = None if held is None else held.token
    if isinstance(unless_changed_from, Token):
        unless_changed_from = unless_changed_from.token
    elif unless_changed_from is not None and not isinstance(unless_changed_from, str):
        raise TypeError(
            "unless_changed_from must be the rejected Token or its token string, not "
            f"{type(unless_changed_from).__name__}"
        )
    timeout = check_seconds("timeout", timeout, error=ValueError)
    deadline = _time.monotonic() + timeout
    ref = whereis(name)
    if ref is not None and issubclass(ref.actor_class, TokenServer):
        message = _CallerRefresh(
            unless_changed_from=unless_changed_from,
            unless_attempted_since=unless_attempted_since,
        )
        try:
            outcome = ref.ask(message, timeout=max(deadline - _time.monotonic(), 0.0))
        except pykka.Timeout:
            raise FetchTimeout(f"no new token from server {name!r} within {timeout} s") from None
        except pykka.ActorDeadError:
            pass  # stopped meanwhile: fall back on what fetch finds
        else:
            if isinstance(outcome, BaseException):
                raise _own_copy(outcome)
            return cast(Token, outcome)
    return fetch(name, max(deadline - _time.monotonic(), 0.0))


# ---------------------------------------------------------------------------------- managing


def stop(name: Hashable, timeout: float = 5.0) -> None:
    """Stops the named server and forgets its token.

    A server started by [`start_link`][goth_actors.start_link] is removed from its supervisor.
    One you put in your own supervisor with [`child_spec`][goth_actors.child_spec] is better
    stopped there ([`terminate_child(sup, name)`][goth_actors.otp.terminate_child], which
    releases its name and token too): this function stops the actor, and a ``permanent``
    child would be restarted.

    The name is forgotten at once. A server in the middle of an exchange is killed by its
    supervisor after a quarter of a second and ends when the exchange ends; it can no longer
    write to the servers' table.

    Args:
        name: The server's name.
        timeout: Seconds to wait for the actor to stop (default 5); past it, ``stop``
            returns all the same.

    Raises:
        ServerNotFound: No server has this name.
        TypeError: ``timeout`` is not a number.
        ValueError: ``timeout`` is negative, infinite or NaN.
    """
    timeout = check_seconds("timeout", timeout, error=ValueError)  # before anything is done
    if _table.published(name) is None:
        raise ServerNotFound(f"no token server is named {name!r}")
    root.remove(name)
    ref = whereis(name)
    if ref is not None and not issubclass(ref.actor_class, TokenServer):
        ref = None  # the name went to another actor: not ours to stop
    _forget(name, ref)
    if ref is not None:
        # A server in the middle of an exchange stops when the exchange ends; it can no longer
        # write to the table, so there is nothing to wait for past the timeout.
        with contextlib.suppress(pykka.Timeout):
            ref.stop(block=True, timeout=timeout)


def _forget(name: Hashable, ref: pykka.ActorRef[Any] | None) -> None:
    """Free the name and drop the server's slot: whatever the actor does next, it is gone."""
    _table.forget(name)
    if ref is not None:
        unregister(name, ref=ref)
    elif whereis(name) is None:
        unregister(name)  # a dead holder's entry


def status(name: Hashable) -> ServerStatus:
    """Returns the named server's health: state, expiry, last refresh, failures, restarts.

    Read from the servers' table, without asking the server, so it answers even while the
    server is busy with a slow exchange. A server that is not running (crashed and not yet
    restarted, or given up on) is ``"down"``.

    Returns:
        A [`ServerStatus`][goth_actors.ServerStatus].

    Raises:
        ServerNotFound: No server has this name.
    """
    value = _table.published(name)
    if value is None:
        raise ServerNotFound(f"no token server is named {name!r}")
    current = value.status  # carries its source and quota project from the server's start
    ref = whereis(name)
    if current.state != "down" and (ref is None or ref.actor_urn != value.owner):
        return replace(current, state="down", next_attempt=None, has_valid_token=value.fresh())
    return replace(current, has_valid_token=value.fresh())


def shutdown(timeout: float = 10.0) -> None:
    """Stops the default root supervisor and every server under it, and forgets their names.

    Runs at interpreter exit; tests call it too. Servers started under your own supervisors
    are yours to stop, and keep running: the timer thread is stopped only when no actor is
    left (otherwise it ends by itself once idle). A server in the middle of an exchange is
    killed after a quarter of a second (all of them in parallel), never waited for. Safe to
    call more than once; the next [`start_link`][goth_actors.start_link] starts afresh.

    Args:
        timeout: Seconds to wait for the root supervisor to stop (default 10).

    Raises:
        TypeError: ``timeout`` is not a number (nothing is stopped).
        ValueError: ``timeout`` is negative, infinite or NaN (nothing is stopped).
    """
    timeout = check_seconds("timeout", timeout, error=ValueError)
    for name in root.shutdown(timeout):
        _forget(name, None)
    if not any(ref.is_alive() for ref in pykka.ActorRegistry.get_all()):
        # Other actors (your supervisors' servers) may still need the timer thread; it is a
        # daemon thread and ends by itself once idle.
        stop_default_scheduler()
    close_default_client()


def _own_copy(error: BaseException) -> BaseException:
    """A copy of an error a server answered with, for this caller to raise.

    The server's thread holds on to its last answer until its next message; raised as it is,
    the error would carry this caller's frames in its traceback and keep them (and all they
    hold) alive that long.
    """
    try:
        return copy.copy(error)
    except Exception:  # an error that cannot be copied is raised as it is
        return error


atexit.register(shutdown)

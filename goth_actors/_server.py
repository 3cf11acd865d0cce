"""The token server: one Pykka actor per name that keeps one token fresh (Goth's server).

The actor is the only writer of its name's slot in the servers' table (``_table.py``);
callers read that slot without a lock (see ``goth_actors.fetch``). Every exchange with
Google runs on the actor's thread, one at a time, so concurrent callers never cause more than
one request (single flight).

Life of a server:

    start ─► attempt ─ok─► serve, refresh at min(fetched + refresh_after, expires - refresh_before)
               ▲  └fail─► retry after backoff (Retry-After honoured) ─► attempt ...
               │                └ more than max_retries retries failed ─► raise: crash
               └──────── supervisor restart (token kept in the table, prefetch paced)

One actor, one life, read top to bottom: a little over 400 lines, kept in one module on purpose.
"""

from __future__ import annotations

import copy
import logging
import math
import os
import random
import time
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any

import pykka

from goth_actors import _table
from goth_actors._errors import AlreadyStarted, RetriesExhausted
from goth_actors._events import Event, EventKind, emit, wanted
from goth_actors._options import ServerOptions
from goth_actors._protocol import Backoff, Token, TokenError, redact
from goth_actors._status import ServerState, ServerStatus
from goth_actors.otp import AlreadyRegistered, Scheduler, TimerHandle, default_scheduler, register

__all__ = ["EXPIRY_MARGIN", "Fetch", "Refresh", "RestartBackoff", "TokenServer"]

logger = logging.getLogger("goth_actors.server")

EXPIRY_MARGIN = 10.0
"""A token is never handed out when it expires within this many seconds."""

MIN_REFRESH_INTERVAL = 1.0
"""The next refresh never comes sooner than this after the previous success."""

REFRESH_JITTER = 0.1
"""Refreshes come up to this fraction of their interval early (never later)."""

MIN_RETRY_DELAY = 0.01
"""No retry comes sooner than this after a failure, whatever the backoff says."""

MAX_RETRY_AFTER = 3600.0
"""A ``Retry-After`` longer than this is capped: an endpoint cannot silence a server for days."""

_RNG = random.Random()  # one for every server: a Random each costs 2.5 KiB and a urandom seed
os.register_at_fork(after_in_child=_RNG.seed)  # a forked child jitters apart from its parent
_KEEP: Any = object()  # _set_status: "this field as it was"


@dataclass(frozen=True, slots=True)
class RestartBackoff:
    """A token server's ``restart_delay``: how long its supervisor waits to retry a failed start.

    A restart fails when the server cannot even start (no thread at a pids limit, say): the
    supervisor retries it after ``backoff_min`` (at least 10 ms), doubling up to
    ``backoff_max``, the server's own backoff. It calls no user code (not ``retry_delay``):
    it runs in the supervisor's thread.
    """

    backoff_min: float
    backoff_max: float

    def __call__(self, failures: int) -> float:
        low = max(self.backoff_min, MIN_RETRY_DELAY)
        high = max(self.backoff_max, MIN_RETRY_DELAY)
        return min(high, low * 2.0 ** min(failures - 1, 30))


@dataclass(frozen=True, slots=True)
class Fetch:
    """Asks a token server for its token: ``whereis(name).ask(Fetch(), timeout=5.0)``.

    The answer is a [`Token`][goth_actors.Token] valid for at least 10 more seconds: the cached
    one, or the result of an exchange the server makes then (one for all the askers waiting).
    A failed exchange is raised to the asker; so is the last error, at once, while the server
    waits to retry. The server lives on, unless that failure was its last retry: it then
    crashes, and its supervisor restarts it. [`fetch`][goth_actors.fetch] does all this for
    you, without a message at all when a token is cached; the message is for code that talks
    to actors with ``ask``. Do not ``tell`` it: Pykka stops an actor when a told message
    raises, so a told ``Fetch`` or ``Refresh`` whose exchange fails crashes the server (its
    supervisor restarts it, with its token kept).
    """


@dataclass(frozen=True, slots=True)
class Refresh:
    """Asks a token server to fetch a new token now, and answer with it (a forced refresh).

    [`refresh`][goth_actors.refresh] does this for you. Failures are answered as for
    [`Fetch`][goth_actors.Fetch].

    Attributes:
        unless_changed_from: When set, skip the exchange if the server's valid token is
            already a different one than this (someone else refreshed it meanwhile), and answer
            with that.
        unless_attempted_since: When set (a ``time.monotonic()`` reading, e.g. when the
            rejected token was sent), skip the exchange if one started since then, and answer
            with the current token (if it is valid): a metadata server hands out the same
            token again, so a changed token is not the only sign that a refresh already
            happened.
    """

    unless_changed_from: str | None = field(default=None, repr=False)
    unless_attempted_since: float | None = None


@dataclass(frozen=True, slots=True)
class _CallerFetch:
    """What ``goth_actors.fetch`` asks: `Fetch`, with a failure as the answer.

    The failure is raised on the caller's side, so Pykka does not log every failed fetch.
    """


@dataclass(frozen=True, slots=True)
class _CallerRefresh(Refresh):
    """What ``goth_actors.refresh`` asks: `Refresh`, with a failure as the answer.

    Each 401 an API answers must not make Pykka log a traceback.
    """


@dataclass(frozen=True, slots=True)
class _Tick:
    generation: int


@dataclass(frozen=True, slots=True)
class _Crash:
    error: RetriesExhausted


class TokenServer(pykka.ThreadingActor):
    """Keeps one token fresh: prefetches, refreshes before expiry, retries with backoff.

    Start it with ``goth_actors.start_link`` (or put ``goth_actors.child_spec`` in a
    supervisor); ask it with `Fetch`. Registering the name happens in ``__init__``, in
    the starting thread, so a second server with a running name fails to start with
    ``AlreadyStarted`` before any thread exists.
    """

    use_daemon_thread = True

    def __init__(self, options: ServerOptions) -> None:
        super().__init__()
        self._options = options
        self._name = options.name
        try:
            register(options.name, self.actor_ref)
        except AlreadyRegistered:
            raise AlreadyStarted(options.name) from None
        previous = _table.claim(options.name, self.actor_urn, options)
        if previous is not None and previous.source != options.source:
            previous = None  # a different identity took the name: inherit nothing
        fake = options.time
        self._clock = time.time if fake is None else fake.time
        self._scheduler: Scheduler = default_scheduler() if fake is None else fake.scheduler
        self._backoff: Backoff | None = None  # made at the first failure, dropped at a success
        self._token: Token | None = previous.token if previous else None
        self._restarts = previous.status.restarts + 1 if previous else 0
        # Restarted after dying of failures: pace the first attempt like the next retry, and
        # honour a Retry-After the last failure carried.
        last_error = previous.status.last_error if previous else None
        self._paced = last_error is not None
        self._paced_retry_after = last_error.retry_after if last_error is not None else None
        self._status = ServerStatus(
            name=options.name,
            state="starting",
            expires=self._token.expires if self._token else None,
            last_refresh=previous.status.last_refresh if previous else None,
            last_error=previous.status.last_error if previous else None,
            restarts=self._restarts,
            quota_project_id=options.source.quota_project_id,
            source=options.source,
        )
        self._generation = 0
        self._last_attempt = -math.inf  # time.monotonic() when the last exchange started
        self._timer: TimerHandle | None = None
        self._publish(create=True)

    # ------------------------------------------------------------------------------ lifecycle

    def on_start(self) -> None:
        if self._restarts:
            self._emit("restart")
        if self._paced:
            # A crash loop must not become a hot loop: pace the restarted server's first
            # attempt with the backoff, as if it were the next retry.
            self._backoff_delay_attempt(self._restarts, self._paced_retry_after)
        elif self._options.prefetch == "sync":
            # Supervisors wait for on_start: the first attempt is over when the start returns,
            # whether it succeeded or not.
            error = self._attempt()
            if isinstance(error, RetriesExhausted):
                self.actor_ref.tell(_Crash(error))
        else:
            # Straight into the inbox, ahead of any fetch asked once the start has returned.
            self._generation += 1
            self.actor_ref.tell(_Tick(self._generation))

    def on_stop(self) -> None:
        # The slot, and the token in it, stay: a supervisor restarting a stopped permanent
        # server hands them to the successor. A server gone for good is forgotten by its
        # spec's on_final_exit (and by stop(name) and shutdown()).
        self._cancel_timer()
        self._set_status(state="down", next_attempt=None)

    def on_failure(  # Pykka's signature
        self,
        exception_type: type[BaseException] | None,  # noqa: ARG002
        exception_value: BaseException | None,  # noqa: ARG002
        traceback: TracebackType | None,  # noqa: ARG002
    ) -> None:
        # The table's slot, and the token in it, outlive the crash on purpose.
        self._cancel_timer()
        self._set_status(state="down", next_attempt=None)

    def on_receive(self, message: Any) -> Any:
        if isinstance(message, _CallerFetch):
            try:
                return self._on_fetch()
            except TokenError as error:
                return error
        if isinstance(message, _CallerRefresh):
            try:
                return self._on_refresh(message)
            except TokenError as error:
                return error
        if isinstance(message, Fetch):
            return self._on_fetch()
        if isinstance(message, _Tick):
            return self._on_tick(message)
        if isinstance(message, Refresh):
            return self._on_refresh(message)
        if isinstance(message, _Crash):
            raise message.error
        return super().on_receive(message)

    # ------------------------------------------------------------------------------- messages

    def _on_fetch(self) -> Token:
        token = self._valid_token()
        if token is not None:
            return token
        self._raise_while_failing()
        return self._attempt_for_caller()

    def _on_refresh(self, message: Refresh) -> Token:
        current = self._valid_token()
        if current is not None and (
            (
                message.unless_changed_from is not None
                and current.token != message.unless_changed_from
            )
            or (
                message.unless_attempted_since is not None
                and self._last_attempt >= message.unless_attempted_since
            )
        ):
            return current
        self._raise_while_failing()
        return self._attempt_for_caller()

    def _raise_while_failing(self) -> None:
        """Between retries (or about to crash), answers with the last error at once.

        An endpoint that is down sees one request per backoff step, however many callers ask.
        """
        if self._status.state in ("retrying", "down") and self._status.last_error is not None:
            raise copy.copy(self._status.last_error)

    def _on_tick(self, tick: _Tick) -> None:
        if tick.generation != self._generation:
            return  # superseded by a later schedule
        self._timer = None
        error = self._attempt()
        if isinstance(error, RetriesExhausted):
            raise error  # tell-delivered: the actor dies and its supervisor restarts it

    # -------------------------------------------------------------------------------- attempts

    def _attempt_for_caller(self) -> Token:
        error = self._attempt()
        if error is None:
            assert self._token is not None
            return self._token
        if isinstance(error, RetriesExhausted):
            # An exception raised to an asker does not kill a Pykka actor; a tell does.
            self.actor_ref.tell(_Crash(error))
            raise copy.copy(error.last_error)
        raise copy.copy(error)

    def _attempt(self) -> TokenError | RetriesExhausted | None:
        """Makes one exchange; on failure, schedules the retry or returns the crash to raise."""
        self._cancel_timer()
        self._set_status(state="fetching", next_attempt=None)
        self._emit("attempt", attempt=self._status.consecutive_failures)
        started = self._last_attempt = time.monotonic()
        options = self._options
        try:
            token = Token.fetch(
                options.source,
                http_client=options.http_client,
                timeout=options.http_timeout,
                clock=self._clock,
            )
        except TokenError as exc:
            return self._failed(exc, time.monotonic() - started)
        except Exception as exc:  # a broken http_client or source: report, do not die here
            detail = redact(f"{type(exc).__name__}: {exc}")[:300]
            error = TokenError(f"unexpected {detail}", retryable=False)
            return self._failed(error, time.monotonic() - started)
        now = self._clock()
        if token.expires - EXPIRY_MARGIN <= now:
            error = TokenError(
                f"the endpoint handed out a token that expires in {token.expires - now:.1f} s, "
                f"under the {EXPIRY_MARGIN:.0f} s margin",
                retryable=True,
            )
            return self._failed(error, time.monotonic() - started)
        self._succeeded(token, now, time.monotonic() - started)
        return None

    def _succeeded(self, token: Token, now: float, duration: float) -> None:
        self._token = token
        self._backoff = None  # the next failure starts from the first delay
        delay = self._refresh_delay(token, now)
        next_attempt = self._schedule(delay)
        self._set_status(
            state="ok",
            expires=token.expires,
            last_refresh=now,
            consecutive_failures=0,
            last_error=None,
            next_attempt=next_attempt,
        )
        self._emit("success", duration=duration, expires=token.expires)
        self._emit("refresh_scheduled", delay=delay)

    def _failed(self, error: TokenError, duration: float) -> TokenError | RetriesExhausted:
        failures = self._status.consecutive_failures + 1
        self._set_status(state="retrying", consecutive_failures=failures, last_error=error)
        self._emit("failure", attempt=failures, duration=duration, error=error)
        max_retries = self._options.max_retries
        if max_retries is not None and failures > max_retries:
            crash = RetriesExhausted(self._name, failures, error)
            self._set_status(state="down", next_attempt=None)
            self._emit("crash", attempt=failures, error=error)
            return crash
        self._backoff_delay_attempt(failures, error.retry_after)
        return error

    def _backoff_delay_attempt(self, attempt: int, retry_after: float | None = None) -> None:
        backoff = self._backoff
        if backoff is None:
            options = self._options
            backoff = self._backoff = Backoff(
                options.backoff_type,
                options.backoff_min,
                options.backoff_max,
                retry_delay=options.retry_delay,
                rng=_RNG,
            )
        try:
            delay = max(backoff.next(), MIN_RETRY_DELAY)
        except BaseException:  # a retry_delay of the user's that raised (even sys.exit())
            logger.exception(
                "token server %r: retry_delay failed; retrying after %s s",
                self._name,
                self._options.backoff_max,
            )
            delay = max(self._options.backoff_max, 1.0)
        if retry_after is not None and retry_after > delay:
            delay = min(retry_after, MAX_RETRY_AFTER)
        next_attempt = self._schedule(delay)
        self._set_status(state="retrying", next_attempt=next_attempt)
        self._emit("retry_scheduled", attempt=attempt, delay=delay)

    def _refresh_delay(self, token: Token, now: float) -> float:
        """Seconds until the next refresh after a success at ``now``."""
        options = self._options
        lifetime = token.expires - now
        # refresh_before ahead of expiry, but never before half the usable lifetime: metadata
        # servers hand out cached tokens with minutes left, and refreshing those at once would
        # loop back-to-back (Goth's hot loop).
        before_expiry = max(lifetime - options.refresh_before, (lifetime - EXPIRY_MARGIN) / 2)
        interval = min(options.refresh_after, before_expiry)
        interval -= _RNG.uniform(0.0, REFRESH_JITTER * interval)
        return max(interval, MIN_REFRESH_INTERVAL)

    # ----------------------------------------------------------------------------- machinery

    def _valid_token(self) -> Token | None:
        token = self._token
        if token is not None and token.expires - EXPIRY_MARGIN > self._clock():
            return token
        return None

    def _schedule(self, delay: float) -> float | None:
        """Arms the next attempt in ``delay`` seconds; returns when it is due (wall clock).

        The caller publishes it, with the status change it goes with (one write).
        """
        self._cancel_timer()
        self._generation += 1
        if self.actor_stopped.is_set():
            return None  # killed by its supervisor in the middle of an exchange: no timers
        self._timer = self._scheduler.send_after(self.actor_ref, _Tick(self._generation), delay)
        if self.actor_stopped.is_set():  # killed meanwhile
            self._cancel_timer()
            return None
        return self._clock() + delay

    def _cancel_timer(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def _set_status(
        self,
        state: ServerState,
        *,
        expires: Any = _KEEP,
        last_refresh: Any = _KEEP,
        consecutive_failures: Any = _KEEP,
        last_error: Any = _KEEP,
        next_attempt: Any = _KEEP,
    ) -> None:
        # What dataclasses.replace does, in half the time (three of these per exchange); a
        # field not named here (restarts, has_valid_token, ...) is a TypeError, as there.
        old = self._status
        self._status = ServerStatus(
            name=old.name,
            state=state,
            expires=old.expires if expires is _KEEP else expires,
            last_refresh=old.last_refresh if last_refresh is _KEEP else last_refresh,
            consecutive_failures=(
                old.consecutive_failures if consecutive_failures is _KEEP else consecutive_failures
            ),
            last_error=old.last_error if last_error is _KEEP else last_error,
            restarts=old.restarts,
            next_attempt=old.next_attempt if next_attempt is _KEEP else next_attempt,
            has_valid_token=old.has_valid_token,
            quota_project_id=old.quota_project_id,
            source=old.source,
        )
        self._publish()

    def _publish(self, *, create: bool = False) -> None:
        token = self._token
        value = _table.Published(
            owner=self.actor_urn,
            token=token,
            fresh_until=token.expires - EXPIRY_MARGIN if token is not None else -math.inf,
            clock=self._clock,
            status=self._status,
            source=self._options.source,
            origin=self._options,
        )
        _table.publish(self._name, value, create=create)

    def _emit(self, kind: EventKind, **fields: Any) -> None:
        if wanted(kind):
            source_type = type(self._options.source).__name__
            event = Event(
                kind=kind, name=self._name, time=self._clock(), source_type=source_type, **fields
            )
            emit(event)

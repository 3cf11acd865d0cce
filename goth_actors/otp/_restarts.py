"""A supervisor's record of each child, and its restarts: intensity, backoff, retries.

**Intensity** (`Intensity`): more than ``max_restarts`` restarts within
``max_seconds`` (a restart exactly ``max_seconds`` old still counts, as in OTP) and the
supervisor gives up.

**Failed restarts** are retried, and each retry counts towards the intensity, as in OTP.
Where OTP retries at once, a retry here waits (`retry_delay`): ``spec.restart_delay``
if given, else a backoff that starts at ``min(0.1, max_seconds / (2 * (max_restarts + 1)))``
(at least 1 ms) and doubles with each consecutive failure, up to 1 s. A start that keeps
failing therefore reaches the intensity limit of an ordinary supervisor within a second or so,
while one that fails for a while (no thread at a pids limit, a name not yet released) is
retried at a bounded rate instead of in a hot loop. A failure is logged at ERROR at most once
per child every 10 s (`log_failure`; the others at DEBUG, counted in the next ERROR).

**Retries that cannot be lost** (`Retries`): with real time, the supervisor keeps one
``RetryTick`` message in its own inbox and, between ticks, waits on that inbox for the next
message or the next retry, whichever comes first. No scheduler thread is involved, so stopping
a scheduler (or a thread limit that keeps one from starting) cannot lose a retry. With a
``FakeTime``, the tick is a timer on its scheduler instead, fired by ``advance``.
"""

from __future__ import annotations

import heapq
import logging
from collections import deque
from collections.abc import Callable, Hashable
from dataclasses import dataclass
from typing import Any

import pykka

from goth_actors._base import ConfigError, check_seconds
from goth_actors.otp._childspec import ChildSpec
from goth_actors.otp._fake_time import FakeTime
from goth_actors.otp._inbox import Inbox
from goth_actors.otp._link import _Link
from goth_actors.otp._timers import TimerHandle

__all__ = [
    "Child",
    "Intensity",
    "Retries",
    "RetryTick",
    "check_intensity",
    "log_failure",
    "retry_delay",
]

logger = logging.getLogger("goth_actors.otp")

_MIN_RETRY = 0.001  # no failed restart is retried sooner (seconds)
_MAX_DEFAULT_RETRY = 1.0  # the default backoff stops growing here (seconds)
_LOG_EVERY = 10.0  # at most one ERROR line per child per this many seconds of failures
_MAX_WAIT = 3600.0  # longest single wait on the inbox (threading.TIMEOUT_MAX is far above)


@dataclass(frozen=True, slots=True)
class RetryTick:
    """Told by a supervisor to itself while failed restarts are waiting to be retried."""


class Child:
    """What a supervisor knows of one child (its spec, its running instance, its restarts)."""

    __slots__ = (
        "failures",
        "held",
        "last_reason",
        "last_ref",
        "link",
        "logged_at",
        "names",
        "quiet",
        "ref",
        "restarting",
        "restarts",
        "retry_seq",
        "spec",
    )

    def __init__(self, spec: ChildSpec) -> None:
        self.spec = spec
        self.ref: pykka.ActorRef[Any] | None = None
        self.link: _Link | None = None
        self.last_ref: pykka.ActorRef[Any] | None = None  # the last instance that ran
        self.held = False  # a start was made since the last final exit
        self.restarts = 0
        self.names: tuple[Hashable, ...] = ()  # names to hand to the next instance
        self.restarting = False  # a restart failed and will be retried
        self.retry_seq = 0
        self.failures = 0  # consecutive failed restarts
        self.last_reason: BaseException | None = None
        self.logged_at: float | None = None
        self.quiet = 0  # failures logged at DEBUG since the last ERROR line

    def started(self) -> None:
        """A start succeeded: the failures are over."""
        self.restarting = False
        self.failures = self.quiet = 0
        self.logged_at = None


class Intensity:
    """The restarts of the last ``max_seconds``, against ``max_restarts``."""

    def __init__(self, max_restarts: int, max_seconds: float) -> None:
        self.max_restarts = max_restarts
        self.max_seconds = float(max_seconds)
        self._times: deque[float] = deque()

    def exceeded_by_one_more(self, now: float) -> bool:
        """Counts a restart at ``now``; returns whether that is one too many."""
        self._times.append(now)
        while self._times[0] < now - self.max_seconds:
            self._times.popleft()
        return len(self._times) > self.max_restarts


def check_intensity(
    max_restarts: object, max_seconds: object, on_event: object, time: object
) -> None:
    """Validates the options both supervisors take, naming the first wrong one."""
    if not isinstance(max_restarts, int) or isinstance(max_restarts, bool) or max_restarts < 0:
        raise ConfigError("max_restarts", f"must be an int >= 0, not {max_restarts!r}")
    check_seconds("max_seconds", max_seconds, allow_minimum=False)
    if on_event is not None and not callable(on_event):
        raise ConfigError("on_event", f"must be callable, not {on_event!r}")
    if time is not None and not isinstance(time, FakeTime):
        raise ConfigError("time", f"must be a FakeTime or None, not {type(time).__name__}")


def retry_delay(child: Child, intensity: Intensity, owner: object) -> float:
    """Seconds before the next retry of ``child``'s failed restart (see the module docstring)."""
    pause = intensity.max_seconds / (2 * (intensity.max_restarts + 1))
    base = max(_MIN_RETRY, min(0.1, pause))
    default = min(base * 2.0 ** min(child.failures - 1, 30), max(base, _MAX_DEFAULT_RETRY))
    delay = child.spec.restart_delay
    if delay is None:
        return default
    if callable(delay):
        try:
            delay = check_seconds("restart_delay", delay(child.failures))
        except BaseException:  # the user's function: it must not take the tree down
            logger.exception(
                "%s: restart_delay of %r failed; using %s s", owner, child.spec.id, default
            )
            return default
    return max(delay, _MIN_RETRY)


def log_failure(
    child: Child, reason: BaseException, delay: float, now: float, owner: object
) -> None:
    """Logs a failed restart: at ERROR at most every 10 s per child, otherwise at DEBUG."""
    if child.logged_at is None or now - child.logged_at >= _LOG_EVERY:
        more = f" ({child.quiet} more failures since the last report)" if child.quiet else ""
        logger.error(
            "%s: restarting child %r failed (%d in a row): %r; retrying in %.3g s%s",
            owner,
            child.spec.id,
            child.failures,
            reason,
            delay,
            more,
        )
        child.logged_at, child.quiet = now, 0
    else:
        child.quiet += 1
        logger.debug("%s: restarting child %r failed again: %r", owner, child.spec.id, reason)


class Retries:
    """The failed restarts a supervisor has yet to retry, and the tick that brings them due."""

    def __init__(
        self, owner: pykka.ActorRef[Any], clock: Callable[[], float], fake: FakeTime | None
    ) -> None:
        self._owner = owner
        self._clock = clock
        self._fake = fake
        self._heap: list[tuple[float, int, Child]] = []
        self._seq = 0
        self._tick_pending = False
        self._fake_tick: TimerHandle | None = None

    def add(self, child: Child, delay: float, is_current: Callable[[Child], bool]) -> None:
        """Retries ``child``'s restart in ``delay`` seconds."""
        child.restarting = True
        self._seq += 1
        child.retry_seq = self._seq
        heapq.heappush(self._heap, (self._clock() + delay, self._seq, child))
        self._arm(is_current)

    def take_due(self, is_current: Callable[[Child], bool]) -> Child | None:
        """The next child whose retry is due now, if any (taken off the list)."""
        due = self._next(is_current)
        if due is None or due > self._clock():
            return None
        child = heapq.heappop(self._heap)[2]
        child.restarting = False
        return child

    def ticked(self) -> None:
        """The tick arrived: a new one may be armed."""
        self._tick_pending = False
        self._fake_tick = None

    def wait_and_rearm(self, inbox: Inbox, is_current: Callable[[Child], bool]) -> None:
        """After a tick: idles until the next message or the next retry; arms the next tick."""
        if self._tick_pending:
            return  # a tick is queued already (a retry armed during this one)
        due = self._next(is_current)
        if due is None:
            return
        if self._fake is None:
            inbox.wait_for_message(min(max(due - self._clock(), 0.0), _MAX_WAIT))
        self._arm(is_current)

    def cancel(self) -> None:
        """The supervisor is exiting: no tick any more."""
        if self._fake_tick is not None:
            self._fake_tick.cancel()
            self._fake_tick = None
        self._heap.clear()

    def _next(self, is_current: Callable[[Child], bool]) -> float | None:
        """When the earliest pending retry is due; stale entries are dropped on the way."""
        heap = self._heap
        while heap:
            _, seq, child = heap[0]
            if child.restarting and child.retry_seq == seq and is_current(child):
                return heap[0][0]
            heapq.heappop(heap)
        return None

    def _arm(self, is_current: Callable[[Child], bool]) -> None:
        due = self._next(is_current)
        if due is None:
            return
        if self._fake is not None:
            if self._fake_tick is not None:
                self._fake_tick.cancel()
            self._fake_tick = self._fake.scheduler.send_after(
                self._owner, RetryTick(), due - self._clock()
            )
        elif not self._tick_pending:
            self._tick_pending = True
            self._owner.tell(RetryTick())  # its own inbox: a retry cannot be lost

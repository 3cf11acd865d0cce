"""Timers: the `Scheduler`, one thread that delivers every timer from a heap.

Erlang's ``erlang:send_after/3`` for Pykka (``send_after`` itself is in ``_send_after.py``).
`Scheduler`'s docstring says how its thread lives (``benchmarks/timers.py`` measures it). Also:

- Delays run on an injectable monotonic clock (tests pass a ``FakeTime``). Any finite delay is
  accepted (the thread waits at most an hour at a time, well under ``threading.TIMEOUT_MAX``);
  NaN and infinity are refused.
- The destination is an ``ActorRef``, or a ``Name`` looked up when the timer is due (Erlang's
  ``send_after`` to a registered name); anything else is refused at the call. A timer whose
  actor has died (or whose name no live actor holds) by then is dropped quietly, like a
  message sent to a dead pid.
- After ``os.fork()``, every scheduler starts afresh in the child: no timer, no thread, a new
  lock. A cancelled timer is a tombstone in the heap, swept when tombstones are the majority.
"""

from __future__ import annotations

import heapq
import logging
import math
import os
import threading
import time
import weakref
from collections.abc import Callable
from typing import Any, Final

import pykka

from goth_actors.otp._registry import Name, whereis

__all__ = ["Scheduler", "TimerHandle"]

logger = logging.getLogger("goth_actors.otp")

_PENDING: Final = 0
_FIRED: Final = 1
_CANCELLED: Final = 2

_COMPACT_MIN_TOMBSTONES: Final = 64
_MAX_WAIT: Final = 3600.0  # longest single wait: one past threading.TIMEOUT_MAX raises


class TimerHandle:
    """A pending [`send_after`][goth_actors.otp.send_after]; keep it to cancel the timer.

    Attributes:
        due: When the timer fires, as a reading of the scheduler's clock.

    Examples:
        >>> import pykka
        >>> from goth_actors.otp import send_after
        >>> ref = pykka.ThreadingActor.start()
        >>> handle = send_after(ref, "tick", 60.0)
        >>> handle.pending
        True
        >>> handle.cancel()
        True
        >>> handle.cancel()
        False
        >>> _ = ref.stop()
    """

    __slots__ = ("_message", "_ref", "_scheduler", "_state", "due")

    def __init__(
        self, scheduler: Scheduler, due: float, ref: pykka.ActorRef[Any] | Name, message: Any
    ) -> None:
        self._scheduler = scheduler
        self.due = due
        self._ref: pykka.ActorRef[Any] | Name | None = ref
        self._message: Any = message
        self._state: int = _PENDING

    def __repr__(self) -> str:
        state = ("pending", "fired", "cancelled")[self._state]
        return f"<TimerHandle due={self.due:.3f} {state}>"

    @property
    def pending(self) -> bool:
        """Whether the timer has neither fired nor been cancelled."""
        return self._state == _PENDING

    def cancel(self) -> bool:
        """Cancels the timer.

        Returns:
            ``True`` if the timer was pending and will now never fire; ``False`` if it had
            already fired (or been taken for delivery) or was already cancelled, in which case
            nothing happens. A message already delivered stays in the actor's inbox.
        """
        return self._scheduler._cancel(self)


class Scheduler:
    """One thread that delivers every timer of the process, from a heap.

    Every pending timer is kept in one heap; a single daemon thread sleeps until the earliest is
    due, pops it, and only then, without holding its lock, calls ``ref.tell(message)``. 10,000
    pending timers cost no extra thread and a couple of hundred bytes each. The thread starts
    on the first [`send_after`][goth_actors.otp.Scheduler.send_after] and ends by itself once
    no timer has been pending for ``idle_timeout`` seconds (or if it dies of an error, such as a
    clock that raises); the next ``send_after`` starts a new one. It never keeps a program
    alive. After ``os.fork()``, the child's schedulers start afresh, with no timer and no
    thread. Cancelling is lazy, so it costs about as much as arming.

    Args:
        clock: A monotonic clock in seconds (default ``time.monotonic``).
        manual: Whether ``clock`` moves only when told to (a fake clock): the thread then
            waits for [`deliver_due`][goth_actors.otp.Scheduler.deliver_due] instead of timing
            its own waits. [`FakeTime`][goth_actors.otp.FakeTime] builds such a scheduler; you
            rarely need this.
        idle_timeout: Real seconds the thread waits with no pending timer before it ends
            (default 1.0). The next ``send_after`` starts a new one.
        name: The thread's name (default ``"goth-actors-timers"``).

    Raises:
        ValueError: If ``idle_timeout`` is negative or NaN.

    Examples:
        >>> import pykka
        >>> from goth_actors.otp import FakeTime
        >>> fake = FakeTime()
        >>> ref = pykka.ThreadingActor.start()
        >>> handle = fake.scheduler.send_after(ref, "tick", 30.0)
        >>> fake.advance(30.0)   # "tick" has now been told to ref
        >>> handle.pending
        False
        >>> fake.scheduler.stop()
        >>> _ = ref.stop()
    """

    def __init__(
        self,
        clock: Callable[[], float] = time.monotonic,
        *,
        manual: bool = False,
        idle_timeout: float = 1.0,
        name: str = "goth-actors-timers",
    ) -> None:
        if not idle_timeout >= 0.0:
            msg = f"idle_timeout must be >= 0, not {idle_timeout!r}"
            raise ValueError(msg)
        self.clock = clock
        self._manual = manual
        self._idle_timeout = idle_timeout
        self._name = name
        self._cond = threading.Condition(threading.Lock())
        self._heap: list[tuple[float, int, TimerHandle]] = []
        self._seq = 0
        self._live = 0
        self._tombstones = 0
        self._thread: threading.Thread | None = None
        self._wakes = 0  # bumped by deliver_due
        self._idle_at = 0  # the value of _wakes when the thread last found nothing due
        _schedulers.add(self)

    def _after_fork_in_child(self) -> None:
        # The parent's thread does not exist here, its lock may be held for ever, and its
        # timers were for the parent's actors.
        self._cond = threading.Condition(threading.Lock())
        for _, _, handle in self._heap:
            handle._state = _CANCELLED
            handle._ref = handle._message = None
        self._heap = []
        self._live = self._tombstones = 0
        self._thread = None
        self._wakes = self._idle_at = 0

    def __repr__(self) -> str:
        return f"<Scheduler {self._name!r} pending={self._live} running={self.running}>"

    @property
    def pending(self) -> int:
        """How many timers are pending."""
        return self._live

    @property
    def running(self) -> bool:
        """Whether the scheduler thread is running."""
        thread = self._thread
        return thread is not None and thread.is_alive()

    def send_after(
        self, ref: pykka.ActorRef[Any] | Name, message: Any, delay: float
    ) -> TimerHandle:
        """Tells ``message`` to the actor behind ``ref`` after ``delay`` seconds.

        Args:
            ref: The actor to tell, or a [`Name`][goth_actors.otp.Name] to look up when the
                timer is due. If no live actor is there then, the message is dropped quietly.
            message: Any object; it is not copied, so send something immutable.
            delay: Seconds from now on this scheduler's clock; a negative delay counts as 0.
                Any finite delay is allowed, however long.

        Returns:
            A handle whose [`cancel`][goth_actors.otp.TimerHandle.cancel] cancels the timer.

        Raises:
            TypeError: If ``ref`` is neither an ``ActorRef`` nor a ``Name`` (a proxy, an
                actor, a plain name...).
            ValueError: If ``delay`` is NaN or infinite (a timer that never fires is no
                timer: do not arm one).
            RuntimeError: If the thread cannot be started (a pids limit); no timer is armed.

        Examples:
            >>> import pykka
            >>> scheduler = Scheduler()
            >>> ref = pykka.ThreadingActor.start()
            >>> handle = scheduler.send_after(ref, "refresh", 0.01)
            >>> scheduler.stop()
            >>> _ = ref.stop()
        """
        if not isinstance(ref, pykka.ActorRef | Name):
            hint = " (use its .actor_ref)" if isinstance(ref, pykka.ActorProxy) else ""
            msg = f"send_after goes to an ActorRef or a Name, not {type(ref).__name__}{hint}"
            raise TypeError(msg)
        if math.isnan(delay):
            msg = "delay must be a number of seconds, not NaN"
            raise ValueError(msg)
        if math.isinf(delay):
            msg = f"delay must be a finite number of seconds, not {delay}"
            raise ValueError(msg)
        due = self.clock() + max(delay, 0.0)
        with self._cond:
            handle = TimerHandle(self, due, ref, message)
            self._seq += 1
            heapq.heappush(self._heap, (due, self._seq, handle))
            self._live += 1
            if self._thread is None:
                thread = threading.Thread(target=self._run, name=self._name, daemon=True)
                self._thread = thread
                try:
                    thread.start()
                except BaseException:  # "can't start new thread": arm nothing, keep no ghost
                    self._thread = None
                    handle._state = _CANCELLED
                    handle._ref = handle._message = None
                    self._live -= 1
                    self._tombstones += 1
                    raise
            elif self._heap[0][2] is handle:
                self._cond.notify_all()
        return handle

    def stop(self, timeout: float | None = 5.0) -> None:
        """Drops every pending timer and ends the scheduler thread, waiting for it to finish.

        The scheduler stays usable: a later
        [`send_after`][goth_actors.otp.Scheduler.send_after] starts a new thread.

        Args:
            timeout: Seconds to wait for the thread to end (default 5.0; ``None`` waits
                forever). The thread only ever waits on its condition or tells, so it ends
                promptly.

        Examples:
            >>> Scheduler().stop()   # stopping an idle scheduler is a no-op
        """
        with self._cond:
            thread = self._thread
            self._thread = None
            for _, _, handle in self._heap:
                if handle._state == _PENDING:
                    handle._state = _CANCELLED
                    handle._ref = handle._message = None
            self._heap.clear()
            self._live = 0
            self._tombstones = 0
            self._cond.notify_all()
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout)

    def _cancel(self, handle: TimerHandle) -> bool:
        with self._cond:
            if handle._state != _PENDING:
                return False
            handle._state = _CANCELLED
            handle._ref = handle._message = None
            self._live -= 1
            self._tombstones += 1
            if self._live == 0:
                self._heap.clear()
                self._tombstones = 0
                self._cond.notify_all()
            elif self._tombstones >= _COMPACT_MIN_TOMBSTONES and self._tombstones * 2 > len(
                self._heap
            ):
                self._heap[:] = [e for e in self._heap if e[2]._state == _PENDING]
                heapq.heapify(self._heap)
                self._tombstones = 0
            return True

    def deliver_due(self, timeout: float = 5.0) -> None:
        """Wakes the thread and waits until it has told every timer due at the clock's reading.

        For a ``manual`` clock, after moving it
        ([`FakeTime.advance`][goth_actors.otp.FakeTime.advance] calls this). Returns at once
        when no thread runs (no timer is pending).

        Args:
            timeout: Real seconds to wait at most; a WARNING is logged past it.
        """
        deadline = time.monotonic() + timeout
        with self._cond:
            if self._thread is None:
                return
            self._wakes += 1
            target = self._wakes
            self._cond.notify_all()
            while self._idle_at < target and self._thread is not None:
                remaining = deadline - time.monotonic()
                if remaining <= 0.0:
                    logger.warning("timer thread did not catch up with the clock in %s s", timeout)
                    return
                self._cond.wait(remaining)

    def _take_due(
        self, me: threading.Thread
    ) -> list[tuple[pykka.ActorRef[Any] | Name, Any]] | None:
        """Waits until timers are due and pops them; ``None`` means the thread should end."""
        heap = self._heap
        idle_since: float | None = None
        with self._cond:
            while True:
                if self._thread is not me:
                    return None
                while heap and heap[0][2]._state != _PENDING:
                    heapq.heappop(heap)
                    self._tombstones -= 1
                now = self.clock()
                if heap and heap[0][0] <= now:
                    due: list[tuple[pykka.ActorRef[Any] | Name, Any]] = []
                    while heap and heap[0][0] <= now:
                        handle = heapq.heappop(heap)[2]
                        if handle._state != _PENDING:
                            self._tombstones -= 1
                            continue
                        assert handle._ref is not None
                        due.append((handle._ref, handle._message))
                        handle._state = _FIRED
                        handle._ref = handle._message = None
                        self._live -= 1
                    return due
                if self._idle_at != self._wakes:
                    self._idle_at = self._wakes
                    self._cond.notify_all()
                if not heap:
                    real_now = time.monotonic()
                    if idle_since is None:
                        idle_since = real_now
                    idle_left = idle_since + self._idle_timeout - real_now
                    if idle_left <= 0.0:
                        self._thread = None
                        self._cond.notify_all()
                        return None
                    self._cond.wait(idle_left)
                    continue
                idle_since = None
                if self._manual:
                    self._cond.wait()
                else:
                    self._cond.wait(min(heap[0][0] - now, _MAX_WAIT))

    def _run(self) -> None:
        me = threading.current_thread()
        try:
            while True:
                due = self._take_due(me)
                if due is None:
                    return
                for dest, message in due:
                    ref = whereis(dest.name) if isinstance(dest, Name) else dest
                    try:
                        if ref is None:
                            raise pykka.ActorDeadError(f"no live actor holds {dest}")
                        ref.tell(message)
                    except pykka.ActorDeadError:
                        logger.debug("timer for %s dropped: the actor is dead", dest)
                    except Exception:
                        logger.exception("timer could not tell %s", dest)
        finally:
            # Normally _take_due has already let go; if the thread dies of an error (say, a
            # clock that raises), forget it, so that the next send_after starts a new one.
            with self._cond:
                if self._thread is me:
                    self._thread = None
                    self._cond.notify_all()


_schedulers: weakref.WeakSet[Scheduler] = weakref.WeakSet()


def _after_fork_in_child() -> None:
    for scheduler in list(_schedulers):
        scheduler._after_fork_in_child()


os.register_at_fork(after_in_child=_after_fork_in_child)

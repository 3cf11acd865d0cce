"""``send_after``: the process-wide scheduler, which every timer uses unless told otherwise.

One `Scheduler` serves the whole process on the real monotonic clock:
its thread starts on the first timer and ends once none has been pending for a second.
Supervisors do not use it for their own retries (``_restarts.py``): stopping it loses only the
timers of those who armed them.
"""

from __future__ import annotations

from typing import Any

import pykka

from goth_actors.otp._registry import Name
from goth_actors.otp._timers import Scheduler, TimerHandle

__all__ = ["default_scheduler", "send_after", "stop_default_scheduler"]

_default = Scheduler()


def default_scheduler() -> Scheduler:
    """Returns the process-wide scheduler that [`send_after`][goth_actors.otp.send_after] uses.

    It runs on the real monotonic clock; its thread starts on the first timer and ends once
    none has been pending for a second. Supervisors do not use it for their own retries, so
    stopping it loses only the timers of those who armed them.

    Examples:
        >>> import time
        >>> default_scheduler().clock is time.monotonic
        True
    """
    return _default


def send_after(
    ref: pykka.ActorRef[Any] | Name,
    message: Any,
    delay: float,
    *,
    scheduler: Scheduler | None = None,
) -> TimerHandle:
    """Tells ``message`` to the actor behind ``ref`` after ``delay`` seconds.

    Erlang's ``erlang:send_after/3``, on one scheduler thread for every timer of the process.

    Args:
        ref: The actor to tell, or a [`Name`][goth_actors.otp.Name] looked up when the
            timer is due. If no live actor is there by then, the message is dropped quietly.
        message: Any object (not copied: send something immutable).
        delay: Seconds on the scheduler's monotonic clock; negative counts as 0.
        scheduler: The scheduler to use (default:
            [`default_scheduler()`][goth_actors.otp.default_scheduler]).

    Returns:
        A [`TimerHandle`][goth_actors.otp.TimerHandle]; ``handle.cancel()`` cancels the timer.

    Raises:
        TypeError: If ``ref`` is neither an ``ActorRef`` nor a ``Name``.
        ValueError: If ``delay`` is NaN or infinite.
        RuntimeError: If the scheduler's thread cannot be started (a pids limit); no timer is
            armed.

    Examples:
        >>> import pykka
        >>> from goth_actors.otp import Name, register, unregister
        >>> ref = pykka.ThreadingActor.start()
        >>> register("cache", ref)
        >>> send_after(Name("cache"), "expire", 30.0).cancel()   # looked up in 30 s
        True
        >>> handle = send_after(ref, "refresh", 55 * 60.0)
        >>> handle.cancel()
        True
        >>> _ = ref.stop(); _ = unregister("cache")
    """
    return (scheduler or _default).send_after(ref, message, delay)


def stop_default_scheduler(timeout: float | None = 5.0) -> None:
    """Drops the default scheduler's pending timers and ends its thread.

    A later [`send_after`][goth_actors.otp.send_after] starts the thread again.

    Args:
        timeout: Seconds to wait for the thread to end (default 5.0; ``None``: forever).

    Examples:
        >>> stop_default_scheduler()
    """
    _default.stop(timeout)

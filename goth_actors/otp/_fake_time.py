"""``FakeTime``: wall and monotonic clocks that move only when a test says so (trio's MockClock).

One object stands for time everywhere a test needs it: token servers, supervisors and the Google
emulator each take ``time=FakeTime(...)``, so they all agree on what time it is, and the timers
they arm run on its own ``Scheduler``, which fires them when the test calls
`FakeTime.advance`.
"""

from __future__ import annotations

import os
import threading
import time
import weakref
from types import TracebackType
from typing import Self

from goth_actors._base import check_seconds
from goth_actors.otp._timers import Scheduler

__all__ = ["FakeTime"]


class FakeTime:
    """Wall and monotonic clocks that move only when told to, and a scheduler that runs on them.

    Pass it as ``time=`` to [`Supervisor.start`][goth_actors.otp.Supervisor.start],
    [`goth_actors.start_link`][goth_actors.start_link] /
    [`child_spec`][goth_actors.child_spec] and
    [`goth_actors.testing.GoogleEmulator`][goth_actors.testing.GoogleEmulator], so that they all
    agree on what time it is. [`advance`][goth_actors.otp.FakeTime.advance] moves both clocks
    and returns once every timer now due has been told to its actor;
    [`jump`][goth_actors.otp.FakeTime.jump] moves the wall clock alone, as NTP or a laptop's
    sleep does, which timers do not see.

    Args:
        wall: The wall clock's first reading, unix seconds. Default: the real time now, so
            that tokens and JWTs it stamps look current to a real peer.
        monotonic: The monotonic clock's first reading, in seconds. Default 0.

    Attributes:
        scheduler: The timers' scheduler, on the monotonic clock. Stop it when done
            ([`close`][goth_actors.otp.FakeTime.close], or use ``FakeTime`` as a context
            manager).

    Raises:
        ConfigError: If ``wall`` or ``monotonic`` is not a finite number of seconds.

    Examples:
        >>> import pykka
        >>> with FakeTime(wall=1_700_000_000.0) as fake:
        ...     ref = pykka.ThreadingActor.start()
        ...     handle = fake.scheduler.send_after(ref, "tick", 60.0)
        ...     fake.advance(59.0)
        ...     before = handle.pending
        ...     fake.advance(1.0)
        ...     (before, handle.pending, fake.time(), fake.monotonic())
        ...     _ = ref.stop()
        (True, False, 1700000060.0, 60.0)
    """

    def __init__(self, *, wall: float | None = None, monotonic: float = 0.0) -> None:
        self._wall = time.time() if wall is None else check_seconds("wall", wall, minimum=-1e12)
        self._monotonic = check_seconds("monotonic", monotonic, minimum=-1e12)
        self._lock = threading.Lock()
        self.scheduler = Scheduler(self.monotonic, manual=True, name="goth-actors-fake-timers")
        _fakes.add(self)

    def __repr__(self) -> str:
        return f"FakeTime(wall={self._wall!r}, monotonic={self._monotonic!r})"

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    def time(self) -> float:
        """The wall clock, in unix seconds (what ``time.time()`` would say)."""
        return self._wall

    def monotonic(self) -> float:
        """The monotonic clock, in seconds (what ``time.monotonic()`` would say)."""
        return self._monotonic

    def advance(self, seconds: float) -> None:
        """Moves both clocks forward; returns once the timers now due have been delivered.

        Args:
            seconds: How far, in seconds; at least 0.

        Raises:
            ConfigError: ``seconds`` is not a number, or is negative, infinite or NaN (a
                ``ValueError``).
        """
        step = check_seconds("seconds", seconds)
        with self._lock:
            self._wall += step
            self._monotonic += step
        self.scheduler.deliver_due()

    def jump(self, seconds: float) -> None:
        """Moves the wall clock alone, either way: an NTP step, or a laptop waking from sleep.

        Timers run on the monotonic clock and do not see it; token expiry does.

        Args:
            seconds: How far, in seconds; negative goes back.

        Raises:
            ConfigError: ``seconds`` is not a number, or is infinite or NaN.
        """
        step = check_seconds("seconds", seconds, minimum=-1e12)
        with self._lock:
            self._wall += step

    def close(self) -> None:
        """Stops the scheduler's thread and drops its pending timers."""
        self.scheduler.stop()


_fakes: weakref.WeakSet[FakeTime] = weakref.WeakSet()


def _after_fork_in_child() -> None:
    for fake in list(_fakes):
        fake._lock = threading.Lock()  # noqa: SLF001  # another thread may have held it


os.register_at_fork(after_in_child=_after_fork_in_child)

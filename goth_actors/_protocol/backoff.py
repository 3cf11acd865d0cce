"""Retry delays: Goth's three backoff types, or a user's ``retry_delay`` function. Pure.

- ``exp``: ``backoff_min``, then doubling, capped at ``backoff_max``.
- ``rand``: uniform in ``[backoff_min, backoff_max]`` every time.
- ``rand_exp`` (the default; db_connection's formula, as in Goth rc.4): with
  ``lower = max(min, max / 3)``, each delay is uniform in
  ``[min(prev, lower), min(prev * 3, max)]``, starting from ``prev = min``. Delays grow
  randomly until about ``max / 3``, then stay random between about ``max / 3`` and ``max``.
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable
from typing import Literal

__all__ = ["BACKOFF_TYPES", "Backoff", "BackoffType"]

BackoffType = Literal["exp", "rand", "rand_exp"]
BACKOFF_TYPES: tuple[BackoffType, ...] = ("exp", "rand", "rand_exp")


class Backoff:
    """Produces the delay before each retry; `reset` after a success.

    Args:
        kind: ``"exp"``, ``"rand"`` or ``"rand_exp"`` (Goth's ``backoff_type``).
        minimum: The smallest delay, in seconds (``backoff_min``).
        maximum: The largest delay, in seconds (``backoff_max``).
        retry_delay: When given, ``retry_delay(attempt)`` (attempt counts failures from 1)
            gives the delay in seconds instead, and the other three are unused.
        rng: Random source (``random.Random()`` by default; pass a seeded one in tests).

    Examples:
        >>> backoff = Backoff("exp", 1.0, 30.0)
        >>> [backoff.next() for _ in range(6)]
        [1.0, 2.0, 4.0, 8.0, 16.0, 30.0]
    """

    def __init__(
        self,
        kind: BackoffType = "rand_exp",
        minimum: float = 1.0,
        maximum: float = 30.0,
        *,
        retry_delay: Callable[[int], float] | None = None,
        rng: random.Random | None = None,
    ) -> None:
        if kind not in BACKOFF_TYPES:
            raise ValueError(f"unknown backoff type {kind!r}; expected one of {BACKOFF_TYPES}")
        if not 0 <= minimum <= maximum:
            raise ValueError(f"need 0 <= minimum <= maximum, got {minimum!r} and {maximum!r}")
        self.kind = kind
        self.minimum = float(minimum)
        self.maximum = float(maximum)
        self.retry_delay = retry_delay
        self._rng = rng or random.Random()
        self._attempt = 0
        self._prev: float | None = None

    @property
    def attempt(self) -> int:
        """How many delays were handed out since the last reset."""
        return self._attempt

    def reset(self) -> None:
        """Starts again from the first delay (after a success)."""
        self._attempt = 0
        self._prev = None

    def next(self) -> float:
        """The delay before the next retry, in seconds."""
        self._attempt += 1
        if self.retry_delay is not None:
            delay = float(self.retry_delay(self._attempt))
            if not math.isfinite(delay) or delay < 0:
                raise ValueError(f"retry_delay({self._attempt}) returned {delay!r}")
            return delay
        if self.kind == "rand":
            return self._rng.uniform(self.minimum, self.maximum)
        if self.kind == "exp":
            delay = self.minimum if self._prev is None else min(self._prev * 2, self.maximum)
        else:
            prev = self.minimum if self._prev is None else self._prev
            lower = max(self.minimum, self.maximum / 3)
            delay = self._rng.uniform(min(prev, lower), min(prev * 3, self.maximum))
        self._prev = delay
        return delay

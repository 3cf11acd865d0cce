"""Events: what the token servers do, for metrics and health checks (Goth 1.4's telemetry).

Every event is also a structured log record on the ``goth_actors.server`` logger, with the
event's fields in ``record.goth_event``. Subscribers are called on the server's own thread;
keep them quick. An exception in a subscriber (any ``BaseException``, ``KeyboardInterrupt``
included) is logged and otherwise ignored.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

from goth_actors._protocol import TokenError

__all__ = ["Event", "EventKind", "emit", "subscribe", "wanted"]

EventKind = Literal[
    "attempt", "success", "failure", "retry_scheduled", "refresh_scheduled", "crash", "restart"
]
"""The kinds of [`Event`][goth_actors.Event] (each one is described there)."""

logger = logging.getLogger("goth_actors.server")

_LEVELS: dict[str, int] = {
    "attempt": logging.DEBUG,
    "success": logging.DEBUG,
    "refresh_scheduled": logging.DEBUG,
    "retry_scheduled": logging.INFO,
    "failure": logging.WARNING,
    "crash": logging.ERROR,
    "restart": logging.WARNING,
}


@dataclass(frozen=True, slots=True)
class Event:
    """One thing a token server did.

    Every event is also a structured log record on the ``goth_actors.server`` logger (``crash``
    at ERROR, ``failure`` and ``restart`` at WARNING, ``retry_scheduled`` at INFO, the others at
    DEBUG), with the event in ``record.goth_event``.

    Attributes:
        kind: ``"attempt"`` (an exchange starts), ``"success"`` (a token arrived),
            ``"failure"`` (an exchange failed), ``"retry_scheduled"`` (next attempt after a
            failure), ``"refresh_scheduled"`` (next refresh after a success), ``"crash"``
            (retries exhausted, the server dies), ``"restart"`` (a new server took over the
            name and token of one that crashed or was stopped, or that a fork left behind).
        name: The server's name.
        time: Wall-clock unix seconds when it happened.
        attempt: Consecutive failed attempts so far (0 after a success).
        duration: Seconds the exchange took (``success`` and ``failure``).
        delay: Seconds until the next attempt (``*_scheduled``).
        expires: The new token's expiry (``success``).
        error: The error (``failure`` and ``crash``). Never holds a secret.
        source_type: The server's source class: ``"ServiceAccount"``, ``"RefreshToken"``,
            ``"Metadata"``, ``"WorkloadIdentity"``, ``"WorkforceUser"``, ``"Impersonated"``...
            (for metrics by source).
    """

    kind: EventKind
    name: object
    time: float
    attempt: int = 0
    duration: float | None = None
    delay: float | None = None
    expires: float | None = None
    error: TokenError | None = None
    source_type: str | None = None

    def describe(self) -> str:
        """Returns the event as one line for a log (the log records' message)."""
        parts = [f"token server {self.name!r}: {self.kind}"]
        if self.attempt:
            parts.append(f"attempt={self.attempt}")
        if self.duration is not None:
            parts.append(f"duration={self.duration:.3f}s")
        if self.delay is not None:
            parts.append(f"delay={self.delay:.3f}s")
        if self.expires is not None:
            parts.append(f"expires_in={self.expires - self.time:.0f}s")
        if self.error is not None:
            parts.append(f"error={type(self.error).__name__}: {self.error}")
        return " ".join(parts)


_subscribers: tuple[Callable[[Event], None], ...] = ()
_lock = threading.Lock()


def _after_fork_in_child() -> None:
    global _lock
    _lock = threading.Lock()


os.register_at_fork(after_in_child=_after_fork_in_child)


def subscribe(callback: Callable[[Event], None]) -> Callable[[], None]:
    """Calls ``callback(event)`` for every token-server event; returns an unsubscribe function.

    Subscribers are called on the server's own thread, for every server of the process: keep
    them quick. An exception in a subscriber (any ``BaseException``, ``KeyboardInterrupt``
    included) is logged and otherwise ignored.

    Args:
        callback: Called with each [`Event`][goth_actors.Event].

    Returns:
        A function of no arguments that unsubscribes ``callback`` (calling it again does
        nothing).

    Examples:
        ```python
        counts = collections.Counter()
        unsubscribe = subscribe(lambda event: counts.update([event.kind]))
        ```
    """
    global _subscribers
    with _lock:
        _subscribers = (*_subscribers, callback)

    def unsubscribe() -> None:
        global _subscribers
        with _lock:
            remaining = list(_subscribers)
            if callback in remaining:
                remaining.remove(callback)
            _subscribers = tuple(remaining)

    return unsubscribe


def wanted(kind: EventKind) -> bool:
    """Whether an event of ``kind`` would reach anyone (a subscriber, or an enabled log level).

    Servers check this before building the event: most of their events go nowhere.
    """
    return bool(_subscribers) or logger.isEnabledFor(_LEVELS[kind])


def emit(event: Event) -> None:
    """Logs ``event`` and hands it to every subscriber."""
    level = _LEVELS[event.kind]
    if logger.isEnabledFor(level):
        logger.log(level, "%s", event.describe(), extra={"goth_event": event})
    for callback in _subscribers:
        try:
            callback(event)
        except BaseException:  # even KeyboardInterrupt: a subscriber must not kill a server
            logger.exception("event subscriber %r failed", callback)

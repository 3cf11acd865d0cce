"""The neutral leaf both layers import: the error root and the one check for a number of seconds.

``goth_actors.otp`` (supervision for any Pykka actor) and the token protocol know nothing of
each other; what they share lives here, and this module imports neither. Every exception the
library defines derives from `GothError` through one of them; the whole tree is drawn in
``goth_actors``' package docstring.
"""

from __future__ import annotations

import math
import threading

__all__ = ["MAX_SECONDS", "ConfigError", "GothError", "check_seconds"]

MAX_SECONDS = threading.TIMEOUT_MAX
"""The longest wait a thread can make (about 292 years): longer ones are refused, not crashed on."""


class GothError(Exception):
    """Root of every exception goth_actors defines."""


class ConfigError(GothError, ValueError):
    """An option, source or credentials mapping is invalid.

    Attributes:
        field: The name of the offending option or credentials key (``"credentials.private_key"``,
            ``"refresh_before"``, ...).
    """

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field

    def __reduce__(self) -> tuple[object, ...]:
        return (_rebuild_config_error, (self.field, str(self)))


def _rebuild_config_error(field: str, text: str) -> ConfigError:
    error = ConfigError(field, "")
    error.args = (text,)
    return error


def check_seconds(
    name: str,
    value: object,
    *,
    minimum: float = 0.0,
    maximum: float = MAX_SECONDS,
    allow_minimum: bool = True,
    error: type[Exception] = ConfigError,
) -> float:
    """``value`` as a float number of seconds, or an error that names ``name``.

    Refuses booleans, non-numbers, NaN and infinities, and values below ``minimum`` (or equal
    to it when ``allow_minimum`` is false) or above ``maximum``.

    Args:
        name: What the value is called where the user wrote it (``"refresh_before"``).
        value: What the user wrote.
        minimum: The smallest value allowed.
        maximum: The largest value allowed.
        allow_minimum: Whether ``minimum`` itself is allowed.
        error: ``ConfigError`` (default: raised as ``ConfigError(name, ...)``) or another
            exception class, raised with one message argument (``TypeError`` for a wrong type
            is always a ``TypeError``).

    Raises:
        TypeError: ``value`` is not a number (``ConfigError`` when ``error`` is one).
        ConfigError: ``value`` is out of range (or ``error``).

    Examples:
        >>> check_seconds("timeout", 5)
        5.0
        >>> check_seconds("timeout", 0, allow_minimum=False)
        Traceback (most recent call last):
        goth_actors._base.ConfigError: timeout: must be more than 0 seconds, got 0
    """
    if isinstance(value, bool) or not isinstance(value, int | float):
        message = f"must be a number of seconds, got {type(value).__name__}"
        if error is ConfigError:
            raise ConfigError(name, message)
        raise TypeError(f"{name} {message}")
    number = float(value)
    problem = None
    if not math.isfinite(number):
        problem = f"must be a finite number of seconds, got {value!r}"
    elif number < minimum or (not allow_minimum and number == minimum):
        bound = f"at least {minimum:g}" if allow_minimum else f"more than {minimum:g}"
        problem = f"must be {bound} seconds, got {value!r}"
    elif number > maximum:
        problem = f"must be at most {maximum:g} seconds, got {value!r}"
    if problem is not None:
        if error is ConfigError:
            raise ConfigError(name, problem)
        raise error(f"{name} {problem}")
    return number

"""A token server's options: each one's name, default and validation, written once.

`ServerOptions` is the one definition. ``goth_actors.start_link`` and
``goth_actors.child_spec`` spell the same options out as typed keyword arguments (for
users, their editors and type checkers) and build a ``ServerOptions`` from them; a test checks
that the three agree, and another that the README's options table lists every option with its
real default.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable
from dataclasses import dataclass
from typing import Literal

from goth_actors._base import ConfigError, check_seconds
from goth_actors._protocol import BACKOFF_TYPES, DEFAULT_TIMEOUT, BackoffType, HttpClient, Source
from goth_actors.otp import FakeTime

__all__ = ["ServerOptions"]


@dataclass(frozen=True, slots=True)
class ServerOptions:
    """A token server's validated options (see ``goth_actors.start_link`` for each one).

    Raises:
        ConfigError: At construction, naming the first invalid option.

    Examples:
        >>> from goth_actors import Metadata
        >>> ServerOptions(name="app", source=Metadata()).refresh_before
        225.0
    """

    name: Hashable
    source: Source
    http_client: HttpClient | None = None
    refresh_after: float = 3300.0
    refresh_before: float = 225.0
    prefetch: Literal["async", "sync"] = "async"
    max_retries: int | None = 20
    backoff_min: float = 1.0
    backoff_max: float = 30.0
    backoff_type: BackoffType = "rand_exp"
    retry_delay: Callable[[int], float] | None = None
    http_timeout: float = DEFAULT_TIMEOUT
    time: FakeTime | None = None

    def __post_init__(self) -> None:
        name: object = self.name
        try:
            hash(name)
        except TypeError:
            raise ConfigError("name", f"must be hashable, got {type(name).__name__}") from None
        if name is None:
            raise ConfigError("name", "is required (any hashable value but None)")
        if not isinstance(self.source, Source):
            raise ConfigError(
                "source",
                "must be a goth_actors source (ServiceAccount, RefreshToken, Metadata, "
                "WorkloadIdentity, WorkforceUser, Impersonated or default_source()), got "
                f"{type(self.source).__name__}",
            )
        if self.http_client is not None and not callable(self.http_client):
            raise ConfigError(
                "http_client", f"must be callable, got {type(self.http_client).__name__}"
            )
        if self.prefetch not in ("async", "sync"):
            raise ConfigError("prefetch", f"must be 'async' or 'sync', got {self.prefetch!r}")
        retries: object = self.max_retries
        if retries is not None and (
            isinstance(retries, bool) or not isinstance(retries, int) or retries < 0
        ):
            raise ConfigError(
                "max_retries", f"must be an int >= 0, or None for never, got {retries!r}"
            )
        if self.backoff_type not in BACKOFF_TYPES:
            raise ConfigError(
                "backoff_type",
                f"must be one of {', '.join(BACKOFF_TYPES)}, got {self.backoff_type!r}",
            )
        low = check_seconds("backoff_min", self.backoff_min)
        high = check_seconds("backoff_max", self.backoff_max, allow_minimum=False)
        if low > high:
            raise ConfigError("backoff_min", f"({low:g}) is greater than backoff_max ({high:g})")
        if self.retry_delay is not None and not callable(self.retry_delay):
            raise ConfigError(
                "retry_delay", f"must be callable, got {type(self.retry_delay).__name__}"
            )
        if self.time is not None and not isinstance(self.time, FakeTime):
            raise ConfigError("time", f"must be a FakeTime or None, got {type(self.time).__name__}")
        numbers = {
            "refresh_after": check_seconds(
                "refresh_after", self.refresh_after, allow_minimum=False
            ),
            "refresh_before": check_seconds("refresh_before", self.refresh_before),
            "backoff_min": low,
            "backoff_max": high,
            "http_timeout": check_seconds("http_timeout", self.http_timeout, allow_minimum=False),
        }
        for field_name, value in numbers.items():
            object.__setattr__(self, field_name, value)

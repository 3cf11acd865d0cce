"""`ServeOptions`: what ``goth-actors serve`` is told, and the bounds of each number in it.

The bounds are written once, here: `ServeOptions` refuses a value outside them when it is
made (a ``ConfigError`` naming the field), and the command line builds its argument types
from them. Timeouts have a floor above 0 because the server sweeps its connections at a
quarter of the shorter one: a zero would make an idle server spin.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, NamedTuple

from goth_actors import ConfigError
from goth_actors.otp import FakeTime

__all__ = ["BOUNDS", "Bound", "ServeOptions"]


class Bound(NamedTuple):
    """The values one number of `ServeOptions` may take.

    Attributes:
        low: The smallest value (allowed only when ``low_allowed``).
        high: The largest value allowed.
        low_allowed: Whether ``low`` itself is allowed.
        whole: A count (an ``int``), not a number of seconds.
    """

    low: float
    high: float
    low_allowed: bool = True
    whole: bool = False

    def describe(self) -> str:
        """What the value must be, as an error message says it."""
        if self.whole:
            return f"a whole number from {self.low:g} to {self.high:g}"
        if self.low_allowed:
            return f"a number of seconds from {self.low:g} to {self.high:g}"
        return f"a number of seconds above {self.low:g}, at most {self.high:g}"

    def check(self, name: str, value: object) -> None:
        """Raises a ``ConfigError`` naming ``name`` unless ``value`` is within the bound."""
        kind = int if self.whole else int | float
        number = value if isinstance(value, kind) and not isinstance(value, bool) else math.nan
        above = self.low <= number if self.low_allowed else self.low < number
        if not (math.isfinite(number) and above and number <= self.high):
            raise ConfigError(name, f"must be {self.describe()}, got {value!r}")


BOUNDS: Mapping[str, Bound] = {
    "port": Bound(0, 65535, whole=True),
    "idle": Bound(0.0, 86_400.0, low_allowed=False),
    "max_servers": Bound(1, 10_000, whole=True),
    "max_connections": Bound(1, 100_000, whole=True),
    "fetch_timeout": Bound(0.0, 600.0, low_allowed=False),
    "grace": Bound(0.0, 3600.0),
    "header_timeout": Bound(0.1, 3600.0),
    "keepalive_timeout": Bound(0.1, 86_400.0),
}
"""The bounds of each number of `ServeOptions`, by field."""


@dataclass(frozen=True, slots=True)
class ServeOptions:
    """What ``goth-actors serve`` is told (each a command-line option, with its default).

    Attributes:
        host: Address to listen on (127.0.0.1).
        port: Port, 0 to 65535; 0 picks a free one (8090).
        audiences: ID-token audiences whose servers start at once (and count for /healthz).
        allowed_hosts: Host names clients may use besides IP addresses and the metadata
            server's names.
        idle: Seconds after which a server started on demand, and not asked since, stops:
            above 0, at most 86400 (900).
        max_servers: Token servers at most (distinct scope sets and audiences), 1 to 10000
            (64).
        max_connections: Open connections at most, 1 to 100000 (512).
        fetch_timeout: Seconds a request waits for a token that is not there yet: above 0,
            at most 600 (10).
        grace: Seconds a graceful shutdown waits for answers in flight, 0 to 3600 (10).
        header_timeout: Seconds a request head may take to arrive, 0.1 to 3600 (10).
        keepalive_timeout: Seconds an idle keep-alive connection stays open, 0.1 to 86400
            (60).
        time: A `FakeTime` for tests (token servers, ``expires_in``
            and idle times follow it).
        server_options: More ``start_link`` options for each token server (tests).

    Raises:
        ConfigError: A number outside its bound (see `BOUNDS`), or ``audiences`` or
            ``allowed_hosts`` not a tuple of strings; the error names the field.
    """

    host: str = "127.0.0.1"
    port: int = 8090
    audiences: tuple[str, ...] = ()
    allowed_hosts: tuple[str, ...] = ()
    idle: float = 900.0
    max_servers: int = 64
    max_connections: int = 512
    fetch_timeout: float = 10.0
    grace: float = 10.0
    header_timeout: float = 10.0
    keepalive_timeout: float = 60.0
    time: FakeTime | None = None
    server_options: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for name, bound in BOUNDS.items():
            bound.check(name, getattr(self, name))
        if not isinstance(self.host, str) or not self.host:
            raise ConfigError("host", f"must be an address to listen on, got {self.host!r}")
        for name in ("audiences", "allowed_hosts"):
            value = getattr(self, name)
            if not isinstance(value, tuple) or not all(isinstance(v, str) for v in value):
                raise ConfigError(name, f"must be a tuple of strings, got {type(value).__name__}")

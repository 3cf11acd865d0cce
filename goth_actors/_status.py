"""``ServerStatus``: a token server's health, as ``goth_actors.status`` reports it."""

from __future__ import annotations

from collections.abc import Hashable
from dataclasses import dataclass
from typing import Literal

from goth_actors._protocol import Source, TokenError

__all__ = ["ServerState", "ServerStatus"]

ServerState = Literal["starting", "fetching", "ok", "retrying", "down"]
"""What a token server is doing (see `ServerStatus`)."""


@dataclass(frozen=True, slots=True)
class ServerStatus:
    """A token server's health, for health checks ([`goth_actors.status`][goth_actors.status]).

    Attributes:
        name: The server's name.
        state: ``"starting"`` (no attempt yet), ``"fetching"`` (an exchange is in flight),
            ``"ok"`` (a token is held, the next refresh is scheduled), ``"retrying"`` (the last
            attempt failed, the next is scheduled), ``"down"`` (the actor is not running:
            crashed or stopped and not yet restarted, or its supervisor gave up).
        expires: The held token's expiry (unix seconds), or ``None``.
        last_refresh: When the last token arrived (unix seconds), or ``None``.
        consecutive_failures: Failed attempts since the last success.
        last_error: The last failure, or ``None`` after a success.
        restarts: How many times a new server took over this name and its token: after a
            crash, a stop from outside (restarted by the supervisor), or a fork.
        next_attempt: When the next attempt is due (unix seconds), or ``None``.
        has_valid_token: Whether [`fetch`][goth_actors.fetch] would hand out the held token
            right now (it expires more than 10 s from now, on the server's clock).
        quota_project_id: The source's quota project (what the integrations send as
            ``x-goog-user-project``), or ``None``.
        source: The server's source (its ``repr`` shows no secret): what the integrations
            sign with and read the universe domain of.
    """

    name: Hashable
    state: ServerState
    expires: float | None = None
    last_refresh: float | None = None
    consecutive_failures: int = 0
    last_error: TokenError | None = None
    restarts: int = 0
    next_attempt: float | None = None
    has_valid_token: bool = False
    quota_project_id: str | None = None
    source: Source | None = None

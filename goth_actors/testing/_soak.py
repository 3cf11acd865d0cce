"""A chaos soak: many token servers, busy callers, and a random schedule of faults.

`run_soak` starts a supervisor with token servers across the three sources against a
`GoogleEmulator`, lets caller threads fetch without pause, and injects endpoint faults
(error statuses, unusable 200s, slow answers, refused connections) and actor stops at random.
Then the faults stop and every server must serve a fresh token within a bound. The report
says what happened and whether the promises held:

- no caller got an error while its server's last token was still valid;
- after the faults, every server got a fresh token within ``recovery_bound`` seconds;
- nothing secret reached a log record (captured at DEBUG) or a ``repr``.

``tests/test_chaos.py`` runs it for a few seconds; ``benchmarks/soak.py`` for minutes.
"""

from __future__ import annotations

import contextlib
import logging
import random
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field

import goth_actors
from goth_actors import (
    GothError,
    Metadata,
    RefreshToken,
    ServerNotFound,
    ServerStatus,
    ServiceAccount,
    Source,
    Supervisor,
    whereis,
)
from goth_actors.testing._emulator import GoogleEmulator

__all__ = ["SoakReport", "run_soak"]

_BAD_200_BODIES = (
    b"<html><body>Service Unavailable</body></html>",
    b"not json at all",
    b'{"token_type": "Bearer"}',
    b'{"access_token": "ya29.soak-bad", "expires_in": -5}',
    b'{"access_token": "ya29.soak-bad", "expires_in": "soon"}',
)
_STATUSES = (400, 401, 403, 404, 408, 429, 500, 502, 503, 504)


@dataclass
class SoakReport:
    """What a soak saw, and whether its promises held.

    Attributes:
        duration: Seconds the callers ran.
        servers: How many token servers.
        callers: How many caller threads.
        fetches: Successful fetches.
        errors: Caller errors by exception class.
        violations: Caller errors while the server's last token was still valid (must be 0).
        faults: Faults injected, by kind.
        restarts: Server restarts (crashes and stops, restarted by the supervisor).
        endpoint_requests: Requests the emulator answered.
        recovery_seconds: Seconds from the end of the faults until every server had a fresh
            token (``inf`` when one never did within ``recovery_bound``).
        leaked_secrets: Secrets found in captured log records or reprs (must be empty).
    """

    duration: float
    servers: int
    callers: int
    fetches: int = 0
    errors: Counter[str] = field(default_factory=Counter)
    violations: int = 0
    faults: Counter[str] = field(default_factory=Counter)
    restarts: int = 0
    endpoint_requests: int = 0
    recovery_seconds: float = float("inf")
    recovery_bound: float = 0.0
    leaked_secrets: list[str] = field(default_factory=list)

    @property
    def held(self) -> bool:
        """Whether every promise held."""
        return (
            self.violations == 0
            and self.recovery_seconds <= self.recovery_bound
            and not self.leaked_secrets
        )

    def lines(self) -> list[str]:
        """The figures, one per line."""
        return [
            f"servers {self.servers}, callers {self.callers}, duration {self.duration:.1f} s",
            f"fetches {self.fetches:,}",
            f"caller errors {sum(self.errors.values())} {dict(self.errors)}",
            f"errors while a valid token existed {self.violations}",
            f"faults injected {sum(self.faults.values())} {dict(sorted(self.faults.items()))}",
            f"restarts {self.restarts}",
            f"endpoint requests {self.endpoint_requests}",
            f"recovery after faults stopped {self.recovery_seconds:.2f} s "
            f"(bound {self.recovery_bound:.1f} s)",
            f"secrets leaked {len(self.leaked_secrets)}",
            f"promises {'held' if self.held else 'BROKEN'}",
        ]


class _Capture(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.texts: list[str] = []
        self.setFormatter(logging.Formatter("%(name)s %(levelname)s %(message)s"))

    def emit(self, record: logging.LogRecord) -> None:
        self.texts.append(self.format(record))


def _status(name: str) -> ServerStatus | None:
    try:
        return goth_actors.status(name)
    except ServerNotFound:
        return None


def run_soak(
    duration: float = 10.0,
    *,
    servers: int = 20,
    callers: int = 16,
    seed: int | None = None,
    recovery_bound: float = 10.0,
    progress: Callable[[str], None] | None = None,
) -> SoakReport:
    """Runs the chaos soak and returns its report (it never raises for a broken promise).

    Args:
        duration: Seconds of faults and fetching; faults stop at 70 % of it.
        servers: Token servers, spread over service accounts, users and the metadata server.
        callers: Caller threads fetching without pause.
        seed: Seed of the fault schedule, for a reproducible run.
        recovery_bound: Seconds every server has, once faults stop, to get a fresh token.
        progress: Called with a line now and then (e.g. ``print``).
    """
    rng = random.Random(seed)
    report = SoakReport(duration, servers, callers, recovery_bound=recovery_bound)
    say = progress or (lambda _line: None)
    capture = _Capture()
    library_logger = logging.getLogger("goth_actors")
    old_level = library_logger.level
    emulator = GoogleEmulator(token_lifetime=120.0)
    supervisor = None
    requests_before_reset = 0
    stop = threading.Event()
    lock = threading.Lock()
    names = [f"soak-{i}" for i in range(servers)]
    secrets: list[str] = []
    seen_tokens: set[str] = set()

    def source_for(i: int) -> Source:
        if i % 3 == 0:
            key = emulator.service_account()
            secrets.append(key["private_key"].splitlines()[5])
            return ServiceAccount(key)
        if i % 3 == 1:
            user = emulator.authorized_user()
            secrets.extend([user["client_secret"], user["refresh_token"]])
            return RefreshToken(user)
        return Metadata(url=emulator.metadata_url)

    def caller() -> None:
        local_rng = random.Random(rng.random())
        fetches = 0
        errors: Counter[str] = Counter()
        violations = 0
        tokens: set[str] = set()
        while not stop.is_set():
            name = names[local_rng.randrange(servers)]
            was_fresh = goth_actors.cached(name) is not None
            try:
                token = goth_actors.fetch(name, timeout=2.0)
            except GothError as exc:
                errors[type(exc).__name__] += 1
                violations += was_fresh
            else:
                fetches += 1
                if len(tokens) < 10_000:
                    tokens.add(token.token)
            if fetches % 200 == 0:
                time.sleep(0.0005)  # leave the actors some of the GIL, as real work would
        with lock:
            report.fetches += fetches
            report.errors.update(errors)
            report.violations += violations
            seen_tokens.update(tokens)

    threads = [threading.Thread(target=caller, name=f"soak-caller-{i}") for i in range(callers)]
    try:
        library_logger.addHandler(capture)
        library_logger.setLevel(logging.DEBUG)
        emulator.start()
        specs = [
            goth_actors.child_spec(
                name=name,
                source=source_for(i),
                refresh_after=rng.uniform(0.3, 1.0),
                max_retries=rng.choice((1, 3, 10, None)),
                backoff_type="exp",
                backoff_min=0.02,
                backoff_max=0.3,
            )
            for i, name in enumerate(names)
        ]
        supervisor = Supervisor.start(specs, max_restarts=100_000, max_seconds=1.0)
        deadline = time.monotonic() + 10.0
        while not all(goth_actors.cached(n) is not None for n in names):
            if time.monotonic() > deadline:
                break
            time.sleep(0.01)
        for thread in threads:
            thread.start()
        started = time.monotonic()
        faults_end = started + 0.7 * duration
        while time.monotonic() < faults_end:
            _inject(rng.random(), rng, emulator, names, report.faults)
            time.sleep(rng.uniform(0.03, 0.15))
        requests_before_reset = emulator.request_count()
        emulator.reset()
        emulator.up()
        faults_stopped = time.time()
        say(f"faults stopped after {time.monotonic() - started:.1f} s")
        recovered = _wait_for_recovery(names, faults_stopped, recovery_bound)
        report.recovery_seconds = recovered - faults_stopped if recovered else float("inf")
        remaining = started + duration - time.monotonic()
        if remaining > 0:
            stop.wait(remaining)
    finally:
        try:
            stop.set()
            for thread in threads:
                if thread.ident is not None:  # started
                    thread.join(10.0)
            report.restarts = sum(current.restarts for n in names if (current := _status(n)))
            report.endpoint_requests = requests_before_reset + emulator.request_count()
            statuses = [repr(current) for n in names if (current := _status(n))]
            if supervisor is not None:
                supervisor.stop(timeout=10.0)
            for name in names:
                with contextlib.suppress(ServerNotFound):
                    goth_actors.stop(name)
        finally:
            emulator.close()
            library_logger.removeHandler(capture)
            library_logger.setLevel(old_level)
    haystack = "\n".join(capture.texts + statuses)
    report.leaked_secrets = [
        f"{kind} ({len(value)} chars)"
        for kind, values in (("token", seen_tokens), ("credential", secrets))
        for value in values
        if value and value in haystack
    ]
    return report


def _inject(
    roll: float,
    rng: random.Random,
    emulator: GoogleEmulator,
    names: list[str],
    faults: Counter[str],
) -> None:
    if roll < 0.35:
        status = rng.choice(_STATUSES)
        error = "invalid_grant" if status == 400 and rng.random() < 0.5 else None
        retry_after = 1 if status in (429, 503) and rng.random() < 0.5 else None
        emulator.fail_next(rng.randint(1, 5), status, error=error, retry_after=retry_after)
        faults[f"status {status}"] += 1
    elif roll < 0.5:
        body = rng.choice(_BAD_200_BODIES)
        emulator.respond_next(rng.randint(1, 3), 200, body, endpoint="token")
        faults["unusable 200"] += 1
    elif roll < 0.62:
        emulator.delay(rng.uniform(0.05, 0.3))
        faults["slow answers"] += 1
    elif roll < 0.7:
        emulator.delay(0)
        faults["fast again"] += 1
    elif roll < 0.8:
        if emulator.is_up:
            emulator.down()
            faults["connection refused"] += 1
        else:
            emulator.up()
    else:
        ref = whereis(rng.choice(names))
        if ref is not None:
            ref.stop(block=False)
            faults["actor stopped"] += 1


def _wait_for_recovery(names: list[str], since: float, bound: float) -> float | None:
    """When every server last refreshed after ``since`` (unix time), or None past the bound."""
    deadline = time.monotonic() + bound
    while time.monotonic() < deadline:
        statuses = [_status(n) for n in names]
        if all(
            s is not None
            and s.last_refresh is not None
            and s.last_refresh > since
            and s.has_valid_token
            for s in statuses
        ):
            return time.time()
        time.sleep(0.01)
    return None

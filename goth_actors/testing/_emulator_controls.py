"""The emulator's test controls: planned faults, and the record of the requests it received.

`EmulatorControls` is the part of `GoogleEmulator` that
tests steer it with (``fail_next``, ``respond_next``, ``reset_next``, ``delay``, ``down``,
``up``, ``reset``) and read it with (``requests``, ``requests_to``, ``request_count``,
``wait_for_requests``, ``clear_requests``). A mixin: the emulator holds the state.
"""

from __future__ import annotations

import math
import threading
import time as _time
from collections import Counter, deque
from collections.abc import Callable, Mapping

from goth_actors.testing._emulator_faults import (
    Armed,
    Canned,
    Failure,
    Fault,
    Reset,
    check_count,
    check_endpoint,
    format_seconds,
)
from goth_actors.testing._emulator_http import HttpServer
from goth_actors.testing._emulator_messages import RecordedRequest, Response

__all__ = ["EmulatorControls"]


class EmulatorControls:
    """Faults and the request record of the emulator (a mixin of ``GoogleEmulator``)."""

    _lock: threading.Lock
    _recorded: threading.Condition
    _requests: deque[RecordedRequest]
    _counts: Counter[str]
    _faults: list[Armed]
    _delay: float
    _server: HttpServer

    # --- faults -------------------------------------------------------------------------------

    def fail_next(
        self,
        n: int,
        status: int = 503,
        *,
        error: str | None = None,
        retry_after: float | str | None = None,
        body: bytes | str | None = None,
        headers: Mapping[str, str] | None = None,
        endpoint: str | None = None,
    ) -> None:
        """Makes the next ``n`` matching requests fail with ``status``.

        Faults queue: each request takes the oldest armed fault that matches it.

        Args:
            n: How many requests fail (at least 1).
            status: The HTTP status, 400 to 599. Defaults to 503.
            error: The OAuth ``error`` code in the JSON body. Defaults by status: 503 and 504
                ``temporarily_unavailable``, 500 ``internal_failure``, 429
                ``rate_limit_exceeded``, 401 ``invalid_client``, other 5xx ``server_error``,
                other 4xx ``invalid_request``.
            retry_after: A ``Retry-After`` header: seconds (int or float), or a string sent
                verbatim, such as an HTTP-date.
            body: A raw body (bytes, or str sent as UTF-8) instead of the JSON error; no
                ``Content-Type`` is added.
            headers: More response headers.
            endpoint: Which requests: ``"token"``, ``"metadata"`` (every metadata path,
                ping included), ``"tokeninfo"``, ``"certs"``, ``"sts"``, ``"iam"`` (answered
                in Google APIs' shape, ``{"error": {"code", "message", "status"}}``, where
                ``error`` is the ``status``), ``"subject"`` (the subject-token URL),
                ``"other"`` or ``"any"``. Defaults to requests that ask for a token:
                ``POST /token``, STS, IAM, and the metadata ``token`` and ``identity`` paths.

        Examples:
            ```python
            emu.fail_next(2, 503, retry_after=1)
            ```
        """
        check_count(n)
        check_endpoint(endpoint)
        if isinstance(status, bool) or not isinstance(status, int) or not 400 <= status <= 599:
            raise ValueError(f"status must be an HTTP error status, 400-599, not {status!r}")
        extra = dict(headers or {})
        if retry_after is not None:
            extra["Retry-After"] = (
                retry_after if isinstance(retry_after, str) else format_seconds(retry_after)
            )
        if body is None:
            self._arm(Failure(status, error, tuple(extra.items())), n, endpoint)
            return
        raw = body.encode() if isinstance(body, str) else body
        self._arm(Canned(Response(status, raw, tuple(extra.items())), flavored=True), n, endpoint)

    def respond_next(
        self,
        n: int,
        status: int,
        body: bytes | str | Mapping[str, object] = b"",
        headers: Mapping[str, str] | None = None,
        *,
        endpoint: str | None = None,
    ) -> None:
        """Makes the next ``n`` matching requests get exactly this answer.

        Only ``Content-Length``, ``Connection: close``, ``Server`` and ``Date`` are added; not
        even ``Metadata-Flavor`` on metadata paths. So this also plays a metadata server that
        forgets its header, a 200 with HTML, or a token without ``expires_in``.

        Args:
            n: How many requests (at least 1).
            status: The HTTP status.
            body: Bytes, a str (sent as UTF-8), or a mapping sent as JSON with
                ``Content-Type: application/json``. Defaults to empty.
            headers: Response headers.
            endpoint: Which requests, as in
                [`fail_next`][goth_actors.testing.GoogleEmulator.fail_next].

        Examples:
            ```python
            emu.respond_next(1, 200, {"access_token": "x"})
            ```
        """
        check_count(n)
        check_endpoint(endpoint)
        if isinstance(body, Mapping):
            response = Response.json(status, dict(body), headers)
        else:
            raw = body.encode() if isinstance(body, str) else body
            response = Response(status, raw, tuple((headers or {}).items()))
        self._arm(Canned(response, flavored=False), n, endpoint)

    def reset_next(self, n: int = 1, *, endpoint: str | None = None) -> None:
        """Makes the next ``n`` matching requests die mid-response.

        The normal answer's headers and half its body are sent, then the connection is reset
        (TCP RST).

        Args:
            n: How many requests (at least 1).
            endpoint: Which requests, as in
                [`fail_next`][goth_actors.testing.GoogleEmulator.fail_next].

        Examples:
            ```python
            emu.reset_next(1, endpoint="token")
            ```
        """
        check_count(n)
        check_endpoint(endpoint)
        self._arm(Reset(), n, endpoint)

    def delay(self, seconds: float) -> None:
        """Makes every following request wait ``seconds`` before its answer; 0 clears it.

        `close` cuts the wait short.

        Examples:
            ```python
            emu.delay(0.05)
            ```
        """
        if isinstance(seconds, bool) or not (math.isfinite(seconds) and seconds >= 0):
            raise ValueError(f"seconds must be a finite number >= 0, not {seconds!r}")
        with self._lock:
            self._delay = float(seconds)

    def down(self) -> None:
        """Closes the listening socket: new connections are refused until ``up``.

        Requests already being answered are unaffected.

        Examples:
            ```python
            emu.down()
            ```
        """
        self._server.down()

    def up(self) -> None:
        """Listens again, on the same port, after [`down`][goth_actors.testing.GoogleEmulator.down].

        Examples:
            ```python
            emu.up()
            ```
        """
        self._server.up()

    def reset(self) -> None:
        """Clears armed faults, the delay, the recorded requests and their counts.

        Examples:
            ```python
            emu.reset()
            ```
        """
        with self._lock:
            self._faults.clear()
            self._delay = 0.0
            self._requests.clear()
            self._counts.clear()

    # --- recorded requests --------------------------------------------------------------------

    @property
    def requests(self) -> list[RecordedRequest]:
        """A copy of the recorded requests, oldest first.

        That is every request since the emulator started (or since
        [`clear_requests`][goth_actors.testing.GoogleEmulator.clear_requests]), but at most the last
        ``max_recorded`` of them (10,000 unless the constructor said otherwise); count with
        [`request_count`][goth_actors.testing.GoogleEmulator.request_count], which forgets none.

        Examples:
            ```python
            emu.requests[-1].path
            ```
            '/token'
        """
        with self._lock:
            return list(self._requests)

    def requests_to(self, where: str) -> list[RecordedRequest]:
        """The recorded requests to an endpoint, or under a path prefix.

        Args:
            where: An endpoint name (``"token"``, ``"metadata"``, ``"tokeninfo"``,
                ``"certs"``, ``"sts"``, ``"iam"``, ``"subject"``, ``"other"``, or ``"any"``)
                or a path prefix starting with ``/``.

        Examples:
            ```python
            len(emu.requests_to("token"))
            ```
            1
        """
        matches = _where(where)
        return [r for r in self.requests if matches(r)]

    def request_count(self, where: str = "any") -> int:
        """How many requests to ``where`` arrived since the start (or the last clear).

        Unlike ``len(requests_to(where))``, this counts requests older than the last
        ``max_recorded`` too, except for a path prefix, which only the recording can answer.

        Args:
            where: As in [`requests_to`][goth_actors.testing.GoogleEmulator.requests_to]; ``"any"``
                (the default) counts every request.

        Examples:
            ```python
            emu.request_count("token")
            ```
            1
        """
        matches = _where(where)
        with self._lock:
            return self._count(where, matches)

    def wait_for_requests(
        self, count: int, where: str = "any", *, timeout: float = 5.0
    ) -> list[RecordedRequest]:
        """Waits until ``count`` requests to ``where`` have arrived; returns them.

        Counts as [`request_count`][goth_actors.testing.GoogleEmulator.request_count]; returns those
        requests to ``where`` still recorded (all of them, unless more than ``max_recorded``
        requests arrived meanwhile).

        Args:
            count: How many requests to wait for.
            where: As in [`requests_to`][goth_actors.testing.GoogleEmulator.requests_to]; ``"any"``
                (the default) counts every request.
            timeout: Seconds to wait before raising ``TimeoutError``. Defaults to 5.

        Examples:
            ```python
            emu.wait_for_requests(1, "token")
            ```
        """
        matches = _where(where)
        deadline = _time.monotonic() + timeout
        with self._recorded:
            while True:
                arrived = self._count(where, matches)
                left = deadline - _time.monotonic()
                if arrived >= count:
                    return [r for r in self._requests if matches(r)]
                if left <= 0:
                    raise TimeoutError(
                        f"{arrived} of {count} requests to {where!r} arrived in {timeout} s"
                    )
                self._recorded.wait(left)

    def clear_requests(self) -> None:
        """Forgets the recorded requests and their counts.

        Examples:
            ```python
            emu.clear_requests()
            ```
        """
        with self._lock:
            self._requests.clear()
            self._counts.clear()

    def _count(self, where: str, matches: Callable[[RecordedRequest], bool]) -> int:
        # Called with the lock held.
        if where.startswith("/"):
            return sum(1 for r in self._requests if matches(r))
        return self._counts[where]

    def _arm(self, fault: Fault, n: int, endpoint: str | None) -> None:
        with self._lock:
            self._faults.append(Armed(fault, endpoint, n))

    def _take_fault(self, request: RecordedRequest) -> Fault | None:
        for armed in self._faults:
            if armed.matches(request):
                armed.remaining -= 1
                if armed.remaining == 0:
                    self._faults.remove(armed)
                return armed.fault
        return None


def _where(where: str) -> Callable[[RecordedRequest], bool]:
    if where.startswith("/"):
        return lambda request: request.path.startswith(where)
    check_endpoint(where, "where", paths=True)
    return lambda request: where in ("any", request.endpoint)

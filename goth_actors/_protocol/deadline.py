"""A deadline for a whole HTTP exchange in requests: connect to last byte.

Like curl's ``--max-time``.

requests' ``timeout`` bounds each socket operation, not the exchange: a server that drips its
status line or headers a byte at a time keeps a request alive for hours (a header line may
be 64 KiB). `DeadlineAdapter` is a requests transport adapter whose connections read
every byte of an answer (status line, headers, body) through `_DeadlineReader`, which
bounds each read by the time left until the deadline of the current exchange, and whose new
connections get only the time left: to connect to each address of the host's name in turn
(urllib3 gives each the whole connect timeout, so three addresses that never answer took
three times the deadline) and for their TLS handshake (CPython bounds a handshake as a whole
by the socket's timeout). The deadline is set per exchange with `deadline_of`, in a
context variable, so one pooled connection serves exchanges of different deadlines. Name
resolution is bounded by the operating system's resolver, not by this.
"""

from __future__ import annotations

import contextlib
import contextvars
import http.client
import io
import socket
import sys
import time
from collections.abc import Iterator
from typing import Any

from requests.adapters import HTTPAdapter
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool
from urllib3.exceptions import (
    ConnectTimeoutError,
    LocationParseError,
    NameResolutionError,
    NewConnectionError,
)
from urllib3.util.connection import allowed_gai_family

__all__ = ["DeadlineAdapter", "deadline_of", "time_left"]

_deadline: contextvars.ContextVar[float | None] = contextvars.ContextVar(
    "goth_actors_http_deadline", default=None
)


@contextlib.contextmanager
def deadline_of(seconds: float) -> Iterator[float]:
    """Sets the deadline of the exchange made inside: ``seconds`` from now (monotonic)."""
    deadline = time.monotonic() + seconds
    reset = _deadline.set(deadline)
    try:
        yield deadline
    finally:
        _deadline.reset(reset)


def time_left() -> float | None:
    """Seconds left until the current exchange's deadline, or ``None`` outside one.

    Raises:
        TimeoutError: The deadline has passed.
    """
    deadline = _deadline.get()
    if deadline is None:
        return None
    left = deadline - time.monotonic()
    if left <= 0:
        raise TimeoutError("the exchange's deadline passed")
    return left


class _DeadlineReader(io.RawIOBase):
    """The socket reader of an answer: each read is bounded by the time left."""

    def __init__(self, sock: socket.socket) -> None:
        super().__init__()
        self._sock = sock
        self._per_read = sock.gettimeout()
        # As socket.makefile does: the socket stays open until its readers are closed too,
        # even when http.client closes the connection of a "Connection: close" answer.
        sock._io_refs += 1  # type: ignore[attr-defined]  # noqa: SLF001

    def readable(self) -> bool:
        return True

    def close(self) -> None:
        if not self.closed:
            super().close()
            self._sock._decref_socketios()  # type: ignore[attr-defined]  # noqa: SLF001

    def readinto(self, buffer: Any) -> int:
        left = time_left()
        if left is not None:
            per_read = self._per_read
            self._sock.settimeout(left if per_read is None else min(per_read, left))
        return self._sock.recv_into(buffer)


class _SocketShim:
    """What ``http.client.HTTPResponse`` is given instead of the socket.

    Its ``makefile`` is a buffered `_DeadlineReader`.
    """

    def __init__(self, sock: socket.socket) -> None:
        self._sock = sock

    def makefile(self, mode: str) -> io.BufferedReader:
        assert mode == "rb"
        return io.BufferedReader(_DeadlineReader(self._sock))


class _DeadlineResponse(http.client.HTTPResponse):
    def __init__(self, sock: socket.socket, *args: Any, **kwargs: Any) -> None:
        super().__init__(_SocketShim(sock), *args, **kwargs)  # type: ignore[arg-type]


def _bounded(timeout: float | None) -> float | None:
    """``timeout``, or the time left of the deadline when that is shorter.

    Raises:
        TimeoutError: The deadline has passed.
    """
    left = time_left()
    if left is None:
        return timeout
    return left if timeout is None else min(timeout, left)


def _connect(
    address: tuple[str, int],
    timeout: float | None,
    source_address: tuple[str, int] | None,
    socket_options: Any,
) -> socket.socket:
    """urllib3's ``create_connection``, but each address gets only the time left to connect.

    The socket it returns has the time left as its timeout, for the TLS handshake.
    """
    host, port = address
    host = host.strip("[]")
    try:
        host.encode("idna")
    except UnicodeError:
        raise LocationParseError(f"'{host}', label empty or too long") from None
    failure: OSError | None = None
    for family, kind, proto, _, where in socket.getaddrinfo(
        host, port, allowed_gai_family(), socket.SOCK_STREAM
    ):
        limit = _bounded(timeout)  # a TimeoutError once no time is left for this address
        sock = socket.socket(family, kind, proto)
        try:
            for option in socket_options or ():
                sock.setsockopt(*option)
            sock.settimeout(limit)
            if source_address:
                sock.bind(source_address)
            sock.connect(where)
            # The TLS handshake that follows runs under the socket's timeout as a whole.
            sock.settimeout(_bounded(timeout))
        except OSError as exc:
            sock.close()
            failure = exc
            continue
        return sock
    if failure is not None:
        raise failure
    raise OSError("getaddrinfo returned no address")


class _Connection(HTTPConnection):
    """A connection whose connect and TLS handshake end by the exchange's deadline."""

    response_class = _DeadlineResponse

    def _new_conn(self) -> socket.socket:
        # urllib3's own, with _connect for its create_connection.
        timeout = self.timeout if isinstance(self.timeout, int | float) else None
        try:
            sock = _connect(
                (self._dns_host, self.port), timeout, self.source_address, self.socket_options
            )
        except socket.gaierror as exc:
            raise NameResolutionError(self.host, self, exc) from exc
        except TimeoutError as exc:
            raise ConnectTimeoutError(
                self, f"Connection to {self.host} timed out. (connect timeout={self.timeout})"
            ) from exc
        except OSError as exc:
            raise NewConnectionError(self, f"Failed to establish a new connection: {exc}") from exc
        sys.audit("http.client.connect", self, self.host, self.port)
        return sock


class _TlsConnection(_Connection, HTTPSConnection):
    pass


class _Pool(HTTPConnectionPool):
    ConnectionCls = _Connection


class _TlsPool(HTTPSConnectionPool):
    ConnectionCls = _TlsConnection


_POOLS = {"http": _Pool, "https": _TlsPool}


class DeadlineAdapter(HTTPAdapter):
    """A requests adapter whose exchanges end by the deadline of `deadline_of`.

    Mount it on a session for ``http://`` and ``https://``; through an HTTP(S) proxy too (a
    SOCKS proxy's connections are urllib3's own, bounded per read only).
    """

    def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
        super().init_poolmanager(*args, **kwargs)
        self.poolmanager.pool_classes_by_scheme = dict(_POOLS)

    def proxy_manager_for(self, proxy: str, **proxy_kwargs: Any) -> Any:
        manager = super().proxy_manager_for(proxy, **proxy_kwargs)
        if not proxy.lower().startswith("socks"):
            manager.pool_classes_by_scheme = dict(_POOLS)
        return manager

"""A deadline for a whole HTTP exchange in requests: connect to last byte.

Like curl's ``--max-time``.

requests' ``timeout`` bounds each socket operation, not the exchange: a server that drips its
status line or headers a byte at a time keeps a request alive for hours (a header line may
be 64 KiB). `DeadlineAdapter` is a requests transport adapter whose connections read
every byte of an answer (status line, headers, body) through `_DeadlineReader`, which
bounds each read by the time left until the deadline of the current exchange, and whose new
connections get only the time left for their TLS handshake (CPython bounds a handshake as a
whole by the socket's timeout). The deadline is set per exchange with `deadline_of`, in
a context variable, so one pooled connection serves exchanges of different deadlines. Name
resolution is bounded by the operating system's resolver, not by this.
"""

from __future__ import annotations

import contextlib
import contextvars
import http.client
import io
import socket
import time
from collections.abc import Iterator
from typing import Any

from requests.adapters import HTTPAdapter
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool

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


def _bound_handshake(sock: socket.socket) -> socket.socket:
    # The TLS handshake that follows runs under the socket's timeout as a whole.
    left = time_left()
    if left is not None:
        timeout = sock.gettimeout()
        sock.settimeout(left if timeout is None else min(timeout, left))
    return sock


class _Connection(HTTPConnection):
    response_class = _DeadlineResponse

    def _new_conn(self) -> socket.socket:
        return _bound_handshake(super()._new_conn())


class _TlsConnection(HTTPSConnection):
    response_class = _DeadlineResponse

    def _new_conn(self) -> socket.socket:
        return _bound_handshake(super()._new_conn())


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

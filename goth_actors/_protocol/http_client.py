"""The HTTP client contract, and the default client built on a shared ``requests.Session``.

An HTTP client is any callable with this signature (Goth's ``http_client``, made Pythonic):

    def http_client(*, method: str, url: str, headers: Mapping[str, str],
                    body: bytes, timeout: float) -> HttpResponse: ...

- ``method`` is ``"GET"`` or ``"POST"`` (``"PUT"`` only for AWS's IMDSv2 session token);
  ``body`` is ``b""`` for GET.
- ``timeout`` is the time left, in seconds, for the whole request: a **deadline**, from
  connecting to the last byte of the body, whatever the server does (an endpoint that drips
  its status line, headers or body a byte at a time must not hold the caller past it). A
  multi-step source (workload identity, impersonation) shares one deadline, ``http_timeout``,
  across its steps, so each call gets what is left. A client must honour it as a deadline,
  not as a per-read timeout; the default client does (see ``goth_actors._protocol.deadline``).
- It returns an `HttpResponse` whose ``body`` may be ``bytes``, ``str`` or an already
  decoded mapping (as Goth rc.5 allows), and whose ``headers`` may be a mapping or a sequence
  of ``(name, value)`` pairs; names are matched case-insensitively.
- It must not follow redirects: a 3xx is an answer, and goth_actors reports it as an error.
- Mutual TLS (X.509 workload identity) alone adds a keyword: ``client_cert=(certificate_path,
  key_path)``, the client certificate to present. A client that does not take it fails those
  exchanges with a ``TransportError`` (the default client takes it).
- Any exception it raises becomes a ``TransportError`` (retryable), whose ``__cause__`` is a
  ``RedactedCause`` standing in for it: its type's name and its message, redacted (the
  original could quote a header, that is, a credential).
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Protocol

import requests

from goth_actors._protocol.deadline import DeadlineAdapter, deadline_of
from goth_actors._protocol.errors import ResponseTooLarge

__all__ = [
    "DEFAULT_TIMEOUT",
    "MAX_BODY_BYTES",
    "HttpClient",
    "HttpResponse",
    "close_default_client",
    "default_http_client",
]

DEFAULT_TIMEOUT = 10.0
"""Seconds an exchange may take, connect to last byte (``http_timeout``'s default)."""

MAX_BODY_BYTES = 1024 * 1024
"""Response bodies larger than this (1 MiB) are refused, not read into memory."""


@dataclass(frozen=True, slots=True)
class HttpResponse:
    """What an HTTP client returns.

    Attributes:
        status: The HTTP status code.
        headers: Response headers, as a mapping or a sequence of ``(name, value)`` pairs.
        body: The body as ``bytes`` or ``str``, or an already decoded JSON mapping.
    """

    status: int
    headers: Mapping[str, str] | Sequence[tuple[str, str]] = field(default_factory=dict)
    body: bytes | str | Mapping[str, object] = b""

    def header(self, name: str) -> str | None:
        """Returns the first header called ``name`` (any case), or ``None``."""
        wanted = name.lower()
        items = self.headers.items() if isinstance(self.headers, Mapping) else self.headers
        for key, value in items:
            if key.lower() == wanted:
                return value
        return None


class HttpClient(Protocol):
    """The shape of an ``http_client``: see the module docstring for the contract."""

    def __call__(
        self, *, method: str, url: str, headers: Mapping[str, str], body: bytes, timeout: float
    ) -> HttpResponse: ...


_lock = threading.Lock()
_shared: tuple[int, requests.Session] | None = None


def _after_fork_in_child() -> None:
    # The session's sockets belong to the parent: the pid check in _session() leaves them be.
    global _lock
    _lock = threading.Lock()


os.register_at_fork(after_in_child=_after_fork_in_child)


def _session() -> requests.Session:
    # One session for the process: its connection pool is thread-safe, and token exchanges are
    # rare. The pid check gives a forked child its own sockets instead of its parent's.
    global _shared
    shared = _shared
    pid = os.getpid()
    if shared is not None and shared[0] == pid:
        return shared[1]
    with _lock:
        if _shared is None or _shared[0] != pid:
            session = requests.Session()
            adapter = DeadlineAdapter()
            session.mount("https://", adapter)
            session.mount("http://", adapter)
            _shared = (pid, session)
        return _shared[1]


def close_default_client() -> None:
    """Closes the default client's connections; the next request opens new ones."""
    global _shared
    with _lock:
        shared, _shared = _shared, None
    if shared is not None and shared[0] == os.getpid():
        shared[1].close()


def default_http_client(
    *,
    method: str,
    url: str,
    headers: Mapping[str, str],
    body: bytes,
    timeout: float,
    client_cert: tuple[str, str] | None = None,
) -> HttpResponse:
    """The default client: a shared ``requests.Session``, TLS verified, no redirects.

    TLS is verified against requests' CA bundle (``REQUESTS_CA_BUNDLE`` when set); with
    ``client_cert`` the client presents that certificate (mutual TLS).

    ``timeout`` is a deadline for the whole exchange, connect to last byte (name resolution
    excepted: the system's resolver bounds it). The body is streamed and refused past
    `MAX_BODY_BYTES`.
    """
    with deadline_of(timeout) as deadline:
        response = _session().request(
            method,
            url,
            headers=dict(headers),
            data=body or None,
            timeout=(timeout, timeout),
            allow_redirects=False,
            stream=True,
            verify=True,
            cert=client_cert,
        )
        with response:
            declared = response.headers.get("Content-Length")
            if declared is not None and declared.isdigit() and int(declared) > MAX_BODY_BYTES:
                raise ResponseTooLarge(response.status_code, MAX_BODY_BYTES)
            chunks: list[bytes] = []
            size = 0
            while chunk := response.raw.read1(64 * 1024, decode_content=True):
                size += len(chunk)
                if size > MAX_BODY_BYTES:
                    raise ResponseTooLarge(response.status_code, MAX_BODY_BYTES)
                chunks.append(chunk)
                if time.monotonic() > deadline:  # each read is bounded too; this is a backstop
                    raise requests.ReadTimeout(f"the exchange took longer than {timeout} s")
            return HttpResponse(
                status=response.status_code,
                headers=dict(response.headers),
                body=b"".join(chunks),
            )

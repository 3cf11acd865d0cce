"""What the serve tests share: starting serve in the test process, and raw HTTP exchanges."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, NamedTuple

import goth_actors
from goth_actors import Source
from goth_actors._serve import InThread, ServeOptions

FLAVOR = {"Metadata-Flavor": "Google"}
V1 = "/computeMetadata/v1/"
ACCOUNT = V1 + "instance/service-accounts/default/"
TOKEN = ACCOUNT + "token"


@contextmanager
def serving(source: Source, **options: Any) -> Iterator[InThread]:
    """A serve on 127.0.0.1, any free port, for one test; ``options`` as ``ServeOptions``.

    Afterwards the library's shared HTTP client is closed too, so that the emulator sees its
    keep-alive connection end at once.
    """
    try:
        with InThread(source, ServeOptions(port=0, **options)) as serve:
            yield serve
    finally:
        goth_actors.shutdown()


class Raw(NamedTuple):
    """An answer read off the socket: status, headers (lower-case names), body."""

    status: int
    headers: dict[str, str]
    body: bytes


def read_answer(sock: socket.socket, buffer: bytearray, *, head: bool = False) -> Raw:
    """Reads one HTTP answer from ``sock`` (bytes past it stay in ``buffer``); ``head``: the
    answer to a HEAD request, which has no body whatever its ``Content-Length``."""
    while b"\r\n\r\n" not in buffer:
        chunk = sock.recv(65536)
        if not chunk:
            raise ConnectionError("closed before an answer")
        buffer += chunk
    end = buffer.index(b"\r\n\r\n")
    lines = bytes(buffer[:end]).decode("latin-1").split("\r\n")
    del buffer[: end + 4]
    headers = {}
    for line in lines[1:]:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    length = 0 if head else int(headers.get("content-length", "0"))
    while len(buffer) < length:
        chunk = sock.recv(65536)
        if not chunk:
            raise ConnectionError("closed in the body")
        buffer += chunk
    body = bytes(buffer[:length])
    del buffer[:length]
    return Raw(int(lines[0].split()[1]), headers, body)


def connect(serve: InThread) -> socket.socket:
    """A new connection to ``serve`` (reads time out after 5 s)."""
    assert serve.server.address is not None
    return socket.create_connection(serve.server.address, timeout=5.0)


def exchange(serve: InThread, data: bytes, *, answers: int = 1) -> list[Raw]:
    """Sends ``data`` on a new connection and reads ``answers`` answers."""
    with connect(serve) as sock:
        sock.sendall(data)
        buffer = bytearray()
        return [read_answer(sock, buffer) for _ in range(answers)]


def closed_by_peer(sock: socket.socket) -> bool:
    """Whether the peer closed ``sock`` (waits up to its timeout for the end of the stream)."""
    try:
        while sock.recv(65536):
            pass
    except ConnectionResetError:
        return True
    except TimeoutError:
        return False
    return True


def get(path: str, host: str = "127.0.0.1", **headers: str) -> bytes:
    """A GET request's bytes with the metadata flavor, unless ``headers`` say otherwise."""
    fields = {"Host": host, "Metadata-Flavor": "Google", **headers}
    lines = [f"GET {path} HTTP/1.1", *(f"{k}: {v}" for k, v in fields.items() if v)]
    return ("\r\n".join(lines) + "\r\n\r\n").encode()

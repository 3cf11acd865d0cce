"""The requests serve accepts, and the answers it gives: the grammar of a request head.

`parse` accepts a request head (request line and headers, without the empty line that
ends it) of ``GET``-like shape, HTTP/1.0 or 1.1, origin-form target, no body, and raises
`Malformed` (with the status to answer and the refusal's reason) for anything else:
control characters, bare CR or LF, folded or space-before-colon headers, a second ``Host``,
``Content-Length`` or ``Transfer-Encoding``, a body, another version, a head or target too
large. The limits are here, with the grammar they bound.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from typing import NamedTuple

from goth_actors import GothError

__all__ = [
    "MAX_HEAD",
    "MAX_HEADERS",
    "MAX_TARGET",
    "REASONS",
    "Answer",
    "Handler",
    "Malformed",
    "Request",
    "parse",
]

MAX_HEAD = 8192
"""Bytes of a request's head (request line and headers), as most servers allow."""
MAX_HEADERS = 64
MAX_TARGET = 4096
_REQUEST_LINE = re.compile(rb"([A-Z]{1,20}) (/[\x21-\x7e]*) HTTP/(\d)\.(\d)")
_HEADER_LINE = re.compile(rb"([!#$%&'*+.^_`|~0-9A-Za-z-]+):[ \t]*(.*?)[ \t]*")
_BAD_BYTES = re.compile(rb"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]|\r(?!\n)|(?<!\r)\n")
_DIGITS = re.compile(r"[0-9]+")
_SINGLE = frozenset({"host", "content-length", "transfer-encoding"})


class Request(NamedTuple):
    """A parsed request: ``headers`` has lower-case names (repeated ones joined by ``, ``)."""

    method: str
    path: str
    query: str
    headers: dict[str, str]
    keep_alive: bool


class Answer(NamedTuple):
    """An answer.

    ``headers`` are extra ``(name, value)`` pairs; ``refused`` names the refusal (counted), or
    is empty for an answer given.
    """

    status: int
    body: bytes
    content_type: str = "application/text"
    headers: tuple[tuple[str, str], ...] = ()
    refused: str = ""


class Malformed(GothError):
    """A request head that is refused: ``status`` to answer, ``reason`` to count."""

    def __init__(self, status: int, reason: str) -> None:
        self.status = status
        self.reason = reason


def parse(head: bytes) -> Request:
    """Parses a request head (without its final empty line), or raises `Malformed`."""
    if _BAD_BYTES.search(head):
        raise Malformed(400, "malformed")
    lines = head.split(b"\r\n")
    if len(lines) > MAX_HEADERS + 1:
        raise Malformed(431, "too_large")
    first = _REQUEST_LINE.fullmatch(lines[0])
    if first is None:
        raise Malformed(400, "malformed")
    method, target, major, minor = first.groups()
    if (major, minor) not in ((b"1", b"1"), (b"1", b"0")):
        raise Malformed(505, "version")
    if len(target) > MAX_TARGET:
        raise Malformed(414, "too_large")
    headers: dict[str, str] = {}
    for line in lines[1:]:
        match = _HEADER_LINE.fullmatch(line)
        if match is None:
            raise Malformed(400, "malformed")
        name = match.group(1).lower().decode("ascii")
        value = match.group(2).decode("latin-1")
        if name in headers:
            if name in _SINGLE:
                raise Malformed(400, "malformed")
            value = f"{headers[name]}, {value}"
        headers[name] = value
    if "transfer-encoding" in headers:
        raise Malformed(501, "body")
    length = headers.get("content-length")
    if length is not None:
        if _DIGITS.fullmatch(length) is None:  # ASCII digits only: str.isdigit takes "²"
            raise Malformed(400, "body")
        if int(length) > 0:
            raise Malformed(413, "body")
    http11 = minor == b"1"
    if http11 and "host" not in headers:
        raise Malformed(400, "malformed")
    tokens = headers.get("connection", "").lower()
    keep_alive = "close" not in tokens if http11 else "keep-alive" in tokens
    path, _, query = target.decode("ascii").partition("?")
    return Request(method.decode("ascii"), path, query, headers, keep_alive)


Handler = Callable[[Request], "Answer | Awaitable[Answer]"]
"""Answers a request: at once (an `Answer`), or later (an awaitable of one)."""

REASONS = {
    200: "OK",
    301: "Moved Permanently",
    400: "Bad Request",
    403: "Forbidden",
    404: "Not Found",
    405: "Method Not Allowed",
    413: "Content Too Large",
    414: "URI Too Long",
    431: "Request Header Fields Too Large",
    500: "Internal Server Error",
    501: "Not Implemented",
    503: "Service Unavailable",
    505: "HTTP Version Not Supported",
}

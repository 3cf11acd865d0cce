"""The emulator's HTTP messages: a `RecordedRequest`, and the `Response` to it.

A `RecordedRequest` as it arrived (and as it is kept, with secrets hidden from its ``repr``),
and the `Response` a responder gives back.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, replace
from urllib.parse import parse_qsl

__all__ = [
    "RECORDED_BODY_BYTES",
    "RecordedRequest",
    "Response",
    "for_record",
    "is_secret_name",
    "parse_form",
]

RECORDED_BODY_BYTES = 64 * 1024
"""How much of a request body is kept once it is recorded (64 KiB); see `for_record`."""

_SECRET_FRAGMENTS = (
    "token",
    "secret",
    "assertion",
    "authorization",
    "password",
    "passwd",
    "cookie",
    "credential",
    "apikey",
)
"""A parameter or header whose name contains one of these is redacted in a ``repr``."""

_SECRET_WORDS = frozenset(("code", "key", "pwd", "verifier", "signature", "sig", "rapt"))
"""... and so is one with one of these as a word of its name (``code``, ``x-api-key``)."""

_WORD = re.compile(r"[a-z0-9]+")


@dataclass(frozen=True, slots=True, repr=False)
class RecordedRequest:
    """One request the emulator received, recorded on arrival.

    Attributes:
        method: ``"GET"``, ``"POST"``, ...
        path: The path without its query string, e.g. ``"/token"``.
        endpoint: What was asked: ``"token"`` (the token endpoint), ``"metadata"``
            (``/computeMetadata/...`` and the ``GET /`` ping), ``"tokeninfo"``, ``"certs"``,
            ``"sts"`` (the Security Token Service), ``"iam"`` (IAM Credentials),
            ``"subject"`` (the subject-token URL of workload identity) or ``"other"``.
        query: Query parameters (the last of repeated names wins).
        form: The parameters of a form-encoded (or JSON object) body; empty otherwise.
            JSON values that are not strings are kept JSON-encoded.
        headers: Request headers, names in lower case.
        time: Arrival time, as ``time.time()``.
        body: The raw request body (``json.loads(request.body)`` for an IAM request).
        client_cert: The DER certificate the client presented over mutual TLS (the mTLS
            listener only), or ``None``.

    The attributes hold what was sent, secrets included, except that a recorded ``body``
    keeps only its first 64 KiB; the full length is in ``headers["content-length"]``, and a
    longer body is recorded with an empty ``form``.

    The ``repr`` hides the raw body and the value of every query parameter, form field and
    header whose name looks secret: any name containing ``token``, ``secret``,
    ``assertion``, ``authorization``, ``password``, ``cookie`` or ``credential``
    (``actor_token``, ``client_assertion``, ``proxy-authorization``), or with ``code``,
    ``key``, ``verifier`` or ``signature`` as a word of it (``code``, ``x-api-key``). Token
    *types* (``subject_token_type``) are shown.

    Examples:
        ```python
        [r.form["grant_type"] for r in emu.requests_to("token")]
        ```
        ['refresh_token']
    """

    method: str
    path: str
    endpoint: str
    query: dict[str, str]
    form: dict[str, str]
    headers: dict[str, str]
    time: float
    body: bytes = b""
    client_cert: bytes | None = None

    def __repr__(self) -> str:
        return (
            f"RecordedRequest(method={self.method!r}, path={self.path!r}, "
            f"endpoint={self.endpoint!r}, query={_redacted(self.query)!r}, "
            f"form={_redacted(self.form)!r}, headers={_redacted(self.headers)!r}, "
            f"time={self.time!r})"
        )


def for_record(request: RecordedRequest) -> RecordedRequest:
    """``request`` as it is kept: its body cut to `RECORDED_BODY_BYTES`.

    A body that is cut loses its ``form`` too, rather than keep a half-parsed last value.
    """
    if len(request.body) <= RECORDED_BODY_BYTES:
        return request
    return replace(request, form={}, body=request.body[:RECORDED_BODY_BYTES])


def is_secret_name(name: str) -> bool:
    """Whether a parameter or header called ``name`` may carry a secret (any case)."""
    lowered = name.lower()
    if lowered.endswith("token_type"):  # a URN such as ...:token-type:jwt, not a token
        return False
    if any(fragment in lowered for fragment in _SECRET_FRAGMENTS):
        return True
    return not _SECRET_WORDS.isdisjoint(_WORD.findall(lowered))


def _redacted(values: Mapping[str, str]) -> dict[str, str]:
    return {k: "<redacted>" if is_secret_name(k) else v for k, v in values.items()}


def parse_form(content_type: str, body: bytes) -> dict[str, str]:
    media_type = content_type.partition(";")[0].strip().lower()
    text = body.decode("utf-8", "replace")
    if media_type == "application/x-www-form-urlencoded":
        return dict(parse_qsl(text, keep_blank_values=True))
    if media_type == "application/json":
        try:
            decoded = json.loads(text)
        except ValueError:
            return {}
        if isinstance(decoded, dict):
            return {str(k): v if isinstance(v, str) else json.dumps(v) for k, v in decoded.items()}
    return {}


@dataclass(frozen=True, slots=True)
class Response:
    """One HTTP answer. ``Content-Length`` is added unless ``headers`` already has one.

    ``cut_after`` set: only that many bytes of the body are sent, then the connection is
    reset (TCP RST), as a peer or middlebox that dies mid-response.
    """

    status: int
    body: bytes = b""
    headers: tuple[tuple[str, str], ...] = ()
    cut_after: int | None = None

    @classmethod
    def json(
        cls, status: int, payload: object, headers: Mapping[str, str] | None = None
    ) -> Response:
        """A JSON answer (``application/json; charset=utf-8``)."""
        extra = tuple((headers or {}).items())
        return cls(
            status,
            json.dumps(payload).encode(),
            (("Content-Type", "application/json; charset=utf-8"), *extra),
        )

    @classmethod
    def text(cls, status: int, text: str, headers: Mapping[str, str] | None = None) -> Response:
        """A plain-text answer (``text/plain; charset=utf-8``)."""
        extra = tuple((headers or {}).items())
        return cls(status, text.encode(), (("Content-Type", "text/plain; charset=utf-8"), *extra))

    def header(self, name: str) -> str | None:
        """The first header called ``name`` (any case), or ``None``."""
        wanted = name.lower()
        return next((v for k, v in self.headers if k.lower() == wanted), None)

    def with_headers(self, headers: Mapping[str, str]) -> Response:
        """A copy with ``headers`` set, replacing any of the same names."""
        names = {name.lower() for name in headers}
        kept = tuple((k, v) for k, v in self.headers if k.lower() not in names)
        return replace(self, headers=(*kept, *headers.items()))

"""Reading a token endpoint's answer: errors from statuses and bodies, and what they carry.

Everything here reads what another party wrote, so it is bounded (excerpts of at most 200
characters, JSON no deeper than 64 levels), redacted
(`redact`) and escaped
(`escape`: no newline or escape sequence of the remote's
reaches a message or a log line) before it is kept. Bodies are parsed as strict UTF-8.

A 200 answer that is no usable token is never quoted, only summed up (`answer_shape`: its
keys and their types): it may hold new tokens no pattern recognises.
"""

from __future__ import annotations

import base64
import contextlib
import json
import math
import re
from collections.abc import Callable, Mapping
from email.utils import parsedate_to_datetime
from typing import Any

from goth_actors._protocol.errors import TokenEndpointError
from goth_actors._protocol.exchange import Exchange
from goth_actors._protocol.files import NOT_JSON, decode_utf8, parse_json
from goth_actors._protocol.http_client import MAX_BODY_BYTES, HttpResponse
from goth_actors._protocol.redact import escape, redact, shorten, without_query

__all__ = [
    "MAX_EXPIRES_IN",
    "RETRYABLE_OAUTH_ERRORS",
    "RETRYABLE_STATUSES",
    "answer_shape",
    "body_excerpt",
    "body_text",
    "describe",
    "invalid",
    "json_object",
    "jwt_claims",
    "parse_body",
    "parse_expires_in",
    "parse_retry_after",
    "status_error",
    "str_or_none",
    "token_problem",
    "token_type_problem",
    "unusable_answer",
]

RETRYABLE_STATUSES = frozenset({408, 429, 500, 502, 503, 504})
"""HTTP statuses after which trying again later may succeed."""

RETRYABLE_OAUTH_ERRORS = frozenset({"internal_failure", "server_error", "temporarily_unavailable"})
"""OAuth ``error`` codes after which trying again later may succeed."""

MAX_EXPIRES_IN = 30 * 24 * 3600
"""An ``expires_in`` above this (30 days) is treated as nonsense, not trusted."""

_EXCERPT_CHARS = 200

# RFC 6750's b64token: what may follow "Bearer " in an Authorization header.
_B64TOKEN = re.compile(r"[A-Za-z0-9\-._~+/]+=*")
# RFC 9110's token: what a token type (the auth scheme) may be.
_AUTH_SCHEME = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")


def token_problem(value: object, name: str = "access_token") -> str | None:
    """Why ``value`` cannot be sent as a bearer token, or ``None`` if it can.

    A token must be a non-empty string of RFC 6750's characters (letters, digits and
    ``-._~+/``, then ``=`` padding): never CR, LF, NUL, ESC, a space or anything else that
    could fold or forge an ``Authorization`` header or drive a terminal when printed.
    """
    if not isinstance(value, str) or not value:
        return f"has an {name} that is not a string"
    if len(value) > 16384:
        return f"has an {name} of {len(value)} characters (more than 16384)"
    if not _B64TOKEN.fullmatch(value):
        return f"has an {name} with characters a bearer token may not have (RFC 6750)"
    return None


def token_type_problem(value: str) -> str | None:
    """Why ``value`` cannot be a token type (an HTTP auth scheme), or ``None`` if it can."""
    if len(value) > 64 or not _AUTH_SCHEME.fullmatch(value):
        return "has a token_type that is not an HTTP auth scheme (RFC 9110 token characters)"
    return None


def jwt_claims(text: str) -> dict[str, Any] | None:
    """A JWT's claims, read without checking its signature; ``None`` if it is not a JWT.

    Its JSON is parsed with the depth bound of every remote answer (never a
    ``RecursionError``), and no exception of the decoding is ever chained to an error.
    """
    parts = text.split(".")
    if len(parts) != 3:
        return None
    payload = parts[1]
    raw: bytes | None = None
    with contextlib.suppress(ValueError):
        raw = base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4))
    decoded = None if raw is None else decode_utf8(raw)
    claims = NOT_JSON if decoded is None else parse_json(decoded)
    return claims if isinstance(claims, dict) else None


def parse_expires_in(value: object) -> float | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, str):
        try:
            value = float(value.strip())
        except ValueError:
            return None
    if not isinstance(value, int | float) or not math.isfinite(value):
        return None
    if not 0 < value <= MAX_EXPIRES_IN:
        return None
    return float(value)


def status_error(
    response: HttpResponse, exchange: Exchange, url: str, clock: Callable[[], float]
) -> TokenEndpointError:
    status = response.status
    error: str | None = None
    description: str | None = None
    body = response.body
    data = parse_body(body)
    if isinstance(data, Mapping):
        raw_error = data.get("error")
        if isinstance(raw_error, Mapping):  # Google APIs' {"error": {"status": ..., "message"}}
            error = str_or_none(raw_error.get("status"))
            description = str_or_none(raw_error.get("message"))
        else:
            error = str_or_none(raw_error)
            description = str_or_none(data.get("error_description"))
    if error is not None:
        error = escape(redact(error, exchange.secrets)[:100])
    if description is not None:
        description = escape(redact(description, exchange.secrets)[:_EXCERPT_CHARS])
    if error == "invalid_grant":
        retryable = False
    else:
        # As google-auth: a transient code in the error or in its description (Google's STS
        # answers 400 {"error_description": "internal_failure"}).
        retryable = (
            status in RETRYABLE_STATUSES
            or error in RETRYABLE_OAUTH_ERRORS
            or (description or "").strip() in RETRYABLE_OAUTH_ERRORS
        )
    excerpt = body_excerpt(body, exchange)
    if 300 <= status < 400:
        location = response.header("Location")
        where = f" to {escape(without_query(location))[:200]}" if location else ""
        message = f"{url} answered a redirect ({status}{where}); redirects are never followed"
    else:
        what = ": ".join(part for part in (error, description) if part) or excerpt or "no body"
        message = f"{url} answered {status}: {what}"
    return TokenEndpointError(
        message,
        status=status,
        retryable=retryable,
        error=error,
        error_description=description,
        body=excerpt,
        retry_after=parse_retry_after(response.header("Retry-After"), clock),
        url=url,
    )


def parse_retry_after(value: str | None, clock: Callable[[], float]) -> float | None:
    """Seconds to wait from a ``Retry-After`` header: delta-seconds or an HTTP-date."""
    if value is None:
        return None
    value = value.strip()
    try:
        seconds = float(value)
    except ValueError:
        try:
            when = parsedate_to_datetime(value)
        except (TypeError, ValueError, IndexError):
            return None
        if when.tzinfo is None:
            return None
        seconds = when.timestamp() - clock()
    if not math.isfinite(seconds):
        return None
    return max(0.0, seconds)


def invalid(response: HttpResponse, url: str, problem: str) -> TokenEndpointError:
    """The error for ``response``, a 200 that is no usable token (see `unusable_answer`)."""
    return unusable_answer(url, problem, response.body)


def unusable_answer(where: str, problem: str, answer: object) -> TokenEndpointError:
    """The error for a 200 answer that is no usable token: not retryable, never quoting it.

    Args:
        where: The URL that answered, without its query.
        problem: What is wrong, after the URL in the message.
        answer: The answer: its body, its decoded JSON, or ``None``. Only its shape is kept
            as the error's ``body`` (`answer_shape`): a 200's values may be tokens.
    """
    return TokenEndpointError(
        f"{where} {problem}", status=200, retryable=False, body=answer_shape(answer), url=where
    )


def answer_shape(answer: object) -> str:
    """A 200 answer summed up without a value of it: its keys and their types.

    Examples:
        >>> answer_shape(b'{"access_token": "tok", "expires_in": 0}')
        "{'access_token': str, 'expires_in': int}"
        >>> answer_shape(b"<html>portal</html>")
        '(not JSON, 19 characters)'
    """
    if answer is None:
        return ""
    data = parse_body(answer)
    if isinstance(data, Mapping):
        items = list(data.items())
        shape = ", ".join(f"{escape(str(k)[:40])!r}: {type(v).__name__}" for k, v in items[:10])
        return f"{{{shape}{', ...' if len(items) > 10 else ''}}}"
    if data is NOT_JSON:
        size = len(answer) if isinstance(answer, str | bytes | bytearray) else 0
        return f"(not JSON, {size} characters)"
    return f"(JSON {type(data).__name__})"


def parse_body(body: object) -> Any:
    """A body as JSON, or `NOT_JSON`.

    A mapping as is, else strict UTF-8 text parsed with the depth bound; `NOT_JSON` when it is
    neither.
    """
    if isinstance(body, Mapping):
        return body
    if isinstance(body, bytes | bytearray):
        text = decode_utf8(bytes(body))
        if text is None:
            return NOT_JSON
        return parse_json(text)
    if isinstance(body, str):
        return parse_json(body)
    return NOT_JSON


def json_object(response: HttpResponse, url: str) -> Mapping[str, Any]:
    data = parse_body(response.body)
    if data is NOT_JSON:
        raise invalid(
            response,
            url,
            "answered 200 with a body that is not JSON (or not UTF-8, or nested too deep)",
        )
    if not isinstance(data, dict):
        raise invalid(response, url, "answered 200 with JSON that is not an object")
    return data


def body_excerpt(body: object, exchange: Exchange) -> str:
    if isinstance(body, Mapping):
        try:
            text = json.dumps(
                {k: v for k, v in body.items() if k not in ("access_token", "id_token")},
                default=str,
            )
        except (ValueError, TypeError, RecursionError):
            text = "(a mapping that is not JSON)"
    else:
        text = body_text(body)
    if len(text) > MAX_BODY_BYTES:  # only a custom client's: drop the word cut in two
        text = text[:MAX_BODY_BYTES].rpartition(" ")[0]
    # The whole body is redacted before it is shortened: a secret across the cut is whole.
    text = redact(" ".join(text.split()), exchange.secrets)
    return shorten(escape(text), _EXCERPT_CHARS)


def body_text(body: object) -> str:
    if isinstance(body, bytes | bytearray):
        return bytes(body).decode("utf-8", errors="replace")
    if isinstance(body, str):
        return body
    return ""


def str_or_none(value: object) -> str | None:
    return value if isinstance(value, str) and value else None


def describe(value: object) -> str:
    if value is None:
        return "missing"
    if isinstance(value, str):
        return repr(value[:20])
    return f"{type(value).__name__} {value!r}"[:40]

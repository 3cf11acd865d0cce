"""Keeping secrets out of messages: redaction of credentials and query strings.

Everything a remote party wrote, and every message built around a request, passes through
:func:`redact` before it reaches an exception, a log line or a body excerpt.
"""

from __future__ import annotations

import re
from urllib.parse import quote, quote_plus, urlsplit, urlunsplit

__all__ = ["redact", "redact_query", "shorten", "without_query"]

# Anything that looks like a credential: Google access tokens, JWTs, PEM blocks, long opaque
# strings. Body excerpts and error messages pass through this before they are kept.
_SECRET_PATTERNS = re.compile(
    r"ya29\.[\w.-]+"
    r"|eyJ[\w-]*\.[\w-]*\.[\w-]*"
    r"|-----BEGIN[^-]*-----.*?(?:-----END[^-]*-----|$)"
    r"|1//[\w-]+"
    r"|[A-Za-z0-9_\-+=]{32,}",
    re.DOTALL,
)

_QUERY = re.compile(r"\?[^\s'\")]+")


def redact(text: str, secrets: tuple[str, ...] = ()) -> str:
    """``text`` with each of ``secrets``, and anything that looks like a credential, removed.

    Each secret is removed as sent: raw, URL-encoded in a form body or a query string, and,
    for a header value such as ``"Bearer <token>"``, the credential alone (an endpoint may
    echo just that).

    Example:
        >>> redact("refused ya29.a0AfH6SMB: bad", ())
        'refused <redacted>: bad'
    """
    for secret in secrets:
        credential = secret.partition(" ")[2]
        for whole in (secret, credential) if len(credential) >= 8 else (secret,):
            for form in {whole, quote(whole, safe=""), quote_plus(whole)}:
                if form:
                    text = text.replace(form, "<redacted>")
    return _SECRET_PATTERNS.sub("<redacted>", text)


def redact_query(text: str) -> str:
    """``text`` with every URL query string in it replaced: a query can carry a signature.

    Example:
        >>> redact_query("GET https://x.test/a?sig=1 failed")
        'GET https://x.test/a?<redacted> failed'
    """
    return _QUERY.sub("?<redacted>", text)


def without_query(url: str) -> str:
    """``url`` without its query string and fragment (they can carry secrets).

    Example:
        >>> without_query("https://x.test/token?key=1#f")
        'https://x.test/token'
    """
    parts = urlsplit(url)
    return urlunsplit((parts.scheme, parts.netloc, parts.path, "", ""))


def shorten(text: str, limit: int) -> str:
    """``text`` in at most ``limit`` characters, its middle left out between words.

    The head and the tail are kept (a chained error names its root cause last), each cut
    between words, so no word or URL is cut in two unless it alone is longer than its share.

    Example:
        >>> shorten("GET http://x.test/token failed: ConnectionError: pool: retries: refused", 50)
        'GET http://x.test/token … pool: retries: refused'
    """
    if len(text) <= limit or limit < 10:
        return text[:limit]
    room = limit - 3  # for " … "
    head = text[: room * 2 // 3]
    if " " in head:
        head = head[: head.rindex(" ")]
    tail = text[len(text) - (room - len(head)) :]
    if " " in tail:
        tail = tail[tail.index(" ") + 1 :]
    return f"{head.rstrip()} … {tail.lstrip()}"

"""Keeping secrets out of messages, and remote text safe in them: redaction and escaping.

Everything a remote party wrote, and every message built around a request, passes through
`redact` before it reaches an exception, a log line or a body excerpt, and through
`escape` so that it cannot forge a log line or drive a terminal.
"""

from __future__ import annotations

import re
from urllib.parse import quote, quote_plus, unquote, urlsplit, urlunsplit

__all__ = [
    "MIN_SUBSTRING_SECRET",
    "escape",
    "redact",
    "redact_query",
    "shorten",
    "url_password",
    "without_query",
]

# Anything that looks like a credential: Google access tokens, JWTs, PEM blocks, long opaque
# strings. Body excerpts and error messages pass through this before they are kept, whole
# bodies (up to 1 MiB) too: so no alternative may fail after scanning far, which would make a
# search quadratic. A JWT is any base64url run from "eyJ" (its '{"'), dots or not.
_SECRET_PATTERNS = re.compile(
    r"ya29\.[\w.-]+"
    r"|eyJ[A-Za-z0-9_-]*(?:\.[A-Za-z0-9_-]*)*"
    r"|-----BEGIN[^-]*-----.*?(?:-----END[^-]*-----|$)"
    r"|1//[\w-]+"
    r"|[A-Za-z0-9_\-+=]{32,}",
    re.DOTALL,
)

_QUERY = re.compile(r"\?[^\s'\")]+")

MIN_SUBSTRING_SECRET = 8
"""A secret shorter than this is redacted only where it stands alone, never inside a word: a
one-character client secret must not turn every ``a`` of a message into ``<redacted>``."""

# What may not sit next to a short secret that stands alone: a character of a token (before
# it; "=" only ends a token, as base64 padding) or of a token or its padding (after it).
_BEFORE = r"A-Za-z0-9\-._~+/%"
_AFTER = r"A-Za-z0-9\-._~+/%="

# C0 controls, DEL, C1 controls, and the Unicode line and paragraph separators and bidi
# controls that can reorder or break a log line.
_UNSAFE = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069]")


def redact(text: str, secrets: tuple[str, ...] = ()) -> str:
    """``text`` with each of ``secrets``, and anything that looks like a credential, removed.

    Each secret is removed as sent: raw, URL-encoded in a form body or a query string, and,
    for a header value such as ``"Bearer <token>"``, the credential alone (an endpoint may
    echo just that). A secret of fewer than `MIN_SUBSTRING_SECRET` characters is removed
    only where it is a whole value, not a part of a longer word.

    Examples:
        >>> redact("refused ya29.a0AfH6SMB: bad", ())
        'refused <redacted>: bad'
        >>> redact("client a is invalid", ("a",))
        'client <redacted> is invalid'
    """
    for secret in secrets:
        credential = secret.partition(" ")[2]
        for whole in (secret, credential) if len(credential) >= 8 else (secret,):
            for form in {whole, quote(whole, safe=""), quote_plus(whole)}:
                if not form:
                    continue
                if len(form) >= MIN_SUBSTRING_SECRET:
                    text = text.replace(form, "<redacted>")
                else:
                    alone = rf"(?<![{_BEFORE}]){re.escape(form)}(?![{_AFTER}])"
                    text = re.sub(alone, "<redacted>", text)
    return _SECRET_PATTERNS.sub("<redacted>", text)


def escape(text: str) -> str:
    r"""``text`` with every control character escaped: what a remote party wrote, made safe.

    Newlines, carriage returns, ESC and the other C0 and C1 controls, DEL, and the Unicode
    line separators and bidi controls become ``\n``, ``\r``, ``\x1b``, ``\u2028``...: a
    remote ``error_description`` can neither start a forged log line nor drive a terminal.

    Examples:
        >>> escape("bad\nWARNING forged\x1b[2J")
        'bad\\nWARNING forged\\x1b[2J'
    """
    return _UNSAFE.sub(_escaped, text)


def _escaped(match: re.Match[str]) -> str:
    char = match.group()
    named = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}.get(char)
    if named is not None:
        return named
    code = ord(char)
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def redact_query(text: str) -> str:
    """``text`` with every URL query string in it replaced: a query can carry a signature.

    Examples:
        >>> redact_query("GET https://x.test/a?sig=1 failed")
        'GET https://x.test/a?<redacted> failed'
    """
    return _QUERY.sub("?<redacted>", text)


def without_query(url: str) -> str:
    """``url`` without its user name and password, query string and fragment (secrets all).

    Examples:
        >>> without_query("https://user:password@x.test/token?key=1#f")
        'https://x.test/token'
    """
    try:
        parts = urlsplit(url)
    except ValueError:  # urlsplit's message quotes the whole netloc, password and all
        raise ValueError(
            "not a valid URL (its host part is not shown: it may hold a secret)"
        ) from None
    host = parts.netloc.rpartition("@")[2]
    return urlunsplit((parts.scheme, host, parts.path, "", ""))


_ATS = ("@", "\uff20", "\ufe6b")
"""``@`` and the two characters that NFKC makes one, which ``urlsplit`` then refuses."""


def url_password(url: str) -> tuple[str, ...]:
    """The password of ``url``'s ``user:password@``, as written and decoded; or nothing.

    Examples:
        >>> url_password("http://md:p%40ss@127.0.0.1/")
        ('p%40ss', 'p@ss')
    """
    if not any(at in url for at in _ATS):  # no user information (the common case: no parsing)
        return ()
    try:
        password = urlsplit(url).password
    except ValueError:  # say, a look-alike "@": all that may be user information is secret
        netloc = url.partition("://")[2].partition("/")[0]
        cut = max(netloc.rfind(at) for at in _ATS)
        userinfo = netloc[:cut] if cut > 0 else ""
        password = userinfo.partition(":")[2] or userinfo
    return tuple(dict.fromkeys((password, unquote(password)))) if password else ()


def shorten(text: str, limit: int) -> str:
    """``text`` in at most ``limit`` characters, its middle left out between words.

    The head and the tail are kept (a chained error names its root cause last), each cut
    between words, so no word or URL is cut in two unless it alone is longer than its share.

    Examples:
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

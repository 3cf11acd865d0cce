"""Validation shared by the sources: credentials mappings, strings, URLs, scopes, forms.

Every check raises ``ConfigError`` naming the field, and never quotes a value that could be a
secret (``_quoted_type`` shows only short identifiers).
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Iterable, Mapping, Sequence
from typing import Any
from urllib.parse import urlencode, urlsplit

from goth_actors._base import ConfigError
from goth_actors._protocol.redact import without_query

__all__ = [
    "CLOUD_PLATFORM_SCOPE",
    "FORM",
    "GOOGLE_TOKEN_URL",
    "check_project",
    "check_scopes",
    "check_url",
    "credentials_mapping",
    "form",
    "optional_string",
    "quota_project",
    "quoted_type",
    "required_string",
    "shown",
    "unknown_keyword",
]

CLOUD_PLATFORM_SCOPE = "https://www.googleapis.com/auth/cloud-platform"
GOOGLE_TOKEN_URL = "https://oauth2.googleapis.com/token"
FORM = "application/x-www-form-urlencoded"


def credentials_mapping(value: object, expected_type: str) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise ConfigError(
            "credentials",
            f"must be a mapping (the decoded JSON key file), got {type(value).__name__}",
        )
    kind = value.get("type")
    if kind is not None and kind != expected_type:
        shown = quoted_type(kind) if isinstance(kind, str) else f"a {type(kind).__name__}"
        raise ConfigError(
            "credentials.type",
            f"is {shown}, expected {expected_type!r}; use source_from_credentials() to pick the "
            "source from the key file's type",
        )
    return value


def required_string(credentials: Mapping[str, Any], key: str, *, secret: bool = False) -> str:
    value = credentials.get(key)
    if value is None:
        raise ConfigError(f"credentials.{key}", "is missing from the credentials")
    if not isinstance(value, str):
        raise ConfigError(f"credentials.{key}", f"must be a string, got {type(value).__name__}")
    if not value.strip():
        raise ConfigError(f"credentials.{key}", "is empty")
    if not secret and len(value) > 2048:
        raise ConfigError(f"credentials.{key}", f"is implausibly long ({len(value)} characters)")
    return value


def optional_string(value: object, name: str) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str):
        raise ConfigError(name, f"must be a string or None, got {type(value).__name__}")
    if not value.strip():
        raise ConfigError(name, "must not be empty")
    return value


def check_url(value: object, name: str) -> str | None:
    text = optional_string(value, name)
    if text is None:
        return None
    if re.search(r"[\x00-\x20\x7f-\x9f]", text):
        raise ConfigError(name, "must not contain spaces or control characters")
    try:
        parts = urlsplit(text)
    except ValueError:  # its message would quote the host part, and a password in it
        raise ConfigError(
            name, "is not a valid URL (say, a character in its host that NFKC makes '@' or '/')"
        ) from None
    if "@" in parts.netloc:
        # Never quoted: it would show in the source's repr and in every error about the URL.
        raise ConfigError(
            name,
            "must not carry a user name or password (user:password@host): a URL shows in "
            "messages; send a credential in a header (a credential_source's 'headers')",
        )
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ConfigError(
            name, f"must be an http:// or https:// URL, got {without_query(text)[:100]!r}"
        )
    return text


def check_scopes(value: object, name: str = "scopes") -> tuple[str, ...]:
    if isinstance(value, str | bytes):
        raise ConfigError(
            name,
            f"must be a sequence of scope strings, not a single string; did you mean "
            f"{name}=({value!r},)?",
        )
    if not isinstance(value, Iterable):
        raise ConfigError(name, f"must be a sequence of scope strings, got {type(value).__name__}")
    scopes = tuple(value)
    for scope in scopes:
        if not isinstance(scope, str) or not scope or any(c.isspace() for c in scope):
            raise ConfigError(
                name, f"each scope must be a non-empty string without spaces, got {scope!r}"
            )
    return scopes


def check_project(value: object, name: str) -> str | None:
    """A project id (or number) such as a quota project: short, printable, no spaces."""
    if value is None:
        return None
    if not isinstance(value, str) or not re.fullmatch(r"[A-Za-z0-9][\w.:-]{0,99}", value):
        shown = quoted_type(value) if isinstance(value, str) else type(value).__name__
        raise ConfigError(name, f"must be a project id such as 'my-project', got {shown}")
    return value


def quota_project(explicit: object, credentials: Mapping[str, Any]) -> str | None:
    """The quota project: the caller's ``quota_project_id``, else the credentials'."""
    if explicit is not None:
        return check_project(explicit, "quota_project_id")
    return check_project(credentials.get("quota_project_id"), "credentials.quota_project_id")


def unknown_keyword(where: str, name: str, known: Sequence[str]) -> str:
    """The message of the ``TypeError`` for an unknown keyword, with the likeliest meant one.

    Examples:
        >>> unknown_keyword("ServiceAccount()", "scope", ["scopes", "sub"])
        "ServiceAccount() got an unexpected keyword argument 'scope'; did you mean 'scopes'?"
    """
    message = f"{where} got an unexpected keyword argument {name[:60]!r}"
    close = difflib.get_close_matches(name, [k for k in known if not k.startswith("_")], 1, 0.6)
    if close:
        return f"{message}; did you mean {close[0]!r}?"
    public = ", ".join(k for k in known if not k.startswith("_"))
    return f"{message}; it takes {public}"


def form(fields: Sequence[tuple[str, str]]) -> bytes:
    return urlencode(fields).encode("ascii")


def shown(name: str, value: object) -> str:
    """``", name=value"`` for a ``repr``, or nothing when ``value`` is ``None``."""
    return "" if value is None else f", {name}={value!r}"


def quoted_type(value: str) -> str:
    """A key-file value fit to quote in an error: short identifiers only, never a secret."""
    if re.fullmatch(r"[A-Za-z0-9_]{1,40}", value):
        return repr(value)
    return f"a {len(value)}-character value"

"""AWS Signature Version 4, with ``hmac`` and ``hashlib`` only.

What an AWS workload signs to prove who it is to Google's STS (a ``GetCallerIdentity`` request
it never sends itself).

The steps are AWS's (``docs.aws.amazon.com/general/latest/gr/sigv4_signing.html``): a canonical
request (method, normalised path, sorted and encoded query, lower-cased sorted headers with
trimmed values, the payload's SHA-256), a string to sign (algorithm, time, credential scope,
the canonical request's SHA-256), a signing key derived from the secret by four HMACs (date,
region, service, ``aws4_request``), and the ``Authorization`` header. Checked against AWS's
published SigV4 test suite in ``tests/test_sigv4.py``.
"""

from __future__ import annotations

import hashlib
import hmac
import posixpath
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from urllib.parse import parse_qsl, quote, urlsplit

__all__ = ["ALGORITHM", "AwsCredentials", "canonical_query", "sign_request"]

ALGORITHM = "AWS4-HMAC-SHA256"


@dataclass(frozen=True, slots=True, repr=False)
class AwsCredentials:
    """AWS security credentials: a key pair, and a session token for temporary ones.

    Attributes:
        access_key_id: The access key id (not secret; it names the key).
        secret_access_key: The secret. Never shown by ``repr``.
        session_token: The session token of temporary credentials, or ``None``.
    """

    access_key_id: str
    secret_access_key: str = field(repr=False)
    session_token: str | None = field(default=None, repr=False)

    def __repr__(self) -> str:
        temporary = ", temporary" if self.session_token else ""
        return f"AwsCredentials(access_key_id={self.access_key_id!r}{temporary})"

    def secrets(self) -> tuple[str, ...]:
        """The strings that must never reach a message."""
        return tuple(s for s in (self.secret_access_key, self.session_token) if s)


def canonical_query(query: str) -> str:
    """A query string in SigV4's canonical form: each name and value URI-encoded, sorted.

    Examples:
        >>> canonical_query("b=2&a=x y&a=1")
        'a=1&a=x%20y&b=2'
    """
    pairs = [
        (quote(name, safe="-_.~"), quote(value, safe="-_.~"))
        for name, value in parse_qsl(query, keep_blank_values=True)
    ]
    return "&".join(f"{name}={value}" for name, value in sorted(pairs))


def _canonical_path(path: str) -> str:
    if not path:
        return "/"
    normal = posixpath.normpath(path)
    if normal.startswith("//"):  # posixpath keeps a leading double slash
        normal = "/" + normal.lstrip("/")
    if path.endswith("/") and normal != "/":
        normal += "/"
    return normal


def _hmac(key: bytes, message: str) -> bytes:
    return hmac.new(key, message.encode("utf-8"), hashlib.sha256).digest()


def sign_request(
    *,
    method: str,
    url: str,
    region: str,
    credentials: AwsCredentials,
    service: str | None = None,
    headers: Mapping[str, str] | None = None,
    body: bytes = b"",
    now: float | None = None,
) -> dict[str, str]:
    """Signs a request with SigV4; returns the headers to send it with.

    Args:
        method: The HTTP method, e.g. ``"POST"``.
        url: The full URL, query included (``https://sts.us-east-1.amazonaws.com?Action=...``).
        region: The AWS region, e.g. ``"us-east-1"``.
        credentials: The key pair (and session token) to sign with.
        service: The service in the credential scope. Default: the host's first label,
            without ``-fips`` (``sts`` for ``sts.us-east-1.amazonaws.com``), as AWS's SDKs.
        headers: Headers to sign too. A ``date`` header is signed instead of adding
            ``x-amz-date``.
        body: The request body, whose SHA-256 is signed.
        now: Unix seconds of the signature. Default: now.

    Returns:
        The given headers plus ``Authorization``, ``host``, ``x-amz-date`` (unless a ``date``
        was given) and ``x-amz-security-token`` (with a session token).

    Examples:
        >>> keys = AwsCredentials("AKIDEXAMPLE", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY")
        >>> signed = sign_request(method="GET", url="https://host.foo.com/", region="us-east-1",
        ...                       credentials=keys, now=0)
        >>> signed["Authorization"].split(", ")[1]
        'SignedHeaders=host;x-amz-date'
    """
    parts = urlsplit(url)
    host = parts.hostname or ""
    if parts.port is not None:
        host = f"{host}:{parts.port}"
    service = service or host.split(".")[0].removesuffix("-fips")
    moment = time.gmtime(time.time() if now is None else now)
    amz_date = time.strftime("%Y%m%dT%H%M%SZ", moment)
    day = amz_date[:8]

    given = dict(headers or {})
    signed: dict[str, str] = {name.lower(): value for name, value in given.items()}
    signed["host"] = host
    if "date" not in signed:
        signed["x-amz-date"] = amz_date
    if credentials.session_token:
        signed["x-amz-security-token"] = credentials.session_token
    names = sorted(signed)
    canonical_headers = "".join(f"{name}:{' '.join(signed[name].split())}\n" for name in names)
    signed_headers = ";".join(names)
    canonical_request = "\n".join(
        (
            method.upper(),
            _canonical_path(parts.path),
            canonical_query(parts.query),
            canonical_headers,
            signed_headers,
            hashlib.sha256(body).hexdigest(),
        )
    )
    scope = f"{day}/{region}/{service}/aws4_request"
    string_to_sign = "\n".join(
        (ALGORITHM, amz_date, scope, hashlib.sha256(canonical_request.encode()).hexdigest())
    )
    key = _hmac(("AWS4" + credentials.secret_access_key).encode("utf-8"), day)
    for part in (region, service, "aws4_request"):
        key = _hmac(key, part)
    signature = hmac.new(key, string_to_sign.encode("utf-8"), hashlib.sha256).hexdigest()

    result = {
        "Authorization": f"{ALGORITHM} Credential={credentials.access_key_id}/{scope}, "
        f"SignedHeaders={signed_headers}, Signature={signature}",
        "host": host,
    }
    if "date" not in signed:
        result["x-amz-date"] = amz_date
    result.update(given)
    if credentials.session_token:
        result["x-amz-security-token"] = credentials.session_token
    return result

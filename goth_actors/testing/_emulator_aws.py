"""What the emulator knows of AWS: an EC2 instance's metadata service, and STS's check.

The check is the one Google's STS makes of an AWS workload's signed ``GetCallerIdentity``
request.

`FakeAws` plays the instance metadata service (IMDS) of an EC2 instance with a role:
``PUT /latest/api/token`` gives an IMDSv2 session token, and, with it (or without, unless
IMDSv2 is required), ``/latest/meta-data/placement/availability-zone``,
``/latest/meta-data/iam/security-credentials`` (the role's name) and
``.../security-credentials/{role}`` (temporary credentials). It also issues long-term access
keys (for ``AWS_ACCESS_KEY_ID``). `FakeAws.caller_identity` is what STS does with an
``aws4_request`` subject token: decode it, check that it is a ``GetCallerIdentity`` request for
the pool, recompute its SigV4 signature with `verify_sigv4` (an implementation of its
own, independent of the library's, held to AWS's test suite too) and answer the caller's ARN.
"""

from __future__ import annotations

import calendar
import hashlib
import hmac
import json
import posixpath
import re
import secrets
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from email.utils import parsedate_to_datetime
from urllib.parse import parse_qsl, quote, unquote, urlsplit

from goth_actors.testing._emulator_messages import RecordedRequest, Response
from goth_actors.testing._emulator_store import Rejected

__all__ = ["AWS_PATH", "AWS_TOKEN_TYPE", "AwsKey", "FakeAws", "verify_sigv4"]

AWS_PATH = "/latest/"
AWS_TOKEN_TYPE = "urn:ietf:params:aws:token-type:aws4_request"
_CLOCK_SKEW = 15 * 60.0
"""Seconds AWS lets a signed request's time differ from its own."""
_AUTHORIZATION = re.compile(
    r"AWS4-HMAC-SHA256 Credential=(?P<key>[^/]+)/(?P<scope>[^,]+), "
    r"SignedHeaders=(?P<signed>[^,]+), Signature=(?P<signature>[0-9a-f]{64})"
)
_INVALID = "The AWS signature of the subject token is invalid."


@dataclass(frozen=True, slots=True)
class AwsKey:
    """An access key the fake AWS issued: who it is, and how to check its signatures."""

    access_key_id: str
    secret_access_key: str
    session_token: str | None
    arn: str


def verify_sigv4(
    method: str, url: str, headers: Mapping[str, str], body: bytes, secret: str
) -> bool:
    """Whether ``headers["Authorization"]`` is the SigV4 signature of this request."""
    lower = {name.lower(): value for name, value in headers.items()}
    match = _AUTHORIZATION.fullmatch(lower.get("authorization", ""))
    if match is None:
        return False
    day, region, service, terminator = [*match["scope"].split("/"), "", "", "", ""][:4]
    when = lower.get("x-amz-date") or _amz_date(lower.get("date", ""))
    if terminator != "aws4_request" or not when or not when.startswith(day):
        return False
    names = match["signed"].split(";")
    if "host" not in names or any(name not in lower for name in names):
        return False
    parts = urlsplit(url)
    path = posixpath.normpath(parts.path or "/").replace("//", "/")
    if parts.path.endswith("/") and path != "/":
        path += "/"
    query = "&".join(
        f"{k}={v}"
        for k, v in sorted(
            (quote(k, safe="-_.~"), quote(v, safe="-_.~"))
            for k, v in parse_qsl(parts.query, keep_blank_values=True)
        )
    )
    canonical = "\n".join(
        [
            method,
            path,
            query,
            "".join(f"{name}:{' '.join(lower[name].split())}\n" for name in names),
            ";".join(names),
            hashlib.sha256(body).hexdigest(),
        ]
    )
    digest = hashlib.sha256(canonical.encode()).hexdigest()
    to_sign = f"AWS4-HMAC-SHA256\n{when}\n{match['scope']}\n{digest}".encode()
    key = ("AWS4" + secret).encode()
    for part in (day, region, service, "aws4_request"):
        key = hmac.new(key, part.encode(), hashlib.sha256).digest()
    expected = hmac.new(key, to_sign, hashlib.sha256).hexdigest()
    return hmac.compare_digest(expected, match["signature"])


def _amz_date(date: str) -> str:
    try:
        moment = parsedate_to_datetime(date)
    except (TypeError, ValueError, IndexError):
        return ""
    return moment.strftime("%Y%m%dT%H%M%SZ")


def _unix(amz_date: str) -> float | None:
    match = re.fullmatch(r"(\d{4})(\d{2})(\d{2})T(\d{2})(\d{2})(\d{2})Z", amz_date)
    if match is None:
        return None
    return float(calendar.timegm((*(int(g) for g in match.groups()), 0, 0, 0)))


class FakeAws:
    """An EC2 instance's metadata service and AWS's keys; thread-safe.

    Attributes:
        region: The instance's region. Defaults to ``"us-east-2"``.
        role: The instance role's name. Defaults to ``"emulator-role"``.
        imdsv2_required: Whether metadata reads need an IMDSv2 session token (the default).
    """

    def __init__(self, clock: Callable[[], float]) -> None:
        self.clock = clock
        self.region = "us-east-2"
        self.role = "emulator-role"
        self.account = "123456789012"
        self.imdsv2_required = True
        self._lock = threading.Lock()
        self._keys: dict[str, AwsKey] = {}
        self._sessions: dict[str, float] = {}  # IMDSv2 session token -> expiry
        self._instance_key: AwsKey | None = None

    def access_key(self) -> AwsKey:
        """Issues a long-term access key of an IAM user (what ``AWS_ACCESS_KEY_ID`` holds)."""
        key = AwsKey(
            "AKIA" + secrets.token_hex(8).upper(),
            secrets.token_urlsafe(30),
            None,
            f"arn:aws:iam::{self.account}:user/emulator-user",
        )
        with self._lock:
            self._keys[key.access_key_id] = key
        return key

    def instance_key(self) -> AwsKey:
        """The instance role's temporary credentials (issued once)."""
        with self._lock:
            if self._instance_key is None:
                self._instance_key = AwsKey(
                    "ASIA" + secrets.token_hex(8).upper(),
                    secrets.token_urlsafe(30),
                    secrets.token_urlsafe(60),
                    f"arn:aws:sts::{self.account}:assumed-role/{self.role}/i-0emulator",
                )
                self._keys[self._instance_key.access_key_id] = self._instance_key
            return self._instance_key

    # --- the instance metadata service --------------------------------------------------------

    def metadata(self, request: RecordedRequest) -> Response:
        """IMDS's answer to ``request``."""
        path = request.path
        if path == "/latest/api/token":
            return self._session_token(request)
        if request.method != "GET":
            return Response.text(405, "Method Not Allowed\n")
        session = request.headers.get("x-aws-ec2-metadata-token")
        if session is not None and not self._session_valid(session):
            return Response.text(401, "Unauthorized\n")
        if session is None and self.imdsv2_required:
            return Response.text(401, "Unauthorized\n")
        roles = "/latest/meta-data/iam/security-credentials"
        if path == "/latest/meta-data/placement/availability-zone":
            return Response.text(200, f"{self.region}b")
        if path in (roles, roles + "/"):
            return Response.text(200, self.role)
        if path == f"{roles}/{self.role}":
            key = self.instance_key()
            return Response.json(
                200,
                {
                    "Code": "Success",
                    "Type": "AWS-HMAC",
                    "AccessKeyId": key.access_key_id,
                    "SecretAccessKey": key.secret_access_key,
                    "Token": key.session_token,
                    "Expiration": "2099-01-01T00:00:00Z",
                },
            )
        return Response.text(404, "Not Found\n")

    def _session_token(self, request: RecordedRequest) -> Response:
        if request.method != "PUT":
            return Response.text(405, "Method Not Allowed\n")
        ttl = request.headers.get("x-aws-ec2-metadata-token-ttl-seconds", "")
        if not ttl.isdigit() or not 1 <= int(ttl) <= 21600:
            return Response.text(400, "Bad Request\n")
        token = secrets.token_urlsafe(32)
        with self._lock:
            now = self.clock()
            self._sessions = {t: e for t, e in self._sessions.items() if e > now}
            self._sessions[token] = now + int(ttl)
        return Response.text(200, token)

    def _session_valid(self, token: str) -> bool:
        with self._lock:
            expires = self._sessions.get(token)
        return expires is not None and expires > self.clock()

    # --- what Google's STS checks -------------------------------------------------------------

    def caller_identity(self, subject_token: str, audience: str) -> str:
        """The ARN that signed this serialized ``GetCallerIdentity`` request; else Rejected."""
        try:
            request = json.loads(unquote(subject_token))
        except ValueError:
            raise Rejected(400, "invalid_grant", "The subject token is not JSON.") from None
        if not isinstance(request, dict) or not isinstance(request.get("headers"), list):
            raise Rejected(400, "invalid_grant", "The subject token is malformed.")
        headers: dict[str, str] = {}
        for item in request["headers"]:
            if isinstance(item, dict) and isinstance(item.get("key"), str):
                headers[item["key"]] = str(item.get("value", ""))
        lower = {k.lower(): v for k, v in headers.items()}
        url = str(request.get("url", ""))
        parts = urlsplit(url)
        query = dict(parse_qsl(parts.query))
        if (
            request.get("method") != "POST"
            or parts.scheme != "https"
            or not re.fullmatch(r"sts(\.[a-z0-9-]+)?\.amazonaws\.com", parts.hostname or "")
            or query.get("Action") != "GetCallerIdentity"
        ):
            raise Rejected(400, "invalid_grant", "The subject token is no GetCallerIdentity.")
        if lower.get("x-goog-cloud-target-resource") != audience:
            raise Rejected(400, "invalid_grant", "The subject token is for another audience.")
        match = _AUTHORIZATION.fullmatch(lower.get("authorization", ""))
        with self._lock:
            key = self._keys.get(match["key"]) if match else None
        when = _unix(lower.get("x-amz-date", ""))
        if key is None or when is None or lower.get("x-amz-security-token") != key.session_token:
            raise Rejected(400, "invalid_grant", _INVALID)
        if abs(when - self.clock()) > _CLOCK_SKEW:
            raise Rejected(400, "invalid_grant", "The AWS signature has expired.")
        if not verify_sigv4("POST", url, headers, b"", key.secret_access_key):
            raise Rejected(400, "invalid_grant", _INVALID)
        return key.arn

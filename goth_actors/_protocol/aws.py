"""AWS-sourced workload identity: a signed ``GetCallerIdentity`` request as the subject token.

The credentials say ``credential_source.environment_id: "aws1"``.

The region comes from ``AWS_REGION`` or ``AWS_DEFAULT_REGION``, else from the instance
metadata's availability zone (``region_url``, its last letter dropped); the credentials from
``AWS_ACCESS_KEY_ID`` and ``AWS_SECRET_ACCESS_KEY`` (with ``AWS_SESSION_TOKEN``), else from the
instance role (``url``: the role's name, then ``url/{role}``). With an
``imdsv2_session_token_url`` every metadata read carries an IMDSv2 session token (one ``PUT``
per fetch). The request to ``regional_cred_verification_url`` is signed with SigV4
(`sigv4`), the header ``x-goog-cloud-target-resource`` (the pool)
added, and the whole serialised as google-auth does: URL-encoded JSON of ``url``, ``method``
and ``headers`` (a list of ``key``/``value``), keys sorted. It is never sent to AWS: Google's
STS checks it with AWS. The AWS URLs are where credentials are *read from*, so the endpoint
policy does not apply to them (only Google's STS and IAM receive anything).
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import quote

from goth_actors._base import ConfigError
from goth_actors._protocol.answers import body_text, unusable_answer
from goth_actors._protocol.errors import TokenError
from goth_actors._protocol.exchange import Exchange
from goth_actors._protocol.redact import without_query
from goth_actors._protocol.sigv4 import AwsCredentials, sign_request
from goth_actors._protocol.subject import Subject, SubjectContext
from goth_actors._protocol.token import Exchanger
from goth_actors._protocol.validate import check_url

__all__ = ["AWS_KEYS", "AWS_TOKEN_TYPE", "AwsSubjectSource", "aws_source"]

AWS_TOKEN_TYPE = "urn:ietf:params:aws:token-type:aws4_request"
AWS_KEYS = (
    "environment_id",
    "region_url",
    "url",
    "regional_cred_verification_url",
    "imdsv2_session_token_url",
)
_IMDSV2_TTL = "300"  # seconds: the session token is used at once
_REGION = re.compile(r"[a-z]{2,}(-[a-z0-9]+)+")


@dataclass(frozen=True, slots=True)
class AwsSubjectSource:
    """A validated AWS ``credential_source``."""

    verification_url: str
    region_url: str | None
    credentials_url: str | None
    imdsv2_url: str | None

    def describe(self) -> str:
        return f"aws1 {without_query(self.verification_url)!r}"

    def read(self, exchanger: Exchanger, context: SubjectContext) -> Subject:
        """Signs a ``GetCallerIdentity`` request for the pool, with this workload's keys."""
        env = os.environ if exchanger.environ is None else exchanger.environ
        session = _Imds(self.imdsv2_url, exchanger)
        region = env.get("AWS_REGION") or env.get("AWS_DEFAULT_REGION")
        if not region:
            region = self._region_from_metadata(session)
        if not _REGION.fullmatch(region):
            raise TokenError(f"the AWS region {region[:40]!r} is not a region", retryable=False)
        keys = _keys_from_environment(env) or self._keys_from_metadata(session)
        url = self.verification_url.replace("{region}", region)
        headers = sign_request(
            method="POST", url=url, region=region, credentials=keys, now=exchanger.clock()
        )
        headers["x-goog-cloud-target-resource"] = context.audience
        request = {
            "url": url,
            "method": "POST",
            "headers": [{"key": key, "value": value} for key, value in headers.items()],
        }
        token = quote(json.dumps(request, separators=(",", ":"), sort_keys=True))
        return Subject(token, secrets=keys.secrets())

    def _region_from_metadata(self, session: _Imds) -> str:
        if self.region_url is None:
            raise TokenError(
                "no AWS region: neither AWS_REGION nor AWS_DEFAULT_REGION is set, and the "
                "credential_source has no region_url",
                retryable=False,
            )
        zone = session.get(self.region_url).strip()
        return zone[:-1]  # us-east-2b is in us-east-2

    def _keys_from_metadata(self, session: _Imds) -> AwsCredentials:
        if self.credentials_url is None:
            raise TokenError(
                "no AWS credentials: AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY are not set, "
                "and the credential_source has no url",
                retryable=False,
            )
        base = self.credentials_url.rstrip("/")
        role = session.get(base).strip().splitlines()[0:1]
        if not role or not re.fullmatch(r"[\w+=,.@-]{1,128}", role[0]):
            raise unusable_answer(without_query(base), "answered without a role name", None)
        where = f"{base}/{role[0]}"
        data = session.json(where)
        access_key_id, secret, token = (
            data.get(k) for k in ("AccessKeyId", "SecretAccessKey", "Token")
        )
        if (
            not isinstance(access_key_id, str)
            or not isinstance(secret, str)
            or not access_key_id
            or not secret
            or not isinstance(token, str | None)
        ):
            raise unusable_answer(without_query(where), "answered without AWS credentials", data)
        return AwsCredentials(access_key_id, secret, token or None)


class _Imds:
    """Reads of the instance metadata service, with an IMDSv2 session token when configured."""

    def __init__(self, imdsv2_url: str | None, exchanger: Exchanger) -> None:
        self._imdsv2_url = imdsv2_url
        self._exchanger = exchanger
        self._token: str | None = None

    def _headers(self) -> dict[str, str]:
        if self._imdsv2_url is None:
            return {}
        if self._token is None:
            exchange = Exchange(
                method="PUT",
                url=self._imdsv2_url,
                headers={"X-aws-ec2-metadata-token-ttl-seconds": _IMDSV2_TTL},
                body=b"",
                kind="oauth",
            )
            self._token = self._exchanger.text(exchange).strip()
        return {"X-aws-ec2-metadata-token": self._token}

    def _exchange(self, url: str) -> Exchange:
        headers = self._headers()
        return Exchange(
            method="GET",
            url=url,
            headers=headers,
            body=b"",
            kind="oauth",
            secrets=tuple(headers.values()),
        )

    def get(self, url: str) -> str:
        return body_text(self._exchanger.text(self._exchange(url)))

    def json(self, url: str) -> Mapping[str, object]:
        return self._exchanger.json(self._exchange(url))


def _keys_from_environment(env: Mapping[str, str]) -> AwsCredentials | None:
    access_key_id = env.get("AWS_ACCESS_KEY_ID")
    secret = env.get("AWS_SECRET_ACCESS_KEY")
    if not access_key_id or not secret:
        return None
    return AwsCredentials(access_key_id, secret, env.get("AWS_SESSION_TOKEN") or None)


def aws_source(value: Mapping[str, object], name: str) -> AwsSubjectSource:
    """Validates an AWS ``credential_source`` (``name`` is its field, for errors)."""
    unknown = sorted(str(k)[:40] for k in value if k not in AWS_KEYS)
    if unknown:
        raise ConfigError(name, f"has unknown keys {unknown}; expected {', '.join(AWS_KEYS)}")
    environment_id = value.get("environment_id")
    match = re.fullmatch(r"aws(\d+)", environment_id) if isinstance(environment_id, str) else None
    if match is None:
        raise ConfigError(f"{name}.environment_id", "must be 'aws1'")
    if match[1] != "1":
        raise ConfigError(
            f"{name}.environment_id", f"aws version {match[1][:10]!r} is not supported; use aws1"
        )
    verification = check_url(
        value.get("regional_cred_verification_url"), f"{name}.regional_cred_verification_url"
    )
    if verification is None:
        raise ConfigError(f"{name}.regional_cred_verification_url", "is missing")
    if not verification.startswith("https://"):
        raise ConfigError(f"{name}.regional_cred_verification_url", "must be an https:// URL")
    return AwsSubjectSource(
        verification_url=verification,
        region_url=check_url(value.get("region_url"), f"{name}.region_url"),
        credentials_url=check_url(value.get("url"), f"{name}.url"),
        imdsv2_url=check_url(
            value.get("imdsv2_session_token_url"), f"{name}.imdsv2_session_token_url"
        ),
    )

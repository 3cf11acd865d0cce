"""``WorkloadIdentity``: workload identity federation (``external_account`` credentials).

Trades a token from another identity provider (a Kubernetes service account token in a file,
a CI system's OIDC token from a URL, an AWS workload's signed request, an executable's
output, an X.509 certificate) for a Google access token at Google's Security Token Service
(STS, `sts`), and optionally trades that, through IAM
Credentials' ``generateAccessToken`` (or ``generateIdToken``), for a service account's token.
A few requests, all through one `Exchanger` and so with
its errors and its one deadline.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import KW_ONLY, dataclass, field
from types import MappingProxyType
from typing import Any

from goth_actors._base import ConfigError
from goth_actors._protocol.credential_source import credential_source
from goth_actors._protocol.endpoints import EndpointTrust
from goth_actors._protocol.exchange import Exchange
from goth_actors._protocol.iam import (
    DEFAULT_LIFETIME,
    generate_access_token,
    generate_id_token,
    split_generate_url,
)
from goth_actors._protocol.redact import without_query
from goth_actors._protocol.sts import (
    ACCESS_TOKEN_TYPE,
    TOKEN_EXCHANGE_GRANT,
    check_client,
    token_exchange,
)
from goth_actors._protocol.subject import Subject, SubjectContext, SubjectSource
from goth_actors._protocol.token import Exchanger, Source, Token
from goth_actors._protocol.validate import (
    CLOUD_PLATFORM_SCOPE,
    check_scopes,
    credentials_mapping,
    optional_string,
    quota_project,
    required_string,
    shown,
)

__all__ = ["ACCESS_TOKEN_TYPE", "TOKEN_EXCHANGE_GRANT", "WorkloadIdentity"]

_WORKFORCE_AUDIENCE = re.compile(r"//iam\.googleapis\.com/locations/[^/]+/workforcePools/.+")
_MIN_IMPERSONATION_LIFETIME, _MAX_IMPERSONATION_LIFETIME = 600, 43200  # google-auth's bounds


@dataclass(frozen=True, eq=False, repr=False)
class WorkloadIdentity(Source):
    """Workload identity federation: a Google token for another provider's token.

    Reads the subject token, exchanges it at Google's STS (``token_url``), and, when the
    credentials name a ``service_account_impersonation_url``, exchanges the STS token for
    that service account's token. Without impersonation the STS token is the token.

    Args:
        credentials: The decoded ``external_account`` credentials, as
            ``gcloud iam workload-identity-pools create-cred-config`` writes them:
            ``audience``, ``subject_token_type``, ``credential_source`` and optionally
            ``token_url`` (default: the universe's STS), ``service_account_impersonation_url``,
            ``service_account_impersonation.token_lifetime_seconds``, ``token_info_url``,
            ``workforce_pool_user_project``, ``client_id``, ``client_secret``,
            ``quota_project_id`` and ``universe_domain``. ``credential_source`` is one of:
            ``{"file": path}`` or ``{"url": url, "headers": {...}}`` (with an optional
            ``"format": {"type": "text"}`` or ``{"type": "json", "subject_token_field_name":
            name}``); AWS (``{"environment_id": "aws1", "regional_cred_verification_url",
            "region_url", "url", "imdsv2_session_token_url"}``); an executable
            (``{"executable": {"command", "timeout_millis", "output_file"}}``, run only when
            ``GOOGLE_EXTERNAL_ACCOUNT_ALLOW_EXECUTABLES=1``); or an X.509 certificate
            (``{"certificate": {"certificate_config_location" or
            "use_default_certificate_config", "trust_chain_path"}}``, mutual TLS to STS).
        scopes: Scopes of the token. Sent to the impersonation step when there is one (STS
            then gets ``cloud-platform``, which IAM needs), else to STS. Default:
            ``("https://www.googleapis.com/auth/cloud-platform",)``.
        universe_domain: The universe of these credentials. Default: the credentials'
            ``universe_domain``, else ``googleapis.com``. Naming it also trusts that
            universe's token services for the credentials' URLs.
        allow_custom_endpoints: Send the subject token (and the STS token) to a
            ``token_url``, ``service_account_impersonation_url`` or ``token_info_url`` that
            is not one of Google's token services (a private endpoint you trust). Default
            ``False``: such credentials are refused, since a hostile file could otherwise
            have the VM's own metadata token posted anywhere.
        quota_project_id: The project to bill (``x-goog-user-project``). Default: the
            credentials' ``quota_project_id``.
        target_audience: When set, an ID token for this audience (IAM ``generateIdToken``
            as the impersonated service account) instead of an access token. Needs a
            ``service_account_impersonation_url``.

    Raises:
        ConfigError: At construction, for any invalid or unsupported credentials, naming
            the field, e.g. ``credentials.credential_source.format.type``.

    Examples:
        ```python
        source = WorkloadIdentity(json.load(open("wif.json")))
        token = Token.fetch(source)
        ```
    """

    credentials: Mapping[str, Any]
    _: KW_ONLY
    scopes: Sequence[str] = (CLOUD_PLATFORM_SCOPE,)
    universe_domain: str | None = None
    allow_custom_endpoints: bool = False
    quota_project_id: str | None = None
    target_audience: str | None = None
    _source: SubjectSource = field(init=False, repr=False, compare=False)
    _token_url: str = field(init=False, repr=False, compare=False)
    _impersonation_url: str | None = field(init=False, repr=False, compare=False)
    _lifetime: float = field(init=False, repr=False, compare=False)
    _universe: str = field(init=False, repr=False, compare=False)
    _universe_trusted: bool = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        creds = credentials_mapping(self.credentials, "external_account")
        required_string(creds, "audience")
        subject_token_type = required_string(creds, "subject_token_type")
        if not subject_token_type.startswith("urn:"):
            raise ConfigError(
                "credentials.subject_token_type",
                f"must be a token type URN such as 'urn:ietf:params:oauth:token-type:jwt', "
                f"got {subject_token_type[:100]!r}",
            )
        trust = EndpointTrust.resolve(creds, self.universe_domain, self.allow_custom_endpoints)
        token_url = trust.endpoint(creds, "token_url", "sts", "/v1/token")
        if creds.get("token_info_url") is not None:
            trust.check(creds["token_info_url"], "credentials.token_info_url")
        trust.bind(self)
        object.__setattr__(self, "_token_url", token_url)
        scopes = check_scopes(self.scopes)
        if not scopes:
            raise ConfigError("scopes", "is empty; Google needs at least one scope")
        object.__setattr__(self, "scopes", scopes)
        object.__setattr__(self, "_source", credential_source(creds.get("credential_source")))
        name = "credentials.service_account_impersonation_url"
        impersonation_url = creds.get("service_account_impersonation_url")
        if impersonation_url is not None:
            impersonation_url = trust.check(impersonation_url, name)
            split_generate_url(impersonation_url, name)
        object.__setattr__(self, "_impersonation_url", impersonation_url)
        object.__setattr__(self, "_lifetime", _impersonation_lifetime(creds, impersonation_url))
        target_audience = optional_string(self.target_audience, "target_audience")
        if target_audience is not None and impersonation_url is None:
            raise ConfigError(
                "target_audience",
                "needs a service_account_impersonation_url: STS gives no ID tokens, IAM does "
                "as the impersonated service account",
            )
        object.__setattr__(self, "target_audience", target_audience)
        object.__setattr__(self, "quota_project_id", quota_project(self.quota_project_id, creds))
        check_client(creds)
        _check_workforce_project(creds)
        object.__setattr__(self, "credentials", MappingProxyType(dict(creds)))

    @property
    def audience(self) -> str:
        """The workload identity pool provider (the STS ``audience``)."""
        return str(self.credentials["audience"])

    @property
    def token_url(self) -> str:
        """The STS endpoint this source posts to."""
        return self._token_url

    @property
    def service_account_email(self) -> str | None:
        """The service account impersonated after the STS exchange, or ``None``."""
        if self._impersonation_url is None:
            return None
        return split_generate_url(self._impersonation_url, "")[1]

    def __repr__(self) -> str:
        return (
            f"WorkloadIdentity(audience={self.audience!r}, "
            f"subject_token_type={self.credentials['subject_token_type']!r}, "
            f"subject_token_from={self._source.describe()!r}, "
            f"service_account_email={self.service_account_email!r}, scopes={self.scopes!r}, "
            f"token_url={without_query(self.token_url)!r}"
            f"{shown('target_audience', self.target_audience)}"
            f"{shown('quota_project_id', self.quota_project_id)})"
        )

    def prepare(self, now: float, environ: Mapping[str, str] | None = None) -> Exchange:
        raise NotImplementedError("WorkloadIdentity takes several requests; use Token.fetch()")

    def fetch_token(self, exchanger: Exchanger) -> Token:
        """Reads the subject token, exchanges it at STS, then impersonates if configured."""
        subject = self._subject(exchanger)
        sts = exchanger.token(self._sts_exchange(subject))
        if self._impersonation_url is None:
            return sts
        authorization = f"{sts.type} {sts.token}"
        if self.target_audience is not None:
            return generate_id_token(
                exchanger,
                url=self._impersonation_url.replace(":generateAccessToken", ":generateIdToken"),
                authorization=authorization,
                audience=self.target_audience,
                secrets=subject.all_secrets,
                client_cert=subject.client_cert,
            )
        return generate_access_token(
            exchanger,
            url=self._impersonation_url,
            authorization=authorization,
            scopes=self.scopes,
            lifetime=self._lifetime,
            secrets=subject.all_secrets,
            client_cert=subject.client_cert,
        )

    def federated_token(self, exchanger: Exchanger) -> Token:
        """The STS token alone (the federated identity's, before any impersonation).

        With impersonation it has the ``cloud-platform`` scope IAM needs: signing as the
        impersonated service account (IAM ``signBlob``) uses it.
        """
        return exchanger.token(self._sts_exchange(self._subject(exchanger)))

    # --- the steps ----------------------------------------------------------------------------

    def _subject(self, exchanger: Exchanger) -> Subject:
        context = SubjectContext(
            audience=self.audience,
            subject_token_type=str(self.credentials["subject_token_type"]),
            impersonated_email=self.service_account_email,
        )
        return self._source.read(exchanger, context)

    def _sts_exchange(self, subject: Subject) -> Exchange:
        impersonating = self._impersonation_url is not None
        scopes = (CLOUD_PLATFORM_SCOPE,) if impersonating else tuple(self.scopes)
        return token_exchange(
            url=self.token_url, credentials=self.credentials, subject=subject, scopes=scopes
        )


def _impersonation_lifetime(creds: Mapping[str, Any], impersonation_url: str | None) -> float:
    name = "credentials.service_account_impersonation"
    options = creds.get("service_account_impersonation")
    if options is None:
        return DEFAULT_LIFETIME
    if not isinstance(options, Mapping):
        raise ConfigError(name, f"must be a mapping, got {type(options).__name__}")
    unknown = sorted(str(k)[:40] for k in options if k != "token_lifetime_seconds")
    if unknown:
        raise ConfigError(name, f"has unknown keys {unknown}; expected token_lifetime_seconds")
    if "token_lifetime_seconds" in options and impersonation_url is None:
        raise ConfigError(
            f"{name}.token_lifetime_seconds",
            "has no effect without a service_account_impersonation_url",
        )
    seconds = options.get("token_lifetime_seconds", DEFAULT_LIFETIME)
    if isinstance(seconds, bool) or not isinstance(seconds, int | float):
        raise ConfigError(f"{name}.token_lifetime_seconds", "must be a number of seconds")
    if not _MIN_IMPERSONATION_LIFETIME <= seconds <= _MAX_IMPERSONATION_LIFETIME:
        raise ConfigError(
            f"{name}.token_lifetime_seconds",
            f"must be between {_MIN_IMPERSONATION_LIFETIME} and {_MAX_IMPERSONATION_LIFETIME} "
            f"seconds, got {seconds!r}",
        )
    return float(seconds)


def _check_workforce_project(creds: Mapping[str, Any]) -> None:
    project = creds.get("workforce_pool_user_project")
    if project is None:
        return
    name = "credentials.workforce_pool_user_project"
    if not isinstance(project, str) or not project.strip():
        raise ConfigError(name, "must be a non-empty string")
    if not _WORKFORCE_AUDIENCE.fullmatch(str(creds["audience"])):
        raise ConfigError(name, "applies only to a workforce pool audience")

"""``source_from_credentials``: the source for a decoded credentials file, by its ``type``.

This module sits above every source (it builds them all), so no source imports it back.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from goth_actors._base import ConfigError
from goth_actors._protocol.endpoints import EndpointTrust, source_universe
from goth_actors._protocol.iam import check_delegates, split_generate_url
from goth_actors._protocol.impersonated import Impersonated
from goth_actors._protocol.refresh_token import RefreshToken
from goth_actors._protocol.service_account import ServiceAccount
from goth_actors._protocol.token import Source
from goth_actors._protocol.validate import (
    check_scopes,
    credentials_mapping,
    quota_project,
    quoted_type,
    required_string,
)
from goth_actors._protocol.workforce_user import WorkforceUser
from goth_actors._protocol.workload_identity import WorkloadIdentity

__all__ = ["SUPPORTED_TYPES", "source_from_credentials"]

_USER_TYPES = ("authorized_user", "external_account_authorized_user")
_NO_ID_TOKENS = (
    "cannot be given for {kind} credentials: a user's credentials give no ID token for an "
    "arbitrary audience. Impersonate a service account (gcloud auth application-default "
    "login --impersonate-service-account=SA), or use a service account's key or the "
    "metadata server"
)


def _impersonated(credentials: Mapping[str, Any], **options: Any) -> Impersonated:
    """The source for gcloud's ``impersonated_service_account`` credentials.

    That file is what ``gcloud auth application-default login
    --impersonate-service-account=SA`` writes: ``source_credentials`` (usually an
    ``authorized_user``), ``service_account_impersonation_url`` (which names the target and
    IAM's base URL), ``delegates``, and maybe ``scopes`` (the target scopes, unless the caller
    gives its own, as in google-auth) and ``quota_project_id``. A problem inside
    ``source_credentials`` is named ``credentials.source_credentials.<key>``.
    """
    creds = credentials_mapping(credentials, "impersonated_service_account")
    universe_domain = options.pop("universe_domain", None)
    allow_custom = options.pop("allow_custom_endpoints", False)
    trust = EndpointTrust.resolve(creds, universe_domain, allow_custom)
    name = "credentials.service_account_impersonation_url"
    impersonation_url = trust.check(
        required_string(creds, "service_account_impersonation_url"), name
    )
    base, target = split_generate_url(impersonation_url, name)
    inner = creds.get("source_credentials")
    if not isinstance(inner, Mapping):
        raise ConfigError(
            "credentials.source_credentials",
            "must be a mapping (the credentials of the identity that impersonates)",
        )
    if inner.get("type") == "impersonated_service_account":
        raise ConfigError(
            "credentials.source_credentials.type",
            "is 'impersonated_service_account'; list the chain in 'delegates' instead",
        )
    problem: ConfigError | None = None
    try:
        source = source_from_credentials(
            inner, universe_domain=universe_domain, allow_custom_endpoints=allow_custom
        )
    except ConfigError as exc:
        problem = exc
    if problem is not None:  # renamed outside the except block: no chained original
        field = "credentials.source_credentials" + problem.field.removeprefix("credentials")
        message = str(problem).removeprefix(f"{problem.field}: ")
        raise ConfigError(field, message)
    # The universe in effect is the source's (trusted only as far as it is), which must be
    # the one the file names, if it names one.
    if trust.file_universe is not None and source_universe(source) != trust.universe_domain:
        raise ConfigError(
            "credentials.universe_domain",
            f"is {trust.file_universe!r}, but the source_credentials are for universe "
            f"{source_universe(source)!r}",
        )
    delegates = creds.get("delegates") or ()
    kwargs: dict[str, Any] = {
        "delegates": check_delegates(delegates, "credentials.delegates"),
        "url": base,
        "universe_domain": universe_domain,
        "quota_project_id": quota_project(options.pop("quota_project_id", None), creds),
        **options,
    }
    if "scopes" not in options and creds.get("scopes") is not None:
        kwargs["scopes"] = check_scopes(creds["scopes"], "credentials.scopes")
    return Impersonated(source, target, **kwargs)


_FACTORIES: dict[str, Callable[..., Source]] = {
    "service_account": ServiceAccount,
    "authorized_user": RefreshToken,
    "external_account": WorkloadIdentity,
    "external_account_authorized_user": WorkforceUser,
    "impersonated_service_account": _impersonated,
}
SUPPORTED_TYPES = tuple(_FACTORIES)
_REFUSED = {
    "gdch_service_account": "is not supported (Google Distributed Cloud Hosted)",
    "api_key": "is not supported (an API key is no OAuth credential)",
}


def source_from_credentials(credentials: Mapping[str, Any], **options: Any) -> Source:
    """Picks the source for a decoded credentials file from its ``type``.

    - ``service_account`` gives [`ServiceAccount`][goth_actors.ServiceAccount];
    - ``authorized_user`` gives [`RefreshToken`][goth_actors.RefreshToken] (``scopes`` is dropped:
      these credentials carry the scopes the user granted);
    - ``external_account`` gives [`WorkloadIdentity`][goth_actors.WorkloadIdentity] (workload
      identity federation: a file, URL, AWS, executable or X.509 subject token);
    - ``external_account_authorized_user`` gives [`WorkforceUser`][goth_actors.WorkforceUser] (a
      workforce pool user; ``scopes`` is dropped too);
    - ``impersonated_service_account`` (gcloud's ADC file after ``gcloud auth
      application-default login --impersonate-service-account``) gives
      [`Impersonated`][goth_actors.Impersonated] around the source of its ``source_credentials``,
      with the file's ``scopes`` unless ``options`` give some.

    ``options`` go to that source's constructor. Every source takes ``universe_domain``
    (trust that universe's token services too), ``quota_project_id`` (which wins over the
    file's) and ``allow_custom_endpoints`` (the explicit opt-out of the endpoint policy: see
    [`default_source`][goth_actors.default_source]). ``audience`` asks for an ID token whatever the
    type: a service account's ``target_audience``, an impersonated or workload identity's (with
    impersonation) ID token; user credentials give none, and say why.

    Raises:
        ConfigError: The mapping has no ``type``, or one goth_actors does not support, or it
            would send a credential somewhere the endpoint policy refuses.
        TypeError: An option the source does not take, named, with the likeliest meant.

    Examples:
        ```python
        credentials = goth_actors.load_credentials(path)
        source = source_from_credentials(credentials, scopes=(SCOPE,))
        ```
    """
    if not isinstance(credentials, Mapping):
        raise ConfigError(
            "credentials",
            f"must be a mapping (the decoded JSON key file), got {type(credentials).__name__}",
        )
    supported = ", ".join(repr(k) for k in SUPPORTED_TYPES)
    kind = credentials.get("type")
    if not isinstance(kind, str):
        raise ConfigError("credentials.type", f"is missing; expected one of {supported}")
    factory = _FACTORIES.get(kind)
    if factory is None:
        reason = _REFUSED.get(kind, "is not supported")
        raise ConfigError(
            "credentials.type", f"{quoted_type(kind)} {reason}; supported: {supported}"
        )
    options = dict(options)
    if kind in _USER_TYPES:
        options.pop("scopes", None)
    audience = options.pop("audience", None)
    if audience is not None:
        if kind in _USER_TYPES:
            raise ConfigError("audience", _NO_ID_TOKENS.format(kind=repr(kind)))
        if kind == "impersonated_service_account":
            options["audience"] = audience
        else:
            options["target_audience"] = audience
        if kind == "external_account" and not credentials.get("service_account_impersonation_url"):
            raise ConfigError(
                "audience",
                "needs workload identity with service account impersonation "
                "(service_account_impersonation_url): STS gives no ID tokens",
            )
    return factory(credentials, **options)

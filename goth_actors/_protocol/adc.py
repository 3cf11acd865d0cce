"""Application Default Credentials: finding credentials, and the source for a decoded key file.

:func:`default_source` looks where google-auth looks, in its order; :func:`source_from_credentials`
picks the source for a key file from its ``type``. This module sits above every source (it
builds them all), so no source needs to import it back.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from goth_actors._base import ConfigError
from goth_actors._protocol.endpoints import EndpointTrust
from goth_actors._protocol.files import FileProblem, read_json_object, shown_path
from goth_actors._protocol.iam import check_delegates, split_generate_url
from goth_actors._protocol.impersonated import Impersonated
from goth_actors._protocol.metadata import Metadata
from goth_actors._protocol.refresh_token import RefreshToken
from goth_actors._protocol.service_account import ServiceAccount
from goth_actors._protocol.token import Source
from goth_actors._protocol.validate import (
    credentials_mapping,
    quoted_type,
    required_string,
)
from goth_actors._protocol.workload_identity import WorkloadIdentity

__all__ = ["default_source", "load_credentials", "source_from_credentials"]


def _impersonated(credentials: Mapping[str, Any], **options: Any) -> Impersonated:
    """The source for gcloud's ``impersonated_service_account`` credentials.

    That file is what ``gcloud auth application-default login
    --impersonate-service-account=SA`` writes: ``source_credentials`` (usually an
    ``authorized_user``), ``service_account_impersonation_url`` (which names the target and
    IAM's base URL) and ``delegates``. A problem inside ``source_credentials`` is named
    ``credentials.source_credentials.<key>``.
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
    delegates = creds.get("delegates") or ()
    kwargs: dict[str, Any] = {
        "delegates": check_delegates(delegates, "credentials.delegates"),
        "url": base,
        **options,
    }
    return Impersonated(source, target, **kwargs)


_FACTORIES: dict[str, Callable[..., Source]] = {
    "service_account": ServiceAccount,
    "authorized_user": RefreshToken,
    "external_account": WorkloadIdentity,
    "impersonated_service_account": _impersonated,
}
_SUPPORTED_TYPES = tuple(_FACTORIES)


def source_from_credentials(credentials: Mapping[str, Any], **options: Any) -> Source:
    """Picks the source for a decoded key file from its ``type``.

    - ``service_account`` gives :class:`ServiceAccount`;
    - ``authorized_user`` gives :class:`RefreshToken` (``scopes`` is dropped: these
      credentials carry the scopes the user granted);
    - ``external_account`` gives :class:`~goth_actors.WorkloadIdentity` (workload identity
      federation);
    - ``impersonated_service_account`` (gcloud's ADC file after ``gcloud auth
      application-default login --impersonate-service-account``) gives
      :class:`~goth_actors.Impersonated` around the source of its ``source_credentials``
      (``options`` then take ``scopes``, ``lifetime``, ``audience`` or ``url``).

    ``options`` go to that source's constructor. Every source takes ``universe_domain``
    (trust that universe's token services too) and ``allow_custom_endpoints`` (the explicit
    opt-out of the endpoint policy: see :func:`default_source`).

    Raises:
        ConfigError: The mapping has no ``type``, or one goth_actors does not support, or it
            would send a credential somewhere the endpoint policy refuses.

    Example:
        ```python
        credentials = json.load(open(path))
        source = source_from_credentials(credentials, scopes=(SCOPE,))
        ```
    """
    if not isinstance(credentials, Mapping):
        raise ConfigError(
            "credentials",
            f"must be a mapping (the decoded JSON key file), got {type(credentials).__name__}",
        )
    supported = ", ".join(repr(k) for k in _SUPPORTED_TYPES)
    kind = credentials.get("type")
    if not isinstance(kind, str):
        raise ConfigError("credentials.type", f"is missing; expected one of {supported}")
    factory = _FACTORIES.get(kind)
    if factory is None:
        raise ConfigError(
            "credentials.type", f"{quoted_type(kind)} is not supported; supported: {supported}"
        )
    if factory is RefreshToken:
        options.pop("scopes", None)
    return factory(credentials, **options)


def _gcloud_config_dir(environ: Mapping[str, str]) -> Path:
    configured = environ.get("CLOUDSDK_CONFIG")
    if configured:
        return Path(configured)
    if sys.platform == "win32" and environ.get("APPDATA"):
        return Path(environ["APPDATA"]) / "gcloud"
    return Path(environ.get("HOME") or Path.home()) / ".config" / "gcloud"


def _read_key_file(path: Path, origin: str) -> Mapping[str, Any]:
    """A key file's JSON object, read with the guards of every credential file."""
    data = read_json_object(path)
    if isinstance(data, FileProblem):
        raise ConfigError(origin, f"names {shown_path(path)}, which {data.reason}")
    return data


def load_credentials(path: str | os.PathLike[str]) -> Mapping[str, Any]:
    """Reads a credential file (a key file, an ADC file) with the guards of every one.

    The file is opened without blocking (a FIFO cannot hang the caller) and must be a
    regular file of at most 1 MiB of UTF-8 JSON, an object nested at most 64 deep: anything
    else is a ``ConfigError`` that names the path, never its content. Use it instead of
    ``json.load(open(path))`` for a file you did not write yourself.

    Raises:
        ConfigError: The file is missing, unreadable, too large, not UTF-8, not a JSON
            object, or nested too deep (field ``"path"``).

    Example:
        ```python
        source = goth_actors.ServiceAccount(goth_actors.load_credentials("key.json"))
        ```
    """
    return _read_key_file(Path(path), "path")


def default_source(*, environ: Mapping[str, str] | None = None, **options: Any) -> Source:
    """Application Default Credentials, looked up in google-auth's order.

    1. The key file named by ``GOOGLE_APPLICATION_CREDENTIALS``.
    2. gcloud's ``application_default_credentials.json`` (in ``CLOUDSDK_CONFIG`` when set,
       else ``~/.config/gcloud``, or ``%APPDATA%/gcloud`` on Windows).
    3. The metadata server (:class:`Metadata`).

    The environment is read when this is called, never at import. Key files are read with
    guards (no blocking open, regular files only, at most 1 MiB of UTF-8 JSON, nested at most
    64 deep): anything else is a ``ConfigError``.

    **Credential files are trusted input.** A credential file decides what goth_actors reads
    and where it sends it: an ``external_account`` file can have the VM's own metadata token,
    or a file's content, posted as its subject token. Load credential files only from places
    you trust, never from a user upload or a repository you do not control. goth_actors limits
    the damage: the URLs a file names that a credential is *sent to* (``token_uri``,
    ``token_url``, ``service_account_impersonation_url``, ``token_info_url``) must be https://
    (http:// only to loopback) and, unless ``allow_custom_endpoints=True``, one of Google's
    token services (``sts``, ``iamcredentials``, ``oauth2`` under ``googleapis.com`` or the
    ``universe_domain`` you name, with their regional, private and mTLS variants) or loopback.
    Where a file says a subject token is *read from* is not restricted.

    Args:
        environ: Environment to read instead of ``os.environ`` (for tests).
        **options: Passed to the chosen source (see :func:`source_from_credentials`),
            including ``universe_domain`` and ``allow_custom_endpoints=True``, the explicit
            opt-out for private endpoints (Private Service Connect, a proxy) that you trust;
            there is no environment variable for it. For the metadata server, ``scopes``,
            ``account``, ``audience`` and ``url`` apply.

    Raises:
        ConfigError: ``GOOGLE_APPLICATION_CREDENTIALS`` names a missing, unreadable or
            malformed file, a key file is of an unsupported type, or it would send a
            credential somewhere the endpoint policy refuses.

    Example:
        >>> source = default_source(scopes=("https://www.googleapis.com/auth/pubsub",))
    """
    env = os.environ if environ is None else environ
    named = env.get("GOOGLE_APPLICATION_CREDENTIALS")
    if named:
        credentials = _read_key_file(Path(named), "GOOGLE_APPLICATION_CREDENTIALS")
        return source_from_credentials(credentials, **options)
    well_known = _gcloud_config_dir(env) / "application_default_credentials.json"
    if well_known.is_file():
        credentials = _read_key_file(well_known, "application_default_credentials.json")
        return source_from_credentials(credentials, **options)
    metadata_options = {
        k: v for k, v in options.items() if k in ("scopes", "account", "audience", "url")
    }
    options.pop("allow_custom_endpoints", None)  # the metadata server is read, not sent to
    options.pop("universe_domain", None)
    unknown = sorted(set(options) - set(metadata_options))
    if unknown:
        raise TypeError(
            f"default_source() got options the metadata source does not take: {unknown}"
        )
    return Metadata(**metadata_options)

"""Application Default Credentials: finding credentials, and the source for a decoded key file.

:func:`default_source` looks where google-auth looks, in its order; :func:`source_from_credentials`
picks the source for a key file from its ``type``. This module sits above every source (it
builds them all), so no source needs to import it back.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from goth_actors._base import ConfigError
from goth_actors._protocol.iam import check_delegates, split_generate_url
from goth_actors._protocol.impersonated import Impersonated
from goth_actors._protocol.metadata import Metadata
from goth_actors._protocol.refresh_token import RefreshToken
from goth_actors._protocol.service_account import ServiceAccount
from goth_actors._protocol.token import Source
from goth_actors._protocol.validate import (
    check_url,
    credentials_mapping,
    quoted_type,
    required_string,
)
from goth_actors._protocol.workload_identity import WorkloadIdentity

__all__ = ["default_source", "source_from_credentials"]


def _impersonated(credentials: Mapping[str, Any], **options: Any) -> Impersonated:
    """The source for gcloud's ``impersonated_service_account`` credentials.

    That file is what ``gcloud auth application-default login
    --impersonate-service-account=SA`` writes: ``source_credentials`` (usually an
    ``authorized_user``), ``service_account_impersonation_url`` (which names the target and
    IAM's base URL) and ``delegates``. A problem inside ``source_credentials`` is named
    ``credentials.source_credentials.<key>``.
    """
    creds = credentials_mapping(credentials, "impersonated_service_account")
    name = "credentials.service_account_impersonation_url"
    impersonation_url = check_url(required_string(creds, "service_account_impersonation_url"), name)
    assert impersonation_url is not None
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
    try:
        source = source_from_credentials(inner)
    except ConfigError as exc:
        field = "credentials.source_credentials" + exc.field.removeprefix("credentials")
        message = str(exc).removeprefix(f"{exc.field}: ")
        raise ConfigError(field, message) from None
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

    ``options`` go to that source's constructor.

    Raises:
        ConfigError: The mapping has no ``type``, or one goth_actors does not support.

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
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(origin, f"names {str(path)!r}, which does not exist") from None
    except OSError as exc:
        raise ConfigError(origin, f"cannot read {str(path)!r}: {exc.strerror}") from None
    try:
        data = json.loads(text)
    except ValueError:
        raise ConfigError(origin, f"{str(path)!r} is not valid JSON") from None
    if not isinstance(data, dict):
        raise ConfigError(origin, f"{str(path)!r} does not hold a JSON object")
    return data


def default_source(*, environ: Mapping[str, str] | None = None, **options: Any) -> Source:
    """Application Default Credentials, looked up in google-auth's order.

    1. The key file named by ``GOOGLE_APPLICATION_CREDENTIALS``.
    2. gcloud's ``application_default_credentials.json`` (in ``CLOUDSDK_CONFIG`` when set,
       else ``~/.config/gcloud``, or ``%APPDATA%/gcloud`` on Windows).
    3. The metadata server (:class:`Metadata`).

    The environment is read when this is called, never at import.

    Args:
        environ: Environment to read instead of ``os.environ`` (for tests).
        **options: Passed to the chosen source (see :func:`source_from_credentials`); for the
            metadata server, ``scopes``, ``account``, ``audience`` and ``url`` apply.

    Raises:
        ConfigError: ``GOOGLE_APPLICATION_CREDENTIALS`` names a missing or malformed file, or a
            key file is of an unsupported type.

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
    unknown = sorted(set(options) - set(metadata_options))
    if unknown:
        raise TypeError(
            f"default_source() got options the metadata source does not take: {unknown}"
        )
    return Metadata(**metadata_options)

"""Where the program runs, as Google sees it: its project id, and a source's universe domain.

`project_id` looks in google-auth's order (and Goth 1.4's gcloud configuration);
`universe_domain` asks the metadata server only for a source that does not know.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from typing import Any

from goth_actors._protocol.adc import find_credentials
from goth_actors._protocol.endpoints import (
    GOOGLE_UNIVERSE,
    check_universe_domain,
    source_universe,
)
from goth_actors._protocol.errors import TokenEndpointError, TokenError
from goth_actors._protocol.gcloud import core_project
from goth_actors._protocol.http_client import HttpClient, default_http_client
from goth_actors._protocol.metadata import Metadata
from goth_actors._protocol.token import Exchanger, Source

__all__ = ["project_id", "universe_domain"]

_SERVICE_ACCOUNT = re.compile(r"[^@]+@([a-z][a-z0-9-]{4,28}[a-z0-9])\.iam\.gserviceaccount\.com")
_POOL_PROJECT = re.compile(r"//iam\.googleapis\.com/projects/(\d+)/")
_PROJECT = re.compile(
    r"[a-z][a-z0-9-]{4,28}[a-z0-9]|\d{1,20}|[a-z0-9.-]+:[a-z][a-z0-9-]{4,28}[a-z0-9]"
)


def _from_credentials(credentials: Mapping[str, Any]) -> str | None:
    kind = credentials.get("type")
    project = credentials.get("project_id")
    if isinstance(project, str) and project:
        return project
    if kind == "impersonated_service_account":
        url = credentials.get("service_account_impersonation_url")
        target = url.rpartition("/")[2].partition(":")[0] if isinstance(url, str) else ""
        match = _SERVICE_ACCOUNT.fullmatch(target)
        return match[1] if match else None
    if kind == "external_account":
        workforce = credentials.get("workforce_pool_user_project")
        if isinstance(workforce, str) and workforce:
            return workforce
        audience = credentials.get("audience")
        match = _POOL_PROJECT.match(audience) if isinstance(audience, str) else None
        return match[1] if match else None
    return None


def project_id(
    *,
    environ: Mapping[str, str] | None = None,
    metadata: bool = True,
    http_client: HttpClient | None = None,
    timeout: float = 3.0,
) -> str | None:
    """The project this program works in, looked up in google-auth's order.

    1. ``GOOGLE_CLOUD_PROJECT``, then ``GCLOUD_PROJECT``;
    2. the ADC credentials file's project: a service account key's ``project_id``; an
       impersonated file's target service account's project (``sa@PROJECT.iam...``); an
       external account's ``workforce_pool_user_project``, or its workload pool's project
       number (accepted wherever a project id is);
    3. gcloud's ``core/project`` of the active configuration (``CLOUDSDK_CORE_PROJECT`` first),
       as Goth 1.4 reads ``configurations/config_default``;
    4. the metadata server's ``project/project-id`` (unless ``metadata=False``), within
       ``timeout`` seconds: off Google Cloud it does not answer, and that is ``None``.

    Args:
        environ: Environment to read instead of ``os.environ``.
        metadata: Whether to ask the metadata server last. Default ``True``.
        http_client: The HTTP client for the metadata server. Default: the shared one.
        timeout: Seconds the metadata server may take. Default 3.

    Returns:
        The project id, or ``None`` when no place has one.

    Raises:
        ConfigError: ``GOOGLE_APPLICATION_CREDENTIALS`` names a file that cannot be read.

    Examples:
        ```python
        project = goth_actors.project_id() or "my-fallback-project"
        ```
    """
    env = os.environ if environ is None else environ
    for name in ("GOOGLE_CLOUD_PROJECT", "GCLOUD_PROJECT"):
        if env.get(name):
            return env[name].strip()
    credentials = find_credentials(env)
    found = _from_credentials(credentials) if credentials is not None else None
    found = found or core_project(env)
    if found is not None or not metadata:
        return found
    exchanger = Exchanger(
        default_http_client if http_client is None else http_client,
        timeout=timeout,
        clock=lambda: 0.0,
        environ=env,
    )
    try:
        text = exchanger.text(Metadata().value_exchange("project/project-id", env)).strip()
    except TokenError:
        return None
    return text if _PROJECT.fullmatch(text) else None


def universe_domain(
    source: Source,
    *,
    http_client: HttpClient | None = None,
    timeout: float = 3.0,
    environ: Mapping[str, str] | None = None,
) -> str:
    """The universe domain of ``source``'s tokens (``"googleapis.com"`` unless told otherwise).

    A source that knows says (its ``universe_domain``: from the key file, the caller, or
    ``GOOGLE_CLOUD_UNIVERSE_DOMAIN`` through [`default_source`][goth_actors.default_source]). The
    metadata server is asked (``universe/universe-domain``; a 404 means ``googleapis.com``, as in
    google-auth).

    Raises:
        TokenEndpointError, TransportError: The metadata server did not answer usably.
        ConfigError: It answered something that is not a domain name (field
            ``universe/universe-domain``).

    Examples:
        ```python
        goth_actors.universe_domain(goth_actors.default_source())
        ```
        'googleapis.com'
    """
    known = source_universe(source)
    if known is not None:
        return known
    if not isinstance(source, Metadata):
        return GOOGLE_UNIVERSE
    exchanger = Exchanger(
        default_http_client if http_client is None else http_client,
        timeout=timeout,
        clock=lambda: 0.0,
        environ=environ,
    )
    not_found = False
    text = ""
    try:
        text = exchanger.text(source.value_exchange("universe/universe-domain", environ))
    except TokenEndpointError as error:
        if error.status != 404:
            raise
        not_found = True
    if not_found or not text.strip():
        return GOOGLE_UNIVERSE
    return check_universe_domain(text, "universe/universe-domain")

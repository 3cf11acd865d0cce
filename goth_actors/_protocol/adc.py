"""Application Default Credentials, found where google-auth finds them.

`default_source` looks where google-auth looks, in its order, and `load_credentials` reads a
credentials file with the guards of every one.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from goth_actors._base import ConfigError
from goth_actors._protocol.files import FileProblem, read_json_object, shown_path
from goth_actors._protocol.from_credentials import source_from_credentials
from goth_actors._protocol.gcloud import config_dir
from goth_actors._protocol.metadata import Metadata
from goth_actors._protocol.token import Source
from goth_actors._protocol.validate import unknown_keyword

__all__ = ["default_source", "find_credentials", "load_credentials"]

_METADATA_OPTIONS = ("scopes", "account", "audience", "url", "quota_project_id", "universe_domain")


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

    Examples:
        ```python
        source = goth_actors.ServiceAccount(goth_actors.load_credentials("key.json"))
        ```
    """
    return _read_key_file(Path(path), "path")


def find_credentials(environ: Mapping[str, str]) -> Mapping[str, Any] | None:
    """The ADC credentials file's content, or ``None`` when there is none.

    The file is ``GOOGLE_APPLICATION_CREDENTIALS``, else gcloud's
    ``application_default_credentials.json``.
    """
    named = environ.get("GOOGLE_APPLICATION_CREDENTIALS")
    if named:
        return _read_key_file(Path(named), "GOOGLE_APPLICATION_CREDENTIALS")
    well_known = config_dir(environ) / "application_default_credentials.json"
    if well_known.is_file():
        return _read_key_file(well_known, "application_default_credentials.json")
    return None


def default_source(*, environ: Mapping[str, str] | None = None, **options: Any) -> Source:
    """Application Default Credentials, looked up in google-auth's order.

    1. The credentials file named by ``GOOGLE_APPLICATION_CREDENTIALS``.
    2. gcloud's ``application_default_credentials.json`` (in ``CLOUDSDK_CONFIG`` when set,
       else ``~/.config/gcloud``, or ``%APPDATA%/gcloud`` on Windows).
    3. The metadata server ([`Metadata`][goth_actors.Metadata]).

    The environment is read when this is called, never at import. Key files are read with
    guards (no blocking open, regular files only, at most 1 MiB of UTF-8 JSON, nested at most
    64 deep): anything else is a ``ConfigError``. ``GOOGLE_CLOUD_QUOTA_PROJECT`` gives the
    quota project (it wins over the file's, as in google-auth; a ``quota_project_id`` option
    wins over both), and ``GOOGLE_CLOUD_UNIVERSE_DOMAIN`` the universe domain (as a
    ``universe_domain`` option would).

    **Credential files are trusted input.** A credential file decides what goth_actors reads
    and where it sends it: an ``external_account`` file can have the VM's own metadata token,
    or a file's content, posted as its subject token. Load credential files only from places
    you trust, never from a user upload or a repository you do not control. goth_actors limits
    the damage: the URLs a file names that a credential is *sent to* (``token_uri``,
    ``token_url``, ``service_account_impersonation_url``, ``token_info_url``) must be https://
    (http:// only to loopback) and, unless ``allow_custom_endpoints=True``, one of Google's
    token services (``sts``, ``iamcredentials``, ``oauth2`` under ``googleapis.com`` or the
    ``universe_domain`` you name, with their regional, private and mTLS variants) or loopback.
    Where a file says a subject token is *read from* is not restricted, and an executable
    source runs only with ``GOOGLE_EXTERNAL_ACCOUNT_ALLOW_EXECUTABLES=1``.

    Args:
        environ: Environment to read instead of ``os.environ`` (for tests).
        **options: Passed to the chosen source (see
            [`source_from_credentials`][goth_actors.source_from_credentials]), including
            ``universe_domain``, ``quota_project_id``, ``audience`` (an ID token, whatever the
            credentials: a service account's key, the metadata server, impersonation, workload
            identity with impersonation; user credentials say why not) and
            ``allow_custom_endpoints=True``, the explicit opt-out for private endpoints (Private
            Service Connect, a proxy) that you trust; there is no environment variable for it. For
            the metadata server, ``scopes``, ``account``, ``audience``, ``url``,
            ``quota_project_id`` and ``universe_domain`` apply.

    Raises:
        ConfigError: ``GOOGLE_APPLICATION_CREDENTIALS`` names a missing, unreadable or
            malformed file, a key file is of an unsupported type, or it would send a
            credential somewhere the endpoint policy refuses.
        TypeError: An option the source does not take, named, with the likeliest meant.

    Examples:
        >>> source = default_source(scopes=("https://www.googleapis.com/auth/pubsub",))
    """
    env = os.environ if environ is None else environ
    quota = env.get("GOOGLE_CLOUD_QUOTA_PROJECT")
    if quota and "quota_project_id" not in options:
        options["quota_project_id"] = quota
    universe = env.get("GOOGLE_CLOUD_UNIVERSE_DOMAIN")
    if universe and "universe_domain" not in options:
        options["universe_domain"] = universe
    credentials = find_credentials(env)
    if credentials is not None:
        return source_from_credentials(credentials, **options)
    options.pop("allow_custom_endpoints", None)  # the metadata server is read, not sent to
    for name in options:
        if name not in _METADATA_OPTIONS:
            raise TypeError(
                unknown_keyword("default_source() (the metadata server)", name, _METADATA_OPTIONS)
            )
    return Metadata(**options)

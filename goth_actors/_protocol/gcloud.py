"""What gcloud leaves on disk: its configuration directory and the active ``core/project``.

The project is read as Goth 1.4 reads ``configurations/config_default``.

gcloud keeps ``application_default_credentials.json``, ``certificate_config.json``,
``active_config`` (the name of the active configuration) and ``configurations/config_NAME``
(INI) in ``CLOUDSDK_CONFIG``, else ``~/.config/gcloud`` (``%APPDATA%/gcloud`` on Windows).
Every file is read with the guards of `files`; nothing here runs
gcloud.
"""

from __future__ import annotations

import configparser
import re
import sys
from collections.abc import Mapping
from pathlib import Path

from goth_actors._protocol.files import read_text

__all__ = ["config_dir", "core_project"]

_NAME = re.compile(r"[A-Za-z0-9][\w-]{0,99}")


def config_dir(environ: Mapping[str, str]) -> Path:
    """Gcloud's configuration directory, from ``environ``."""
    configured = environ.get("CLOUDSDK_CONFIG")
    if configured:
        return Path(configured)
    if sys.platform == "win32" and environ.get("APPDATA"):
        return Path(environ["APPDATA"]) / "gcloud"
    return Path(environ.get("HOME") or Path.home()) / ".config" / "gcloud"


def core_project(environ: Mapping[str, str]) -> str | None:
    """The active gcloud configuration's ``core/project``, or ``None``.

    ``CLOUDSDK_CORE_PROJECT`` wins, as in gcloud; the active configuration is
    ``CLOUDSDK_ACTIVE_CONFIG_NAME``, else the one named in ``active_config``, else
    ``default``. An unreadable or malformed file counts as no project.
    """
    override = environ.get("CLOUDSDK_CORE_PROJECT")
    if override:
        return override.strip() or None
    root = config_dir(environ)
    name = environ.get("CLOUDSDK_ACTIVE_CONFIG_NAME")
    if not name:
        active = read_text(root / "active_config")
        name = active.strip() if isinstance(active, str) else "default"
    if not _NAME.fullmatch(name or ""):
        return None
    text = read_text(root / "configurations" / f"config_{name}")
    if not isinstance(text, str):
        return None
    parser = configparser.ConfigParser(interpolation=None)
    try:
        parser.read_string(text)
    except configparser.Error:
        return None
    project = parser.get("core", "project", fallback="").strip()
    return project or None

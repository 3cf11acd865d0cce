"""What every subcommand shares: the one-line failure, the parser, checked values, warnings.

And the credentials a command runs on, with the one message for none found.
"""

from __future__ import annotations

import argparse
import errno
import math
import re
import socket
import sys
from collections.abc import Callable
from typing import Any, NoReturn
from urllib.parse import urlsplit

from goth_actors import ConfigError, GothError, Metadata, Source, default_source

__all__ = [
    "ADC_HELP",
    "FAILED",
    "USAGE",
    "Fail",
    "Parser",
    "audience",
    "cannot_listen",
    "credentials_source",
    "host_name",
    "no_credentials",
    "port",
    "scope",
    "seconds",
    "warn",
]

FAILED, USAGE = 1, 2
ADC_HELP = "https://cloud.google.com/docs/authentication/external/set-up-adc"
"""Where google-auth and gcloud send a user who has no Application Default Credentials."""


class Fail(GothError):
    """A mistake to report as one line; ``status`` is the exit status (1, or 2 for usage)."""

    def __init__(self, message: str, *, status: int = FAILED, prog: str | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.prog = prog


class Parser(argparse.ArgumentParser):
    """An argument parser whose errors take the one path.

    One line, exit status 2, the command's usage at its end.
    """

    def error(self, message: str) -> NoReturn:
        usage = " ".join(self.format_usage().split()).removeprefix("usage: ")
        message = message.removeprefix("argument ")
        raise Fail(f"{message} (usage: {usage})", status=USAGE, prog=self.prog)


def seconds(low: float, high: float, *, low_allowed: bool) -> Callable[[str], float]:
    """An argparse type: a finite number of seconds from ``low`` (or above it) to ``high``."""
    bounds = f"from {low:g} to {high:g}" if low_allowed else f"above {low:g}, at most {high:g}"

    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            value = math.nan  # refused below, with the same message
        above_low = low <= value if low_allowed else low < value
        if not (math.isfinite(value) and above_low and value <= high):
            raise argparse.ArgumentTypeError(f"must be a number of seconds {bounds}, not {text!r}")
        return value

    return parse


def port(text: str) -> int:
    """An argparse type: a TCP port, 0 (any free one) to 65535."""
    try:
        value = int(text)
    except ValueError:
        value = -1
    if not 0 <= value <= 65535:
        raise argparse.ArgumentTypeError(
            f"must be a port from 0 (any free one) to 65535, not {text!r}"
        )
    return value


_LABEL = r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
_HOST_NAME = re.compile(rf"(?=.{{1,253}}$){_LABEL}(?:\.{_LABEL})*\.?")


def _word(what: str) -> Callable[[str], str]:
    """An argparse type: one word, described as ``what`` when refused.

    Not empty, at most 2048 characters, no space or control character.
    """

    def parse(text: str) -> str:
        if not text or len(text) > 2048 or not text.isprintable() or any(map(str.isspace, text)):
            raise argparse.ArgumentTypeError(
                f"must be {what}, not empty, without spaces: {text[:80]!r}"
            )
        return text

    return parse


scope = _word("one OAuth scope")
"""An argparse type: one OAuth scope (not empty, no spaces or control characters)."""

audience = _word("an audience (a URL or a client id)")
"""An argparse type: an ID-token audience (a URL or client id: not empty, no spaces)."""


def host_name(text: str) -> str:
    """An argparse type: a DNS host name (no scheme, port or path), as clients send in Host."""
    if not _HOST_NAME.fullmatch(text):
        raise argparse.ArgumentTypeError(
            f"must be a host name such as metadata-cache or tokens.internal, not {text[:80]!r}"
        )
    return text.rstrip(".").lower()


def cannot_listen(host: str, port: int, error: OSError) -> str:
    """The one line for a server that cannot listen: which option to change, and how."""
    where = f"{host}:{port}"
    if isinstance(error, socket.gaierror):
        return f"--host {host}: not an address (cannot resolve it); try 127.0.0.1"
    if error.errno == errno.EADDRINUSE:
        return (
            f"--port {port}: {where} is already in use; choose another port "
            "(--port 0 picks a free one)"
        )
    if error.errno == errno.EADDRNOTAVAIL:
        return f"--host {host}: this machine has no such address; try 127.0.0.1"
    if error.errno in (errno.EACCES, errno.EPERM):
        return f"--port {port}: not allowed to listen on {where}; choose a port above 1023"
    return f"cannot listen on {where}: {error.strerror or type(error).__name__}"


def warn(args: argparse.Namespace, message: str) -> None:
    """One warning line on stderr, for an option that is ignored; the command goes on."""
    print(f"{args.parser.prog}: warning: {message}", file=sys.stderr, flush=True)


def credentials_source(args: argparse.Namespace, **options: Any) -> Source:
    """The source of ``--credentials FILE``, else of Application Default Credentials.

    The file is read as ``GOOGLE_APPLICATION_CREDENTIALS`` is, with the same guards and
    messages; ``options`` go to `goth_actors.default_source` (``scopes``, ``audience``, ...).

    Raises:
        Fail: The file is missing or wrong, or an option cannot be given for these
            credentials (``--audience`` for a user's): one line naming the option.
    """
    given = args.credentials is not None
    environ = {"GOOGLE_APPLICATION_CREDENTIALS": args.credentials} if given else None
    try:
        return default_source(environ=environ, **options)
    except ConfigError as exc:
        option = {"audience": "--audience"}
        if given:
            option["GOOGLE_APPLICATION_CREDENTIALS"] = "--credentials"
        if exc.field not in option:
            raise
        raise Fail(f"{option[exc.field]}: {str(exc).removeprefix(exc.field + ': ')}") from None


def no_credentials(metadata: Metadata, url: str | None = None) -> str:
    """What google-auth and gcloud say when Application Default Credentials are nowhere.

    For a command that fell back on ``metadata`` (asked at ``url``, default its base URL) and
    got no answer: where it looked, and how to provide them.
    """
    host = urlsplit(url or metadata.base_url()).netloc or "metadata.google.internal"
    return (
        "Your default credentials were not found. Looked for: the key file named by "
        "GOOGLE_APPLICATION_CREDENTIALS (not set); gcloud's "
        "application_default_credentials.json (in $CLOUDSDK_CONFIG, else ~/.config/gcloud: "
        f"none); the metadata server at {host} (no answer). To provide them: run `gcloud auth "
        "application-default login`, or name a key file with --credentials FILE or "
        f"GOOGLE_APPLICATION_CREDENTIALS. See {ADC_HELP}"
    )

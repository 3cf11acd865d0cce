"""``goth-actors token``: print an access token (or an ID token), like gcloud."""

from __future__ import annotations

import argparse
import sys
from typing import Any
from urllib.parse import urlsplit

from goth_actors import (
    ConfigError,
    Metadata,
    RefreshToken,
    ServiceAccount,
    Source,
    Token,
    TransportError,
    default_source,
)
from goth_actors._cli._common import Fail, audience, scope, seconds, warn

__all__ = ["ADC_HELP", "add", "run"]

MAX_TIMEOUT = 600.0
ADC_HELP = "https://cloud.google.com/docs/authentication/external/set-up-adc"
"""Where google-auth and gcloud send a user who has no Application Default Credentials."""


def add(commands: Any) -> None:
    """Declares the subcommand and its options."""
    parser = commands.add_parser(
        "token",
        help="print an access token (or an ID token) to stdout",
        description=(
            "Print an access token, like `gcloud auth print-access-token`, from Application "
            "Default Credentials unless told otherwise; with --audience, an ID token."
        ),
    )
    parser.add_argument("--credentials", metavar="FILE", help="a JSON key file")
    parser.add_argument(
        "--scope",
        metavar="S",
        type=scope,
        action="append",
        dest="scopes",
        help="an OAuth scope (repeat for several; default: cloud-platform)",
    )
    parser.add_argument("--metadata", action="store_true", help="use the metadata server")
    parser.add_argument(
        "--audience", metavar="A", type=audience, help="print an ID token for this audience"
    )
    parser.add_argument(
        "--timeout",
        metavar="SECONDS",
        type=seconds(0.0, MAX_TIMEOUT, low_allowed=False),
        default=10.0,
        help=f"HTTP timeout, above 0, at most {MAX_TIMEOUT:g} (10)",
    )
    parser.set_defaults(run=run, parser=parser)


def run(args: argparse.Namespace) -> int:
    """Prints the token; returns the exit status."""
    if args.metadata and args.credentials is not None:
        args.parser.error("--metadata and --credentials cannot be combined: choose one source")
    if args.scopes and args.audience is not None:
        args.parser.error("--scope and --audience cannot be combined: an ID token has no scopes")
    source = _source(args)
    if args.scopes and isinstance(source, RefreshToken):
        warn(args, "--scope is ignored: user credentials carry the scopes the user granted")
    try:
        token = Token.fetch(source, timeout=args.timeout)
    except TransportError as exc:
        if args.credentials is None and not args.metadata and isinstance(source, Metadata):
            raise Fail(_no_credentials(exc)) from None  # nothing found before the metadata server
        raise
    sys.stdout.write(token.token + "\n")
    sys.stdout.flush()
    return 0


def _source(args: argparse.Namespace) -> Source:
    scopes: tuple[str, ...] | None = tuple(args.scopes) if args.scopes else None
    audience: str | None = args.audience
    if args.metadata:
        return Metadata(scopes=scopes, audience=audience)
    options: dict[str, Any] = {} if scopes is None else {"scopes": scopes}
    if args.credentials is None:
        source = default_source(**options)
    else:
        # Read the way GOOGLE_APPLICATION_CREDENTIALS is, with the same guards and messages.
        environ = {"GOOGLE_APPLICATION_CREDENTIALS": args.credentials}
        try:
            source = default_source(environ=environ, **options)
        except ConfigError as exc:
            if exc.field != "GOOGLE_APPLICATION_CREDENTIALS":
                raise
            raise Fail(f"--credentials: {str(exc).removeprefix(exc.field + ': ')}") from None
    if audience is None:
        return source
    if isinstance(source, ServiceAccount):
        return ServiceAccount(
            source.credentials,
            scopes=source.scopes,
            claims={"target_audience": audience},
            url=source.url,
        )
    if isinstance(source, Metadata):
        return Metadata(account=source.account, url=source.url, audience=audience)
    kind = "user credentials" if isinstance(source, RefreshToken) else type(source).__name__
    raise Fail(f"--audience: ID tokens need a service account or the metadata server, not {kind}")


def _no_credentials(error: TransportError) -> str:
    """What google-auth and gcloud say when Application Default Credentials are nowhere."""
    host = urlsplit(error.url).netloc or "metadata.google.internal"
    return (
        "Your default credentials were not found. Looked for: the key file named by "
        "GOOGLE_APPLICATION_CREDENTIALS (not set); gcloud's "
        "application_default_credentials.json (in $CLOUDSDK_CONFIG, else ~/.config/gcloud: "
        f"none); the metadata server at {host} (no answer). To provide them: run `gcloud auth "
        "application-default login`, or name a key file with --credentials FILE or "
        f"GOOGLE_APPLICATION_CREDENTIALS. See {ADC_HELP}"
    )

"""``goth-actors token``: print an access token (or an ID token), like gcloud."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from goth_actors import Metadata, RefreshToken, Source, Token, TransportError
from goth_actors._cli._common import (
    Fail,
    audience,
    credentials_source,
    no_credentials,
    scope,
    seconds,
    warn,
)

__all__ = ["add", "run"]

MAX_TIMEOUT = 600.0


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
            # nothing found before the metadata server
            raise Fail(no_credentials(source, exc.url)) from None
        raise
    sys.stdout.write(token.token + "\n")
    sys.stdout.flush()
    return 0


def _source(args: argparse.Namespace) -> Source:
    scopes: tuple[str, ...] | None = tuple(args.scopes) if args.scopes else None
    options: dict[str, Any] = {"scopes": scopes, "audience": args.audience}
    options = {name: value for name, value in options.items() if value is not None}
    if args.metadata:
        return Metadata(**options)
    return credentials_source(args, **options)

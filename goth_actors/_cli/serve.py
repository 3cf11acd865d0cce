"""``goth-actors serve``: one supervised token cache for every process on a machine.

Speaks the GCE metadata server's protocol (see `_serve`), so that clients in
any language find it through ``GCE_METADATA_HOST``. Runs until SIGTERM, SIGINT (Ctrl-C) or
SIGHUP, then stops gracefully and exits 0.
"""

from __future__ import annotations

import argparse
import asyncio
import ipaddress
import logging
import signal
import sys
from typing import Any

import requests

from goth_actors import Metadata
from goth_actors._cli._common import (
    Fail,
    audience,
    cannot_listen,
    credentials_source,
    host_name,
    no_credentials,
    port,
    scope,
    seconds,
    warn,
)
from goth_actors._serve import BOUNDS, MetadataServer, ServeOptions

__all__ = ["DEFAULT_PORT", "add", "run"]

_DEFAULTS = ServeOptions()
DEFAULT_PORT = _DEFAULTS.port


def _count(low: int, high: int) -> Any:
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            value = low - 1
        if not low <= value <= high:
            raise argparse.ArgumentTypeError(
                f"must be a whole number from {low} to {high}, not {text!r}"
            )
        return value

    return parse


def _option(name: str) -> Any:
    """The argument type of ``ServeOptions``' field ``name``, from its bound."""
    bound = BOUNDS[name]
    if bound.whole:
        return _count(int(bound.low), int(bound.high))
    return seconds(bound.low, bound.high, low_allowed=bound.low_allowed)


def _range(name: str) -> str:
    bound = BOUNDS[name]
    return f"{bound.low:g} to {bound.high:g}"


def add(commands: Any) -> None:
    """Declares the subcommand and its options."""
    parser = commands.add_parser(
        "serve",
        help="serve tokens to every process on this machine, as the GCE metadata server does",
        description=(
            "Keep tokens fresh in supervised token servers and serve them over HTTP in the GCE "
            "metadata server's protocol: point clients at it with GCE_METADATA_HOST and "
            "GCE_METADATA_IP. Credentials: Application Default Credentials unless told otherwise."
        ),
    )
    parser.add_argument("--credentials", metavar="FILE", help="a JSON key file")
    parser.add_argument(
        "--host",
        default=_DEFAULTS.host,
        help="address to listen on (127.0.0.1; any other is warned about: it serves tokens to "
        "every host that can reach it)",
    )
    parser.add_argument(
        "--port",
        type=port,
        default=DEFAULT_PORT,
        help=f"port to listen on, 0 for any free one ({DEFAULT_PORT})",
    )
    parser.add_argument(
        "--scope",
        metavar="S",
        type=scope,
        action="append",
        dest="scopes",
        help="a scope of the default scope set, served when a client names none (repeat; "
        "default: cloud-platform, or the upstream metadata server's)",
    )
    parser.add_argument(
        "--audience",
        metavar="A",
        type=audience,
        action="append",
        dest="audiences",
        default=[],
        help="an ID-token audience whose server starts at once, counted by /healthz (repeat)",
    )
    parser.add_argument(
        "--allow-host",
        metavar="NAME",
        type=host_name,
        action="append",
        default=[],
        help="a host name clients reach this server by, besides IP addresses, localhost, "
        "metadata and metadata.google.internal (repeat; e.g. a docker-compose service name)",
    )
    parser.add_argument(
        "--idle",
        metavar="SECONDS",
        type=_option("idle"),
        default=_DEFAULTS.idle,
        help=f"stop a server started on demand after this long unused, at most "
        f"{BOUNDS['idle'].high:g} ({_DEFAULTS.idle:g})",
    )
    parser.add_argument(
        "--max-servers",
        metavar="N",
        type=_option("max_servers"),
        default=_DEFAULTS.max_servers,
        help=f"distinct scope sets and audiences served at once, {_range('max_servers')} "
        f"({_DEFAULTS.max_servers})",
    )
    parser.add_argument(
        "--max-connections",
        metavar="N",
        type=_option("max_connections"),
        default=_DEFAULTS.max_connections,
        help=f"open connections at once, {_range('max_connections')} ({_DEFAULTS.max_connections})",
    )
    parser.set_defaults(run=run, parser=parser)


def run(args: argparse.Namespace) -> int:
    """Serves until SIGTERM, SIGINT or SIGHUP; returns the exit status (0 when stopped so)."""
    if args.max_servers <= len(args.audiences):
        args.parser.error(
            f"--max-servers {args.max_servers} leaves no room: the default scope set and "
            f"{len(args.audiences)} --audience need {len(args.audiences) + 1}"
        )
    if not _is_loopback(args.host):
        warn(
            args,
            f"--host {args.host}: tokens are served to every host that can reach this address; "
            "allow only the clients that should have them (a firewall, a network policy)",
        )
    source = credentials_source(args, **({"scopes": tuple(args.scopes)} if args.scopes else {}))
    options = ServeOptions(
        host=args.host,
        port=args.port,
        audiences=tuple(args.audiences),
        allowed_hosts=tuple(args.allow_host),
        idle=args.idle,
        max_servers=args.max_servers,
        max_connections=args.max_connections,
    )
    try:
        server = MetadataServer(source, options)
    except ValueError as exc:
        raise Fail(str(exc)) from None
    except requests.RequestException:
        if isinstance(source, Metadata):  # only Application Default Credentials end there
            raise Fail(no_credentials(source)) from None
        raise
    upstream = server.upstream
    if args.audiences and not upstream.gives_id_tokens:  # refused before anything starts
        raise Fail(
            f"--audience: {upstream.kind} credentials give no ID tokens; serve a service "
            "account's key, impersonated credentials or a metadata server's"
        )
    if args.scopes and not upstream.takes_scopes:
        warn(args, "--scope is ignored: user credentials carry the scopes the user granted")
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter(f"{args.parser.prog}: %(message)s"))
    library = logging.getLogger("goth_actors")
    library.addHandler(handler)
    level, library.level = library.level, logging.INFO
    try:
        asyncio.run(_serve(server, args))
    finally:
        library.removeHandler(handler)
        library.setLevel(level)
    return 0


async def _serve(server: MetadataServer, args: argparse.Namespace) -> None:
    try:
        await server.start()
    except OSError as exc:
        raise Fail(cannot_listen(args.host, args.port, exc)) from None
    loop = asyncio.get_running_loop()
    names = [name for name in ("SIGTERM", "SIGINT", "SIGHUP") if hasattr(signal, name)]
    for name in names:
        loop.add_signal_handler(getattr(signal, name), server.stop)
    identity = server.upstream.identity
    who = identity.email or "user credentials"
    where = server.host_port
    print(
        "\n".join(
            [
                f"serving tokens for {who} ({server.upstream.kind}) on {server.url}",
                f"  project: {identity.project_id or 'unknown'}",
                f"  clients: GCE_METADATA_HOST={where} GCE_METADATA_IP={where}",
                f"  health:  {server.url}/healthz",
                f"  status:  curl -H 'Metadata-Flavor: Google' {server.url}/status",
                "press Ctrl-C to stop",
            ]
        ),
        flush=True,
    )
    try:
        await server.run()
    finally:
        for name in names:
            loop.remove_signal_handler(getattr(signal, name))


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False

"""The ``goth-actors`` command: ``demo``, ``token`` and ``emulator``.

Errors are one clear line on stderr and exit status 1; never a traceback, never a secret.
"""

from __future__ import annotations

import argparse
import json
import signal
import sys
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from goth_actors import (
    GothError,
    Metadata,
    RefreshToken,
    ServiceAccount,
    Source,
    Token,
    default_source,
    source_from_credentials,
)

__all__ = ["main"]


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="goth-actors",
        description="Google OAuth2 tokens kept fresh by supervised Pykka actors.",
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    token = commands.add_parser(
        "token",
        help="print an access token (or an ID token) to stdout",
        description=(
            "Print an access token, like `gcloud auth print-access-token`, from Application "
            "Default Credentials unless told otherwise; with --audience, an ID token."
        ),
    )
    token.add_argument("--credentials", metavar="FILE", type=Path, help="a JSON key file")
    token.add_argument(
        "--scope",
        metavar="S",
        action="append",
        dest="scopes",
        help="an OAuth scope (repeat for several; default: cloud-platform)",
    )
    token.add_argument("--metadata", action="store_true", help="use the metadata server")
    token.add_argument("--audience", metavar="A", help="print an ID token for this audience")
    token.add_argument(
        "--timeout", metavar="SECONDS", type=float, default=10.0, help="HTTP timeout (10)"
    )

    demo = commands.add_parser(
        "demo",
        help="watch three supervised token servers ride out an outage (on the emulator)",
        description=(
            "Run three token servers under a supervisor against the built-in Google emulator "
            "while caller threads fetch tokens, through an outage, a crash and a recovery."
        ),
    )
    demo.add_argument(
        "--duration", metavar="SECONDS", type=float, default=30.0, help="how long (30)"
    )
    demo.add_argument("--json", action="store_true", help="print only the summary, as JSON")
    demo.add_argument("--plain", action="store_true", help="plain lines, even on a terminal")

    emulator = commands.add_parser(
        "emulator",
        help="run the local Google emulator for your own integration tests",
        description="Run goth_actors' emulator of Google's token endpoints until interrupted.",
    )
    emulator.add_argument("--host", default="127.0.0.1", help="address to bind (127.0.0.1)")
    emulator.add_argument("--port", type=int, default=8080, help="port to bind, 0 for any (8080)")
    emulator.add_argument(
        "--write-credentials",
        metavar="DIR",
        type=Path,
        help="write service_account.json and authorized_user.json issued by the emulator here",
    )
    return parser


def _token_source(args: argparse.Namespace) -> Source:
    scopes: tuple[str, ...] | None = tuple(args.scopes) if args.scopes else None
    audience: str | None = args.audience
    if scopes is not None and audience is not None:
        raise _Fail("--scope and --audience cannot be combined: an ID token has no scopes")
    if not args.timeout > 0:
        raise _Fail(f"--timeout must be a number of seconds above 0, not {args.timeout}")
    if args.metadata:
        return Metadata(scopes=scopes, audience=audience)
    options: dict[str, Any] = {} if scopes is None else {"scopes": scopes}
    if args.credentials is not None:
        try:
            credentials = json.loads(args.credentials.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise _Fail(f"--credentials: {args.credentials} does not exist") from None
        except (OSError, ValueError) as exc:
            problem = "is not valid JSON" if isinstance(exc, ValueError) else "cannot be read"
            raise _Fail(f"--credentials: {args.credentials} {problem}") from None
        source = source_from_credentials(credentials, **options)
    else:
        source = default_source(**options)
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
    raise _Fail(f"--audience: ID tokens need a service account or the metadata server, not {kind}")


def _token(args: argparse.Namespace) -> int:
    token = Token.fetch(_token_source(args), timeout=args.timeout)
    sys.stdout.write(token.token + "\n")
    return 0


def _demo(args: argparse.Namespace) -> int:
    from goth_actors._demo import run_demo

    return run_demo(args.duration, as_json=args.json, plain=args.plain)


def _emulator(args: argparse.Namespace) -> int:
    from goth_actors.testing import GoogleEmulator

    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    # Runs until interrupted: keep only the last 1,000 requests (tokens expire and are dropped).
    with GoogleEmulator(host=args.host, port=args.port, max_recorded=1_000) as emulator:
        lines = [
            f"emulator listening on {emulator.url}",
            f"  token endpoint:   {emulator.token_url}",
            f"  metadata server:  GCE_METADATA_HOST={emulator.metadata_host}",
            f"  tokeninfo:        {emulator.tokeninfo_url}",
        ]
        if args.write_credentials is not None:
            folder: Path = args.write_credentials
            folder.mkdir(parents=True, exist_ok=True)
            for name, info in (
                ("service_account.json", emulator.service_account()),
                ("authorized_user.json", emulator.authorized_user()),
            ):
                path = folder / name
                path.write_text(json.dumps(info, indent=2) + "\n", encoding="utf-8")
                path.chmod(0o600)
                lines.append(f"  wrote {path}")
        lines.append("press Ctrl-C to stop")
        print("\n".join(lines), flush=True)
        try:
            while not stop.wait(0.5):
                pass
        except KeyboardInterrupt:
            pass
    return 0


class _Fail(GothError):
    """A command-line mistake: printed as one line, exit status 1."""


def main(argv: Sequence[str] | None = None) -> int:
    """Runs the ``goth-actors`` command line; returns the exit status."""
    args = _parser().parse_args(argv)
    handlers = {"token": _token, "demo": _demo, "emulator": _emulator}
    try:
        return handlers[args.command](args)
    except (GothError, _Fail) as exc:
        print(f"goth-actors {args.command}: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())

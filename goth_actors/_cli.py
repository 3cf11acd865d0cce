"""The ``goth-actors`` command: ``token``, ``demo`` and ``emulator``.

Each subcommand is two functions, ``_add_<name>`` (its options) and ``_<name>`` (running it);
a new subcommand adds its pair and one line in :func:`_parser`. Every failure takes one path,
through :func:`main`: one line on stderr that starts with the command, never a traceback,
never a secret, and an exit status:

- 0: done;
- 1: the command could not do its job on this machine: no credentials, a key file that is
  missing or wrong, an endpoint that refused, a port in use, a demo that broke a promise;
- 2: the command line is wrong whatever the machine: an unknown option, a bad value, options
  that contradict each other (the line ends with the subcommand's usage);
- 130: interrupted (Ctrl-C);
- 141: whoever read stdout stopped reading (``| head``), as for other Unix tools.
"""

from __future__ import annotations

import argparse
import contextlib
import errno
import json
import math
import os
import re
import signal
import socket
import sys
import threading
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any, NoReturn
from urllib.parse import urlsplit

from goth_actors import (
    ConfigError,
    GothError,
    Metadata,
    RefreshToken,
    ServiceAccount,
    Source,
    Token,
    TransportError,
    __version__,
    default_source,
)

__all__ = ["main"]

FAILED, USAGE, INTERRUPTED, STDOUT_CLOSED = 1, 2, 130, 141

MAX_TIMEOUT = 600.0
MIN_DURATION, MAX_DURATION = 5.0, 3600.0
ADC_HELP = "https://cloud.google.com/docs/authentication/external/set-up-adc"
"""Where google-auth and gcloud send a user who has no Application Default Credentials."""


class _Fail(GothError):
    """A mistake to report as one line; ``status`` is the exit status (1, or 2 for usage)."""

    def __init__(self, message: str, *, status: int = FAILED, prog: str | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.prog = prog


class _Parser(argparse.ArgumentParser):
    """An argument parser whose errors take :func:`main`'s one path (exit status 2)."""

    def error(self, message: str) -> NoReturn:
        usage = " ".join(self.format_usage().split()).removeprefix("usage: ")
        message = message.removeprefix("argument ")
        raise _Fail(f"{message} (usage: {usage})", status=USAGE, prog=self.prog)


def _seconds(low: float, high: float, *, low_allowed: bool) -> Callable[[str], float]:
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


def _port(text: str) -> int:
    """An argparse type: a TCP port, 0 to 65535."""
    try:
        value = int(text)
    except ValueError:
        value = -1
    if not 0 <= value <= 65535:
        raise argparse.ArgumentTypeError(
            f"must be a port from 0 (any free one) to 65535, not {text!r}"
        )
    return value


# --- token ------------------------------------------------------------------------------------


def _add_token(commands: Any) -> None:
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
        "--timeout",
        metavar="SECONDS",
        type=_seconds(0.0, MAX_TIMEOUT, low_allowed=False),
        default=10.0,
        help=f"HTTP timeout, above 0, at most {MAX_TIMEOUT:g} (10)",
    )
    token.set_defaults(run=_token, parser=token)


def _token(args: argparse.Namespace) -> int:
    if args.metadata and args.credentials is not None:
        args.parser.error("--metadata and --credentials cannot be combined: choose one source")
    if args.scopes and args.audience is not None:
        args.parser.error("--scope and --audience cannot be combined: an ID token has no scopes")
    source = _token_source(args)
    if args.scopes and isinstance(source, RefreshToken):
        _warn(args, "--scope is ignored: user credentials carry the scopes the user granted")
    try:
        token = Token.fetch(source, timeout=args.timeout)
    except TransportError as exc:
        if args.credentials is None and not args.metadata and isinstance(source, Metadata):
            raise _Fail(_no_credentials(exc)) from None  # nothing found before the metadata server
        raise
    sys.stdout.write(token.token + "\n")
    sys.stdout.flush()
    return 0


def _token_source(args: argparse.Namespace) -> Source:
    scopes: tuple[str, ...] | None = tuple(args.scopes) if args.scopes else None
    audience: str | None = args.audience
    if args.metadata:
        return Metadata(scopes=scopes, audience=audience)
    options: dict[str, Any] = {} if scopes is None else {"scopes": scopes}
    if args.credentials is None:
        source = default_source(**options)
    else:
        # Read the way GOOGLE_APPLICATION_CREDENTIALS is, with the same guards and messages.
        environ = {"GOOGLE_APPLICATION_CREDENTIALS": str(args.credentials)}
        try:
            source = default_source(environ=environ, **options)
        except ConfigError as exc:
            if exc.field != "GOOGLE_APPLICATION_CREDENTIALS":
                raise
            raise _Fail(f"--credentials: {str(exc).removeprefix(exc.field + ': ')}") from None
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


def _no_credentials(error: TransportError) -> str:
    """What google-auth and gcloud say when Application Default Credentials are nowhere."""
    host = urlsplit(error.url).netloc or "metadata.google.internal"
    return (
        "Your default credentials were not found. Looked for: the key file named by "
        "GOOGLE_APPLICATION_CREDENTIALS (not set); gcloud's "
        "application_default_credentials.json (in $CLOUDSDK_CONFIG, else ~/.config/gcloud: "
        f"none); the metadata server at {host} (no answer). To provide "
        "them: run `gcloud auth application-default login`, or name a key file with "
        f"--credentials FILE or GOOGLE_APPLICATION_CREDENTIALS. See {ADC_HELP}"
    )


# --- demo -------------------------------------------------------------------------------------


def _add_demo(commands: Any) -> None:
    demo = commands.add_parser(
        "demo",
        help="watch three supervised token servers ride out an outage (on the emulator)",
        description=(
            "Run three token servers under a supervisor against the built-in Google emulator "
            "while caller threads fetch tokens, through two outages, crashes and a recovery."
        ),
    )
    demo.add_argument(
        "--duration",
        metavar="SECONDS",
        type=_seconds(MIN_DURATION, MAX_DURATION, low_allowed=True),
        default=30.0,
        help=f"how long, from {MIN_DURATION:g} to {MAX_DURATION:g} (30)",
    )
    demo.add_argument("--json", action="store_true", help="print only the summary, as JSON")
    demo.add_argument("--plain", action="store_true", help="plain lines, even on a terminal")
    demo.set_defaults(run=_demo, parser=demo)


def _demo(args: argparse.Namespace) -> int:
    from goth_actors._demo import run_demo

    if args.json and args.plain:
        _warn(args, "--plain is ignored with --json, which prints only the summary")
    return run_demo(args.duration, as_json=args.json, plain=args.plain)


# --- emulator ---------------------------------------------------------------------------------


def _add_emulator(commands: Any) -> None:
    emulator = commands.add_parser(
        "emulator",
        help="run the local Google emulator for your own integration tests",
        description="Run goth_actors' emulator of Google's token endpoints until interrupted.",
    )
    emulator.add_argument("--host", default="127.0.0.1", help="address to bind (127.0.0.1)")
    emulator.add_argument(
        "--port", type=_port, default=8080, help="port to bind, 0 for any free one (8080)"
    )
    emulator.add_argument(
        "--write-credentials",
        metavar="DIR",
        type=Path,
        help=(
            "write service_account.json and authorized_user.json issued by the emulator here "
            "(created if missing; the files are removed when the emulator stops)"
        ),
    )
    emulator.set_defaults(run=_emulator, parser=emulator)


_KEY_FILES = ("service_account.json", "authorized_user.json")


def _emulator(args: argparse.Namespace) -> int:
    from goth_actors.testing import GoogleEmulator

    folder: Path | None = args.write_credentials
    created = _prepare_folder(folder) if folder is not None else False
    # Runs until interrupted: keep only the last 1,000 requests (tokens expire and are dropped).
    emulator = GoogleEmulator(host=args.host, port=args.port, max_recorded=1_000)
    try:
        emulator.start()
    except OSError as exc:
        _remove(folder, [], created)
        raise _Fail(_cannot_listen(args.host, args.port, exc)) from None
    written: list[Path] = []
    try:
        lines = [
            f"emulator listening on {emulator.url}",
            f"  token endpoint:   {emulator.token_url}",
            f"  metadata server:  GCE_METADATA_HOST={emulator.metadata_host}",
            f"  tokeninfo:        {emulator.tokeninfo_url}",
        ]
        if folder is not None:
            for name, info in zip(
                _KEY_FILES, (emulator.service_account(), emulator.authorized_user()), strict=True
            ):
                written.append(_write_private(folder / name, info))
                lines.append(f"  wrote {folder / name}")
            lines.append("  (these keys work with this emulator only; removed when it stops)")
        lines.append("press Ctrl-C to stop")
        print("\n".join(lines), flush=True)
        with _stop_signals() as stop:
            while not stop.wait(0.5):
                pass
    finally:
        emulator.close()
        _remove(folder, written, created)
    return 0


def _prepare_folder(folder: Path) -> bool:
    """Checks ``--write-credentials`` before anything starts; returns whether it was created."""
    if folder.exists() and not folder.is_dir():
        raise _Fail(f"--write-credentials: {folder} is a file; name a folder (created if missing)")
    for name in _KEY_FILES:
        if (folder / name).exists() or (folder / name).is_symlink():
            raise _Fail(
                f"--write-credentials: {folder / name} already exists (left by an emulator that "
                "did not stop?); remove it or name another folder"
            )
    if folder.is_dir():
        return False
    try:
        folder.mkdir(parents=True)
    except OSError as exc:
        raise _Fail(f"--write-credentials: cannot create {folder}: {exc.strerror}") from None
    return True


def _write_private(path: Path, info: dict[str, str]) -> Path:
    """Writes a key file readable by its owner only, from the first byte (never chmod after)."""
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0)
    try:
        descriptor = os.open(path, flags, 0o600)
    except OSError as exc:
        raise _Fail(f"--write-credentials: cannot create {path}: {exc.strerror}") from None
    with open(descriptor, "w", encoding="utf-8") as handle:
        handle.write(json.dumps(info, indent=2) + "\n")
    return path


def _remove(folder: Path | None, written: list[Path], created: bool) -> None:
    for path in written:
        with contextlib.suppress(OSError):
            path.unlink()
    if folder is not None and created:
        with contextlib.suppress(OSError):
            folder.rmdir()  # only if empty: never anything the user put there


def _cannot_listen(host: str, port: int, error: OSError) -> str:
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


@contextlib.contextmanager
def _stop_signals() -> Iterator[threading.Event]:
    """An event set by SIGTERM or SIGHUP (Ctrl-C raises KeyboardInterrupt) while inside."""
    stop = threading.Event()
    names = [name for name in ("SIGTERM", "SIGHUP") if hasattr(signal, name)]
    previous = {name: signal.signal(getattr(signal, name), lambda *_: stop.set()) for name in names}
    try:
        yield stop
    except KeyboardInterrupt:
        pass
    finally:
        for name, handler in previous.items():
            signal.signal(getattr(signal, name), handler)


# --- the one path -----------------------------------------------------------------------------


def _parser() -> _Parser:
    parser = _Parser(
        prog="goth-actors",
        description="Google OAuth2 tokens kept fresh by supervised Pykka actors.",
        epilog=(
            "exit status: 0 done, 1 failed (no token, a port in use, ...), 2 a usage error, "
            "130 interrupted, 141 stdout closed early"
        ),
    )
    parser.add_argument("--version", action="version", version=f"goth-actors {__version__}")
    parser.set_defaults(parser=parser)
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for add in (_add_token, _add_demo, _add_emulator):
        add(commands)
    return parser


def _warn(args: argparse.Namespace, message: str) -> None:
    print(f"{args.parser.prog}: warning: {message}", file=sys.stderr, flush=True)


_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")


def _one_line(text: str) -> str:
    """``text`` as one line a terminal shows as is: whitespace runs become one space, other
    control characters are escaped."""
    text = " ".join(text.split())
    return _CONTROL.sub(lambda match: f"\\x{ord(match.group()):02x}", text)


def _stdout_closed() -> int:
    # The reader went away (`| head`): stop quietly, and let no flush at exit complain again.
    with contextlib.suppress(OSError, ValueError):
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    return STDOUT_CLOSED


def main(argv: Sequence[str] | None = None) -> int:
    """Runs the ``goth-actors`` command line; returns the exit status (see the module)."""
    parser = _parser()
    prog = parser.prog
    try:
        args, extra = parser.parse_known_args(argv)
        prog = args.parser.prog
        if extra:
            args.parser.error(f"unrecognized arguments: {' '.join(extra)}")
        return int(args.run(args))
    except _Fail as exc:
        print(f"{exc.prog or prog}: {_one_line(str(exc))}", file=sys.stderr)
        return exc.status
    except GothError as exc:
        print(f"{prog}: {_one_line(str(exc))}", file=sys.stderr)
        return FAILED
    except KeyboardInterrupt:
        return INTERRUPTED
    except BrokenPipeError:
        return _stdout_closed()
    except SystemExit as exc:  # --help and --version
        return exc.code if isinstance(exc.code, int) else 0


if __name__ == "__main__":
    sys.exit(main())

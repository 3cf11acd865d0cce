"""The ``goth-actors`` command: ``token``, ``demo`` and ``emulator``.

Each subcommand is a module with two functions, ``add(commands)`` (its parser and options)
and ``run(args) -> int`` (doing it); a new subcommand is a new module and one entry in
`SUBCOMMANDS`. Every failure takes one path, through `main`: one line on stderr
that starts with the command, never a traceback, never a secret, and an exit status:

- 0: done;
- 1: the command could not do its job on this machine: no credentials, a key file that is
  missing or wrong, an endpoint that refused, a port in use, a demo that broke a promise;
- 2: the command line is wrong whatever the machine: an unknown option, a bad value, options
  that contradict each other (the line ends with the subcommand's usage);
- 130: interrupted (Ctrl-C; the emulator, which runs until then, exits 0);
- 141: whoever read stdout stopped reading (``| head``), as for other Unix tools.
"""

from __future__ import annotations

import contextlib
import os
import re
import sys
from collections.abc import Sequence

from goth_actors import GothError, __version__
from goth_actors._cli import demo, emulator, serve, token
from goth_actors._cli._common import FAILED, Fail, Parser

__all__ = ["SUBCOMMANDS", "main"]

SUBCOMMANDS = (token, demo, emulator, serve)
INTERRUPTED, STDOUT_CLOSED = 130, 141


def _parser() -> Parser:
    parser = Parser(
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
    for subcommand in SUBCOMMANDS:
        subcommand.add(commands)
    return parser


_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")


def _one_line(text: str) -> str:
    """``text`` as one line a terminal shows as is.

    Whitespace runs become one space, other control characters are escaped.
    """
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
    except Fail as exc:
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

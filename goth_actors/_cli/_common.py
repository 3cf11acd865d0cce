"""What every subcommand shares: the one-line failure, the parser, checked numbers, warnings."""

from __future__ import annotations

import argparse
import math
import sys
from collections.abc import Callable
from typing import NoReturn

from goth_actors import GothError

__all__ = ["FAILED", "USAGE", "Fail", "Parser", "port", "seconds", "warn"]

FAILED, USAGE = 1, 2


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


def warn(args: argparse.Namespace, message: str) -> None:
    """One warning line on stderr, for an option that is ignored; the command goes on."""
    print(f"{args.parser.prog}: warning: {message}", file=sys.stderr, flush=True)

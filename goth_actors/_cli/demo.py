"""``goth-actors demo``: the options; the scenario is `_demo`."""

from __future__ import annotations

import argparse
from typing import Any

from goth_actors._cli._common import seconds, warn
from goth_actors._demo import MAX_DURATION, MIN_DURATION, run_demo

__all__ = ["add", "run"]


def add(commands: Any) -> None:
    """Declares the subcommand and its options."""
    parser = commands.add_parser(
        "demo",
        help="watch three supervised token servers ride out two outages (on the emulator)",
        description=(
            "Run three token servers under a supervisor against the built-in Google emulator "
            "while caller threads fetch tokens, through two outages, a crash and a recovery."
        ),
    )
    parser.add_argument(
        "--duration",
        metavar="SECONDS",
        type=seconds(MIN_DURATION, MAX_DURATION, low_allowed=True),
        default=30.0,
        help=f"how long, from {MIN_DURATION:g} to {MAX_DURATION:g} (30)",
    )
    parser.add_argument("--json", action="store_true", help="print only the summary, as JSON")
    parser.add_argument("--plain", action="store_true", help="plain lines, even on a terminal")
    parser.set_defaults(run=run, parser=parser)


def run(args: argparse.Namespace) -> int:
    """Runs the demo; returns the exit status (1 when it broke a promise)."""
    if args.json and args.plain:
        warn(args, "--plain is ignored with --json, which prints only the summary")
    return run_demo(args.duration, as_json=args.json, plain=args.plain)

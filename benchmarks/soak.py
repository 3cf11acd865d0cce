"""The chaos soak, for minutes: ``uv run python benchmarks/soak.py [--minutes 3] [--seed N]``.

20 token servers across the three sources, 16 caller threads fetching without pause, and a
random schedule of endpoint faults and actor stops (see ``goth_actors.testing.run_soak``).
Prints the figures; exit status 0 when every promise held.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import goth_actors
from goth_actors.testing import run_soak


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--minutes", type=float, default=3.0, help="how long (3)")
    parser.add_argument("--servers", type=int, default=20)
    parser.add_argument("--callers", type=int, default=16)
    parser.add_argument("--seed", type=int, default=None)
    args = parser.parse_args()
    report = run_soak(
        args.minutes * 60.0,
        servers=args.servers,
        callers=args.callers,
        seed=args.seed,
        progress=print,
    )
    goth_actors.shutdown()
    print("\n".join(report.lines()))
    results = Path(__file__).parent / "results"
    results.mkdir(exist_ok=True)
    (results / "soak.json").write_text(
        json.dumps(
            {
                "duration_s": report.duration,
                "servers": report.servers,
                "callers": report.callers,
                "fetches": report.fetches,
                "errors": dict(report.errors),
                "violations": report.violations,
                "faults": dict(report.faults),
                "restarts": report.restarts,
                "endpoint_requests": report.endpoint_requests,
                "recovery_seconds": report.recovery_seconds,
                "leaked_secrets": len(report.leaked_secrets),
                "held": report.held,
            },
            indent=2,
        )
    )
    return 0 if report.held else 1


if __name__ == "__main__":
    sys.exit(main())

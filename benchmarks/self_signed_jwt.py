"""Benchmark: a refresh with a self-signed JWT against a JWT-bearer exchange with the emulator.

Run: ``uv run python benchmarks/self_signed_jwt.py [--refreshes 300] [--repeat 5]``

Both sources hold the same service-account key. Each refresh is one ``Token.fetch``: for the
self-signed JWT, signing the JWT (RS256) and nothing else; for the JWT-bearer grant, signing
the assertion and a POST to the emulator on 127.0.0.1, which checks the signature and issues
a token (a real Google adds tens of milliseconds of network). Reports the median and p99 per
refresh (best of ``--repeat`` runs), the ratio, and the token endpoint's request count, and
writes ``benchmarks/results/self_signed_jwt.json``.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import sys
import time
from pathlib import Path
from typing import Any

from goth_actors import ServiceAccount, Token
from goth_actors.testing import GoogleEmulator

RESULTS = Path(__file__).resolve().parent / "results" / "self_signed_jwt.json"


def _times(source: ServiceAccount, refreshes: int) -> list[float]:
    times = []
    for _ in range(refreshes):
        started = time.perf_counter()
        Token.fetch(source)
        times.append(time.perf_counter() - started)
    return times


def _summary(runs: list[list[float]]) -> dict[str, float]:
    best = min(runs, key=statistics.median)
    ordered = sorted(best)
    return {
        "median_us": statistics.median(best) * 1e6,
        "p99_us": ordered[int(len(ordered) * 0.99) - 1] * 1e6,
    }


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--refreshes", type=int, default=300)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args(argv)
    with GoogleEmulator() as emulator:
        key = emulator.service_account()
        local = ServiceAccount(key, self_signed_jwt=True)
        bearer = ServiceAccount(key)
        Token.fetch(local), Token.fetch(bearer)  # warm: imports, the connection pool
        emulator.clear_requests()
        local_runs = [_times(local, args.refreshes) for _ in range(args.repeat)]
        assert emulator.request_count() == 0
        bearer_runs = [_times(bearer, args.refreshes) for _ in range(args.repeat)]
        requests = emulator.request_count("token")
    results: dict[str, Any] = {
        "python": platform.python_version(),
        "machine": platform.platform(),
        "refreshes": args.refreshes,
        "repeat": args.repeat,
        "self_signed_jwt": {**_summary(local_runs), "token_requests": 0},
        "jwt_bearer_exchange": {**_summary(bearer_runs), "token_requests": requests},
    }
    ratio = results["jwt_bearer_exchange"]["median_us"] / results["self_signed_jwt"]["median_us"]
    results["exchange_over_self_signed"] = ratio
    print("| refresh | median | p99 | token requests |")
    print("| --- | --- | --- | --- |")
    for name in ("self_signed_jwt", "jwt_bearer_exchange"):
        row = results[name]
        times = f"{row['median_us']:.0f} µs | {row['p99_us']:.0f} µs"
        print(f"| {name} | {times} | {row['token_requests']} |")
    print(
        f"\nA JWT-bearer exchange with the local emulator costs {ratio:.1f}x a self-signed refresh."
    )
    RESULTS.parent.mkdir(exist_ok=True)
    RESULTS.write_text(json.dumps(results, indent=2))
    return results


if __name__ == "__main__":
    main(sys.argv[1:])

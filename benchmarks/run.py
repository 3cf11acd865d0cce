"""Runs goth_actors' benchmarks and writes the results table.

Usage::

    uv run python -m benchmarks            # the full run: about 2 minutes
    uv run python -m benchmarks --quick    # every benchmark, smaller, in under a minute
    uv run python -m benchmarks --only hit_latency,herd

The Markdown goes to stdout and to ``benchmarks/results/results.md``, the raw figures to
``benchmarks/results/results.json`` (``--results-dir`` moves both); progress goes to stderr.
Every figure is a count or a ratio against a baseline measured in the same run. A benchmark that
fails is reported as failed, the others still run, and the exit status is 1.

Benchmarks, in order (keys for ``--only``):

- ``hit_latency``: cached ``fetch`` vs ``dict.get``, google-auth's cached path, a Pykka ask.
- ``throughput``: cached ``fetch`` from 1, 4 and 16 threads.
- ``refresh_latency``: callers' latency while a refresh waits 500 ms on the endpoint, against
  google-auth's blocking and non-blocking refresh.
- ``herd``: 200 threads on a cold server: requests the endpoint saw, against google-auth.
- ``outage``: endpoint load from 50 callers during an outage, against the backoff bound.
- ``scale``: 10,000 token servers under one DynamicSupervisor, and 10,000 pending timers.
- ``cli``: the whole-process cost of ``goth-actors token``.
- ``loop_lag``: the event loop's lag while 1,000 coroutines wait for a cold server's token,
  ``fetch_async`` against the sync ``fetch``.
- ``serve``: ``goth-actors serve`` for many processes: upstream requests per refresh cycle,
  answer latency, and requests per second under ``wrk`` (run last).
"""

from __future__ import annotations

import argparse
import datetime
import importlib.metadata
import json
import logging
import math
import os
import platform
import sys
import time
import traceback
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from benchmarks import cli_cost, endpoint_load, hot_path, loop_lag, refresh_latency, scale, serve
from benchmarks._common import Mode, Params, Section, Target, params, table

RESULTS_DIR = Path(__file__).resolve().parent / "results"

BENCHMARKS: dict[str, Callable[[Params], Section]] = {
    "hit_latency": hot_path.hit_latency,
    "throughput": hot_path.throughput,
    "refresh_latency": refresh_latency.refresh_latency,
    "herd": endpoint_load.herd,
    "outage": endpoint_load.outage,
    "scale": scale.scale,
    "cli": cli_cost.cli_cost,
    "loop_lag": loop_lag.loop_lag,
    "serve": serve.serve,  # last: its wrk run loads the whole machine
}


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks",
        description="Benchmarks of goth_actors against its baselines, measured in one run.",
    )
    size = parser.add_mutually_exclusive_group()
    size.add_argument(
        "--quick",
        action="store_true",
        help="every benchmark, smaller and with a 10x shorter outage (under a minute)",
    )
    size.add_argument(
        "--smoke",
        action="store_true",
        help="tiny sizes, for the test suite: the counts mean something, the times do not",
    )
    parser.add_argument(
        "--only",
        metavar="KEYS",
        help=f"comma-separated benchmarks to run, of: {', '.join(BENCHMARKS)}",
    )
    parser.add_argument(
        "--results-dir",
        metavar="DIR",
        type=Path,
        default=RESULTS_DIR,
        help="where results.md and results.json go (benchmarks/results)",
    )
    return parser


def _meta(mode: Mode, argv: Sequence[str]) -> dict[str, Any]:
    def version(package: str) -> str:
        try:
            return importlib.metadata.version(package)
        except importlib.metadata.PackageNotFoundError:
            return "not installed"

    memory_kib = 0
    with open("/proc/meminfo") as meminfo:
        for line in meminfo:
            if line.startswith("MemTotal:"):
                memory_kib = int(line.split()[1])
    return {
        "date": datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "command": " ".join(["uv run python -m benchmarks", *argv]),
        "mode": mode,
        "python": platform.python_version(),
        "implementation": platform.python_implementation(),
        "platform": platform.platform(),
        "cpus": os.cpu_count(),
        "memory_gib": round(memory_kib / 1024**2, 1),
        "versions": {
            name: version(name) for name in ("goth-actors", "pykka", "google-auth", "requests")
        },
    }


def _document(meta: dict[str, Any], sections: list[Section], failures: dict[str, str]) -> str:
    versions = ", ".join(f"{name} {v}" for name, v in meta["versions"].items())
    lines = [
        "# goth_actors benchmarks",
        "",
        f"`{meta['command']}` ({meta['mode']} run), {meta['date']}: "
        f"{meta['implementation']} {meta['python']}, {meta['cpus']} CPUs, "
        f"{meta['memory_gib']} GiB, {meta['platform']}; {versions}.",
        "",
    ]
    targets: list[Target] = [t for s in sections for t in s.targets]
    if targets:
        rows = [[t.benchmark, t.target, t.measured, "yes" if t.met else "**no**"] for t in targets]
        lines += [
            "## Targets",
            "",
            *table(["benchmark", "target", "measured", "met"], rows, numeric=False),
            "",
        ]
    for section in sections:
        lines += [section.markdown(), ""]
    for key, error in failures.items():
        lines += [f"## {key}: FAILED", "", "```", error.rstrip(), "```", ""]
    return "\n".join(lines)


def _jsonable(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    return value


def main(argv: Sequence[str] | None = None) -> int:
    """Runs the benchmarks asked for; returns the exit status (1 if any failed)."""
    args_list = list(sys.argv[1:] if argv is None else argv)
    args = _parser().parse_args(args_list)
    mode: Mode = "quick" if args.quick else "smoke" if args.smoke else "full"
    keys = list(BENCHMARKS) if not args.only else [k.strip() for k in args.only.split(",")]
    unknown = [k for k in keys if k not in BENCHMARKS]
    if unknown:
        _parser().error(f"unknown benchmark(s): {', '.join(unknown)}")
    # A shared requests.Session warns when 200 threads each open a connection at once.
    logging.getLogger("urllib3.connectionpool").setLevel(logging.ERROR)

    p = params(mode)
    meta = _meta(mode, args_list)
    sections: list[Section] = []
    failures: dict[str, str] = {}
    timings: dict[str, float] = {}
    for key in keys:
        print(f"[benchmarks] {key} ...", file=sys.stderr, flush=True)
        started = time.perf_counter()
        try:
            sections.append(BENCHMARKS[key](p))
        except Exception:
            failures[key] = traceback.format_exc()
            print(failures[key], file=sys.stderr, flush=True)
        timings[key] = time.perf_counter() - started
        print(f"[benchmarks] {key} took {timings[key]:.1f} s", file=sys.stderr, flush=True)

    document = _document(meta, sections, failures)
    print(document)
    results_dir: Path = args.results_dir
    results_dir.mkdir(parents=True, exist_ok=True)
    (results_dir / "results.md").write_text(document, encoding="utf-8")
    payload = {
        "meta": meta,
        "params": {k: getattr(p, k) for k in p.__dataclass_fields__},
        "seconds": timings,
        "targets": [vars(t) for s in sections for t in s.targets],
        "sections": {s.key: s.data for s in sections},
        "failures": failures,
    }
    (results_dir / "results.json").write_text(
        json.dumps(_jsonable(payload), indent=2) + "\n", encoding="utf-8"
    )
    print(f"[benchmarks] wrote {results_dir / 'results.md'} and results.json", file=sys.stderr)
    return 1 if failures else 0

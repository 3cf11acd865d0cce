"""The benchmarks run end to end and report sane counts (never timings: the machine is noisy)."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parent.parent
SECTIONS = {
    "hit_latency",
    "throughput",
    "refresh_latency",
    "herd",
    "outage",
    "scale",
    "cli",
    "loop_lag",
    "serve",
}


@pytest.mark.slow
@pytest.mark.timeout(180)
def test_the_benchmarks_run_every_section_and_report_sane_counts(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "benchmarks", "--smoke", "--results-dir", str(tmp_path)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=150,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-4000:]
    assert done.stdout.startswith("# goth_actors benchmarks")
    assert (tmp_path / "results.md").read_text(encoding="utf-8").strip() == done.stdout.strip()
    results: dict[str, Any] = json.loads((tmp_path / "results.json").read_text(encoding="utf-8"))
    assert results["failures"] == {}
    assert set(results["sections"]) == SECTIONS
    params, sections = results["params"], results["sections"]

    hit = sections["hit_latency"]["ns_per_op_median"]
    assert set(hit) >= {"dict_get", "fetch", "ga_valid", "ga_before_request", "ask"}
    assert all(ns > 0 for ns in hit.values())
    assert set(sections["throughput"]["ops_per_second"]) == {"1", "4", "16"}

    refresh = sections["refresh_latency"]["runs"]
    assert refresh["goth_actors"]["token_requests"] == 1  # one refresh, whoever is calling
    assert refresh["goth_actors"]["errors"] == 0
    assert refresh["goth_actors"]["new_token_first_seen_s"] is not None
    assert refresh["google_auth_non_blocking"]["token_requests"] == 1
    assert refresh["google_auth_blocking"]["token_requests"] >= 1
    assert refresh["goth_actors"]["per_call"]["count"] > 0

    herd = sections["herd"]
    assert herd["goth_actors"]["requests"] == 1
    assert herd["goth_actors"]["errors"] == 0
    assert herd["google_auth"]["requests"] > 1  # no single flight

    outage = sections["outage"]
    assert 1 <= outage["goth_actors"]["requests"] <= outage["bound"]
    assert outage["goth_actors"]["calls"] > 0

    servers = sections["scale"]["servers"]
    assert servers["ok"] == servers["servers"] == params["servers"]
    assert servers["threads_added"] == params["servers"]  # one thread per server
    assert servers["pending_timers"] == params["servers"]  # one refresh timer per server
    assert servers["threads_left_after_shutdown"] == 0
    assert sections["scale"]["timers"]["scheduler"]["extra_threads"] == 0

    cli = sections["cli"]
    assert cli["token_requests"] == 2 * params["cli_runs"]  # goth-actors token + google-auth

    lag = sections["loop_lag"]["runs"]
    assert all(run["errors"] == 0 for run in lag.values())
    for key in ("fetch_async", "sync_fetch", "to_thread", "fetch_async_at_once"):
        assert lag[key]["token_requests_max"] == 1  # one exchange for all the coroutines
    serve = sections["serve"]
    assert serve["upstream_requests"]["serve"] == 1  # one cache for every worker process
    assert serve["upstream_requests"]["own_servers"] == serve["workers"]
    assert serve["latency"]["count"] > 0
    if shutil.which("wrk") is not None:
        assert serve["wrk"]["requests"] > 0
        assert serve["wrk"]["non_2xx"] == 0

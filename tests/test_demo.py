"""`goth-actors demo`: the scenario holds its promises and reports them as JSON."""

from __future__ import annotations

import json
import subprocess
import sys


def test_the_demo_holds_its_promises_and_prints_a_json_summary() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "goth_actors._cli", "demo", "--duration", "5", "--json"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    summary = json.loads(result.stdout)
    assert summary["promises_held"] is True
    assert summary["caller_errors"] == 0
    assert summary["restarts"] >= 1
    assert summary["fetches"] > 1000
    assert 0 < summary["endpoint_requests"] < 200
    assert 0 < summary["fetch_p50_us"] <= summary["fetch_p99_us"]


def test_the_plain_demo_shows_each_step_and_the_summary() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "goth_actors._cli", "demo", "--duration", "5", "--plain"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    for text in ("steady", "503", "connection refused", "recovery", "caller errors"):
        assert text in result.stdout

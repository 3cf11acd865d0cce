"""`goth-actors demo`: the scenario meets each fault, tells it as it happens, and sums it up."""

from __future__ import annotations

import io
import json
import os
import pty
import re
import select
import subprocess
import sys
import time

import pytest

from goth_actors import Event, TokenEndpointError, TransportError
from goth_actors._demo_view import Caller, Tally, View

DEMO = [sys.executable, "-m", "goth_actors._cli", "demo", "--duration", "5"]


@pytest.mark.slow
def test_the_demo_meets_each_fault_and_prints_a_json_summary() -> None:
    result = subprocess.run(
        [*DEMO, "--json"], capture_output=True, text=True, timeout=60, check=False
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stderr == ""
    summary = json.loads(result.stdout)
    assert summary["promises_held"] is True, summary
    assert summary["caller_errors"] == 0
    assert summary["served_503"] >= 1  # outage one met requests
    assert summary["refused_connections"] >= 1  # outage two too
    assert summary["crashes"] >= 1
    assert 1 <= summary["restarts"] <= summary["crashes"]
    # Refused connections never reach the endpoint: what it answered is tokens and 503s.
    assert summary["endpoint_requests"] == summary["tokens_issued"] + summary["served_503"]
    assert summary["fetches"] > 1000
    assert 0 < summary["fetch_p50_us"] <= summary["fetch_p99_us"]


def _read_terminal(columns: int) -> str:
    leader, follower = pty.openpty()
    env = {**os.environ, "TERM": "xterm-256color", "COLUMNS": str(columns)}
    process = subprocess.Popen(
        DEMO, stdin=subprocess.DEVNULL, stdout=follower, stderr=subprocess.PIPE, env=env
    )
    os.close(follower)
    screen = b""
    try:
        while True:
            ready, _, _ = select.select([leader], [], [], 30.0)
            if not ready:
                break
            try:
                chunk = os.read(leader, 65536)
            except OSError:  # the child closed the terminal
                break
            if not chunk:
                break
            screen += chunk
    finally:
        os.close(leader)
        try:
            status = process.wait(timeout=30)
        finally:
            if process.poll() is None:
                process.kill()
                process.wait()
            if process.stderr is not None:
                process.stderr.close()
    assert status == 0
    return re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", screen.decode("utf-8", "replace"))


@pytest.mark.slow
def test_on_a_wide_terminal_the_demo_tells_its_story_around_a_live_table() -> None:
    text = _read_terminal(160)
    assert "┃" in text  # drawn by rich, not printed as plain lines
    for told in (
        "HTTP 503 temporarily_unavailable, Retry-After 1 s",
        "connection refused",
        "user crashed: 3 failed attempts in a row, over its max_retries=2",
        "user restarted by its supervisor (restart 1), token kept",
        "caller errors so far: 0",
        "fresh token after",
        "callers: 4 threads,",
        "refused connections",
    ):
        assert told in text
    # The header spans the terminal, not the table: the step's title is not wrapped.
    assert "outage one: every token request answered 503, Retry-After 1 s" in text


@pytest.mark.slow
def test_the_demo_piped_into_head_stops_quietly() -> None:
    process = subprocess.Popen(
        [*DEMO, "--plain"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    try:
        assert process.stdout is not None
        assert process.stderr is not None
        head = [process.stdout.readline() for _ in range(3)]
        process.stdout.close()  # what `head -3` does
        started = time.monotonic()
        status = process.wait(timeout=30)
        error = process.stderr.read()
        process.stderr.close()
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    assert head[0].startswith("goth-actors demo:")
    assert "Traceback" not in error
    assert error == ""
    assert status == 141
    assert time.monotonic() - started < 10


def test_plain_lines_show_one_row_per_server_and_the_callers() -> None:
    out = io.StringIO()
    view = View(out, plain=True, quiet=False)
    rows = [
        {
            "server": name,
            "max_retries": "∞",
            "state": "ok",
            "expires_in": "29s",
            "tokens": 1,
            "failures": 0,
            "restarts": 0,
        }
        for name in ("service-account", "user", "metadata")
    ]
    caller = Caller(stop=None)  # type: ignore[arg-type]  # never run
    caller.fetches, caller.error_count = 1234, 0
    with view:
        view.say("[t=  0.0s] steady")
        view.update("steady", 2.5, rows, [caller])
    lines = out.getvalue().splitlines()
    assert lines[0] == "[t=  0.0s] steady"
    assert [line.split()[2] for line in lines[1:4]] == ["service-account", "user", "metadata"]
    assert lines[4].endswith("callers: 1 threads, 1,234 fetches, 0 errors")


def test_the_tally_counts_each_fault_and_tells_each_kind_once() -> None:
    tally = Tally({"user": 2})
    unavailable = TokenEndpointError(
        "503", status=503, error="temporarily_unavailable", retryable=True, retry_after=3.0
    )
    refused = TransportError("GET http://x/token failed: [Errno 111] Connection refused")
    for error in (unavailable, unavailable, refused):
        tally.on_event(Event(kind="failure", name="user", time=101.0, attempt=1, error=error))
    tally.on_event(Event(kind="crash", name="user", time=102.0, attempt=3, error=refused))
    assert (tally.served_503, tally.refused, tally.crashes) == (2, 1, 1)
    lines = tally.narration(100.0, [])
    assert len(lines) == 3  # the second 503 is not told again
    assert lines[0].startswith("[t=  1.0s] user: refresh failed, HTTP 503 temporarily_unavailable")
    assert "Retry-After 3 s" in lines[0]
    assert "connection refused" in lines[1]
    assert lines[2] == (
        "[t=  2.0s] user crashed: 3 failed attempts in a row, over its max_retries=2 "
        "(connection refused); its supervisor restarts it"
    )
    assert tally.narration(100.0, []) == []

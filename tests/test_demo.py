"""`goth-actors demo`: the scenario holds its promises and reports them as JSON."""

from __future__ import annotations

import io
import json
import os
import pty
import select
import subprocess
import sys

from goth_actors._demo import _View


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


def test_on_a_terminal_the_demo_shows_a_live_table_and_the_summary() -> None:
    leader, follower = pty.openpty()
    env = {**os.environ, "TERM": "xterm-256color", "COLUMNS": "120"}
    process = subprocess.Popen(
        [sys.executable, "-m", "goth_actors._cli", "demo", "--duration", "5"],
        stdin=subprocess.DEVNULL,
        stdout=follower,
        stderr=subprocess.PIPE,
        env=env,
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
        assert process.wait(timeout=30) == 0
        if process.stderr is not None:
            process.stderr.close()
    text = screen.decode("utf-8", "replace")
    for expected in ("server", "service-account", "restarts", "recovery", "caller errors"):
        assert expected in text
    assert "┃" in text  # drawn by rich, not printed as plain lines


def test_plain_lines_show_one_row_per_server() -> None:
    out = io.StringIO()
    view = _View(out, plain=True, quiet=False)
    rows = [
        {
            "server": name,
            "state": "ok",
            "expires_in": "29s",
            "refreshes": 1,
            "failures": 0,
            "restarts": 0,
        }
        for name in ("service-account", "user", "metadata")
    ]
    with view:
        view.say("[t= 0.0s] steady")
        view.update("steady", 2.5, rows)
    lines = out.getvalue().splitlines()
    assert lines[0] == "[t= 0.0s] steady"
    assert [line.split()[2] for line in lines[1:]] == ["service-account", "user", "metadata"]

"""A program with token servers exits promptly, even with an exchange in flight."""

from __future__ import annotations

import socket
import subprocess
import sys
import textwrap
import time

PROGRAM = textwrap.dedent(
    """
    import sys, threading
    import goth_actors

    attempting = threading.Event()
    goth_actors.subscribe(lambda e: e.kind == "attempt" and attempting.set())
    goth_actors.start_link(
        name="app",
        source=goth_actors.Metadata(url=sys.argv[1]),
        http_timeout=60.0,
    )
    assert attempting.wait(10.0)
    print("exchange in flight; returning from main", flush=True)
    """
)


def test_the_interpreter_exits_promptly_while_a_refresh_is_in_flight() -> None:
    # A server that accepts connections and never answers: the exchange hangs until its
    # 60 s read timeout unless the program's exit abandons it.
    with socket.socket() as blackhole:
        blackhole.bind(("127.0.0.1", 0))
        blackhole.listen(8)
        url = f"http://127.0.0.1:{blackhole.getsockname()[1]}"
        started = time.monotonic()
        result = subprocess.run(
            [sys.executable, "-c", PROGRAM, url],
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
        )
        elapsed = time.monotonic() - started
    assert result.returncode == 0, result.stderr
    assert "in flight" in result.stdout
    assert elapsed < 15.0, f"exit took {elapsed:.1f} s"

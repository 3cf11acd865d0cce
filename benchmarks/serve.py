"""Benchmark 8: ``goth-actors serve``, one token cache for a machine's processes.

Three measurements, against the emulator in this process:

1. **Upstream token requests per refresh cycle.** ``workers`` processes, each with google-auth's
   ``compute_engine.Credentials`` pointed at one ``serve`` (``GCE_METADATA_HOST`` and
   ``GCE_METADATA_IP`` only), against ``workers`` processes each with its own goth_actors
   server. Each worker keeps a token valid (google-auth's ``valid``, or ``fetch``) every 10 ms
   for ``cycles`` refresh cycles after all are ready; the emulator counts the token requests
   (the first fetches included, so a count over ``cycles + 1`` cycles). Time is compressed so
   that a cycle takes seconds: tokens live 30 s, servers refresh 15 s before expiry (serve's and
   the baseline's alike), and google-auth's ``REFRESH_THRESHOLD`` (3 min 45 s) is 11 s in the
   workers: between the servers' ``EXPIRY_MARGIN`` (10 s) and their refresh, as 3 min 45 s is
   below serve's 10 minutes.
2. **Latency of a token answer**: as the same workers see it (after the cycles, each sends
   ``latency_requests`` GETs of the token path on one keep-alive connection, all at once), and
   as one client sees it alone (``4 x latency_requests`` GETs one after another, from this
   process, to the ``serve`` process of measurement 3, before wrk).
3. **Requests per second** with 64 concurrent keep-alive connections, driven by ``wrk`` (not
   Python: the load generator must not eat the server's core), against ``goth-actors serve``
   run as its own process with its defaults, whose CPU time (``/proc/PID/stat``) is read before
   and after; then the same against the standard library's ``ThreadingHTTPServer`` answering a
   fixed body, as the baseline. Run last, and the load average is reported with it: the
   machine is shared.
"""

from __future__ import annotations

import http.client
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from benchmarks._common import Params, Section, Target, fmt_count, fmt_time, summary
from goth_actors import ServiceAccount
from goth_actors._serve import InThread, ServeOptions
from goth_actors.testing import GoogleEmulator

TOKEN_PATH = "/computeMetadata/v1/instance/service-accounts/default/token"
LIFETIME = 30.0  # seconds each emulator token lives
REFRESH_BEFORE = 15.0  # the servers' refresh_before, serve's and the baseline's
CLIENT_THRESHOLD = 11.0  # google-auth's REFRESH_THRESHOLD in the workers
CYCLE = LIFETIME - REFRESH_BEFORE
RPS_TARGET = 5_000.0

_SIZES = {  # workers, cycles, latency_requests, wrk seconds
    "full": (16, 2, 500, 10.0),
    "quick": (16, 0, 200, 3.0),
    "smoke": (4, 0, 20, 1.0),
}

# A worker reads "stop" on stdin; it prints "ready" after its first token, then at the end one
# JSON line with its latencies (google-auth workers only).
_GOOGLE_AUTH_WORKER = """
import datetime, http.client, json, select, sys, time
import google.auth._helpers, google.auth.transport.requests
from google.auth import compute_engine
google.auth._helpers.REFRESH_THRESHOLD = datetime.timedelta(seconds=__THRESHOLD__)
request = google.auth.transport.requests.Request()
credentials = compute_engine.Credentials()
credentials.refresh(request)
print("ready", flush=True)
while not select.select([sys.stdin], [], [], 0.01)[0]:
    if not credentials.valid:
        credentials.refresh(request)
sys.stdin.readline()
host, port = sys.argv[1].rsplit(":", 1)
connection = http.client.HTTPConnection(host, int(port))
latencies = []
for _ in range(int(sys.argv[2])):
    began = time.perf_counter()
    connection.request("GET", __PATH__, headers={"Metadata-Flavor": "Google"})
    answer = connection.getresponse()
    answer.read()
    latencies.append(time.perf_counter() - began)
    assert answer.status == 200, answer.status
print(json.dumps(latencies), flush=True)
""".replace("__THRESHOLD__", repr(CLIENT_THRESHOLD)).replace("__PATH__", repr(TOKEN_PATH))

_GOTH_WORKER = """
import json, select, sys
import goth_actors
from goth_actors import ServiceAccount
source = ServiceAccount(json.load(open(sys.argv[1])))
goth_actors.start_link(name="worker", source=source, refresh_before=__REFRESH_BEFORE__)
goth_actors.fetch("worker", timeout=30.0)
print("ready", flush=True)
while not select.select([sys.stdin], [], [], 0.01)[0]:
    goth_actors.fetch("worker", timeout=30.0)
print("[]", flush=True)
""".replace("__REFRESH_BEFORE__", repr(REFRESH_BEFORE))


def _environment(**extra: str) -> dict[str, str]:
    environ = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("GCE_METADATA", "GOOGLE_APPLICATION"))
    }
    return {**environ, **extra}


def _run_workers(
    commands: list[list[str]], environ: dict[str, str], window: float
) -> tuple[list[float], float]:
    """Runs the workers for ``window`` seconds; returns their latencies and their start time.

    Starts the workers, waits until all are ready, lets them run, stops them; the second value
    is the seconds all took to get ready.
    """
    started = time.perf_counter()
    workers = [
        subprocess.Popen(
            command,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=environ,
        )
        for command in commands
    ]
    try:
        for worker in workers:
            assert worker.stdout is not None
            line = worker.stdout.readline()
            if line.strip() != "ready":
                raise RuntimeError(f"a worker failed: {line}{worker.communicate()[1][-2000:]}")
        ready = time.perf_counter() - started
        time.sleep(window)
        latencies: list[float] = []
        for worker in workers:
            assert worker.stdin is not None
            worker.stdin.write("stop\n")
            worker.stdin.flush()
        for worker in workers:
            out, err = worker.communicate(timeout=120)
            if worker.returncode != 0:
                raise RuntimeError(f"a worker exited {worker.returncode}: {err[-2000:]}")
            latencies += json.loads(out.strip().splitlines()[-1])
        return latencies, ready
    finally:
        for worker in workers:
            if worker.poll() is None:
                worker.kill()
                worker.wait()


def _cpu_seconds(pid: int) -> float:
    with open(f"/proc/{pid}/stat") as stat:
        fields = stat.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _wrk(url: str, seconds: float) -> dict[str, Any]:
    done = subprocess.run(
        [
            "wrk",
            "-t2",
            "-c64",
            f"-d{seconds:g}s",
            "--latency",
            "-H",
            "Metadata-Flavor: Google",
            url,
        ],
        capture_output=True,
        text=True,
        timeout=seconds + 60,
        check=True,
    )
    out = done.stdout
    units = {"us": 1e-6, "ms": 1e-3, "s": 1.0}

    def latency(percent: str) -> float:
        match = re.search(rf"^\s+{percent}%\s+([\d.]+)(us|ms|s)\s*$", out, re.MULTILINE)
        return float(match.group(1)) * units[match.group(2)] if match else float("nan")

    rate = re.search(r"Requests/sec:\s+([\d.]+)", out)
    total = re.search(r"(\d+) requests in", out)
    errors = re.search(r"Socket errors: (.*)", out)
    non_2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    return {
        "requests_per_second": float(rate.group(1)) if rate else 0.0,
        "requests": int(total.group(1)) if total else 0,
        "p50": latency("50"),
        "p99": latency("99"),
        "socket_errors": errors.group(1) if errors else "none",
        "non_2xx": int(non_2xx.group(1)) if non_2xx else 0,
        "output": out,
    }


def start_serve(
    key: Path, *arguments: str, cwd: Path | None = None, **environ: str
) -> tuple[subprocess.Popen[str], str]:
    """Starts ``goth-actors serve --credentials KEY --port 0 ARGUMENTS`` in a process of its own.

    Without the ``GCE_METADATA_*`` and ``GOOGLE_APPLICATION_*`` variables of this process, with
    ``environ`` added, in ``cwd`` (default: this process's).
    Returns the process, with its stdout and stderr piped, and the ``host:port`` it serves on;
    it is killed if it does not start (``tests/test_serve_cli.py`` starts it so too).

    Raises:
        RuntimeError: It ended before saying where it serves.
    """
    command = [sys.executable, "-m", "goth_actors._cli", "serve", "--credentials", str(key)]
    process = subprocess.Popen(
        [*command, "--port", "0", *arguments],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=_environment(**environ),
        cwd=cwd,
    )
    try:
        assert process.stdout is not None
        for line in process.stdout:
            if "GCE_METADATA_HOST=" in line:
                return process, line.split("GCE_METADATA_HOST=")[1].split()[0]
    except BaseException:
        process.kill()
        process.communicate()
        raise
    process.kill()
    raise RuntimeError(f"serve did not start: {process.communicate()[1][-2000:]}")


def _sequential(host: str, count: int) -> list[float]:
    """``count`` token GETs one after the other on one keep-alive connection."""
    name, port = host.rsplit(":", 1)
    connection = http.client.HTTPConnection(name, int(port), timeout=10.0)
    latencies = []
    try:
        for _ in range(count):
            began = time.perf_counter()
            connection.request("GET", TOKEN_PATH, headers={"Metadata-Flavor": "Google"})
            answer = connection.getresponse()
            answer.read()
            latencies.append(time.perf_counter() - began)
            if answer.status != 200:
                raise RuntimeError(f"serve answered {answer.status}")
    finally:
        connection.close()
    return latencies


_THREADED_BASELINE = """
import http.server, sys
BODY = b'{"access_token":"ya29.' + b"x" * 180 + b'","expires_in":3599,"token_type":"Bearer"}'
class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # else each answer waits 40 ms for a delayed ACK
    def do_GET(self):
        self.send_response(200)
        self.send_header("Metadata-Flavor", "Google")
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(BODY)))
        self.end_headers()
        self.wfile.write(BODY)
    def log_message(self, *args):
        pass
server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
print(server.server_address[1], flush=True)
server.serve_forever()
"""


def _threaded_baseline(seconds: float) -> dict[str, Any]:
    """The standard library's ``ThreadingHTTPServer`` answering a fixed token body, under wrk.

    The same wrk load as ``serve``'s: what ``serve`` would be on ``http.server``.
    """
    process = subprocess.Popen(
        [sys.executable, "-c", _THREADED_BASELINE],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,  # socketserver prints each reset connection's traceback
        text=True,
    )
    try:
        assert process.stdout is not None
        url = f"http://127.0.0.1:{process.stdout.readline().strip()}{TOKEN_PATH}"
        cpu_before, wall_before = _cpu_seconds(process.pid), time.perf_counter()
        result = _wrk(url, seconds)
        cpu = _cpu_seconds(process.pid) - cpu_before
        wall = time.perf_counter() - wall_before
    finally:
        process.kill()
        process.wait()
    return {**result, "cpu_seconds": cpu, "wall_seconds": wall}


def _standalone(key: Path, seconds: float, count: int) -> dict[str, Any]:
    """Measurement 3 (and one client's latency): ``goth-actors serve`` in its own process.

    It is first asked by one client, then loaded by wrk.
    """
    serve, host = start_serve(key)
    try:
        sequential = _sequential(host, count)
        if shutil.which("wrk") is None:
            return {
                "missing": "wrk is not installed (Debian: apt-get install wrk)",
                "sequential": sequential,
            }
        url = f"http://{host}{TOKEN_PATH}"
        _wrk(url, min(seconds, 1.0))  # warm-up: connections, caches
        load = os.getloadavg()
        cpu_before, wall_before = _cpu_seconds(serve.pid), time.perf_counter()
        result = _wrk(url, seconds)
        cpu = _cpu_seconds(serve.pid) - cpu_before
        wall = time.perf_counter() - wall_before
    finally:
        serve.send_signal(signal.SIGTERM)
        serve.communicate(timeout=30)
    if serve.returncode != 0:
        raise RuntimeError(f"serve exited {serve.returncode}")
    threaded = _threaded_baseline(seconds)
    threaded.pop("output")
    return {
        **result,
        "cpu_seconds": cpu,
        "wall_seconds": wall,
        "load_average": load,
        "sequential": sequential,
        "threaded_baseline": threaded,
    }


def serve(p: Params) -> Section:
    """Benchmark 8: one ``serve`` for many processes, against a server in each."""
    workers, cycles, latency_requests, wrk_seconds = _SIZES[p.mode]
    window = cycles * CYCLE + 0.5
    with GoogleEmulator(token_lifetime=LIFETIME) as emulator, tempfile.TemporaryDirectory() as d:
        key_info = emulator.service_account()
        key = Path(d) / "key.json"
        key.write_text(json.dumps(key_info), encoding="utf-8")
        options = ServeOptions(port=0, server_options={"refresh_before": REFRESH_BEFORE})
        with InThread(ServiceAccount(key_info), options) as shared:
            host = shared.server.host_port
            environ = _environment(GCE_METADATA_HOST=host, GCE_METADATA_IP=host)
            command = [sys.executable, "-c", _GOOGLE_AUTH_WORKER, host, str(latency_requests)]
            emulator.wait_for_requests(1, "token")
            latencies, serve_ready = _run_workers([command] * workers, environ, window)
            served = emulator.request_count("token")
            serve_status = shared.server.status()
        emulator.clear_requests()
        command = [sys.executable, "-c", _GOTH_WORKER, str(key)]
        _, own_ready = _run_workers([command] * workers, _environment(), window)
        own = emulator.request_count("token")
        rps = _standalone(key, wrk_seconds, latency_requests * 4)  # last: the load generator
    run = {
        "workers": workers,
        "cycles": cycles,
        "latency_requests": latency_requests,
        "wrk_seconds": wrk_seconds,
        "latencies": latencies,
        "served": served,
        "own": own,
        "serve_ready": serve_ready,
        "own_ready": own_ready,
        "serve_status": serve_status,
        "rps": rps,
    }
    return _section(run)


def _section(run: dict[str, Any]) -> Section:
    workers, cycles = run["workers"], run["cycles"]
    counted = cycles + 1
    latency = summary(run["latencies"])
    rps: dict[str, Any] = run["rps"]
    per_cycle_serve = run["served"] / counted
    per_cycle_own = run["own"] / counted
    rows = [
        [
            f"**{workers} google-auth processes, one `serve`**",
            fmt_count(run["served"]),
            f"{per_cycle_serve:.1f}",
        ],
        [
            f"{workers} processes, a goth_actors server each",
            fmt_count(run["own"]),
            f"{per_cycle_own:.1f}",
        ],
    ]
    alone = summary(rps["sequential"])
    latency_rows = [
        [
            f"1 client, {alone['count']} GETs one after another, keep-alive",
            fmt_time(alone["p50"]),
            fmt_time(alone["p99"]),
            fmt_time(alone["max"]),
        ],
        [
            f"{workers} workers x {run['latency_requests']} GETs, keep-alive",
            fmt_time(latency["p50"]),
            fmt_time(latency["p99"]),
            fmt_time(latency["max"]),
        ],
    ]
    notes = [
        f"Refresh cycles: {cycles} of {CYCLE:g} s after all workers were ready, plus the first "
        f"fetch ({counted} counted); tokens live {LIFETIME:g} s, servers refresh "
        f"{REFRESH_BEFORE:g} s before expiry, google-auth's threshold is {CLIENT_THRESHOLD:g} s "
        "in the workers (time compressed; see the module). Workers ready in "
        f"{run['serve_ready']:.1f} s (google-auth) and {run['own_ready']:.1f} s (goth_actors).",
    ]
    targets = [
        Target(
            "serve",
            f"upstream token requests per cycle: 1 (against {workers})",
            f"{per_cycle_serve:.1f} against {per_cycle_own:.1f}",
            round(per_cycle_serve) == 1 and round(per_cycle_own) == workers,
        )
    ]
    if "missing" in rps:
        notes.append(f"Requests per second NOT MEASURED: {rps['missing']}.")
        targets.append(
            Target(
                "serve",
                "requests/s with wrk, 64 connections: >= 5,000",
                "not measured: wrk is missing",
                False,
            )
        )
    else:
        cores = rps["cpu_seconds"] / rps["wall_seconds"]
        load = ", ".join(f"{x:.2f}" for x in rps["load_average"])
        latency_rows.append(
            ["wrk, 64 connections, keep-alive", fmt_time(rps["p50"]), fmt_time(rps["p99"]), "-"]
        )
        notes.append(
            f"wrk -t2 -c64 for {run['wrk_seconds']:g} s against `goth-actors serve` in its own "
            f"process: {fmt_count(rps['requests_per_second'])} requests/s "
            f"({fmt_count(rps['requests'])} answers; socket errors: {rps['socket_errors']}; "
            f"non-2xx: {rps['non_2xx']}), serve using {cores:.2f} of {os.cpu_count()} cores; "
            f"load average before it: {load} (the machine is shared)."
        )
        threaded = rps["threaded_baseline"]
        notes.append(
            "Baseline, the same wrk load on the standard library's `ThreadingHTTPServer` "
            "answering a fixed token body (no cache lookup at all): "
            f"{fmt_count(threaded['requests_per_second'])} requests/s, p50 "
            f"{fmt_time(threaded['p50'])}, p99 {fmt_time(threaded['p99'])}, using "
            f"{threaded['cpu_seconds'] / threaded['wall_seconds']:.2f} cores; socket errors: "
            f"{threaded['socket_errors']}."
        )
        targets.append(
            Target(
                "serve",
                f"requests/s with wrk, 64 connections: >= {RPS_TARGET:,.0f}",
                f"{fmt_count(rps['requests_per_second'])} ({cores:.2f} cores)",
                rps["requests_per_second"] >= RPS_TARGET and rps["non_2xx"] == 0,
            )
        )
    rps = {k: v for k, v in rps.items() if k not in ("output", "sequential")}
    return Section(
        key="serve",
        title="9. `goth-actors serve`: one token cache for many processes",
        headers=["setup", "upstream token requests", "per refresh cycle"],
        rows=rows,
        more_tables=[(["token answer from serve", "p50", "p99", "max"], latency_rows)],
        notes=notes,
        targets=targets,
        data={
            "workers": workers,
            "cycles": cycles,
            "upstream_requests": {"serve": run["served"], "own_servers": run["own"]},
            "per_cycle": {"serve": per_cycle_serve, "own_servers": per_cycle_own},
            "latency": latency,
            "latency_one_client": alone,
            "wrk": rps,
            "serve_status_requests": run["serve_status"]["requests"],
        },
    )

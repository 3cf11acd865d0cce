"""Benchmark 7: the whole-process cost of ``goth-actors token``, from start to printed token.

Runs ``python -m goth_actors._cli token --credentials KEY`` against an emulator in this process,
``cli_runs`` times, interleaved with the same number of runs of each baseline so that drift on a
noisy machine hits them all alike:

- ``python -c pass``: the interpreter's own start-up;
- ``python -c "import requests"``: start-up plus the HTTP stack every client here needs;
- ``python -c "import goth_actors"``: the library's import;
- a google-auth one-shot script: load the same key, refresh, print the token.

Every process is the same interpreter (``sys.executable``) with the same environment.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from benchmarks._common import CLOUD_PLATFORM, Params, Section, fmt_ratio, fmt_time, ratio
from goth_actors.testing import GoogleEmulator

_GOOGLE_AUTH_SCRIPT = """
import sys
import google.auth.transport.requests
from google.oauth2 import service_account
credentials = service_account.Credentials.from_service_account_file(
    sys.argv[1], scopes=[sys.argv[2]]
)
credentials.refresh(google.auth.transport.requests.Request())
print(credentials.token)
"""


def _commands(key_file: Path) -> dict[str, list[str]]:
    python = sys.executable
    return {
        "pass": [python, "-c", "pass"],
        "import_requests": [python, "-c", "import requests"],
        "import_goth_actors": [python, "-c", "import goth_actors"],
        "goth_actors_token": [
            python,
            "-m",
            "goth_actors._cli",
            "token",
            "--credentials",
            str(key_file),
        ],
        "google_auth_script": [python, "-c", _GOOGLE_AUTH_SCRIPT, str(key_file), CLOUD_PLATFORM],
    }


_LABELS = {
    "pass": '**baseline**: `python -c "pass"`',
    "import_requests": '**baseline**: `python -c "import requests"`',
    "import_goth_actors": '`python -c "import goth_actors"`',
    "goth_actors_token": "**`goth-actors token --credentials KEY`**",
    "google_auth_script": "google-auth script: load the key, `refresh()`, print",
}


def _time_once(command: list[str], env: dict[str, str]) -> tuple[float, str]:
    started = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True, env=env, timeout=60, check=False)
    elapsed = time.perf_counter() - started
    if done.returncode != 0:
        raise RuntimeError(f"{command[:4]} exited {done.returncode}: {done.stderr[-2000:]}")
    return elapsed, done.stdout


def cli_cost(p: Params) -> Section:
    """Benchmark 7: ``goth-actors token`` against interpreter start-up baselines."""
    env = dict(os.environ)
    env.pop("GOOGLE_APPLICATION_CREDENTIALS", None)
    times: dict[str, list[float]] = {}
    with GoogleEmulator() as emulator, tempfile.TemporaryDirectory() as folder:
        key_file = Path(folder) / "service_account.json"
        key_file.write_text(json.dumps(emulator.service_account()), encoding="utf-8")
        commands = _commands(key_file)
        times = {key: [] for key in commands}
        for command in commands.values():  # one untimed run each: disk caches, .pyc files
            _time_once(command, env)
        emulator.clear_requests()
        for _ in range(p.cli_runs):
            for key, command in commands.items():
                elapsed, out = _time_once(command, env)
                if key in ("goth_actors_token", "google_auth_script") and not out.startswith(
                    "ya29."
                ):
                    raise RuntimeError(f"{key} printed no token")
                times[key].append(elapsed)
        requests_seen = len(emulator.requests_to("token"))

    median = {key: statistics.median(values) for key, values in times.items()}
    rows = [
        [
            _LABELS[key],
            fmt_time(median[key]),
            fmt_time(min(times[key])),
            fmt_ratio(ratio(median[key], median["pass"])),
            fmt_ratio(ratio(median[key], median["import_requests"])),
        ]
        for key in times
    ]
    data: dict[str, Any] = {
        "runs": p.cli_runs,
        "seconds": times,
        "median_s": median,
        "token_requests": requests_seen,
        "token_over_pass": ratio(median["goth_actors_token"], median["pass"]),
        "token_over_import_requests": ratio(median["goth_actors_token"], median["import_requests"]),
        "token_over_google_auth_script": ratio(
            median["goth_actors_token"], median["google_auth_script"]
        ),
    }
    return Section(
        key="cli",
        title="7. Whole-process cost of `goth-actors token` (start to printed token)",
        headers=["process", "median", "best", "x python -c pass", "x import requests"],
        rows=rows,
        notes=[
            f"{p.cli_runs} timed runs of each command, interleaved, after one untimed run "
            "each; the token commands ask the emulator in this process (service-account key, "
            f"so one RSA signature each). The emulator saw {requests_seen} token requests.",
        ],
        data=data,
    )

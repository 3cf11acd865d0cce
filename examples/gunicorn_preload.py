"""gunicorn with ``preload_app``: the master fetches the token once, the forked workers use it.

With ``--preload`` gunicorn imports the application in the master before it forks the workers,
so the token server is started (and its token fetched) once, there::

    def create_app():                       # gunicorn --preload 'myapp:create_app()'
        goth_actors.start_link(name="api", source=goth_actors.default_source(),
                               prefetch="sync")
        return app

No thread survives a fork, so no worker has that server; goth_actors knows it. In a worker,
``fetch("api")`` serves the token copied from the master, without a request, while it is
valid; the first ``fetch`` that needs a new one starts the worker's own server (on its own
sockets, ``status("api").restarts`` counting the fork) and from then on the worker refreshes
by itself. Nothing to write in ``post_fork``.

Run it: ``uv run python examples/gunicorn_preload.py``. It starts the built-in emulator (with
12-second tokens, so that they go stale during the run), gunicorn with two workers on
127.0.0.1, asks each worker what it serves, waits for the copied token to go stale, asks again,
and stops gunicorn. Needs gunicorn (``uv sync`` has it); POSIX only.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterable
from typing import Any

import requests

import goth_actors

KEY_FILE = "GOTH_EXAMPLE_KEY_FILE"
TOKEN_LIFETIME = 12.0  # fresh for 2 s: fetch never hands out a token with 10 s or less left


# --------------------------------------------------------------------- the app (in gunicorn)


# --8<-- [start:app]
def create_app() -> Callable[..., Iterable[bytes]]:
    """Called by gunicorn once, in the master (``--preload``): starts the server, gives the app."""
    with open(os.environ[KEY_FILE], encoding="utf-8") as file:
        source = goth_actors.source_from_credentials(json.load(file))
    goth_actors.start_link(name="api", source=source, prefetch="sync")
    master = os.getpid()

    def app(_environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        token = goth_actors.fetch("api")  # a worker: the master's token, or its own server's
        status = goth_actors.status("api")
        answer = {
            "worker": os.getpid(),
            "master": master,
            "own_server": goth_actors.whereis("api") is not None,
            "restarts": status.restarts,
            "token": hashlib.sha256(token.token.encode()).hexdigest()[:8],  # never the token
        }
        body = json.dumps(answer).encode()
        start_response("200 OK", [("Content-Type", "application/json")])
        return [body]

    return app


# --8<-- [end:app]


# ------------------------------------------------------------------------ the launcher


def ask(url: str, count: int) -> dict[int, dict[str, Any]]:
    """Asks ``count`` times (new connections, so both workers answer); by worker pid."""
    answers: dict[int, dict[str, Any]] = {}
    for _ in range(count):
        answer = requests.get(url, timeout=10, headers={"Connection": "close"}).json()
        answers[answer["worker"]] = answer
    return answers


def show(when: str, answers: dict[int, dict[str, Any]]) -> None:
    print(f"{when}:")
    for answer in answers.values():
        whose = "its own server's" if answer["own_server"] else "the master's"
        print(
            f"  worker {answer['worker']}: token {answer['token']} ({whose}), "
            f"restarts={answer['restarts']}"
        )


def main() -> None:
    from goth_actors.testing import GoogleEmulator

    with GoogleEmulator() as emulator, tempfile.TemporaryDirectory() as folder:
        emulator.token_lifetime = TOKEN_LIFETIME
        key_file = os.path.join(folder, "key.json")
        with open(key_file, "w", encoding="utf-8") as file:
            json.dump(emulator.service_account(), file)
        command = [
            *(sys.executable, "-m", "gunicorn", "--preload", "--workers", "2"),
            *("--bind", "127.0.0.1:0", "--log-level", "info"),
            "gunicorn_preload:create_app()",
        ]
        env = {**os.environ, KEY_FILE: key_file}
        here = os.path.dirname(os.path.abspath(__file__))
        gunicorn = subprocess.Popen(
            command, cwd=here, env=env, stderr=subprocess.PIPE, text=True, start_new_session=True
        )
        try:
            url, booted = "", 0
            assert gunicorn.stderr is not None
            for line in gunicorn.stderr:  # gunicorn logs where it listens and each worker
                found = re.search(r"Listening at: (http://\S+)", line)
                url = found.group(1) if found else url
                booted += "Booting worker" in line
                if url and booted == 2:
                    break
            # Keep reading its log, so that gunicorn never blocks on a full pipe.
            threading.Thread(target=gunicorn.stderr.read, daemon=True).start()
            print(f"gunicorn is serving {url} with 2 workers forked from a preloaded master")
            show("while the master's token is fresh", ask(url, 20))
            time.sleep(TOKEN_LIFETIME - 10.0 + 0.5)  # the copied token goes stale
            show("once it is stale", ask(url, 20))
        finally:
            os.killpg(gunicorn.pid, signal.SIGTERM)
            gunicorn.wait(30)
        print(f"gunicorn stopped (exit status {gunicorn.returncode})")


if __name__ == "__main__":
    main()

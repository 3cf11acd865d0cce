"""A Celery worker: each pool process starts its token server after the fork, and stops it.

Celery's prefork pool forks its processes from the worker; no thread survives a fork, so each
process starts its own token server when it begins, on Celery's ``worker_process_init``
signal, and stops it on ``worker_process_shutdown``::

    @worker_process_init.connect
    def start_token_server(**_):
        goth_actors.start_link(name="userinfo", source=goth_actors.default_source())

    @worker_process_shutdown.connect
    def stop_token_server(**_):
        goth_actors.shutdown()

Tasks then call Google with ``GothAuth("userinfo")`` (or ``goth_actors.fetch``).

Run it: ``uv run python examples/celery_worker.py``. It starts the built-in emulator, a local
stand-in for Google's userinfo API, and a real Celery worker process with two pool processes
(a broker and result store in a temporary folder, so no Redis or RabbitMQ is needed), sends it
six tasks, prints what they saw, and stops the worker. POSIX only.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tempfile
from typing import Any

import requests
from celery import Celery
from celery.signals import worker_process_init, worker_process_shutdown

import goth_actors
from goth_actors.integrations.requests import GothAuth

FOLDER = "GOTH_EXAMPLE_FOLDER"  # the broker's and result store's folder
KEY_FILE = "GOTH_EXAMPLE_KEY_FILE"
USERINFO = "GOTH_EXAMPLE_USERINFO"


def create_celery(folder: str) -> Celery:
    """A Celery app whose broker and result store are folders (kombu's filesystem transport)."""
    messages = os.path.join(folder, "messages")
    for sub in ("messages", "processed", "results", "control"):
        os.makedirs(os.path.join(folder, sub), exist_ok=True)
    app = Celery("celery_worker", broker="filesystem://", backend=f"file://{folder}/results")
    app.conf.broker_transport_options = {
        "data_folder_in": messages,
        "data_folder_out": messages,
        "processed_folder": os.path.join(folder, "processed"),
        "control_folder": os.path.join(folder, "control"),  # not the working directory
        "polling_interval": 0.05,
    }
    app.conf.broker_connection_retry_on_startup = True
    return app


app = create_celery(os.environ.get(FOLDER) or tempfile.mkdtemp(prefix="goth-celery-"))


# ---------------------------------------------------------- in each of the worker's processes


# --8<-- [start:worker]
@worker_process_init.connect
def start_token_server(**_: Any) -> None:
    with open(os.environ[KEY_FILE], encoding="utf-8") as file:
        source = goth_actors.source_from_credentials(json.load(file))
    goth_actors.start_link(name="userinfo", source=source)


@worker_process_shutdown.connect
def stop_token_server(**_: Any) -> None:
    goth_actors.shutdown()


@app.task
def whoami() -> dict[str, Any]:
    answer = requests.get(os.environ[USERINFO], auth=GothAuth("userinfo"), timeout=10)
    return {"process": os.getpid(), "status": answer.status_code, "email": answer.json()["email"]}


# --8<-- [end:worker]


# ------------------------------------------------------------------------------ the launcher


def main() -> None:
    from _credentials import userinfo_api

    from goth_actors.testing import GoogleEmulator

    with (
        GoogleEmulator() as emulator,
        userinfo_api(emulator) as (url, _refused),
        tempfile.TemporaryDirectory() as folder,
    ):
        key_file = os.path.join(folder, "key.json")
        with open(key_file, "w", encoding="utf-8") as file:
            json.dump(emulator.service_account(), file)
        env = {**os.environ, FOLDER: folder, KEY_FILE: key_file, USERINFO: url}
        command = [
            *(sys.executable, "-m", "celery", "--quiet", "-A", "celery_worker", "worker"),
            *("--pool", "prefork", "--concurrency", "2", "--loglevel", "WARNING"),
            *("--without-gossip", "--without-mingle", "--without-heartbeat"),
        ]
        here = os.path.dirname(os.path.abspath(__file__))
        log = open(os.path.join(folder, "worker.log"), "w+", encoding="utf-8")  # noqa: SIM115
        worker = subprocess.Popen(command, cwd=here, env=env, stdout=log, stderr=log)
        try:
            client = create_celery(folder)
            results = [client.send_task("celery_worker.whoami") for _ in range(6)]
            answers = [result.get(timeout=60, interval=0.05) for result in results]
        except BaseException:
            log.seek(0)
            print(log.read(), file=sys.stderr)  # what the worker said
            raise
        finally:
            worker.send_signal(signal.SIGTERM)  # a warm shutdown: the pool processes stop
            worker.wait(60)
            log.close()
        processes = sorted({answer["process"] for answer in answers})
        statuses = sorted({answer["status"] for answer in answers})
        print(f"6 tasks -> statuses {statuses}, as {answers[0]['email']}")
        requests_made = len(emulator.requests_to("token"))
        print(f"  the 2 pool processes each started a token server: {requests_made} token requests")
        print(f"  the tasks ran in {len(processes)} of them")
        print(f"worker stopped (exit status {worker.returncode})")


if __name__ == "__main__":
    main()

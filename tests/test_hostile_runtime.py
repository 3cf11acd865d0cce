"""A bad day for the runtime: no threads left, callbacks that exit, forks, names that pile up.

Each test pins a way the runtime once went wrong: a restart that could not start its thread
spun and left a zombie holding the server's name; a ``retry_delay`` that called ``sys.exit()``
or a subscriber hit by ``KeyboardInterrupt`` did the same; servers in the user's own
supervisors were never forgotten; a fork could deadlock on a lock; a forced refresh logged a
traceback per 401; an exit waited 0.25 s per busy server. Where a hang or a spin is the
failure, the test runs a program in a subprocess, with a timeout.
"""

from __future__ import annotations

import dataclasses
import logging
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import pykka
import pytest
from _helpers import wait_for

import goth_actors
from goth_actors import (
    HttpResponse,
    Metadata,
    RefreshToken,
    ServerNotFound,
    Supervisor,
    TokenEndpointError,
    child_spec,
    fetch,
    start_link,
    status,
    whereis,
)
from goth_actors.integrations import refresh_rejected
from goth_actors.otp import (
    ChildSpec,
    DynamicSupervisor,
    count_children,
    delete_child,
    lookup,
    start_child,
    terminate_child,
    which_children,
)
from goth_actors.testing import GoogleEmulator

REPO = Path(__file__).resolve().parent.parent

pytestmark = pytest.mark.usefixtures("shutdown_servers")


def instant(
    *, method: str, url: str, headers: Mapping[str, str], body: bytes, timeout: float
) -> HttpResponse:
    """An in-process metadata server that answers at once."""
    return HttpResponse(
        200,
        {"Metadata-Flavor": "Google"},
        {"access_token": "ya29.instant", "expires_in": 3600, "token_type": "Bearer"},
    )


SOURCE = Metadata(url="http://127.0.0.1:9")


def run(*parts: str, timeout: float = 60.0) -> dict[str, str]:
    """Runs a program made of ``parts`` in a fresh interpreter; returns its ``key value`` lines."""
    program = "\n".join(textwrap.dedent(part) for part in parts)
    result = subprocess.run(
        [sys.executable, "-c", program],
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=REPO,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return dict(line.split(" ", 1) for line in result.stdout.splitlines() if " " in line)


# A real limit on threads, as a container's pids limit: RLIMIT_NPROC, which binds a user other
# than root only (so a root test process drops to nobody first). Elsewhere, threading.Thread
# .start is made to fail the same way. Import everything before: nobody may not read the venv.
THREAD_LIMIT = """
import os, resource, threading

class Threads:
    def __init__(self):
        self.real = os.geteuid() == 0 and hasattr(resource, "RLIMIT_NPROC")
        if self.real:
            os.setgid(65534)
            os.setuid(65534)
        self._start = threading.Thread.start
        self._blocked = False
        if not self.real:
            threads = self

            def start(thread):
                if threads._blocked:
                    raise RuntimeError("can't start new thread")
                return threads._start(thread)

            threading.Thread.start = start

    def block(self):
        self._blocked = True
        if self.real:
            hard = resource.getrlimit(resource.RLIMIT_NPROC)[1]
            resource.setrlimit(resource.RLIMIT_NPROC, (1, hard))

    def allow(self):
        self._blocked = False
        if self.real:
            hard = resource.getrlimit(resource.RLIMIT_NPROC)[1]
            resource.setrlimit(resource.RLIMIT_NPROC, (hard, hard))
"""

ERRORS = """
import logging
errors = []

class Errors(logging.Handler):
    def emit(self, record):
        if record.levelno >= logging.ERROR:
            errors.append(record.getMessage())

logging.getLogger("goth_actors").addHandler(Errors())
logging.getLogger("pykka").addHandler(Errors())
"""

INSTANT = """
import time
import goth_actors
from goth_actors import Fetch, HttpResponse, Metadata, fetch, start_link, status, whereis

def instant(*, method, url, headers, body, timeout):
    return HttpResponse(200, {"Metadata-Flavor": "Google"},
                        {"access_token": "ya29.limit", "expires_in": 3600, "token_type": "Bearer"})

SOURCE = Metadata(url="http://127.0.0.1:9")
"""


@pytest.mark.slow
def test_a_restart_that_cannot_start_its_thread_backs_off_frees_the_name_and_recovers() -> None:
    output = run(
        THREAD_LIMIT,
        ERRORS,
        INSTANT,
        """
        start_link(name="app", source=SOURCE, http_client=instant, prefetch="sync",
                   backoff_min=0.05, backoff_max=0.2)
        old = whereis("app")
        threads = Threads()
        print("real", threads.real)
        threads.block()
        cpu = time.process_time()
        old.stop()  # the root supervisor restarts it, and cannot start a thread for it
        time.sleep(1.5)  # watch the failing restarts for a while: no spin, few log lines
        print("cpu", time.process_time() - cpu)
        print("errors", len(errors))
        print("served_meanwhile", fetch("app", timeout=1.0).token)
        threads.allow()
        deadline = time.monotonic() + 10.0
        while True:
            ref = whereis("app")
            if ref is not None and ref is not old:
                try:
                    print("answered", ref.ask(Fetch(), timeout=1.0).token)
                    break
                except Exception as error:
                    pass
            assert time.monotonic() < deadline, "no server came back"
            time.sleep(0.01)
        print("state", status("app").state)
        """,
    )
    assert float(output["cpu"]) < 0.25  # retried with backoff, not in a hot loop
    assert 1 <= int(output["errors"]) <= 3  # logged at a bounded rate
    assert output["served_meanwhile"] == "ya29.limit"  # the cached token, through it all
    assert output["answered"] == "ya29.limit"  # a real server again: the name was freed
    assert output["state"] == "ok"


@pytest.mark.slow
@pytest.mark.parametrize(
    "trouble",
    [
        'start_link(name="app", source=SOURCE, http_client=failing, max_retries=0,'
        " retry_delay=lambda attempt: sys.exit(3), backoff_min=0.2, backoff_max=0.2)",
        "goth_actors.subscribe(interrupting);"
        ' start_link(name="app", source=SOURCE, http_client=failing, max_retries=0,'
        " backoff_min=0.2, backoff_max=0.2)",
    ],
    ids=["retry_delay calls sys.exit()", "a subscriber raises KeyboardInterrupt"],
)
def test_a_callback_that_raises_a_base_exception_does_not_make_the_server_spin(
    trouble: str,
) -> None:
    output = run(
        ERRORS,
        INSTANT,
        """
        import sys
        attempts = []

        def failing(*, method, url, headers, body, timeout):
            attempts.append(method)
            return HttpResponse(503, {"Metadata-Flavor": "Google"}, b"down")

        def interrupting(event):
            raise KeyboardInterrupt
        """,
        f"""
        {trouble}
        cpu = time.process_time()
        time.sleep(1.5)  # a crash loop, watched for a while
        print("cpu", time.process_time() - cpu)
        print("attempts", len(attempts))
        print("alive", whereis("app") is not None)
        """,
    )
    assert float(output["cpu"]) < 0.25
    assert 1 <= int(output["attempts"]) <= 12
    assert output["alive"] == "True"


# -- servers in your own supervisors are forgotten once they are gone for good ----------------


@pytest.fixture
def tree() -> Iterator[pykka.ActorRef[Any]]:
    sup = Supervisor.start([child_spec(name="mine", source=SOURCE, http_client=instant)])
    wait_for(lambda: goth_actors.cached("mine") is not None)
    yield sup
    sup.stop()


def assert_forgotten(name: object) -> None:
    with pytest.raises(ServerNotFound):
        fetch(name)
    with pytest.raises(ServerNotFound):
        status(name)
    assert whereis(name) is None
    assert lookup(name) is None  # no registry entry left, no token, no source


def test_a_terminated_server_releases_its_name_and_token_at_once(
    tree: pykka.ActorRef[Any],
) -> None:
    terminate_child(tree, "mine")
    assert_forgotten("mine")
    delete_child(tree, "mine")
    start_child(tree, child_spec(name="mine", source=SOURCE, http_client=instant))
    assert fetch("mine").token == "ya29.instant"  # and the name can be used again


def test_stopping_its_supervisor_releases_a_servers_name_and_token() -> None:
    sup = Supervisor.start([child_spec(name="mine", source=SOURCE, http_client=instant)])
    assert fetch("mine").token == "ya29.instant"
    sup.stop()
    assert_forgotten("mine")


@pytest.mark.parametrize("restart", ["transient", "temporary"])
def test_a_server_that_exits_normally_and_is_not_restarted_releases_its_name_and_token(
    restart: str,
) -> None:
    spec = dataclasses.replace(
        child_spec(name="mine", source=SOURCE, http_client=instant), restart=restart
    )
    sup = Supervisor.start([spec])
    try:
        assert fetch("mine").token == "ya29.instant"
        ref = whereis("mine")
        assert ref is not None
        ref.stop()
        wait_for(lambda: count_children(sup).active == 0)
        assert_forgotten("mine")
    finally:
        sup.stop()


def test_a_crashed_server_its_supervisor_restarts_keeps_its_name_and_token(
    tree: pykka.ActorRef[Any],
) -> None:
    old = whereis("mine")
    assert old is not None
    old.stop()  # permanent: restarted, and served meanwhile
    assert fetch("mine").token == "ya29.instant"
    wait_for(lambda: whereis("mine") not in (None, old))
    assert status("mine").restarts == 1


def test_a_token_server_per_tenant_is_one_line_and_terminating_it_forgets_it() -> None:
    tenants = DynamicSupervisor.start()
    try:
        refs = [
            start_child(tenants, child_spec(name=("tenant", n), source=SOURCE, http_client=instant))
            for n in range(50)
        ]
        wait_for(lambda: all(goth_actors.cached(("tenant", n)) for n in range(50)))
        for ref in refs:
            terminate_child(tenants, ref)
        assert count_children(tenants).specs == 0
        for n in range(50):
            assert_forgotten(("tenant", n))
    finally:
        tenants.stop()


def test_stop_of_a_server_in_your_own_dynamic_supervisor_forgets_it() -> None:
    tenants = DynamicSupervisor.start()
    try:
        start_link(name="t", source=SOURCE, http_client=instant, supervisor=tenants)
        assert fetch("t").token == "ya29.instant"
        goth_actors.stop("t")
        assert_forgotten("t")
        assert count_children(tenants).specs == 0
    finally:
        tenants.stop()


def test_servers_started_into_your_own_supervisor_leave_nothing_behind_once_terminated() -> None:
    from goth_actors._root import root  # the library's bookkeeping of what start_link started

    tenants = DynamicSupervisor.start()
    try:
        before = len(root.entries)
        for n in range(50):
            start_link(name=("t", n), source=SOURCE, http_client=instant, supervisor=tenants)
        for n in range(50):
            ref = whereis(("t", n))
            assert ref is not None
            terminate_child(tenants, ref)  # not stop(): the supervisor's own way
            assert_forgotten(("t", n))
        assert len(root.entries) == before  # the library's map does not grow per tenant
        start_link(name=("t", 0), source=SOURCE, http_client=instant, supervisor=tenants)
        assert fetch(("t", 0)).token == "ya29.instant"  # the name is free for start_link again
    finally:
        tenants.stop()


# -- smaller ones ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("timeout", "error"),
    [
        (None, TypeError),
        ("5", TypeError),
        (float("inf"), ValueError),
        (float("nan"), ValueError),
        (-1.0, ValueError),
    ],
)
def test_fetch_refuses_a_timeout_that_is_not_a_number_of_seconds(
    timeout: Any, error: type[Exception]
) -> None:
    with pytest.raises(error, match="timeout"):
        fetch("nobody", timeout=timeout)


BAD_TIMEOUTS = [
    (None, TypeError),
    ("5", TypeError),
    (float("inf"), ValueError),
    (float("nan"), ValueError),
    (-1.0, ValueError),
]


@pytest.mark.parametrize(("timeout", "error"), BAD_TIMEOUTS)
def test_stop_and_shutdown_refuse_a_bad_timeout_before_stopping_anything(
    timeout: Any, error: type[Exception]
) -> None:
    start_link(name="app", source=SOURCE, http_client=instant, prefetch="sync")
    with pytest.raises(error, match="timeout"):
        goth_actors.stop("app", timeout=timeout)
    with pytest.raises(error, match="timeout"):
        goth_actors.shutdown(timeout=timeout)  # it once stopped the servers, then raised
    assert status("app").state == "ok"  # nothing was half done
    assert fetch("app").token == "ya29.instant"


def test_a_forced_refresh_that_fails_logs_no_traceback_for_each_401(
    emulator: GoogleEmulator, caplog: pytest.LogCaptureFixture
) -> None:
    start_link(name="app", source=RefreshToken(emulator.authorized_user()), prefetch="sync")
    rejected = fetch("app").token
    emulator.fail_next(1, 500, endpoint="token")
    with caplog.at_level(logging.INFO, logger="pykka"), pytest.raises(TokenEndpointError):
        refresh_rejected("app", rejected)
    assert [r for r in caplog.records if r.name == "pykka"] == []


EXIT_WITH_BUSY_SERVERS = """
import sys, threading, time
import goth_actors
from goth_actors import Metadata

busy = threading.Semaphore(0)

def hanging(*, method, url, headers, body, timeout):
    busy.release()
    threading.Event().wait()  # an exchange that never ends

for n in range(20):
    goth_actors.start_link(name=n, source=Metadata(url="http://127.0.0.1:9"),
                           http_client=hanging)
for n in range(20):
    assert busy.acquire(timeout=10.0)
print("returning", flush=True)
"""


@pytest.mark.slow
def test_a_program_exits_in_about_one_server_shutdown_however_many_servers_are_busy() -> None:
    process = subprocess.Popen(
        [sys.executable, "-c", EXIT_WITH_BUSY_SERVERS],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=REPO,
    )
    try:
        assert process.stdout is not None
        assert process.stdout.readline() == "returning\n"
        returned = time.monotonic()
        assert process.wait(timeout=30) == 0
        elapsed = time.monotonic() - returned
    finally:
        process.kill()
        process.communicate()
    # 20 servers given up in parallel: ~0.3 s here; one by one it took 20 x 0.25 s = 5 s (the cap).
    assert elapsed < 2.5  # wide of both on a loaded machine


class StartsAServer(pykka.ThreadingActor):
    """A worker of the user's that starts a token server in on_start, and then crashes."""

    def on_start(self) -> None:
        start_link(name="from-an-actor", source=SOURCE, http_client=instant, prefetch="sync")

    def on_receive(self, message: Any) -> Any:
        raise ValueError("the worker crashes")


def test_the_librarys_root_supervisor_belongs_to_no_actor_even_when_one_started_it() -> None:
    goth_actors.shutdown()  # the root supervisor is started by the first start_link below
    sup = Supervisor.start([ChildSpec.for_actor(StartsAServer, id="w", restart="temporary")])
    try:
        worker = child_ref(sup, "w")
        worker.tell("crash")
        wait_for(lambda: not worker.is_alive())
        assert fetch("from-an-actor").token == "ya29.instant"
        server = whereis("from-an-actor")
        assert server is not None
        assert server.is_alive()  # the root tree did not stop with the worker
    finally:
        sup.stop()


def child_ref(sup: pykka.ActorRef[Any], child_id: object) -> pykka.ActorRef[Any]:
    ref = next(info.ref for info in which_children(sup) if info.id == child_id)
    assert ref is not None
    return ref

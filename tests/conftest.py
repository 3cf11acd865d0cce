"""Shared fixtures: the leak check every test runs under."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator

import pykka
import pytest
from _api_server import ApiServer

from goth_actors.testing import FakeTime, GoogleEmulator

LEAK_GRACE_SECONDS = 2.0


def _is_dummy(thread: threading.Thread) -> bool:
    """A thread Python did not start (a C library's), which ``threading`` only mirrors."""
    return type(thread).__name__ == "_DummyThread"


def _wait_for_threads_to_end(threads: list[threading.Thread], deadline: float) -> None:
    for thread in threads:
        thread.join(max(0.0, deadline - time.monotonic()))


@pytest.fixture(autouse=True)
def _no_leaked_actors_or_threads() -> Iterator[None]:
    """Fails a test that leaves a Pykka actor or a thread of its own running."""
    before = set(threading.enumerate())
    yield
    leaked_actors = pykka.ActorRegistry.get_all()
    if leaked_actors:
        pykka.ActorRegistry.stop_all(block=True, timeout=5.0)
        pytest.fail(f"test leaked {len(leaked_actors)} actor(s): {leaked_actors}")
    deadline = time.monotonic() + LEAK_GRACE_SECONDS
    # gRPC's core threads call into Python and show up as dummy threads: not ours, never joinable.
    new = [t for t in threading.enumerate() if t not in before and not _is_dummy(t)]
    _wait_for_threads_to_end(new, deadline)
    still = [t for t in new if t.is_alive()]
    if still:
        pytest.fail(f"test leaked {len(still)} thread(s): {[t.name for t in still]}")


@pytest.fixture(scope="session")
def rsa_private_key_pem() -> str:
    """An RSA-2048 private key in PKCS#8 PEM, generated once per test session."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode("ascii")


@pytest.fixture
def emulator() -> Iterator[GoogleEmulator]:
    """A fresh Google emulator on 127.0.0.1 for one test."""
    with GoogleEmulator() as emu:
        yield emu


@pytest.fixture
def fake_time() -> Iterator[FakeTime]:
    """Wall and monotonic clocks that move only when the test says, with their scheduler.

    Pass it as ``time=`` to servers, supervisors and the emulator. The library's servers are
    stopped before its scheduler, so no timer of theirs outlives the test.
    """
    with FakeTime() as fake:
        yield fake
        import goth_actors

        goth_actors.shutdown()


@pytest.fixture
def shutdown_servers() -> Iterator[None]:
    """Stops the library's token servers after the test (``goth_actors.shutdown()``)."""
    yield
    import goth_actors

    goth_actors.shutdown()


@pytest.fixture
def api(emulator: GoogleEmulator) -> Iterator[ApiServer]:
    """A local Google-like API that checks bearer tokens with the emulator, for one test."""
    with ApiServer(emulator) as server:
        yield server

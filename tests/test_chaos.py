"""The chaos soak, bounded for CI: 20 servers, 16 callers, random faults and actor stops."""

from __future__ import annotations

import threading

import pykka
import pytest

import goth_actors
from goth_actors.testing import run_soak


@pytest.mark.slow  # an 8-second soak
def test_callers_never_see_an_error_while_a_valid_token_exists_under_chaos() -> None:
    before = {t for t in threading.enumerate() if t.name != "goth-actors-timers"}
    report = run_soak(8.0, servers=20, callers=16, seed=2026, recovery_bound=10.0)
    print("\n".join(report.lines()))  # the figures, for `pytest -s`
    assert report.violations == 0, report.lines()
    assert report.recovery_seconds <= report.recovery_bound, report.lines()
    assert report.leaked_secrets == [], report.lines()
    assert report.fetches > 10_000
    assert sum(report.faults.values()) > 20
    assert report.faults["actor stopped"] > 0
    assert report.restarts > 0
    assert report.endpoint_requests > 0
    goth_actors.shutdown()
    assert pykka.ActorRegistry.get_all() == []
    leftover = {t for t in threading.enumerate() if t.name != "goth-actors-timers"} - before
    for thread in leftover:
        thread.join(5.0)
    assert not [t.name for t in leftover if t.is_alive()]

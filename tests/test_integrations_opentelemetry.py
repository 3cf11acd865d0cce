"""OpenTelemetry metrics from the servers' events and status, read with the SDK's in-memory
reader, while real servers talk to the emulator over HTTP."""

from __future__ import annotations

import importlib
import sys
from collections.abc import Iterator
from typing import Any

import pytest
from _api_server import start_app
from _helpers import wait_for
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader

from goth_actors import RefreshToken, ServiceAccount, TokenEndpointError, start_link, stop
from goth_actors import whereis as find
from goth_actors.integrations.opentelemetry import DURATION_BUCKETS, Instrumentation, instrument
from goth_actors.testing import GoogleEmulator

pytestmark = pytest.mark.usefixtures("shutdown_servers")

Points = dict[str, list[tuple[dict[str, Any], Any]]]


@pytest.fixture
def reader() -> InMemoryMetricReader:
    """The SDK's in-memory reader: collects when asked."""
    return InMemoryMetricReader()


@pytest.fixture
def provider(reader: InMemoryMetricReader) -> Iterator[MeterProvider]:
    provider = MeterProvider(metric_readers=[reader])
    yield provider
    provider.shutdown()


@pytest.fixture
def instrumentation(provider: MeterProvider) -> Iterator[Instrumentation]:
    with instrument(provider) as instrumentation:
        yield instrumentation


def points(reader: InMemoryMetricReader) -> Points:
    """Every data point collected now: metric name -> [(attributes, value or histogram)]."""
    found: Points = {}
    data = reader.get_metrics_data()
    for resource in data.resource_metrics if data else ():
        for scope in resource.scope_metrics:
            assert scope.scope.name == "goth_actors"
            for metric in scope.metrics:
                for point in metric.data.data_points:
                    value = getattr(point, "value", point)
                    found.setdefault(metric.name, []).append((dict(point.attributes), value))
    return found


def units(reader: InMemoryMetricReader) -> dict[str, str]:
    data = reader.get_metrics_data()
    return {
        metric.name: metric.unit
        for resource in data.resource_metrics
        for scope in resource.scope_metrics
        for metric in scope.metrics
    }


# ------------------------------------------------------------------------------------ events


def test_a_successful_token_request_is_counted_and_timed_by_source(
    emulator: GoogleEmulator, reader: InMemoryMetricReader, instrumentation: Instrumentation
) -> None:
    start_app(emulator)
    found = points(reader)
    expected = {
        "goth_actors.server.name": "app",
        "goth_actors.source.type": "service_account",
        "goth_actors.token.outcome": "success",
    }
    assert found["goth_actors.token.requests"] == [(expected, 1)]
    [(attributes, histogram)] = found["goth_actors.token.request.duration"]
    assert attributes == expected
    assert histogram.count == 1
    assert 0 < histogram.sum < 5


def test_a_failed_token_request_carries_the_error_type_and_the_http_status(
    emulator: GoogleEmulator, reader: InMemoryMetricReader, instrumentation: Instrumentation
) -> None:
    emulator.fail_next(1, 400, error="invalid_grant", endpoint="token")
    start_link(name="user", source=RefreshToken(emulator.authorized_user()), prefetch="sync")
    [(attributes, count)] = points(reader)["goth_actors.token.requests"]
    assert count == 1
    assert attributes == {
        "goth_actors.server.name": "user",
        "goth_actors.source.type": "refresh_token",
        "goth_actors.token.outcome": "failure",
        "error.type": TokenEndpointError.__name__,
        "http.response.status_code": 400,
    }


def test_a_restart_is_counted(
    emulator: GoogleEmulator, reader: InMemoryMetricReader, instrumentation: Instrumentation
) -> None:
    start_app(emulator)
    ref = find("app")
    assert ref is not None
    ref.stop()  # from outside: the supervisor starts a new server with the token
    wait_for(lambda: "goth_actors.server.restarts" in points(reader))
    restarts = points(reader)["goth_actors.server.restarts"]
    assert restarts == [
        ({"goth_actors.server.name": "app", "goth_actors.source.type": "service_account"}, 1)
    ]


# ------------------------------------------------------------------------------------ status


def test_the_time_to_expiry_and_the_servers_by_state_are_read_from_status(
    emulator: GoogleEmulator, reader: InMemoryMetricReader, instrumentation: Instrumentation
) -> None:
    start_app(emulator)
    found = points(reader)
    [(attributes, seconds)] = found["goth_actors.token.time_to_expiry"]
    assert attributes == {
        "goth_actors.server.name": "app",
        "goth_actors.source.type": "service_account",
    }
    assert 3500 < seconds <= emulator.token_lifetime
    states = {
        attrs["goth_actors.server.state"]: n for attrs, n in found["goth_actors.server.count"]
    }
    assert states == {"starting": 0, "fetching": 0, "ok": 1, "retrying": 0, "down": 0}


def test_a_server_named_up_front_is_observed_before_its_next_event(
    emulator: GoogleEmulator, reader: InMemoryMetricReader, provider: MeterProvider
) -> None:
    start_app(emulator)  # its events came before the instrumentation
    with instrument(provider, names=["app"]):
        found = points(reader)
    assert "goth_actors.token.requests" not in found
    [(attributes, _)] = found["goth_actors.token.time_to_expiry"]
    assert attributes["goth_actors.source.type"] == "unknown"  # no event told it yet


def test_a_stopped_server_is_no_longer_observed(
    emulator: GoogleEmulator, reader: InMemoryMetricReader, instrumentation: Instrumentation
) -> None:
    start_app(emulator)
    stop("app")
    found = points(reader)
    assert "goth_actors.token.time_to_expiry" not in found
    states = {
        attrs["goth_actors.server.state"]: n for attrs, n in found["goth_actors.server.count"]
    }
    assert sum(states.values()) == 0


def test_names_and_units_follow_the_semantic_conventions(
    emulator: GoogleEmulator, reader: InMemoryMetricReader, instrumentation: Instrumentation
) -> None:
    start_app(emulator)
    find("app").stop()  # type: ignore[union-attr]  # a restart, so every instrument reports
    wait_for(lambda: "goth_actors.server.restarts" in points(reader))
    assert units(reader) == {
        "goth_actors.token.requests": "{request}",
        "goth_actors.token.request.duration": "s",
        "goth_actors.server.restarts": "{restart}",
        "goth_actors.token.time_to_expiry": "s",
        "goth_actors.server.count": "{server}",
    }


def test_the_duration_histogram_has_the_http_client_conventions_bucket_bounds(
    emulator: GoogleEmulator, reader: InMemoryMetricReader, instrumentation: Instrumentation
) -> None:
    start_app(emulator)
    [(_, histogram)] = points(reader)["goth_actors.token.request.duration"]
    # Seconds: the SDK's default bounds (0, 5, 10, ... 10000) would put every refresh in one
    assert tuple(histogram.explicit_bounds) == DURATION_BUCKETS
    assert (DURATION_BUCKETS[0], DURATION_BUCKETS[-1]) == (0.005, 10.0)
    assert histogram.count == 1
    assert 0 < histogram.sum < 5


def test_prometheus_gets_the_names_its_conventions_make_of_them(
    emulator: GoogleEmulator,
) -> None:
    # The documented way to Prometheus: OpenTelemetry's exporter as the SDK's reader.
    from opentelemetry.exporter.prometheus import PrometheusMetricReader
    from prometheus_client import REGISTRY, generate_latest

    prometheus = PrometheusMetricReader()
    provider = MeterProvider(metric_readers=[prometheus])
    try:
        with instrument(provider):
            start_app(emulator)
            find("app").stop()  # type: ignore[union-attr]  # a restart, for its counter
            wait_for(lambda: b"goth_actors_server_restarts_total" in generate_latest(REGISTRY))
            page = generate_latest(REGISTRY).decode()
    finally:
        provider.shutdown()  # the exporter registered in prometheus_client's global registry:
    assert prometheus._collector not in REGISTRY._collector_to_names  # its shutdown undid it
    names = {line.partition("{")[0] for line in page.splitlines() if line.startswith("goth_")}
    assert names >= {
        "goth_actors_token_requests_total",
        "goth_actors_token_request_duration_seconds_bucket",
        "goth_actors_token_request_duration_seconds_count",
        "goth_actors_server_restarts_total",
        "goth_actors_token_time_to_expiry_seconds",
        "goth_actors_server_count",
    }
    assert 'goth_actors_server_name="app"' in page


# ------------------------------------------------------------------------------------ control


def test_after_uninstrument_nothing_more_is_recorded(
    emulator: GoogleEmulator, reader: InMemoryMetricReader, provider: MeterProvider
) -> None:
    instrument(provider).uninstrument()
    start_link(name="app", source=ServiceAccount(emulator.service_account()), prefetch="sync")
    found = points(reader)
    assert "goth_actors.token.requests" not in found
    assert "goth_actors.token.time_to_expiry" not in found


def test_importing_without_opentelemetry_says_which_extra_to_install(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setitem(sys.modules, "opentelemetry", None)
    monkeypatch.delitem(sys.modules, "goth_actors.integrations.opentelemetry", raising=False)
    with pytest.raises(ImportError, match=r"pip install goth-actors\[otel\]"):
        importlib.import_module("goth_actors.integrations.opentelemetry")

"""The token servers' metrics through OpenTelemetry, exported for Prometheus.

``goth_actors.integrations.opentelemetry.instrument(provider)`` records what the servers do
(token requests by outcome and source, their duration) and what they are (seconds until their
token expires, servers by state, restarts) on any OpenTelemetry ``MeterProvider``. For
Prometheus, the provider reads through OpenTelemetry's own exporter
(``opentelemetry-exporter-prometheus``), which serves the standard ``/metrics`` page with
``prometheus_client``::

    from opentelemetry.exporter.prometheus import PrometheusMetricReader
    from opentelemetry.sdk.metrics import MeterProvider
    from prometheus_client import start_http_server

    start_http_server(9464)                   # http://localhost:9464/metrics
    provider = MeterProvider(metric_readers=[PrometheusMetricReader()])
    instrument(provider)

Run it: ``uv run python examples/opentelemetry_metrics.py``. Two servers against the built-in
emulator, one of which fails once; it prints the ``goth_actors`` lines of the Prometheus page
(rendered in-process instead of served). Needs ``goth-actors[otel]`` and, for Prometheus,
``opentelemetry-exporter-prometheus`` (both in ``uv sync``).
"""

from __future__ import annotations

import threading

from opentelemetry.exporter.prometheus import PrometheusMetricReader
from opentelemetry.sdk.metrics import MeterProvider
from prometheus_client import REGISTRY, generate_latest

import goth_actors
from goth_actors.integrations.opentelemetry import instrument
from goth_actors.testing import GoogleEmulator


def main() -> None:
    provider = MeterProvider(metric_readers=[PrometheusMetricReader()])
    with GoogleEmulator() as emulator, instrument(provider):
        goth_actors.start_link(
            name="storage",
            source=goth_actors.ServiceAccount(emulator.service_account()),
            prefetch="sync",
        )
        emulator.fail_next(1, 503, endpoint="token")  # the next token request fails once
        recovered = threading.Event()
        goth_actors.subscribe(
            lambda event: event.name == "user" and event.kind == "success" and recovered.set()
        )
        goth_actors.start_link(
            name="user",
            source=goth_actors.RefreshToken(emulator.authorized_user()),
            backoff_min=0.05,
        )
        recovered.wait(10)  # the first attempt fails, the retry succeeds
        page = generate_latest(REGISTRY).decode()  # what Prometheus would scrape
        goth_actors.shutdown()
    for line in page.splitlines():
        if line.startswith("goth_actors_") and "_bucket{" not in line:
            print(line)
    provider.shutdown()


if __name__ == "__main__":
    main()

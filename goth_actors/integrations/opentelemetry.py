"""The token servers' metrics through OpenTelemetry, from their events and their status.

Needs the ``otel`` extra (the OpenTelemetry API): ``pip install goth-actors[otel]``. Your
application brings the SDK and its exporter (OTLP, Prometheus, ...); this only records.

[`instrument`][goth_actors.integrations.opentelemetry.instrument] subscribes to the servers' events
([`goth_actors.subscribe`][goth_actors.subscribe]) for what happens, and reads
[`goth_actors.status`][goth_actors.status] when the SDK collects, for what is:

=====================================  ==============  ========  ===============================
metric                                 instrument      unit      attributes
=====================================  ==============  ========  ===============================
``goth_actors.token.requests``         Counter         {request} server name, source type,
                                                                 outcome; ``error.type`` and
                                                                 ``http.response.status_code``
                                                                 on a failure
``goth_actors.token.request.duration`` Histogram       s         the same: the refresh latency
``goth_actors.token.time_to_expiry``   Gauge           s         server name, source type
``goth_actors.server.restarts``        Counter         {restart} server name, source type
``goth_actors.server.count``           UpDownCounter   {server}  ``goth_actors.server.state``
=====================================  ==============  ========  ===============================

Names, units and attributes follow OpenTelemetry's semantic conventions where they have one
(``*.duration`` histograms in seconds, ``{request}`` annotations, ``error.type``,
``http.response.status_code``, a ``*.count`` up-down counter by state as for database
connections); the rest live under the ``goth_actors.`` namespace: ``goth_actors.server.name``,
``goth_actors.source.type`` (``service_account``, ``refresh_token``, ``metadata``,
``workload_identity``, ``impersonated``), ``goth_actors.token.outcome`` (``success`` or
``failure``) and ``goth_actors.server.state`` (``starting``, ``fetching``, ``ok``, ``retrying``,
``down``). A server is observed from its first event after
[`instrument`][goth_actors.integrations.opentelemetry.instrument] (every server has one at start and
at each refresh), or from the start when named in ``names``.

Prometheus: use OpenTelemetry's own exporter (``opentelemetry-exporter-prometheus``) as the
SDK's reader; the metrics come out as ``goth_actors_token_requests_total`` and so on.
"""

from __future__ import annotations

import os
import re
import threading
import time
import weakref
from collections.abc import Hashable, Iterable
from types import TracebackType
from typing import Any

try:
    from opentelemetry import metrics
except ImportError as error:  # pragma: no cover - exercised with opentelemetry hidden
    raise ImportError(
        "goth_actors.integrations.opentelemetry needs the OpenTelemetry API: "
        "pip install goth-actors[otel]"
    ) from error

import goth_actors
from goth_actors import Event, ServerNotFound, TokenEndpointError, status, subscribe

__all__ = ["DURATION_BUCKETS", "Instrumentation", "instrument"]

SCOPE = "goth_actors"
"""The instrumentation scope (the meter's name)."""

DURATION_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0)
"""Bucket bounds advised for the duration histogram: those of the HTTP client conventions."""

SERVER_STATES = ("starting", "fetching", "ok", "retrying", "down")

NAME = "goth_actors.server.name"
SOURCE = "goth_actors.source.type"
OUTCOME = "goth_actors.token.outcome"
STATE = "goth_actors.server.state"
ERROR_TYPE = "error.type"
STATUS_CODE = "http.response.status_code"


def instrument(
    meter_provider: metrics.MeterProvider | None = None, *, names: Iterable[Hashable] = ()
) -> Instrumentation:
    """Starts recording the token servers' metrics; returns what stops it.

    Args:
        meter_provider: Where the metrics go. Default: OpenTelemetry's global provider (set
            by your SDK setup, or by ``opentelemetry-instrument``).
        names: Servers to observe from now on, even before their next event.

    Examples:
        ```python
        from opentelemetry.sdk.metrics import MeterProvider
        from opentelemetry.exporter.prometheus import PrometheusMetricReader
        provider = MeterProvider(metric_readers=[PrometheusMetricReader()])
        instrumentation = instrument(provider)   # ... instrumentation.uninstrument()
        ```
    """
    return Instrumentation(meter_provider, names)


_live: weakref.WeakSet[Instrumentation] = weakref.WeakSet()
"""Every live `Instrumentation`: a forked child gives each a new lock."""


def _after_fork_in_child() -> None:
    for instrumentation in list(_live):
        instrumentation._lock = threading.Lock()  # noqa: SLF001  # this module's own class


os.register_at_fork(after_in_child=_after_fork_in_child)


class Instrumentation:
    """The instruments of ``instrument``, and its subscription to the servers' events.

    [`instrument`][goth_actors.integrations.opentelemetry.instrument] returns one.

    Use [`uninstrument`][goth_actors.integrations.opentelemetry.Instrumentation.uninstrument] (or
    ``with``) to stop: the event subscription ends and the observable instruments report nothing
    more.
    """

    def __init__(
        self, meter_provider: metrics.MeterProvider | None, names: Iterable[Hashable]
    ) -> None:
        meter = metrics.get_meter(SCOPE, goth_actors.__version__, meter_provider=meter_provider)
        self._lock = threading.Lock()
        _live.add(self)
        self._sources: dict[Hashable, str | None] = dict.fromkeys(names)  # name -> source type
        self._active = True
        self._requests = meter.create_counter(
            "goth_actors.token.requests",
            unit="{request}",
            description="Token requests the servers made (the first fetch and every refresh).",
        )
        self._duration = meter.create_histogram(
            "goth_actors.token.request.duration",
            unit="s",
            description="Duration of the servers' token requests: the refresh latency.",
            explicit_bucket_boundaries_advisory=DURATION_BUCKETS,
        )
        self._restarts = meter.create_counter(
            "goth_actors.server.restarts",
            unit="{restart}",
            description="Servers that took over a crashed or stopped server's name and token.",
        )
        meter.create_observable_gauge(
            "goth_actors.token.time_to_expiry",
            callbacks=[self._observe_expiry],
            unit="s",
            description="Seconds until the held token expires (negative once it has).",
        )
        meter.create_observable_up_down_counter(
            "goth_actors.server.count",
            callbacks=[self._observe_states],
            unit="{server}",
            description="Token servers, by state.",
        )
        self._unsubscribe = subscribe(self._on_event)

    def uninstrument(self) -> None:
        """Stops recording: no more events are counted and nothing more is observed."""
        with self._lock:
            self._active = False
        self._unsubscribe()

    def __enter__(self) -> Instrumentation:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc_value: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.uninstrument()

    # ----------------------------------------------------------------------------- events

    def _on_event(self, event: Event) -> None:
        """On the server's thread: counts what it did (keep it quick)."""
        source = _source_type(event.source_type)
        with self._lock:
            if not self._active:
                return
            self._sources[event.name] = source
        attributes: dict[str, Any] = {NAME: _label(event.name), SOURCE: source or "unknown"}
        if event.kind == "restart":
            self._restarts.add(1, attributes)
            return
        if event.kind not in ("success", "failure"):
            return
        attributes[OUTCOME] = event.kind
        error = event.error
        if error is not None:
            attributes[ERROR_TYPE] = type(error).__name__
            if isinstance(error, TokenEndpointError) and error.status is not None:
                attributes[STATUS_CODE] = error.status
        self._requests.add(1, attributes)
        if event.duration is not None:
            self._duration.record(event.duration, attributes)

    # ----------------------------------------------------------------------------- status

    def _statuses(self) -> list[tuple[Hashable, str | None, goth_actors.ServerStatus]]:
        """The observed servers' status now; forgets the ones that are gone."""
        with self._lock:
            if not self._active:
                return []
            known = list(self._sources.items())
        found, gone = [], []
        for name, source in known:
            try:
                found.append((name, source, status(name)))
            except ServerNotFound:
                gone.append(name)
        if gone:
            with self._lock:
                for name in gone:
                    self._sources.pop(name, None)
        return found

    def _observe_expiry(self, _options: metrics.CallbackOptions) -> Iterable[metrics.Observation]:
        now = time.time()
        return [
            metrics.Observation(
                current.expires - now, {NAME: _label(name), SOURCE: source or "unknown"}
            )
            for name, source, current in self._statuses()
            if current.expires is not None
        ]

    def _observe_states(self, _options: metrics.CallbackOptions) -> Iterable[metrics.Observation]:
        counts = dict.fromkeys(SERVER_STATES, 0)
        for _name, _source, current in self._statuses():
            counts[current.state] = counts.get(current.state, 0) + 1
        return [metrics.Observation(count, {STATE: state}) for state, count in counts.items()]


def _source_type(class_name: str | None) -> str | None:
    """``ServiceAccount`` -> ``service_account``."""
    if class_name is None:
        return None
    return re.sub(r"(?<!^)(?=[A-Z])", "_", class_name).lower()


def _label(name: Hashable) -> str:
    """A server's name as an attribute value: its ``str``, bounded."""
    return str(name)[:100]

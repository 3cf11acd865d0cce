"""Draws the benchmark charts of docs/benchmarks.md (docs/images/bench-*.svg).

Run it: ``uv run python docs/benchmark_charts.py``.

The figures are the README's, from its "Benchmarks" table (the published run): each bar is
written below as the README text it comes from, its value read from that text (`figure`), and
``tests/test_docs.py`` checks that every such text is still in README.md, so a chart cannot
drift from the table beside it. To chart a new run, update the README's table from
``benchmarks/results/results.md`` first, then the texts here, then run this script.
"""

from __future__ import annotations

import re
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

IMAGES = Path(__file__).resolve().parent / "images"
OURS, THEIRS = "#4a90e2", "#b0b0b0"


_EXPONENTS = {"ns": -9, "µs": -6, "ms": -3, "s": 0}
_FIGURE = re.compile(r"(\d[\d,]*(?:\.\d+)?)\**(?:\s*(ns|µs|ms|M/s|s)\b)?")


def figure(text: str, unit: str) -> float:
    """The last number written in ``text``, in ``unit``.

    ``unit`` is ``"ns"``, ``"µs"``, ``"ms"``, ``"M/s"`` or ``""`` (a count); a time is
    converted from the unit written after its number: ``figure("max 1.5 ms", "µs")`` is
    1500, ``figure("1,496 requests", "")`` is 1496.

    Raises:
        ValueError: No number, or a unit that is not ``unit`` and cannot be converted to it.
    """
    found = _FIGURE.findall(text)
    if not found:
        raise ValueError(f"no number in {text!r}")
    number, written = found[-1]
    value = float(number.replace(",", ""))
    written = written or unit
    if written == unit:
        return value
    if written not in _EXPONENTS or unit not in _EXPONENTS:
        raise ValueError(f"{text!r} is in {written!r}, not {unit!r}")
    shift = _EXPONENTS[written] - _EXPONENTS[unit]
    return value * 10**shift if shift >= 0 else value / 10**-shift


@dataclass(frozen=True)
class Bar:
    """One bar: a label, and the README text its value is read from (see `figure`)."""

    label: str
    source: str
    ours: bool = False


@dataclass(frozen=True)
class Chart:
    """One chart: horizontal bars on a log scale (the ratios span orders of magnitude).

    ``unit`` is what every bar's value is converted to (see `figure`); ``axis`` says it on
    the chart.
    """

    name: str
    title: str
    unit: str
    axis: str
    bars: tuple[Bar, ...]
    note: str = ""

    def values(self) -> list[float]:
        """Each bar's value, in ``unit``, read from its README text."""
        return [figure(bar.source, self.unit) for bar in self.bars]


CHARTS = (
    Chart(
        "bench-cached-read",
        "A cached token: time per read (lower is better)",
        "ns",
        "nanoseconds per call",
        (
            Bar("goth_actors fetch", "99 ns", ours=True),
            Bar("google-auth valid + token", "981 ns"),
            Bar("google-auth before_request", "4.5 µs"),
            Bar("a Pykka ask to the server", "53 µs"),
        ),
    ),
    Chart(
        "bench-throughput",
        "Cached reads from 16 threads (higher is better)",
        "M/s",
        "million reads per second",
        (  # the last of 1 / 4 / 16 threads
            Bar("goth_actors fetch (no lock)", "9.7 / 9.6 / 9.3 M/s", ours=True),
            Bar("dict.get under a Lock", "6.9 / 0.71 / 0.21 M/s"),
        ),
        note="1 / 4 / 16 threads: fetch 9.7 / 9.6 / 9.3 M/s, a locked dict 6.9 / 0.71 / 0.21 M/s",
    ),
    Chart(
        "bench-refresh-latency",
        "Slowest caller while a refresh takes 500 ms (lower is better)",
        "µs",
        "microseconds, worst call",
        (
            Bar("goth_actors", "max 17.5 µs", ours=True),
            Bar("google-auth, non-blocking refresh", "max 1.5 ms"),
            Bar("google-auth, blocking refresh", "max 530 ms"),
        ),
    ),
    Chart(
        "bench-token-requests",
        "Requests to the token endpoint (lower is better)",
        "",
        "token requests",
        (
            Bar("200 cold threads: goth_actors", "**1** token request", ours=True),
            Bar("200 cold threads: google-auth", "181 requests"),
            Bar("30 s outage, 50 callers: goth_actors", "**6** token requests", ours=True),
            Bar("30 s outage, 50 callers: google-auth", "1,496 requests"),
            Bar("16 processes, one refresh: serve", "**1** upstream token request", ours=True),
            Bar("16 processes, one refresh: a server each", "a goth_actors server per process: 16"),
        ),
    ),
    Chart(
        "bench-loop-lag",
        "Event-loop lag, 1,000 coroutines on a cold server (lower is better)",
        "ms",
        "milliseconds, worst tick",
        (
            Bar("await fetch_async", "**2.4 ms**", ours=True),
            Bar("asyncio's own floor", "2.6 ms"),
            Bar("asyncio.to_thread(fetch)", "13.6 ms"),
            Bar("sync fetch in the coroutines", "470 ms"),
        ),
    ),
)


def _pyplot() -> Any:
    """Matplotlib's pyplot on the SVG backend, imported when a chart is drawn (it is slow)."""
    import matplotlib

    matplotlib.use("svg")
    import matplotlib.pyplot as plt  # after choosing the backend

    return plt


def draw(chart: Chart, folder: Path) -> Path:
    """Draws one chart as ``folder/NAME.svg``."""
    plt = _pyplot()
    plt.rcParams.update({"svg.hashsalt": "goth_actors", "svg.fonttype": "none", "font.size": 9})
    figure, axis = plt.subplots(figsize=(7.5, 0.5 + 0.42 * len(chart.bars)))
    labels = [bar.label for bar in chart.bars]
    values = chart.values()
    colours = [OURS if bar.ours else THEIRS for bar in chart.bars]
    axis.barh(range(len(values)), values, color=colours, height=0.6)
    axis.set_xscale("log")
    axis.set_yticks(range(len(values)), labels)
    axis.invert_yaxis()
    axis.set_xlabel(chart.axis + " (log scale)")
    axis.set_title(chart.title, loc="left")
    for i, value in enumerate(values):
        axis.annotate(
            f"{value:,g}", (value, i), xytext=(4, 0), textcoords="offset points", va="center"
        )
    axis.set_xlim(min(values) / 2, max(values) * 6)
    for side in ("top", "right"):
        axis.spines[side].set_visible(False)
    if chart.note:
        figure.text(0.01, -0.02, chart.note, fontsize=7.5, color="#555555")
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{chart.name}.svg"
    figure.savefig(path, format="svg", bbox_inches="tight", metadata={"Date": None})
    plt.close(figure)
    return path


def main(argv: list[str] | None = None) -> int:
    """Draws every chart into docs/images (or the folder given)."""
    folder = Path(argv[0]) if argv else IMAGES
    for chart in CHARTS:
        print(draw(chart, folder))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

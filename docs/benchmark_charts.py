"""Draws the benchmark charts of docs/benchmarks.md (docs/images/bench-*.svg).

Run it: ``uv run python docs/benchmark_charts.py``.

The figures are the README's, from its "Benchmarks" table (the published run): each one is
written below with the README text it comes from, and ``tests/test_docs.py`` checks that every
such text is still in README.md, so a chart cannot drift from the table beside it. To chart a
new run, update the README's table from ``benchmarks/results/results.md`` first, then the
figures here, then run this script.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path

import matplotlib

matplotlib.use("svg")

import matplotlib.pyplot as plt  # after choosing the backend

IMAGES = Path(__file__).resolve().parent / "images"
OURS, THEIRS = "#4a90e2", "#b0b0b0"


@dataclass(frozen=True)
class Bar:
    """One bar: a label, a value, and the README text it is read from."""

    label: str
    value: float
    source: str
    ours: bool = False


@dataclass(frozen=True)
class Chart:
    """One chart: horizontal bars on a log scale (the ratios span orders of magnitude)."""

    name: str
    title: str
    unit: str
    bars: tuple[Bar, ...]
    note: str = ""


CHARTS = (
    Chart(
        "bench-cached-read",
        "A cached token: time per read (lower is better)",
        "nanoseconds per call",
        (
            Bar("goth_actors fetch", 99, "99 ns", ours=True),
            Bar("google-auth valid + token", 981, "981 ns"),
            Bar("google-auth before_request", 4_500, "4.5 µs"),
            Bar("a Pykka ask to the server", 53_000, "53 µs"),
        ),
    ),
    Chart(
        "bench-throughput",
        "Cached reads from 16 threads (higher is better)",
        "million reads per second",
        (
            Bar("goth_actors fetch (no lock)", 9.3, "9.7 / 9.6 / 9.3 M/s", ours=True),
            Bar("dict.get under a Lock", 0.21, "6.9 / 0.71 / 0.21 M/s"),
        ),
        note="1 / 4 / 16 threads: fetch 9.7 / 9.6 / 9.3 M/s, a locked dict 6.9 / 0.71 / 0.21 M/s",
    ),
    Chart(
        "bench-refresh-latency",
        "Slowest caller while a refresh takes 500 ms (lower is better)",
        "microseconds, worst call",
        (
            Bar("goth_actors", 17.5, "max 17.5 µs", ours=True),
            Bar("google-auth, non-blocking refresh", 1_500, "max 1.5 ms"),
            Bar("google-auth, blocking refresh", 530_000, "max 530 ms"),
        ),
    ),
    Chart(
        "bench-token-requests",
        "Requests to the token endpoint (lower is better)",
        "token requests",
        (
            Bar("200 cold threads: goth_actors", 1, "**1** token request", ours=True),
            Bar("200 cold threads: google-auth", 181, "181 requests"),
            Bar("30 s outage, 50 callers: goth_actors", 6, "**6** token requests", ours=True),
            Bar("30 s outage, 50 callers: google-auth", 1_496, "1,496 requests"),
            Bar("16 processes, one refresh: serve", 1, "**1** upstream token request", ours=True),
            Bar(
                "16 processes, one refresh: a server each",
                16,
                "a goth_actors server per process: 16",
            ),
        ),
    ),
    Chart(
        "bench-loop-lag",
        "Event-loop lag, 1,000 coroutines on a cold server (lower is better)",
        "milliseconds, worst tick",
        (
            Bar("await fetch_async", 2.4, "**2.4 ms**", ours=True),
            Bar("asyncio's own floor", 2.6, "2.6 ms"),
            Bar("asyncio.to_thread(fetch)", 13.6, "13.6 ms"),
            Bar("sync fetch in the coroutines", 470, "470 ms"),
        ),
    ),
)


def draw(chart: Chart, folder: Path) -> Path:
    """Draws one chart as ``folder/NAME.svg``."""
    plt.rcParams.update({"svg.hashsalt": "goth_actors", "svg.fonttype": "none", "font.size": 9})
    figure, axis = plt.subplots(figsize=(7.5, 0.5 + 0.42 * len(chart.bars)))
    labels = [bar.label for bar in chart.bars]
    values = [bar.value for bar in chart.bars]
    colours = [OURS if bar.ours else THEIRS for bar in chart.bars]
    axis.barh(range(len(values)), values, color=colours, height=0.6)
    axis.set_xscale("log")
    axis.set_yticks(range(len(values)), labels)
    axis.invert_yaxis()
    axis.set_xlabel(chart.unit + " (log scale)")
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

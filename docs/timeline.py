"""Draws docs/images/timeline.svg: one token server's life, from a fresh run of the demo.

Run it: ``uv run python docs/timeline.py`` (about 35 s: the demo's own 30 s and a little more).

It runs ``goth-actors demo``'s scenario in this process (``run_demo``, unchanged) and watches
it from outside, with public means only:

- ``goth_actors.subscribe`` gets every event of the demo's three token servers (attempts,
  successes with their tokens' expiry, failures, retries, the crash and the restart);
- a caller thread of its own fetches the ``user`` server's token every few milliseconds,
  as the demo's callers do, and notes which token it got (by its expiry, never the token);
- the demo's narration (plain text, written to a buffer here) gives, with the time each line
  was written, when each phase began: steady, the 503 outage, the refused connections, the
  recovery.

The picture is the ``user`` server's life, the one that crashes (``max_retries=2``): every
token it held as a bar over its whole lifetime, the refreshes, each failure and the backoff
before the next attempt, the crash and the restart with its token kept, and below, every fetch
of the extra caller, plotted on the row of the token it was served. Nothing is drawn by hand:
run it again and the picture is of the new run.
"""

from __future__ import annotations

import argparse
import io
import re
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("svg")

import matplotlib.pyplot as plt  # after choosing the backend
from matplotlib.patches import Patch

import goth_actors
from goth_actors._demo import run_demo  # the demo itself, as `goth-actors demo`

SERVER = "user"
DEFAULT_OUTPUT = Path(__file__).resolve().parent / "images" / "timeline.svg"
PHASE = re.compile(r"^\[t=\s*[\d.]+s\] (?P<title>[^:]+):")
PHASES = ("steady", "outage one", "outage two", "recovery")
"""The demo's phases, as its narration names them (``[t=  6.0s] outage one: ...``)."""
PHASE_COLOURS = {
    "outage one": ("#f5a623", "503 from the token endpoint"),
    "outage two": ("#d0021b", "connections refused"),
    "recovery": ("#7ed321", "recovery"),
}


class Narration(io.TextIOBase):
    """The demo's output: each line with the wall-clock time it was written."""

    def __init__(self) -> None:
        self.lines: list[tuple[float, str]] = []
        self._partial = ""

    def writable(self) -> bool:
        """Yes: the demo writes its narration here."""
        return True

    def isatty(self) -> bool:
        """No: so the demo prints plain lines."""
        return False

    def write(self, text: str) -> int:
        """Keeps each complete line with the time it was written."""
        now = time.time()
        self._partial += text
        *done, self._partial = self._partial.split("\n")
        self.lines.extend((now, line) for line in done)
        return len(text)


@dataclass
class Watch:
    """What the script saw of the demo."""

    events: list[goth_actors.Event] = field(default_factory=list)
    fetches: list[tuple[float, float | None]] = field(default_factory=list)  # (when, expires)
    stop: threading.Event = field(default_factory=threading.Event)

    def on_event(self, event: goth_actors.Event) -> None:
        """Keeps the events of the server drawn."""
        if event.name == SERVER:
            self.events.append(event)

    def caller(self) -> None:
        """Fetches the server's token without pause, as a caller of the service would."""
        while not self.stop.is_set():
            now = time.time()
            try:
                token = goth_actors.fetch(SERVER, timeout=2.0)
            except goth_actors.ServerNotFound:
                return  # the demo tears down: a restart keeps the name, an end frees it
            except goth_actors.GothError:
                self.fetches.append((now, None))
            else:
                self.fetches.append((now, token.expires))
            time.sleep(0.02)


def watch_demo(duration: float) -> tuple[Watch, list[tuple[float, str]], dict[str, Any]]:
    """Runs the demo's scenario for ``duration`` seconds, watching it."""
    watch = Watch()
    narration = Narration()
    unsubscribe = goth_actors.subscribe(watch.on_event)
    caller = threading.Thread(target=watch.caller, name="timeline-caller", daemon=True)
    started = threading.Thread(target=_start_when_served, args=(watch, caller), daemon=True)
    started.start()
    try:
        status = run_demo(duration, plain=True, out=narration)
    finally:
        watch.stop.set()
        unsubscribe()
        started.join(5.0)
        if caller.is_alive():
            caller.join(5.0)
    phases = [
        (when, m["title"])
        for when, line in narration.lines
        if (m := PHASE.match(line)) and m["title"] in PHASES
    ]
    return watch, phases, {"exit_status": status}


def _start_when_served(watch: Watch, caller: threading.Thread) -> None:
    """Starts the caller once the demo's server exists (the demo starts it)."""
    while not watch.stop.is_set():
        if goth_actors.cached(SERVER) is not None:
            caller.start()
            return
        time.sleep(0.01)


def draw(watch: Watch, phases: list[tuple[float, str]], output: Path) -> None:
    """Draws the picture to ``output`` (SVG)."""
    if not phases:
        raise RuntimeError("the demo told no phase: was its output format changed?")
    t0 = phases[0][0]
    end = max([e.time for e in watch.events] + [f[0] for f in watch.fetches]) - t0
    successes = [e for e in watch.events if e.kind == "success" and e.expires is not None]
    rows = {e.expires: i for i, e in enumerate(successes) if e.expires is not None}

    plt.rcParams.update({"svg.hashsalt": "goth_actors", "svg.fonttype": "none", "font.size": 9})
    figure, (top, bottom) = plt.subplots(
        2,
        1,
        figsize=(11, 6.2),
        sharex=True,
        gridspec_kw={"height_ratios": [3.2, 1.0], "hspace": 0.08},
    )
    for axis in (top, bottom):
        for (start, title), following in zip(phases, [*phases[1:], (t0 + end, "")], strict=True):
            colour = PHASE_COLOURS.get(title, (None, ""))[0]
            if colour:
                axis.axvspan(start - t0, following[0] - t0, color=colour, alpha=0.13, lw=0)

    server_row = len(successes) + 0.6
    for i, event in enumerate(successes):
        issued = event.time - t0
        replaced = successes[i + 1].time - t0 if i + 1 < len(successes) else end
        lifetime_end = min(event.expires - t0, end)  # type: ignore[operator]
        top.barh(i, lifetime_end - issued, left=issued, height=0.55, color="#4a90e2", alpha=0.25)
        top.barh(i, replaced - issued, left=issued, height=0.55, color="#4a90e2")
        if event.expires - t0 > end:  # type: ignore[operator]
            top.annotate(
                "",
                xy=(end + 0.4, i),
                xytext=(end - 0.2, i),
                arrowprops={"arrowstyle": "->", "color": "#4a90e2", "alpha": 0.5},
            )
        top.plot(issued, server_row, marker="o", color="#2e7d32", ms=5, ls="")
    for event in watch.events:
        at = event.time - t0
        if event.kind == "failure":
            refused = isinstance(event.error, goth_actors.TransportError)
            top.plot(at, server_row, marker="x", color="#b71c1c" if refused else "#e65100", ms=7)
        elif event.kind == "retry_scheduled" and event.delay is not None:
            top.annotate(
                "",
                xy=(at + event.delay, server_row + 0.45),
                xytext=(at, server_row + 0.45),
                arrowprops={"arrowstyle": "->", "color": "#555555", "lw": 0.8},
            )
        elif event.kind == "crash":
            top.plot(at, server_row, marker="X", color="black", ms=12)
            top.annotate(
                "crash: retries exhausted",
                (at, server_row),
                xytext=(4, -26),
                textcoords="offset points",
                fontsize=8,
            )
        elif event.kind == "restart":
            top.plot(at, server_row, marker="^", color="#6a1b9a", ms=9)
            top.annotate(
                "restarted, token kept",
                (at, server_row),
                xytext=(-8, 10),
                textcoords="offset points",
                fontsize=8,
                color="#6a1b9a",
            )
    top.set_yticks(
        [*range(len(successes)), server_row],
        [*(f"token {i + 1}" for i in range(len(successes))), f"server {SERVER!r}"],
    )
    top.set_ylim(-0.7, server_row + 1.1)
    top.invert_yaxis()
    top.set_title(
        f"One token server's life in `goth-actors demo`: {SERVER!r} (max_retries=2), "
        "from the run's own events",
        loc="left",
    )
    legend = [
        Patch(color="#4a90e2", label="token served (until replaced)"),
        Patch(color="#4a90e2", alpha=0.25, label="still valid (lifetime)"),
        *(Patch(color=c, alpha=0.25, label=label) for c, label in PHASE_COLOURS.values()),
    ]
    top.legend(handles=legend, loc="upper left", bbox_to_anchor=(1.005, 1.0), fontsize=7.5)

    def row_of(expires: float) -> int:
        # A fetch can see a token a moment before the server's "success" event is recorded:
        # it is the token of the success with the nearest expiry.
        if expires in rows:
            return rows[expires]
        return rows[min(rows, key=lambda known: abs(known - expires))]

    served = [(when - t0, None if e is None else row_of(e)) for when, e in watch.fetches]
    ok = [(t, row) for t, row in served if row is not None]
    errors = [t for t, row in served if row is None]
    bottom.scatter([t for t, _ in ok], [row for _, row in ok], s=2, color="#2e7d32", lw=0)
    if errors:
        bottom.scatter(errors, [-0.5] * len(errors), s=8, color="#b71c1c", marker="x")
    bottom.set_ylim(len(successes) - 0.5, -0.8)
    bottom.set_yticks([])
    bottom.set_ylabel("token served")
    bottom.set_xlabel("seconds since the demo started")
    bottom.text(
        0.01,
        0.08,
        f"{len(ok):,} fetches by one caller, each dot on the row of the token it got; "
        f"{len(errors)} errors",
        transform=bottom.transAxes,
        fontsize=8,
    )
    bottom.set_xlim(-0.5, end + 1.0)
    output.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(output, format="svg", bbox_inches="tight", metadata={"Date": None})
    plt.close(figure)


def main(argv: list[str] | None = None) -> int:
    """Runs the demo, draws the picture; exits 1 if the demo broke a promise."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=float, default=30.0, help="the demo's (default 30)")
    parser.add_argument("--output", type=Path, default=DEFAULT_OUTPUT, help="the SVG to write")
    args = parser.parse_args(argv)
    watch, phases, outcome = watch_demo(args.duration)
    draw(watch, phases, args.output)
    print(f"{args.output}: {len(watch.events)} events, {len(watch.fetches)} fetches")
    return int(outcome["exit_status"])


if __name__ == "__main__":
    sys.exit(main())

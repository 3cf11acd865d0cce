"""``goth-actors emulator``: the Google emulator for other programs' tests, until stopped.

Everything that can be checked before it starts is checked first (the port's range, the
credentials folder), so a mistake leaves nothing half-started. Key files are created readable
by their owner only, from the first byte, never over an existing file, and removed at exit.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import signal
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from goth_actors._cli._common import Fail, cannot_listen, port

__all__ = ["KEY_FILES", "add", "run", "write_private"]

KEY_FILES = ("service_account.json", "authorized_user.json")


def add(commands: Any) -> None:
    """Declares the subcommand and its options."""
    parser = commands.add_parser(
        "emulator",
        help="run the local Google emulator for your own integration tests",
        description="Run goth_actors' emulator of Google's token endpoints until interrupted.",
    )
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (127.0.0.1)")
    parser.add_argument(
        "--port", type=port, default=8080, help="port to bind, 0 for any free one (8080)"
    )
    parser.add_argument(
        "--write-credentials",
        metavar="DIR",
        type=Path,
        help=(
            "write service_account.json and authorized_user.json issued by the emulator here "
            "(created if missing; the files are removed when the emulator stops)"
        ),
    )
    parser.set_defaults(run=run, parser=parser)


def run(args: argparse.Namespace) -> int:
    """Serves until Ctrl-C, SIGTERM or SIGHUP; returns the exit status (0 when stopped so)."""
    from goth_actors.testing import GoogleEmulator

    folder: Path | None = args.write_credentials
    created = _prepare(folder) if folder is not None else False
    # Runs until interrupted: keep only the last 1,000 requests (tokens expire and are dropped).
    emulator = GoogleEmulator(host=args.host, port=args.port, max_recorded=1_000)
    try:
        emulator.start()
    except OSError as exc:
        _remove(folder, [], created)
        raise Fail(cannot_listen(args.host, args.port, exc)) from None
    written: list[Path] = []
    try:
        lines = [
            f"emulator listening on {emulator.url}",
            f"  token endpoint:   {emulator.token_url}",
            f"  metadata server:  GCE_METADATA_HOST={emulator.metadata_host}",
            f"  tokeninfo:        {emulator.tokeninfo_url}",
        ]
        if folder is not None:
            issued = (emulator.service_account(), emulator.authorized_user())
            for name, info in zip(KEY_FILES, issued, strict=True):
                written.append(write_private(folder / name, info))
                lines.append(f"  wrote {folder / name}")
            lines.append("  (these keys work with this emulator only; removed when it stops)")
        lines.append("press Ctrl-C to stop")
        print("\n".join(lines), flush=True)
        with _stop_signals() as stop:
            while not stop.wait(0.5):
                pass
    finally:
        emulator.close()
        _remove(folder, written, created)
    return 0


def _prepare(folder: Path) -> bool:
    """Checks ``--write-credentials`` before anything starts; returns whether it was created."""
    if folder.exists() and not folder.is_dir():
        raise Fail(f"--write-credentials: {folder} is a file; name a folder (created if missing)")
    for name in KEY_FILES:
        if (folder / name).exists() or (folder / name).is_symlink():
            raise Fail(
                f"--write-credentials: {folder / name} already exists (left by an emulator that "
                "did not stop?); remove it or name another folder"
            )
    if folder.is_dir():
        return False
    try:
        folder.mkdir(parents=True)
    except OSError as exc:
        raise Fail(f"--write-credentials: cannot create {folder}: {exc.strerror}") from None
    return True


def write_private(path: Path, info: dict[str, str]) -> Path:
    """Writes a key file readable by its owner only, from the first byte (never chmod after)."""
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0)
    try:
        descriptor = os.open(path, flags, 0o600)
    except OSError as exc:
        raise Fail(f"--write-credentials: cannot create {path}: {exc.strerror}") from None
    with open(descriptor, "w", encoding="utf-8") as handle:
        handle.write(json.dumps(info, indent=2) + "\n")
    return path


def _remove(folder: Path | None, written: list[Path], created: bool) -> None:
    for path in written:
        with contextlib.suppress(OSError):
            path.unlink()
    if folder is not None and created:
        with contextlib.suppress(OSError):
            folder.rmdir()  # only if empty: never anything the user put there


@contextlib.contextmanager
def _stop_signals() -> Iterator[threading.Event]:
    """An event set by SIGTERM or SIGHUP while inside; Ctrl-C ends the block quietly."""
    stop = threading.Event()
    names = [name for name in ("SIGTERM", "SIGHUP") if hasattr(signal, name)]
    previous = {name: signal.signal(getattr(signal, name), lambda *_: stop.set()) for name in names}
    try:
        yield stop
    except KeyboardInterrupt:
        pass
    finally:
        for name, handler in previous.items():
            signal.signal(getattr(signal, name), handler)

"""Shared by the examples: real credentials when you have them, the emulator otherwise.

Set ``GOOGLE_APPLICATION_CREDENTIALS`` to a key file and the examples use it (and Google);
leave it unset and they run against goth_actors' built-in emulator on 127.0.0.1.
"""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Iterator
from typing import Any

from goth_actors.testing import GoogleEmulator


@contextlib.contextmanager
def emulator_unless_real() -> Iterator[GoogleEmulator | None]:
    """Yields a running emulator, or None when GOOGLE_APPLICATION_CREDENTIALS is set."""
    if os.environ.get("GOOGLE_APPLICATION_CREDENTIALS"):
        yield None
        return
    with GoogleEmulator() as emulator:
        yield emulator


def key_file(emulator: GoogleEmulator | None, kind: str) -> dict[str, Any]:
    """The key file to use: the user's, or one the emulator issued (``kind`` as in its type)."""
    if emulator is None:
        path = os.environ["GOOGLE_APPLICATION_CREDENTIALS"]
        with open(path, encoding="utf-8") as file:
            data: dict[str, Any] = json.load(file)
        return data
    if kind == "service_account":
        return emulator.service_account()
    return emulator.authorized_user()

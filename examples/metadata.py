"""A token server on the metadata server (Compute Engine, GKE, Cloud Run, Cloud Functions).

By default this example points ``GCE_METADATA_HOST`` at the built-in emulator, as you would in
your own tests; on Google Cloud, pass ``--real`` to talk to the real metadata server.

Run it: ``uv run python examples/metadata.py [--real]``.
"""

from __future__ import annotations

import os
import sys

import goth_actors
from goth_actors.testing import GoogleEmulator


def main() -> None:
    emulator = None if "--real" in sys.argv[1:] else GoogleEmulator().start()
    try:
        if emulator is not None:
            os.environ["GCE_METADATA_HOST"] = emulator.metadata_host
        goth_actors.start_link(name="metadata", source=goth_actors.Metadata(), prefetch="sync")
        goth_actors.start_link(
            name="run-id-token",
            source=goth_actors.Metadata(audience="https://my-service-abc123.a.run.app"),
            prefetch="sync",
        )
        print(f"access token: {goth_actors.fetch('metadata')}")
        print(f"ID token for {goth_actors.fetch('run-id-token').scope}")
        goth_actors.shutdown()
    finally:
        if emulator is not None:
            emulator.close()


if __name__ == "__main__":
    main()

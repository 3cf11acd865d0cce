"""Several token servers in one supervisor of yours, next to your own actors.

``child_spec`` gives each server the id of its name, so they fit in one supervisor without
the id clash Goth users hit. Run it: ``uv run python examples/several_servers.py``.
"""

from __future__ import annotations

from typing import Any

import pykka
from _credentials import emulator_unless_real, key_file

import goth_actors
import goth_actors.otp


class Uploader(pykka.ThreadingActor):
    """Your own actor: it fetches a token by name whenever it needs one."""

    def on_receive(self, message: Any) -> Any:
        token = goth_actors.fetch("storage")
        return f"would upload {message!r} with a {token.type} token for {token.scope}"


def main() -> None:
    with emulator_unless_real() as emulator:
        key = key_file(emulator, "service_account")
        supervisor = goth_actors.Supervisor.start(
            [
                goth_actors.child_spec(
                    name="storage",
                    source=goth_actors.ServiceAccount(
                        key, scopes=("https://www.googleapis.com/auth/devstorage.read_write",)
                    ),
                ),
                goth_actors.child_spec(
                    name="pubsub",
                    source=goth_actors.ServiceAccount(
                        key, scopes=("https://www.googleapis.com/auth/pubsub",)
                    ),
                ),
                goth_actors.ChildSpec.for_actor(Uploader, id="uploader"),
            ],
            strategy="one_for_one",
        )
        for child in supervisor.ask(goth_actors.otp.WhichChildren(), timeout=5.0):
            print(f"child {child.id!r:12} {child.type}")
        uploader = next(
            c.ref
            for c in supervisor.ask(goth_actors.otp.WhichChildren(), timeout=5.0)
            if c.id == "uploader"
        )
        print(uploader.ask("report.csv", timeout=5.0))
        print(f"pubsub token scope: {goth_actors.fetch('pubsub').scope}")
        supervisor.stop()


if __name__ == "__main__":
    main()

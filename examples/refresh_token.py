"""A token server for a user's refresh token, fetched the Pykka way.

The refresh token is what ``gcloud auth application-default login`` writes; fetched the Pykka
way: look the server up by name and ask it with a timeout.

Run it: ``uv run python examples/refresh_token.py``.
"""

from __future__ import annotations

from _credentials import emulator_unless_real, key_file

import goth_actors


def main() -> None:
    with emulator_unless_real() as emulator:
        credentials = key_file(emulator, "authorized_user")
        goth_actors.start_link(name="user", source=goth_actors.source_from_credentials(credentials))
        ref = goth_actors.whereis("user")
        assert ref is not None
        token = ref.ask(goth_actors.Fetch(), timeout=5.0)
        print(f"asked {ref}: {token}")
        print(f"fetch() gives the same token: {goth_actors.fetch('user') == token}")
        goth_actors.shutdown()


if __name__ == "__main__":
    main()

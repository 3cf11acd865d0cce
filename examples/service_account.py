"""One token server for a service account: start it, fetch from several threads, stop.

Run it: ``uv run python examples/service_account.py`` (against the built-in emulator), or with
``GOOGLE_APPLICATION_CREDENTIALS=key.json`` set, against Google.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

from _credentials import emulator_unless_real, key_file

import goth_actors


def main() -> None:
    with emulator_unless_real() as emulator:
        source = goth_actors.ServiceAccount(
            key_file(emulator, "service_account"),
            scopes=("https://www.googleapis.com/auth/devstorage.read_only",),
        )
        goth_actors.start_link(name="storage", source=source, prefetch="sync")
        with ThreadPoolExecutor(max_workers=8) as pool:
            tokens = list(pool.map(lambda _: goth_actors.fetch("storage"), range(1000)))
        token = tokens[0]
        print(f"1000 fetches from 8 threads, {len({t.token for t in tokens})} distinct token")
        print(f"token: {token}")  # the repr never shows the token itself
        print(f"scope: {token.scope}, expires in {token.expires_in():.0f} s")
        goth_actors.shutdown()


if __name__ == "__main__":
    main()

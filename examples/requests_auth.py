"""requests with ``GothAuth``: the token server's token on every request, and a 401 survived.

``session.auth = GothAuth("userinfo")`` sets ``Authorization`` from the named server on every
request. When the API refuses a token (revoked, rotated), GothAuth replaces it once (one forced
refresh, shared by every request refused at the same time) and sends the request again.

Run it: ``uv run python examples/requests_auth.py``. Without credentials it starts the
built-in emulator and a tiny local API on 127.0.0.1 that checks tokens as Google's APIs do;
with ``GOOGLE_APPLICATION_CREDENTIALS`` set to a service-account key, it calls Google's
userinfo API.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import requests
from _credentials import SCOPES, emulator_unless_real, key_file, userinfo_api

import goth_actors
from goth_actors.integrations.requests import GothAuth


def main() -> None:
    with emulator_unless_real() as emulator, userinfo_api(emulator) as (url, refused):
        source = goth_actors.ServiceAccount(key_file(emulator, "service_account"), scopes=SCOPES)
        goth_actors.start_link(name="userinfo", source=source, prefetch="sync")
        with requests.Session() as session:
            session.auth = GothAuth("userinfo")
            response = session.get(url, timeout=10)
            print(f"GET userinfo -> {response.status_code} for {response.json().get('email')}")
            if emulator is not None:
                before = len(emulator.requests_to("token"))
                refused.add(goth_actors.fetch("userinfo").token)  # as if it had been revoked
                print("the API now refuses that token (as if revoked); 20 concurrent requests:")
                with ThreadPoolExecutor(max_workers=20) as pool:
                    responses = list(pool.map(lambda _: session.get(url, timeout=10), range(20)))
                retried = sum(1 for r in responses if [h.status_code for h in r.history] == [401])
                print(f"  {retried} got a 401 and were sent again with a new token, ", end="")
                print(f"{20 - retried} had the new token already")
                statuses = ", ".join(
                    str(status) for status in sorted({r.status_code for r in responses})
                )
                refreshes = len(emulator.requests_to("token")) - before
                print(f"  statuses: {statuses}; token endpoint requests: {refreshes}")
        goth_actors.shutdown()


if __name__ == "__main__":
    main()

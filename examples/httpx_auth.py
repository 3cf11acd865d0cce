"""httpx with ``GothAuth``, sync and async: the server's token on every request, 401s survived.

``httpx.Client(auth=GothAuth("userinfo"))`` and ``httpx.AsyncClient(auth=...)`` set
``Authorization`` from the named token server. In an ``AsyncClient`` a cached token is read
inline, and waiting for a token or a refresh happens in a worker thread: the event loop never
blocks. After a 401 the token is replaced once (one forced refresh, shared by every request
refused at the same time) and the request is sent again. Needs ``goth-actors[httpx]``.

Run it: ``uv run python examples/httpx_auth.py``. Without credentials it starts the built-in
emulator and a tiny local API on 127.0.0.1 that checks tokens as Google's APIs do; with
``GOOGLE_APPLICATION_CREDENTIALS`` set to a service-account key, it calls Google's userinfo API.
"""

from __future__ import annotations

import asyncio

import httpx
from _credentials import SCOPES, emulator_unless_real, key_file, userinfo_api

import goth_actors
from goth_actors.integrations.httpx import GothAuth


async def concurrently(url: str, count: int) -> list[httpx.Response]:
    async with httpx.AsyncClient(auth=GothAuth("userinfo"), timeout=10) as client:
        return await asyncio.gather(*(client.get(url) for _ in range(count)))


def main() -> None:
    with emulator_unless_real() as emulator, userinfo_api(emulator) as (url, refused):
        source = goth_actors.ServiceAccount(key_file(emulator, "service_account"), scopes=SCOPES)
        goth_actors.start_link(name="userinfo", source=source, prefetch="sync")
        with httpx.Client(auth=GothAuth("userinfo"), timeout=10) as client:
            response = client.get(url)
        print(f"sync  GET userinfo -> {response.status_code} for {response.json().get('email')}")
        responses = asyncio.run(concurrently(url, 10))
        print(f"async 10 x GET userinfo -> {sorted({r.status_code for r in responses})}")
        if emulator is not None:
            before = len(emulator.requests_to("token"))
            refused.add(goth_actors.fetch("userinfo").token)  # as if it had been revoked
            print("the API now refuses that token (as if revoked); 20 concurrent requests:")
            responses = asyncio.run(concurrently(url, 20))
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

"""aiohttp with ``GothAuth``: a client middleware puts the server's token on every request.

``aiohttp.ClientSession(middlewares=(GothAuth("userinfo"),))`` sets ``Authorization`` from the
named token server, read with ``fetch_async`` (a cached token costs no thread and no lock; a
cold server is awaited without blocking the loop). After a 401 the token is replaced once (one
forced refresh, shared by every request refused at the same time) and the request is sent
again. The token only goes to the origin of the first request (or to ``origins=``): never to a
host a redirect points at. Needs ``goth-actors[aiohttp]``.

Run it: ``uv run python examples/aiohttp_auth.py``. Without credentials it starts the built-in
emulator and a tiny local API on 127.0.0.1 that checks tokens as Google's APIs do; with
``GOOGLE_APPLICATION_CREDENTIALS`` set to a service-account key, it calls Google's userinfo API.
"""

from __future__ import annotations

import asyncio

import aiohttp
from _credentials import SCOPES, emulator_unless_real, key_file, userinfo_api

import goth_actors
from goth_actors.integrations.aiohttp import GothAuth


async def get_all(url: str, count: int) -> list[tuple[int, str | None]]:
    async with aiohttp.ClientSession(middlewares=(GothAuth("userinfo"),)) as session:

        async def get() -> tuple[int, str | None]:
            async with session.get(url) as response:
                body = await response.json()
                return response.status, body.get("email")

        return await asyncio.gather(*(get() for _ in range(count)))


def main() -> None:
    with emulator_unless_real() as emulator, userinfo_api(emulator) as (url, refused):
        source = goth_actors.ServiceAccount(key_file(emulator, "service_account"), scopes=SCOPES)
        goth_actors.start_link(name="userinfo", source=source)  # no prefetch wait: async it is
        answers = asyncio.run(get_all(url, 10))
        emails = {email for _, email in answers}
        print(f"10 x GET userinfo -> {sorted({s for s, _ in answers})} for {emails}")
        if emulator is not None:
            before = len(emulator.requests_to("token"))
            refused.add(goth_actors.fetch("userinfo").token)  # as if it had been revoked
            print("the API now refuses that token (as if revoked); 20 concurrent requests:")
            answers = asyncio.run(get_all(url, 20))
            refreshes = len(emulator.requests_to("token")) - before
            print(f"  statuses: {sorted({s for s, _ in answers})}; token requests: {refreshes}")
        goth_actors.shutdown()


if __name__ == "__main__":
    main()

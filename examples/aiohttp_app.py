"""An aiohttp web application: a token server for the app's life, in its cleanup context.

aiohttp runs each ``app.cleanup_ctx`` generator up to its ``yield`` when the application
starts, and the rest when it stops::

    async def token_server(app):
        async with goth_actors.running(name="userinfo", source=source):
            yield

    app.cleanup_ctx.append(token_server)

Its handlers call Google through an ``aiohttp.ClientSession`` (itself in the cleanup context)
with the ``GothAuth`` client middleware: the token on every request, one retry after a 401.

Run it: ``uv run python examples/aiohttp_app.py``. It serves the app on 127.0.0.1 (a free
port), calls it, and shuts it down; without credentials against the built-in emulator and a
local stand-in for Google's userinfo API, with ``GOOGLE_APPLICATION_CREDENTIALS`` against
Google.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import aiohttp
from _credentials import SCOPES, emulator_unless_real, key_file, userinfo_api
from aiohttp import web

import goth_actors
from goth_actors.integrations.aiohttp import GothAuth

USERINFO = web.AppKey("userinfo", str)
SESSION = web.AppKey("session", aiohttp.ClientSession)


# --8<-- [start:app]
def create_app(source: goth_actors.Source, userinfo_url: str) -> web.Application:
    async def token_server(_app: web.Application) -> AsyncIterator[None]:
        async with goth_actors.running(name="userinfo", source=source):
            yield

    async def google_session(app: web.Application) -> AsyncIterator[None]:
        async with aiohttp.ClientSession(middlewares=(GothAuth("userinfo"),)) as session:
            app[SESSION] = session
            yield

    async def whoami(request: web.Request) -> web.Response:
        async with request.app[SESSION].get(request.app[USERINFO]) as response:
            body = await response.json()
        return web.json_response({"status": response.status, "email": body.get("email")})

    app = web.Application()
    app[USERINFO] = userinfo_url
    app.cleanup_ctx.extend([token_server, google_session])  # stopped in reverse order
    app.router.add_get("/whoami", whoami)
    return app


# --8<-- [end:app]


async def serve_and_call(app: web.Application) -> None:
    runner = web.AppRunner(app)
    await runner.setup()  # runs the cleanup contexts up to their yield: the server starts
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    print(f"app started; token server running: {goth_actors.whereis('userinfo') is not None}")
    async with aiohttp.ClientSession(f"http://127.0.0.1:{port}") as client:

        async def call() -> dict[str, object]:
            async with client.get("/whoami") as response:
                answer: dict[str, object] = await response.json()
                return answer

        answers = await asyncio.gather(*(call() for _ in range(10)))
    print(f"10 x GET /whoami -> {sorted({str(a['status']) for a in answers})}: {answers[0]}")
    await runner.cleanup()  # the rest of the cleanup contexts: the server stops
    print(f"app stopped; token server running: {goth_actors.whereis('userinfo') is not None}")


def main() -> None:
    with emulator_unless_real() as emulator, userinfo_api(emulator) as (url, _refused):
        source = goth_actors.ServiceAccount(key_file(emulator, "service_account"), scopes=SCOPES)
        asyncio.run(serve_and_call(create_app(source, url)))


if __name__ == "__main__":
    main()

"""FastAPI (or Starlette): a token server for the application's lifespan.

The lifespan starts the server when the application starts and stops it when it stops::

    @contextlib.asynccontextmanager
    async def lifespan(app):
        async with goth_actors.running(name="storage", source=goth_actors.default_source()):
            yield

    app = FastAPI(lifespan=lifespan)        # Starlette(routes=..., lifespan=lifespan) alike

and a handler awaits ``goth_actors.fetch_async("storage")``: the cached token at once, or,
while the server is cold, a wait that leaves the event loop to the other requests.
``running`` starts and stops the server in a worker thread, so even ``prefetch="sync"`` never
blocks the loop.

Run it: ``uv run python examples/fastapi_lifespan.py``. It serves the app with uvicorn on
127.0.0.1 (a free port), calls it, and shuts it down; without credentials against the built-in
emulator, with ``GOOGLE_APPLICATION_CREDENTIALS`` against Google.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator

import httpx
import uvicorn
from _credentials import SCOPES, emulator_unless_real, key_file
from fastapi import FastAPI

import goth_actors


# --8<-- [start:app]
def create_app(source: goth_actors.Source) -> FastAPI:
    @contextlib.asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        async with goth_actors.running(name="storage", source=source, prefetch="sync"):
            print("lifespan: token server 'storage' started")
            yield
        print("lifespan: token server 'storage' stopped")

    app = FastAPI(lifespan=lifespan)

    @app.get("/token-info")
    async def token_info() -> dict[str, object]:
        token = await goth_actors.fetch_async("storage")
        # A real handler would call a Google API with f"{token.type} {token.token}".
        return {"type": token.type, "expires_in": round(token.expires - time.time())}

    return app


# --8<-- [end:app]


async def serve_and_call(app: FastAPI) -> None:
    config = uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning", lifespan="on")
    server = uvicorn.Server(config)
    serving = asyncio.create_task(server.serve())
    while not server.started:
        await asyncio.sleep(0.01)
    port = server.servers[0].sockets[0].getsockname()[1]
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as client:
        answers = await asyncio.gather(*(client.get("/token-info") for _ in range(20)))
    info = answers[0].json()
    print(f"20 x GET /token-info -> {sorted({a.status_code for a in answers})}: {info}")
    server.should_exit = True
    await serving


def main() -> None:
    with emulator_unless_real() as emulator:
        source = goth_actors.ServiceAccount(key_file(emulator, "service_account"), scopes=SCOPES)
        asyncio.run(serve_and_call(create_app(source)))
        print(f"after shutdown, a server named 'storage': {goth_actors.whereis('storage')}")
        if emulator is not None:
            print(f"token endpoint requests: {len(emulator.requests_to('token'))}")


if __name__ == "__main__":
    main()

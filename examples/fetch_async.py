"""``await goth_actors.fetch_async(name)``: tokens in coroutines, the event loop never blocked.

A thousand coroutines ask a cold server for its token at once, while a ticker task counts the
loop's turns: the server makes one request for all of them, and the ticker goes on ticking
while they wait. The same with the sync ``fetch`` called from coroutines would freeze the loop
for the whole exchange. Once the token is cached, ``fetch_async`` returns it without a thread,
a lock or even a pause in the coroutine.

Run it: ``uv run python examples/fetch_async.py``. Without credentials it runs against the
built-in emulator (whose token endpoint is told to take 300 ms); with
``GOOGLE_APPLICATION_CREDENTIALS`` set to a service-account key, against Google.
"""

from __future__ import annotations

import asyncio
import time

from _credentials import SCOPES, emulator_unless_real, key_file

import goth_actors


async def main() -> None:
    ticks = 0
    stop = asyncio.Event()

    async def ticker() -> None:
        nonlocal ticks
        while not stop.is_set():
            await asyncio.sleep(0.001)
            ticks += 1

    ticking = asyncio.create_task(ticker())
    started = time.perf_counter()
    tokens = await asyncio.gather(*(goth_actors.fetch_async("app") for _ in range(1000)))
    waited = time.perf_counter() - started
    stop.set()
    await ticking
    print(f"1,000 coroutines got {len(set(tokens))} distinct token in {waited * 1000:.0f} ms")
    print(f"meanwhile a 1 ms ticker task ran {ticks} times: the event loop never stopped")
    started = time.perf_counter()
    for _ in range(10_000):
        await goth_actors.fetch_async("app")
    per_call = (time.perf_counter() - started) / 10_000
    print(f"a cached token: {per_call * 1e6:.2f} µs per await")


if __name__ == "__main__":
    with emulator_unless_real() as emulator:
        if emulator is not None:
            emulator.delay(0.3)  # a slow token endpoint
        source = goth_actors.ServiceAccount(key_file(emulator, "service_account"), scopes=SCOPES)
        goth_actors.start_link(name="app", source=source)  # cold: fetches in the background
        asyncio.run(main())
        if emulator is not None:
            print(f"token endpoint requests: {len(emulator.requests_to('token'))}")
        goth_actors.shutdown()

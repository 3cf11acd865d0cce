"""A custom ``http_client``: here, one that logs each exchange and uses a short timeout.

Any callable ``client(*, method, url, headers, body, timeout) -> HttpResponse`` will do: wrap
httpx, add a proxy, count requests. Its exceptions become retryable ``TransportError``s.

Run it: ``uv run python examples/custom_http_client.py``.
"""

from __future__ import annotations

import time
from collections.abc import Mapping

import requests
from _credentials import emulator_unless_real, key_file

import goth_actors

session = requests.Session()


def logging_client(
    *, method: str, url: str, headers: Mapping[str, str], body: bytes, timeout: float
) -> goth_actors.HttpResponse:
    started = time.perf_counter()
    response = session.request(
        method,
        url,
        headers=dict(headers),
        data=body or None,
        timeout=min(timeout, 3.0),
        allow_redirects=False,
    )
    elapsed = (time.perf_counter() - started) * 1000
    print(f"  {method} {url.split('?')[0]} -> {response.status_code} in {elapsed:.1f} ms")
    return goth_actors.HttpResponse(response.status_code, dict(response.headers), response.content)


def main() -> None:
    with emulator_unless_real() as emulator:
        source = goth_actors.source_from_credentials(key_file(emulator, "service_account"))
        goth_actors.start_link(
            name="app", source=source, http_client=logging_client, prefetch="sync"
        )
        print(f"token: {goth_actors.fetch('app')}")
        goth_actors.shutdown()
        session.close()


if __name__ == "__main__":
    main()

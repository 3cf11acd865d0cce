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

import contextlib
import http.server
import json
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import requests
from _credentials import emulator_unless_real, key_file

import goth_actors
from goth_actors.integrations.requests import GothAuth
from goth_actors.testing import GoogleEmulator

USERINFO = "https://www.googleapis.com/oauth2/v3/userinfo"
SCOPES = ("https://www.googleapis.com/auth/userinfo.email",)


class ApiServer(http.server.ThreadingHTTPServer):
    request_queue_size = 64  # room for concurrent connects (the default, 5, drops SYNs)


@contextlib.contextmanager
def userinfo_api(emulator: GoogleEmulator | None) -> Iterator[tuple[str, set[str]]]:
    """Google's userinfo URL, or a local stand-in for it: yields (url, tokens it refuses)."""
    refused: set[str] = set()
    if emulator is None:
        yield USERINFO, refused
        return

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            scheme, _, token = self.headers.get("Authorization", "").partition(" ")
            ok = scheme == "Bearer" and token not in refused
            info = emulator.token_info(token) if ok else None
            body = json.dumps({"email": info["email"]} if info else {"error": "invalid_token"})
            self.send_response(200 if info else 401)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body.encode())

        def log_message(self, format: str, *args: object) -> None:
            pass

    server = ApiServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, args=(0.01,))
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}/oauth2/v3/userinfo", refused
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


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

"""google-auth ``Credentials`` backed by a token server, for google-cloud-* clients.

``Credentials("name")`` is a ``google.auth.credentials.Credentials``: pass it wherever Google's
client libraries take credentials, and they all share the server's token::

    from google.cloud import storage
    client = storage.Client(project="my-project", credentials=Credentials("storage"))

This program shows the same machinery without a client library: google-auth's
``AuthorizedSession`` (what the REST clients use), its refresh after a 401 (one forced refresh,
shared by every thread), and google-auth's impersonated credentials using the server's token as
their source. Needs ``goth-actors[google-auth]``.

Run it: ``uv run python examples/google_cloud_client.py``. Without credentials it starts the
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

from _credentials import emulator_unless_real, key_file
from google.auth import impersonated_credentials
from google.auth.transport.requests import AuthorizedSession, Request

import goth_actors
from goth_actors.integrations.google_auth import Credentials
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


def impersonate(emulator: GoogleEmulator) -> None:
    """google-auth's impersonated credentials, with the token server's token as their source."""
    target = emulator.service_account()["client_email"]
    endpoint = f"{emulator.iam_url}/v1/projects/-/serviceAccounts/{target}:generateAccessToken"
    deployer = impersonated_credentials.Credentials(
        source_credentials=Credentials("userinfo"),
        target_principal=target,
        target_scopes=["https://www.googleapis.com/auth/cloud-platform"],
        iam_endpoint_override=endpoint,
    )
    deployer.refresh(Request())
    info = emulator.token_info(deployer.token) or {}
    print(f"impersonated credentials, sourced from the server: acting as {info.get('email')}")


def main() -> None:
    with emulator_unless_real() as emulator, userinfo_api(emulator) as (url, refused):
        source = goth_actors.ServiceAccount(key_file(emulator, "service_account"), scopes=SCOPES)
        goth_actors.start_link(name="userinfo", source=source, prefetch="sync")
        credentials = Credentials("userinfo")
        print(f"credentials: {credentials!r}, valid: {credentials.valid}, ", end="")
        print(f"state: {credentials.token_state.name}, expiry (UTC): {credentials.expiry:%H:%M:%S}")
        with AuthorizedSession(credentials) as session:
            response = session.get(url, timeout=10)
            print(f"AuthorizedSession GET userinfo -> {response.status_code} ", end="")
            print(f"for {response.json().get('email')}")
            if emulator is not None:
                before = len(emulator.requests_to("token"))
                refused.add(goth_actors.fetch("userinfo").token)  # as if it had been revoked
                with ThreadPoolExecutor(max_workers=20) as pool:
                    responses = list(pool.map(lambda _: session.get(url, timeout=10), range(20)))
                statuses = ", ".join(str(s) for s in sorted({r.status_code for r in responses}))
                refreshes = len(emulator.requests_to("token")) - before
                print("the API now refuses that token; 20 concurrent requests through ", end="")
                print(f"AuthorizedSession -> {statuses}, token endpoint requests: {refreshes}")
        if emulator is not None:
            impersonate(emulator)
        goth_actors.shutdown()


if __name__ == "__main__":
    main()

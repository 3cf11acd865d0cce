"""Shared by the examples: real credentials when you have them, the emulator otherwise.

Set ``GOOGLE_APPLICATION_CREDENTIALS`` to a key file and the examples use it (and Google);
leave it unset and they run against goth_actors' built-in emulator on 127.0.0.1, with a tiny
local stand-in for Google's userinfo API where an example calls one.
"""

from __future__ import annotations

import contextlib
import http.server
import json
import os
import threading
from collections.abc import Iterator
from typing import Any

from goth_actors.testing import GoogleEmulator


@contextlib.contextmanager
def emulator_unless_real() -> Iterator[GoogleEmulator | None]:
    """Yields a running emulator, or None when GOOGLE_APPLICATION_CREDENTIALS is set."""
    if os.environ.get("GOOGLE_APPLICATION_CREDENTIALS"):
        yield None
        return
    with GoogleEmulator() as emulator:
        yield emulator


def key_file(emulator: GoogleEmulator | None, kind: str) -> dict[str, Any]:
    """The key file to use: the user's, or one the emulator issued (``kind`` as in its type)."""
    if emulator is None:
        path = os.environ["GOOGLE_APPLICATION_CREDENTIALS"]
        with open(path, encoding="utf-8") as file:
            data: dict[str, Any] = json.load(file)
        return data
    if kind == "service_account":
        return emulator.service_account()
    return emulator.authorized_user()


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

"""gRPC with a token server: call credentials on every call, ``UNAUTHENTICATED`` retried once.

``goth_actors.integrations.grpc.secure_channel(target, "name")`` is a channel whose calls
carry ``authorization: Bearer <token>`` from the named server (a ``grpc.AuthMetadataPlugin``),
and whose unary calls refused with ``UNAUTHENTICATED`` get one new token (one forced refresh,
shared by every call refused at the same time) and are made once more.
``aio_secure_channel`` is the same for ``grpc.aio``, without blocking the event loop. Needs
``goth-actors[grpc]``.

Run it: ``uv run python examples/grpc_auth.py``. It starts the built-in emulator and a small
gRPC server on 127.0.0.1 that checks bearer tokens as Google's APIs do (one unary method on
raw bytes, so no protobuf code is needed). The channel uses gRPC's local credentials, which
send call credentials over loopback; against Google it would be
``secure_channel("pubsub.googleapis.com:443", "name")``, with TLS.
"""

from __future__ import annotations

import asyncio
import json
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import grpc
import grpc.aio

import goth_actors
from goth_actors.integrations.grpc import aio_secure_channel, secure_channel
from goth_actors.testing import GoogleEmulator

METHOD = "/example.Api/WhoAmI"


def serve(emulator: GoogleEmulator, refused: set[str]) -> tuple[grpc.Server, int]:
    """A gRPC server that answers with the caller's email, or UNAUTHENTICATED."""

    def who_am_i(_request: bytes, context: Any) -> bytes:
        metadata = dict(context.invocation_metadata())
        scheme, _, token = metadata.get("authorization", "").partition(" ")
        info = emulator.token_info(token) if scheme == "Bearer" and token not in refused else None
        if info is None:
            context.abort(grpc.StatusCode.UNAUTHENTICATED, "invalid authentication credentials")
        return json.dumps({"email": info["email"]}).encode()

    server = grpc.server(ThreadPoolExecutor(max_workers=32))
    handler = grpc.unary_unary_rpc_method_handler(who_am_i)
    server.add_generic_rpc_handlers(
        (grpc.method_handlers_generic_handler("example.Api", {"WhoAmI": handler}),)
    )
    local = grpc.local_server_credentials(grpc.LocalConnectionType.LOCAL_TCP)
    port = server.add_secure_port("127.0.0.1:0", local)
    server.start()
    return server, port


async def concurrently(target: str, count: int) -> list[bytes]:
    local = grpc.local_channel_credentials(grpc.LocalConnectionType.LOCAL_TCP)
    async with aio_secure_channel(target, "api", credentials=local) as channel:
        who_am_i = channel.unary_unary(METHOD)
        return await asyncio.gather(*(who_am_i(b"", timeout=10) for _ in range(count)))


def main() -> None:
    with GoogleEmulator() as emulator:
        refused: set[str] = set()
        server, port = serve(emulator, refused)
        target = f"127.0.0.1:{port}"
        try:
            source = goth_actors.ServiceAccount(emulator.service_account())
            goth_actors.start_link(name="api", source=source, prefetch="sync")
            local = grpc.local_channel_credentials(grpc.LocalConnectionType.LOCAL_TCP)
            with secure_channel(target, "api", credentials=local) as channel:
                answer = json.loads(channel.unary_unary(METHOD)(b"", timeout=10))
            print(f"grpc     WhoAmI -> {answer['email']}")
            answers = asyncio.run(concurrently(target, 10))
            print(f"grpc.aio 10 x WhoAmI -> {len(answers)} answers, all OK")
            refused.add(goth_actors.fetch("api").token)  # as if it had been revoked
            before = len(emulator.requests_to("token"))
            answers = asyncio.run(concurrently(target, 20))
            refreshes = len(emulator.requests_to("token")) - before
            print(
                "the server now refuses that token (as if revoked): 20 concurrent calls -> "
                f"{len(answers)} OK after one retry each; token requests: {refreshes}"
            )
        finally:
            goth_actors.shutdown()
            server.stop(None).wait()


if __name__ == "__main__":
    main()

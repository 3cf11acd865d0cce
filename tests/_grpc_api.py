"""The local Google-like API of ``_api_server.py``, served over gRPC on 127.0.0.1.

One unary method, ``/test.Api/Get``, with raw bytes in and out (no protobuf code): it answers
what the ``ApiServer`` it fronts would answer over HTTP, with ``UNAUTHENTICATED`` for a 401.
Local credentials, so that gRPC sends call credentials over loopback without TLS.
"""

from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import grpc
from _api_server import ApiServer

METHOD = "/test.Api/Get"
WORKERS = 128
"""Handler threads: a hundred refusals held together must all be in a handler at once."""


class GrpcApi:
    """A gRPC server on 127.0.0.1 that checks bearer tokens through an `ApiServer`."""

    def __init__(self, api: ApiServer) -> None:
        self.api = api
        self.metadata: list[dict[str, str]] = []  # each call's metadata, as the server got it
        self._pool = ThreadPoolExecutor(max_workers=WORKERS, thread_name_prefix="grpc-api")
        self._server = grpc.server(self._pool, options=[("grpc.max_concurrent_streams", 1000)])
        handler = grpc.unary_unary_rpc_method_handler(self._get)
        self._server.add_generic_rpc_handlers(
            (grpc.method_handlers_generic_handler("test.Api", {"Get": handler}),)
        )
        credentials = grpc.local_server_credentials(grpc.LocalConnectionType.LOCAL_TCP)
        self.port = self._server.add_secure_port("127.0.0.1:0", credentials)

    @property
    def target(self) -> str:
        return f"127.0.0.1:{self.port}"

    def __enter__(self) -> GrpcApi:
        self._server.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._server.stop(None).wait()
        self._pool.shutdown(wait=True)

    def _get(self, request: bytes, context: Any) -> bytes:
        metadata = dict(context.invocation_metadata())
        self.metadata.append(metadata)
        info = self.api.check(METHOD, metadata.get("authorization"), request)
        if info is None:
            context.abort(
                grpc.StatusCode.UNAUTHENTICATED, "Request had invalid authentication credentials."
            )
        return json.dumps({"email": info["email"]}).encode()


def channel_credentials() -> grpc.ChannelCredentials:
    """The client side of the local credentials."""
    return grpc.local_channel_credentials(grpc.LocalConnectionType.LOCAL_TCP)

"""google-auth ``Credentials`` backed by a token server, for google-cloud-* clients.

``Credentials("name")`` is a ``google.auth.credentials.Credentials``: pass it wherever Google's
client libraries take credentials, and they all share the server's token::

    from google.cloud import storage
    client = storage.Client(project=goth_actors.project_id(), credentials=Credentials("storage"))

This program shows the same machinery: google-auth's
``AuthorizedSession`` (what the REST clients use), its refresh after a 401 (one forced refresh,
shared by every thread), and google-auth's impersonated credentials using the server's token as
their source; and, when google-cloud-storage is installed, a V4 signed URL made by
``Blob.generate_signed_url`` with the server's key (no request: a key signs locally; any
other source signs through IAM's ``signBlob``). Needs ``goth-actors[google-auth]``.

Run it: ``uv run python examples/google_cloud_client.py``. Without credentials it starts the
built-in emulator and a tiny local API on 127.0.0.1 that checks tokens as Google's APIs do;
with ``GOOGLE_APPLICATION_CREDENTIALS`` set to a service-account key, it calls Google's
userinfo API.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta

from _credentials import SCOPES, emulator_unless_real, key_file, userinfo_api
from google.auth import impersonated_credentials
from google.auth.transport.requests import AuthorizedSession, Request

import goth_actors
from goth_actors.integrations.google_auth import Credentials
from goth_actors.testing import GoogleEmulator


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


def signed_url(emulator: GoogleEmulator | None) -> None:
    """google-cloud-storage's V4 signed URL, signed by the server's source (here its key)."""
    try:
        from google.cloud import storage  # type: ignore[import-untyped]
    except ImportError:
        print("google-cloud-storage is not installed: no signed URL")
        return
    # google-auth's order; with the emulator, its metadata server is the one found (last).
    environ = None if emulator is None else {"GCE_METADATA_HOST": emulator.metadata_host}
    project = goth_actors.project_id(environ=environ) or "no-project"
    client = storage.Client(project=project, credentials=Credentials("userinfo"))
    blob = client.bucket("example-bucket").blob("report.csv")
    url = blob.generate_signed_url(expiration=timedelta(minutes=15), version="v4")
    print(f"signed URL for project {project}: {url.partition('?')[0]}?... ", end="")
    print(f"(signature {len(url.rpartition('X-Goog-Signature=')[2]) // 2} bytes)")


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
        signed_url(emulator)
        goth_actors.shutdown()


if __name__ == "__main__":
    main()

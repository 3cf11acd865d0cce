"""Workload identity federation: a Google token for a Kubernetes or CI token, no key file.

Run it: ``uv run python examples/workload_identity.py``.

With ``GOOGLE_APPLICATION_CREDENTIALS`` naming an ``external_account`` file (what ``gcloud iam
workload-identity-pools create-cred-config`` writes), it fetches one token with it. Otherwise
it starts a GoogleEmulator, which plays both the identity provider and Google, and shows the
two usual set-ups:

1. a Kubernetes-style token in a file, exchanged at STS for a federated token;
2. a CI system's OIDC URL (GitHub Actions style), then impersonation of a service account.

It never prints a token, only who it is for and when it expires.
"""

from __future__ import annotations

import os
import sys
import tempfile
import time
from pathlib import Path

from goth_actors import Token, WorkloadIdentity, default_source, fetch, shutdown, start_link
from goth_actors.testing import GoogleEmulator


def describe(source: WorkloadIdentity, token: Token) -> None:
    credential_source = source.credentials["credential_source"]
    print(f"  subject token from: {credential_source.get('file') or credential_source['url']}")
    print(f"  impersonates:       {source.service_account_email or '(no one: direct federation)'}")
    print(f"  scope:              {token.scope}")
    print(f"  expires in:         {token.expires_in() / 60:.0f} min")


def with_real_credentials() -> int:
    source = default_source()
    if not isinstance(source, WorkloadIdentity):
        print(f"GOOGLE_APPLICATION_CREDENTIALS is not an external_account file: {source!r}")
        return 2
    print("Workload identity from GOOGLE_APPLICATION_CREDENTIALS")
    describe(source, Token.fetch(source))
    return 0


def with_the_emulator() -> int:
    with GoogleEmulator() as emu, tempfile.TemporaryDirectory() as folder:
        print("1. A projected service-account token in a file, exchanged at STS")
        credentials = emu.workload_identity(file=Path(folder) / "token")
        source = WorkloadIdentity(credentials)
        token = Token.fetch(source)
        describe(source, token)
        print(f"  Google sees:        {emu.token_info(token.token)['email']}")  # type: ignore[index]

        print("2. A CI system's OIDC URL, then impersonation of a deployer, in a token server")
        deployer = emu.service_account("deployer@emulator-project.iam.gserviceaccount.com")
        credentials = emu.workload_identity(format="json", service_account=deployer["client_email"])
        source = WorkloadIdentity(credentials, scopes=("https://www.googleapis.com/auth/pubsub",))
        started = time.perf_counter()
        start_link(name="deployer", source=source, prefetch="sync")
        try:
            token = fetch("deployer")
            took = (time.perf_counter() - started) * 1000
            describe(source, token)
            print(f"  Google sees:        {emu.token_info(token.token)['email']}")  # type: ignore[index]
            steps = " -> ".join(request.endpoint for request in emu.requests[-3:])
            print(f"  requests:           {steps} (server up with a token in {took:.0f} ms)")
        finally:
            shutdown()
    return 0


def main() -> int:
    if os.environ.get("GOOGLE_APPLICATION_CREDENTIALS"):
        return with_real_credentials()
    return with_the_emulator()


if __name__ == "__main__":
    sys.exit(main())

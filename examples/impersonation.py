"""Service-account impersonation: act as a service account with your own credentials.

Run it: ``uv run python examples/impersonation.py``.

With ``GOOGLE_APPLICATION_CREDENTIALS`` set, it impersonates the service account named by
``IMPERSONATE_SERVICE_ACCOUNT`` with those credentials (your identity needs the Service
Account Token Creator role on it), or, for gcloud's ``impersonated_service_account`` file,
the account that file names. Otherwise it starts a GoogleEmulator and shows:

1. a user (a refresh token, as ``gcloud auth application-default login`` leaves) acting as a
   deployer service account, through IAM Credentials' generateAccessToken;
2. the same through a chain of delegates, with a two-hour lifetime;
3. gcloud's ``impersonated_service_account`` file, picked by ``source_from_credentials``.

It never prints a token, only who it is for and when it expires.
"""

from __future__ import annotations

import os
import sys

from goth_actors import (
    Impersonated,
    RefreshToken,
    Token,
    default_source,
    fetch,
    shutdown,
    source_from_credentials,
    start_link,
)
from goth_actors.testing import GoogleEmulator

CLOUD_PLATFORM = "https://www.googleapis.com/auth/cloud-platform"


def describe(source: Impersonated, token: Token) -> None:
    print(f"  acting as:   {source.target_principal}")
    if source.delegates:
        print(f"  delegates:   {' -> '.join(source.delegates)}")
    print(f"  scope:       {token.scope}")
    print(f"  expires in:  {token.expires_in() / 60:.0f} min")


def with_real_credentials() -> int:
    source = default_source()
    if not isinstance(source, Impersonated):
        target = os.environ.get("IMPERSONATE_SERVICE_ACCOUNT")
        if not target:
            print("set IMPERSONATE_SERVICE_ACCOUNT to the service account to act as")
            return 2
        source = Impersonated(source, target)
    describe(source, Token.fetch(source))
    return 0


def with_the_emulator() -> int:
    with GoogleEmulator() as emu:
        user = emu.authorized_user(email="alice@example.com")
        deployer = emu.service_account("deployer@emulator-project.iam.gserviceaccount.com")
        target = deployer["client_email"]

        print("1. alice@example.com impersonates the deployer, in a token server")
        source = Impersonated(RefreshToken(user), target, url=emu.iam_url)
        start_link(name="deployer", source=source, prefetch="sync")
        try:
            token = fetch("deployer")
            describe(source, token)
            print(f"  Google sees: {emu.token_info(token.token)['email']}")  # type: ignore[index]
        finally:
            shutdown()

        print("2. Through a delegate, for two hours (where the org policy allows it)")
        emu.iam_max_lifetime = 7200
        emu.token_lifetime = 7200
        builder = emu.service_account("builder@emulator-project.iam.gserviceaccount.com")
        source = Impersonated(
            RefreshToken(user),
            target,
            delegates=(builder["client_email"],),
            lifetime=7200,
            url=emu.iam_url,
        )
        describe(source, Token.fetch(source))

        print("3. gcloud's impersonated_service_account file")
        adc = {
            "type": "impersonated_service_account",
            "source_credentials": user,
            "service_account_impersonation_url": (
                f"{emu.iam_url}/v1/projects/-/serviceAccounts/{target}:generateAccessToken"
            ),
            "delegates": [],
        }
        picked = source_from_credentials(adc, scopes=(CLOUD_PLATFORM,))
        assert isinstance(picked, Impersonated)
        describe(picked, Token.fetch(picked))
    return 0


def main() -> int:
    if os.environ.get("GOOGLE_APPLICATION_CREDENTIALS"):
        return with_real_credentials()
    return with_the_emulator()


if __name__ == "__main__":
    sys.exit(main())

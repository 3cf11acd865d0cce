"""ID tokens for IAP and Cloud Run: three ways to get one, each a plain token source.

Run it: ``uv run python examples/id_token.py [AUDIENCE]``.

An ID token proves who the caller is to a service behind Identity-Aware Proxy (the audience
is the IAP OAuth client id) or to a private Cloud Run service (the audience is its URL). Each
way gives a `goth_actors.Token` whose ``expires`` is the JWT's ``exp`` and whose
``scope`` is its ``aud``, so a token server refreshes it like any other:

1. a service-account key: ``ServiceAccount(key, target_audience=AUDIENCE)``;
2. the metadata server (on Google Cloud): ``Metadata(audience=AUDIENCE)``;
3. impersonation of a service account: ``Impersonated(source, target, audience=AUDIENCE)``.

With ``GOOGLE_APPLICATION_CREDENTIALS`` set to a service-account key it uses way 1 for real.
Otherwise it starts a GoogleEmulator and shows all three.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import jwt

from goth_actors import Impersonated, Metadata, RefreshToken, ServiceAccount, Source, Token
from goth_actors.testing import GoogleEmulator

AUDIENCE = "https://hello-abc123-ew.a.run.app"


def show(title: str, source: Source) -> None:
    token = Token.fetch(source)
    claims = jwt.decode(token.token, options={"verify_signature": False})
    print(title)
    print(f"  aud (token.scope):   {token.scope}")
    print(f"  email:               {claims.get('email')}")
    print(f"  exp (token.expires): {token.expires:.0f}, in {token.expires_in() / 60:.0f} min")
    print(f"  header:              Authorization: Bearer <{len(token.token)} characters>")


def main() -> int:
    audience = sys.argv[1] if len(sys.argv) > 1 else AUDIENCE
    named = os.environ.get("GOOGLE_APPLICATION_CREDENTIALS")
    if named:
        key = json.loads(Path(named).read_text())
        show("A service-account key", ServiceAccount(key, target_audience=audience))
        return 0
    with GoogleEmulator() as emu:
        key = emu.service_account("invoker@emulator-project.iam.gserviceaccount.com")
        show("1. A service-account key", ServiceAccount(key, target_audience=audience))
        show("2. The metadata server", Metadata(url=emu.metadata_url, audience=audience))
        caller = RefreshToken(emu.authorized_user(email="alice@example.com"))
        target = key["client_email"]
        show(
            "3. alice@example.com impersonating the invoker",
            Impersonated(caller, target, audience=audience, url=emu.iam_url),
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""What the parity tests share: a google-auth transport, and a token's identity as the
emulator sees it (two exchanges never give the same token string, but they must give the
same identity and scopes)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import google.auth.transport.requests
import requests

from goth_actors.testing import GoogleEmulator

IDENTITY_FIELDS = ("email", "scope", "sub", "azp", "aud")


@contextmanager
def auth_request() -> Iterator[google.auth.transport.requests.Request]:
    """google-auth's requests transport on a session of its own."""
    session = requests.Session()
    try:
        yield google.auth.transport.requests.Request(session)
    finally:
        session.close()


def identity(emulator: GoogleEmulator, token: str | None) -> dict[str, str]:
    """Who ``token`` is for and what it may do, as tokeninfo says (never the token itself)."""
    assert token is not None
    info = emulator.token_info(token)
    assert info is not None, "the emulator does not vouch for this token"
    return {name: info[name] for name in IDENTITY_FIELDS if name in info}

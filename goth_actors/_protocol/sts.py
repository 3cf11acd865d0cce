"""Google's Security Token Service: the token exchange of workload identity federation.

Also the client authentication both STS grants use, and the check of a client's credentials
fields.

`token_exchange` builds the RFC 8693 exchange (``urn:ietf:params:oauth:grant-type:
token-exchange``) of `WorkloadIdentity`; `client_basic_auth` is the
HTTP Basic client authentication (``client_id:client_secret``) that it and
`WorkforceUser`'s refresh at ``/v1/oauthtoken`` send.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Mapping, Sequence
from typing import Any

from goth_actors._base import ConfigError
from goth_actors._protocol.exchange import Exchange
from goth_actors._protocol.subject import Subject
from goth_actors._protocol.validate import FORM, form

__all__ = [
    "ACCESS_TOKEN_TYPE",
    "TOKEN_EXCHANGE_GRANT",
    "check_client",
    "client_basic_auth",
    "token_exchange",
]

TOKEN_EXCHANGE_GRANT = "urn:ietf:params:oauth:grant-type:token-exchange"
ACCESS_TOKEN_TYPE = "urn:ietf:params:oauth:token-type:access_token"


def check_client(creds: Mapping[str, Any]) -> None:
    """Checks the optional ``client_id`` and ``client_secret`` of an ``external_account``."""
    client_id, client_secret = creds.get("client_id"), creds.get("client_secret")
    if client_id is not None and (not isinstance(client_id, str) or not client_id.strip()):
        raise ConfigError("credentials.client_id", "must be a non-empty string")
    if client_secret is not None and not isinstance(client_secret, str):
        raise ConfigError("credentials.client_secret", "must be a string")
    if client_secret and client_id is None:
        raise ConfigError("credentials.client_secret", "is given without a client_id")


def client_basic_auth(creds: Mapping[str, Any]) -> tuple[dict[str, str], tuple[str, ...]]:
    """``({"Authorization": "Basic ..."}, secrets)`` for the client, or ``({}, ())`` without."""
    client_id = creds.get("client_id")
    if not isinstance(client_id, str) or not client_id:
        return {}, ()
    client_secret = str(creds.get("client_secret") or "")
    pair = f"{client_id}:{client_secret}".encode()
    header = "Basic " + base64.b64encode(pair).decode("ascii")
    return {"Authorization": header}, (header, *((client_secret,) if client_secret else ()))


def token_exchange(
    *,
    url: str,
    credentials: Mapping[str, Any],
    subject: Subject,
    scopes: Sequence[str],
) -> Exchange:
    """The STS token exchange of ``subject`` for an access token with ``scopes``."""
    fields = [
        ("audience", str(credentials["audience"])),
        ("grant_type", TOKEN_EXCHANGE_GRANT),
        ("requested_token_type", ACCESS_TOKEN_TYPE),
        ("scope", " ".join(scopes)),
        ("subject_token", subject.token),
        ("subject_token_type", str(credentials["subject_token_type"])),
    ]
    auth, secrets = client_basic_auth(credentials)
    project = credentials.get("workforce_pool_user_project")
    if not auth and project:
        # Only without client authentication: the client id names the project then.
        fields.append(("options", json.dumps({"userProject": project}, separators=(",", ":"))))
    return Exchange(
        method="POST",
        url=url,
        headers={"Content-Type": FORM, "Accept": "application/json", **auth},
        body=form(fields),
        kind="oauth",
        scope=" ".join(scopes),
        secrets=(*subject.all_secrets, *secrets),
        client_cert=subject.client_cert,
    )

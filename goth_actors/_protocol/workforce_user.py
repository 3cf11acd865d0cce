"""``WorkforceUser``: a workforce identity federation user (``external_account_authorized_user``).

What ``gcloud auth application-default login`` writes for a user of a workforce pool: a
refresh token that Google's STS (``/v1/oauthtoken``), not ``oauth2.googleapis.com``, refreshes,
with the OAuth client's credentials as HTTP Basic authentication.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import KW_ONLY, dataclass, field
from types import MappingProxyType
from typing import Any

from goth_actors._protocol.answers import token_problem
from goth_actors._protocol.endpoints import EndpointTrust
from goth_actors._protocol.exchange import Exchange
from goth_actors._protocol.sts import client_basic_auth
from goth_actors._protocol.token import Exchanger, Source, Token
from goth_actors._protocol.validate import (
    FORM,
    credentials_mapping,
    form,
    optional_string,
    quota_project,
    required_string,
    shown,
)

__all__ = ["WorkforceUser"]


@dataclass(frozen=True, eq=False, repr=False)
class WorkforceUser(Source):
    """A workforce identity federation user, as ``gcloud auth login`` leaves them.

    ``gcloud auth login`` with a workforce pool writes ``external_account_authorized_user``
    credentials.

    Refreshes at STS's ``oauthtoken`` endpoint with the client's credentials (HTTP Basic).
    When STS answers with a new refresh token, that one is used from then on (in memory: the
    file is not rewritten).

    Args:
        credentials: The decoded ``external_account_authorized_user`` credentials:
            ``refresh_token``, ``client_id``, ``client_secret``, and optionally ``audience``
            (the workforce pool provider), ``token_url`` (default: the universe's
            ``https://sts.googleapis.com/v1/oauthtoken``), ``token_info_url``, ``revoke_url``,
            ``quota_project_id`` and ``universe_domain``.
        universe_domain: The universe. Default: the credentials', else ``googleapis.com``.
        allow_custom_endpoints: Send the refresh token to a ``token_url`` that is not one of
            Google's token services (a private endpoint you trust). Default ``False``.
        quota_project_id: The project to bill (``x-goog-user-project``). Default: the
            credentials' ``quota_project_id``.

    Raises:
        ConfigError: At construction, naming the missing or malformed field.

    Examples:
        ```python
        source = WorkforceUser(json.load(open(adc_path)))
        ```
    """

    credentials: Mapping[str, Any]
    _: KW_ONLY
    universe_domain: str | None = None
    allow_custom_endpoints: bool = False
    quota_project_id: str | None = None
    _token_url: str = field(init=False, repr=False, compare=False)
    _refresh: list[str] = field(init=False, repr=False, compare=False)  # one cell: rotation
    _universe: str = field(init=False, repr=False, compare=False)
    _universe_trusted: bool = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        creds = credentials_mapping(self.credentials, "external_account_authorized_user")
        refresh = required_string(creds, "refresh_token", secret=True)
        required_string(creds, "client_id")
        required_string(creds, "client_secret", secret=True)
        optional_string(creds.get("audience"), "credentials.audience")
        trust = EndpointTrust.resolve(creds, self.universe_domain, self.allow_custom_endpoints)
        token_url = trust.endpoint(creds, "token_url", "sts", "/v1/oauthtoken")
        for key in ("token_info_url", "revoke_url"):
            if creds.get(key) is not None:
                trust.check(creds[key], f"credentials.{key}")
        trust.bind(self)
        object.__setattr__(self, "quota_project_id", quota_project(self.quota_project_id, creds))
        object.__setattr__(self, "credentials", MappingProxyType(dict(creds)))
        object.__setattr__(self, "_token_url", token_url)
        object.__setattr__(self, "_refresh", [refresh])

    @property
    def token_url(self) -> str:
        """The STS endpoint this source refreshes at."""
        return self._token_url

    @property
    def audience(self) -> str | None:
        """The workforce pool provider, if the credentials name it."""
        value = self.credentials.get("audience")
        return value if isinstance(value, str) else None

    def __repr__(self) -> str:
        return (
            f"WorkforceUser(client_id={self.credentials['client_id']!r}, "
            f"audience={self.audience!r}, token_url={self._token_url!r}"
            f"{shown('quota_project_id', self.quota_project_id)})"
        )

    def prepare(  # the interface's signature
        self,
        now: float,  # noqa: ARG002
        environ: Mapping[str, str] | None = None,  # noqa: ARG002
    ) -> Exchange:
        refresh = self._refresh[0]
        auth, secrets = client_basic_auth(self.credentials)
        return Exchange(
            method="POST",
            url=self._token_url,
            headers={"Content-Type": FORM, "Accept": "application/json", **auth},
            body=form([("grant_type", "refresh_token"), ("refresh_token", refresh)]),
            kind="oauth",
            secrets=(refresh, *secrets),
        )

    def fetch_token(self, exchanger: Exchanger) -> Token:
        """Refreshes at STS; keeps a rotated refresh token for the next time."""
        token, data = exchanger.answer(self.prepare(exchanger.clock()))
        rotated = data.get("refresh_token")
        if isinstance(rotated, str) and token_problem(rotated, "refresh_token") is None:
            self._refresh[0] = rotated  # one atomic store: no lock needed
        return token

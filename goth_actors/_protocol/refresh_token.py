"""``RefreshToken``: a user's refresh token (an ``authorized_user`` file, as gcloud writes it)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

from goth_actors._base import ConfigError
from goth_actors._protocol.endpoints import EndpointTrust, check_explicit_url
from goth_actors._protocol.exchange import Exchange
from goth_actors._protocol.token import Source
from goth_actors._protocol.validate import (
    FORM,
    credentials_mapping,
    form,
    quota_project,
    required_string,
    shown,
)

__all__ = ["RefreshToken"]


@dataclass(frozen=True, eq=False, repr=False)
class RefreshToken(Source):
    """A user's refresh token (an ``authorized_user`` key file, as gcloud writes it).

    Args:
        credentials: The decoded ``authorized_user`` credentials: ``client_id``,
            ``client_secret`` and ``refresh_token``; ``token_uri`` is used when present, and
            ``rapt_token`` (a reauth proof token, which reauth policies require) is sent as
            ``rapt``.
        url: Token endpoint. Default: the credentials' ``token_uri``, else
            ``https://oauth2.googleapis.com/token``.
        universe_domain: The universe of these credentials. Default: the credentials'
            ``universe_domain``, else ``googleapis.com``. Naming it also trusts that
            universe's token services for ``token_uri``.
        allow_custom_endpoints: Send the refresh token to a ``token_uri`` that is not one of
            Google's token services (a private endpoint you trust). Default ``False``.
        quota_project_id: The project to bill (``x-goog-user-project``). Default: the
            credentials' ``quota_project_id``. APIs that need a quota project refuse user
            credentials without one.

    Raises:
        ConfigError: At construction, naming the missing or malformed field.

    Examples:
        ```python
        source = RefreshToken(json.load(open(adc_path)))
        ```
    """

    credentials: Mapping[str, Any]
    url: str | None = None
    universe_domain: str | None = None
    allow_custom_endpoints: bool = False
    quota_project_id: str | None = None
    _token_url: str = field(init=False, repr=False, compare=False)
    _universe: str = field(init=False, repr=False, compare=False)
    _universe_trusted: bool = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        credentials = credentials_mapping(self.credentials, "authorized_user")
        for key in ("client_id", "client_secret", "refresh_token"):
            required_string(credentials, key, secret=key != "client_id")
        url = None if self.url is None else check_explicit_url(self.url, "url")
        trust = EndpointTrust.resolve(
            credentials, self.universe_domain, self.allow_custom_endpoints
        )
        rapt = credentials.get("rapt_token")
        if rapt is not None and (not isinstance(rapt, str) or not rapt.strip()):
            raise ConfigError("credentials.rapt_token", "must be a non-empty string")
        object.__setattr__(
            self, "quota_project_id", quota_project(self.quota_project_id, credentials)
        )
        object.__setattr__(self, "credentials", MappingProxyType(dict(credentials)))
        object.__setattr__(self, "url", url)
        trust.bind(self)
        token_url = trust.endpoint(credentials, "token_uri", "oauth2", "/token", url)
        object.__setattr__(self, "_token_url", token_url)

    @property
    def token_url(self) -> str:
        """The token endpoint this source posts to."""
        return self._token_url

    def __repr__(self) -> str:
        return (
            f"RefreshToken(client_id={self.credentials['client_id']!r}, url={self._token_url!r}"
            f"{shown('quota_project_id', self.quota_project_id)})"
        )

    def prepare(  # the interface's signature
        self,
        now: float,  # noqa: ARG002
        environ: Mapping[str, str] | None = None,  # noqa: ARG002
    ) -> Exchange:
        secret = str(self.credentials["client_secret"])
        refresh = str(self.credentials["refresh_token"])
        fields = [
            ("grant_type", "refresh_token"),
            ("refresh_token", refresh),
            ("client_id", str(self.credentials["client_id"])),
            ("client_secret", secret),
        ]
        secrets: tuple[str, ...] = (secret, refresh)
        rapt = self.credentials.get("rapt_token")
        if rapt:
            fields.append(("rapt", str(rapt)))
            secrets += (str(rapt),)
        return Exchange(
            method="POST",
            url=self._token_url,
            headers={"Content-Type": FORM, "Accept": "application/json"},
            body=form(fields),
            kind="oauth",
            secrets=secrets,
        )

"""``Metadata``: the metadata server of Compute Engine, GKE, Cloud Run and the rest."""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from urllib.parse import quote, urlencode, urlsplit

from goth_actors._base import ConfigError
from goth_actors._protocol.endpoints import check_universe_domain
from goth_actors._protocol.exchange import Exchange
from goth_actors._protocol.token import Source
from goth_actors._protocol.validate import check_project, check_scopes, check_url, optional_string

__all__ = ["DEFAULT_METADATA_URL", "Metadata"]

DEFAULT_METADATA_URL = "http://metadata.google.internal"
_METADATA_PATH = "/computeMetadata/v1/instance/service-accounts/"


@dataclass(frozen=True)
class Metadata(Source):
    """The metadata server of Compute Engine, GKE, Cloud Run, App Engine and Cloud Functions.

    Args:
        account: The service account: ``"default"`` or its email.
        url: Base URL of the metadata server. Default: ``http://`` + ``GCE_METADATA_HOST``
            when that variable is set (read at each fetch, never at import), else
            ``http://metadata.google.internal``.
        audience: When set, ask for an ID token for this audience
            (``.../identity?audience=...&format=full``) instead of an access token.
        scopes: Scopes to ask for (``?scopes=a,b``); ``None`` for the instance's own.
        quota_project_id: The project to bill (``x-goog-user-project``), or ``None``.
        universe_domain: The universe. Default ``None``: the metadata server's own, read
            from ``universe/universe-domain`` when needed (see ``goth_actors.universe_domain``).

    Examples:
        >>> source = Metadata()  # on Google Cloud
        >>> source = Metadata(audience="https://my-service-abc123.a.run.app")
    """

    account: str = "default"
    url: str | None = None
    audience: str | None = None
    scopes: Sequence[str] | None = None
    quota_project_id: str | None = None
    universe_domain: str | None = None
    _fixed_token_url: str | None = field(default=None, init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        account = optional_string(self.account, "account")
        if account is None:
            raise ConfigError("account", "must be 'default' or a service account email")
        object.__setattr__(self, "account", account)
        object.__setattr__(self, "url", check_url(self.url, "url"))
        object.__setattr__(self, "audience", optional_string(self.audience, "audience"))
        if self.scopes is not None:
            scopes = check_scopes(self.scopes)
            if not scopes:
                raise ConfigError("scopes", "is empty; pass None for the instance's own scopes")
            object.__setattr__(self, "scopes", scopes)
        if self.audience is not None and self.scopes is not None:
            raise ConfigError("scopes", "cannot be combined with audience (an ID token)")
        quota = check_project(self.quota_project_id, "quota_project_id")
        object.__setattr__(self, "quota_project_id", quota)
        if self.universe_domain is not None:
            object.__setattr__(self, "universe_domain", check_universe_domain(self.universe_domain))
        # With a fixed url, the request's URL never changes: built once, not at every fetch.
        fixed = None if self.url is None else self._token_url(self.url.rstrip("/"))
        object.__setattr__(self, "_fixed_token_url", fixed)

    def base_url(self, environ: Mapping[str, str] | None = None) -> str:
        """The metadata server's base URL, resolved now (see ``url``)."""
        if self.url is not None:
            return self.url.rstrip("/")
        env = os.environ if environ is None else environ
        host = env.get("GCE_METADATA_HOST") or env.get("GCE_METADATA_ROOT")
        if host:
            host = host.strip().rstrip("/")
            url = host if host.startswith(("http://", "https://")) else f"http://{host}"
            try:
                urlsplit(url)
            except ValueError:  # its message would quote the host, and a password in it
                raise ConfigError(
                    "GCE_METADATA_HOST", "is not a valid host[:port] (it is not shown)"
                ) from None
            return url
        return DEFAULT_METADATA_URL

    def value_exchange(self, path: str, environ: Mapping[str, str] | None = None) -> Exchange:
        """A GET of a metadata value, e.g. ``project/project-id``."""
        return Exchange(
            method="GET",
            url=f"{self.base_url(environ)}/computeMetadata/v1/{path}",
            headers={"Metadata-Flavor": "Google"},
            body=b"",
            kind="metadata",
        )

    def prepare(  # the interface's signature
        self,
        now: float,  # noqa: ARG002
        environ: Mapping[str, str] | None = None,
    ) -> Exchange:
        url = self._fixed_token_url or self._token_url(self.base_url(environ))
        return Exchange(
            method="GET",
            url=url,
            headers={"Metadata-Flavor": "Google"},
            body=b"",
            kind="metadata" if self.audience is None else "metadata_identity",
        )

    def _token_url(self, base: str) -> str:
        url = base + _METADATA_PATH + quote(self.account, safe="@")
        if self.audience is not None:
            return url + "/identity?" + urlencode({"audience": self.audience, "format": "full"})
        url += "/token"
        if self.scopes:
            url += "?" + urlencode({"scopes": ",".join(self.scopes)})
        return url

"""``Impersonated``: a service account's token, got by impersonating it with another source's."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import KW_ONLY, dataclass, field
from urllib.parse import quote

from goth_actors._base import ConfigError
from goth_actors._protocol.endpoints import (
    GOOGLE_UNIVERSE,
    check_explicit_url,
    check_universe_domain,
    derived_url,
    source_universe,
    universe_trusted,
)
from goth_actors._protocol.exchange import Exchange
from goth_actors._protocol.iam import (
    DEFAULT_LIFETIME,
    RESOURCE_PREFIX,
    check_account,
    check_delegates,
    check_lifetime,
    generate_access_token,
    generate_id_token,
)
from goth_actors._protocol.metadata import Metadata
from goth_actors._protocol.service_account import ServiceAccount
from goth_actors._protocol.token import Exchanger, Source, Token
from goth_actors._protocol.validate import (
    CLOUD_PLATFORM_SCOPE,
    check_project,
    check_scopes,
    optional_string,
    shown,
)

__all__ = ["Impersonated"]


@dataclass(frozen=True, eq=False, repr=False)
class Impersonated(Source):
    """A service account's token, got by impersonating it with another source's token.

    Fetches a token from ``source`` (any source that gives access tokens: a user's refresh
    token, the metadata server, another service account, workload identity), then asks IAM
    Credentials for a token of ``target_principal``: ``generateAccessToken``, or
    ``generateIdToken`` when ``audience`` is set. The source's identity needs the Service
    Account Token Creator role on the target (or on the first of ``delegates``).

    Args:
        source: Where the caller's own token comes from.
        target_principal: The email (or numeric unique id) of the service account to
            impersonate.
        scopes: Scopes of the impersonated access token. Default:
            ``("https://www.googleapis.com/auth/cloud-platform",)``.
        delegates: The chain of service accounts from the caller to the target, each
            allowed to impersonate the next, as emails or ``projects/-/serviceAccounts/...``
            names. Default: none, the caller impersonates the target directly.
        lifetime: Seconds the access token lives, 1 to 43200 (above 3600 only where the
            organization policy ``iam.allowServiceAccountCredentialLifetimeExtension`` allows
            it). Default: 3600.
        audience: When set, ask for an ID token for this audience (IAP, Cloud Run) instead of
            an access token; ``scopes`` and ``lifetime`` do not apply. The ID token carries
            the target's email.
        url: Base URL of IAM Credentials. Default: ``https://iamcredentials.`` + the universe
            domain.
        universe_domain: The universe. Default: the source's, else ``googleapis.com``.
        quota_project_id: The project to bill (``x-goog-user-project``), or ``None``.

    Raises:
        ConfigError: At construction, naming the field, for any invalid input.

    Examples:
        ```python
        user = RefreshToken(json.load(open(adc_path)))
        source = Impersonated(user, "deployer@my-project.iam.gserviceaccount.com")
        token = Token.fetch(source)
        ```
    """

    source: Source
    target_principal: str
    _: KW_ONLY
    scopes: Sequence[str] = (CLOUD_PLATFORM_SCOPE,)
    delegates: Sequence[str] = ()
    lifetime: float = DEFAULT_LIFETIME
    audience: str | None = None
    url: str | None = None
    universe_domain: str | None = None
    quota_project_id: str | None = None
    _universe: str = field(init=False, repr=False, compare=False)
    _universe_trusted: bool = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if not isinstance(self.source, Source):
            raise ConfigError(
                "source", f"must be a goth_actors Source, got {type(self.source).__name__}"
            )
        if _gives_id_tokens(self.source):
            raise ConfigError(
                "source", "gives ID tokens; IAM Credentials needs the caller's access token"
            )
        object.__setattr__(self, "target_principal", check_account(self.target_principal))
        scopes = check_scopes(self.scopes)
        if not scopes and self.audience is None:
            raise ConfigError("scopes", "is empty; an impersonated access token needs a scope")
        object.__setattr__(self, "scopes", scopes)
        object.__setattr__(self, "delegates", check_delegates(self.delegates, "delegates"))
        object.__setattr__(self, "lifetime", check_lifetime(self.lifetime))
        object.__setattr__(self, "audience", optional_string(self.audience, "audience"))
        url = None if self.url is None else check_explicit_url(self.url, "url")
        object.__setattr__(self, "url", url.rstrip("/") if url else None)
        # The caller's universe_domain stays as passed (replace() passes it back); the one in
        # effect, the source's unless the caller names one, is trusted as far as that is.
        explicit = self.universe_domain
        universe = explicit or source_universe(self.source) or GOOGLE_UNIVERSE
        object.__setattr__(self, "_universe", check_universe_domain(universe))
        trusted = explicit is not None or universe_trusted(self.source)
        object.__setattr__(self, "_universe_trusted", trusted)
        if url is None:
            derived_url(self, "iamcredentials", "", "url")  # refused for an untrusted universe
        quota = check_project(self.quota_project_id, "quota_project_id")
        object.__setattr__(self, "quota_project_id", quota)

    def __repr__(self) -> str:
        return (
            f"Impersonated(source={self.source!r}, target_principal={self.target_principal!r}, "
            f"scopes={self.scopes!r}, delegates={self.delegates!r}, lifetime={self.lifetime!r}"
            f"{shown('audience', self.audience)}, url={self.iam_url!r}"
            f"{shown('quota_project_id', self.quota_project_id)})"
        )

    @property
    def iam_url(self) -> str:
        """IAM Credentials' base URL this source posts to."""
        return self.url or f"https://iamcredentials.{self._universe}"

    def prepare(self, now: float, environ: Mapping[str, str] | None = None) -> Exchange:
        raise NotImplementedError("Impersonated takes two requests; use Token.fetch()")

    def fetch_token(self, exchanger: Exchanger) -> Token:
        """Fetches the source's token, then the target's from IAM Credentials."""
        caller = self.source.fetch_token(exchanger)
        authorization = f"{caller.type} {caller.token}"
        resource = f"{self.iam_url}/v1/{RESOURCE_PREFIX}{quote(self.target_principal, safe='@')}"
        if self.audience is not None:
            return generate_id_token(
                exchanger,
                url=f"{resource}:generateIdToken",
                authorization=authorization,
                audience=self.audience,
                delegates=self.delegates,
                secrets=(caller.token,),
            )
        return generate_access_token(
            exchanger,
            url=f"{resource}:generateAccessToken",
            authorization=authorization,
            scopes=self.scopes,
            lifetime=self.lifetime,
            delegates=self.delegates,
            secrets=(caller.token,),
        )


def _gives_id_tokens(source: Source) -> bool:
    if isinstance(source, ServiceAccount):
        return source.target_audience is not None or "target_audience" in (source.claims or {})
    if isinstance(source, Metadata | Impersonated):
        return source.audience is not None
    return False

"""Where credentials may be sent: the endpoint policy for URLs that come from credential files.

A credential file names the endpoints its secrets are sent to: a service account's
``token_uri``, an ``external_account``'s ``token_url`` (with the subject token: often the VM's
own metadata token or a Kubernetes token) and ``service_account_impersonation_url`` (with the
STS token as a bearer), ``token_info_url``, and the IAM URL of an impersonated file. A file
from an untrusted place could point them anywhere. So, for every such URL:

- plain ``http://`` is refused, except to loopback (``127.0.0.0/8``, ``::1``, ``localhost``:
  emulators and a local ``goth-actors serve``);
- by default only Google's token services are accepted, each at its token paths only:
  ``sts`` (``/v1/token``, ``/v1/oauthtoken``, ``/v1/introspect``, ``/v1/oauthrevoke``...),
  ``iamcredentials`` (``/v1/projects/-/serviceAccounts/{email}:generateAccessToken``) and
  ``oauth2`` (``/token``, ``/tokeninfo``, ``/revoke``) under the universe domain
  (``googleapis.com``, or one the caller names), with their regional (``us-east1.sts``,
  ``us-east1-sts``, ``sts.us-east1``, ``sts.us-east1.rep``), private (``sts-xyz.p``) and mTLS
  (``sts.mtls``) variants; for ``googleapis.com`` also the older token URIs
  ``https://www.googleapis.com/oauth2/v4/token`` (or ``v3``) and
  ``https://accounts.google.com/o/oauth2/token``; and loopback, at any path. A host alone is
  not enough: ``www.googleapis.com`` also serves Cloud Storage's upload API (anyone's bucket),
  and ``sts.storage.googleapis.com`` is a bucket called ``sts``, so a regional label must look
  like a region (``us-east1``, ``eu``).

A universe domain that only the file names is not trusted for this: it is the caller's
``universe_domain=`` (or ``GOOGLE_CLOUD_UNIVERSE_DOMAIN``, which `default_source` reads)
that makes another universe's hosts acceptable, since a hostile file could name any domain.
A source keeps its ``universe_domain`` field as the caller passed it, and the universe in
effect and whether it is trusted in private fields (`EndpointTrust.bind`): so that
``dataclasses.replace`` gives the constructor back only what the caller named.
The opt-out, for private endpoints under another name, is the ``allow_custom_endpoints=True``
keyword of the sources and of ``default_source`` / ``source_from_credentials``: never an
environment variable. Where subject tokens are *read from* (``credential_source.url``, AWS
metadata, the metadata server) is not policed here.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from goth_actors._base import ConfigError

__all__ = [
    "GOOGLE_UNIVERSE",
    "EndpointTrust",
    "check_allow_custom",
    "check_credential_url",
    "check_explicit_url",
    "check_universe_domain",
    "derived_url",
    "is_google_endpoint",
    "is_loopback",
    "source_universe",
    "universe_trusted",
]

GOOGLE_UNIVERSE = "googleapis.com"
"""The default universe domain: Google Cloud's own."""

_LABEL = r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?"
_REGION = r"[a-z]{2}|[a-z]+-[a-z]+[0-9]+"  # eu, us-east1, northamerica-northeast1
# Each of Google's token services, with the paths a credentials file names on it.
_SERVICE_PATHS = {
    "sts": (
        re.compile(r"/v1(?:beta)?/(?:token|oauthtoken|oauth/token|introspect|oauthrevoke)"),
        "/v1/token, /v1/oauthtoken, /v1/introspect or /v1/oauthrevoke",
    ),
    "iamcredentials": (
        re.compile(r"/v1/projects/-/serviceAccounts/[^/\\]+:generateAccessToken"),
        "/v1/projects/-/serviceAccounts/{email}:generateAccessToken",
    ),
    "oauth2": (re.compile(r"/token|/tokeninfo|/revoke"), "/token, /tokeninfo or /revoke"),
}
_SERVICE_HOST = re.compile(
    r"(?:{label}[.-])?(?P<svc>{svc})"  # sts, us-east1.sts, us-east1-sts
    r"(?:-{label}\.p|\.(?:{region})(?:\.rep)?)?"  # sts-xyz.p (private), sts.us-east1(.rep)
    r"(?:\.mtls)?".format(label=_LABEL, region=_REGION, svc="|".join(_SERVICE_PATHS))
)
# The older token URIs of googleapis.com, on hosts that serve other APIs too: exact paths.
_LEGACY_TOKEN_PATHS = {
    "www.googleapis.com": (
        re.compile(r"/oauth2/v[34]/token"),
        "/oauth2/v4/token or /oauth2/v3/token",
    ),
    "accounts.google.com": (re.compile(r"/o/oauth2/token"), "/o/oauth2/token"),
}
_UNSAFE_IN_URL = re.compile(r"[\x00-\x20\x7f-\x9f]")
_DOMAIN = re.compile(rf"(?:{_LABEL}\.)+{_LABEL}")


def source_universe(source: object) -> str | None:
    """The universe in effect for ``source``, or ``None`` when only asking can tell.

    The one its construction resolved (the caller's ``universe_domain``, else its
    credentials', else ``googleapis.com``: see `EndpointTrust.bind`), else its
    ``universe_domain`` (a `Metadata` source knows it only when told).
    """
    resolved = getattr(source, "_universe", None)
    return resolved if resolved is not None else getattr(source, "universe_domain", None)


def universe_trusted(source: object) -> bool:
    """Whether ``source``'s universe is one the caller trusts.

    That is ``googleapis.com``, or one named by the caller: only then may an endpoint be
    derived from it and sent a credential.
    """
    return bool(getattr(source, "_universe_trusted", True))


def derived_url(source: object, service: str, path: str, name: str) -> str:
    """Google's ``service`` URL in ``source``'s universe.

    Raises ``ConfigError`` (naming ``name``, the keyword that would set it instead) when only a
    credentials file named that universe.
    """
    universe = source_universe(source) or GOOGLE_UNIVERSE
    if not universe_trusted(source):
        raise ConfigError(
            name,
            f"is needed: the source's universe {universe!r} is named only by its credentials "
            f"file, so {service}.{universe} would receive a credential; pass "
            f"universe_domain={universe!r} to the source if it is yours, or {name}=",
        )
    return f"https://{service}.{universe}{path}"


def check_universe_domain(value: object, name: str = "universe_domain") -> str:
    """A universe domain (``googleapis.com``), lower-cased; ``ConfigError`` naming ``name``."""
    if not isinstance(value, str):
        raise ConfigError(name, f"must be a domain name string, got {type(value).__name__}")
    domain = value.strip().lower().rstrip(".")
    if not _DOMAIN.fullmatch(domain) or len(domain) > 253:
        raise ConfigError(
            name, f"must be a domain name such as 'googleapis.com', got {value!r:.60}"
        )
    return domain


def check_allow_custom(value: object) -> bool:
    """The ``allow_custom_endpoints`` keyword: a real ``bool``, never a truthy string."""
    if not isinstance(value, bool):
        raise ConfigError(
            "allow_custom_endpoints", f"must be True or False, got {type(value).__name__}"
        )
    return value


def is_loopback(host: str) -> bool:
    """Whether ``host`` (a URL's hostname) is this machine: ``localhost``, 127/8 or ``::1``."""
    host = host.lower().rstrip(".")
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _parts(value: object, name: str) -> tuple[str, str, str, str]:
    """``(url, scheme, host, path)`` of an http(s) URL, or a ``ConfigError`` naming ``name``."""
    if not isinstance(value, str):
        raise ConfigError(name, f"must be a URL string, got {type(value).__name__}")
    url = value.strip()
    shown = repr(url.split("?")[0][:100])
    if _UNSAFE_IN_URL.search(url):
        raise ConfigError(name, "must not contain spaces or control characters")
    scheme = host = path = ""
    userinfo = False
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - raises ValueError for a port that is not a number
        scheme, host, path = parts.scheme, parts.hostname or "", parts.path
        userinfo = parts.username is not None or parts.password is not None
    except ValueError:
        pass  # refused below, outside the except block
    if scheme not in ("http", "https") or not host:
        raise ConfigError(name, f"must be an https:// URL, got {shown}")
    if userinfo:
        raise ConfigError(name, "must not carry a user name or password")
    if scheme == "http" and not is_loopback(host):
        raise ConfigError(
            name,
            f"is plain http:// to {host!r}; a credential is sent there, so it must be "
            "https:// (plain http:// is allowed only to loopback, for emulators)",
        )
    return url, scheme, host.lower().rstrip("."), path


def check_explicit_url(value: object, name: str) -> str:
    """A URL the caller wrote in code (``url=``): https, or plain http to loopback only."""
    return _parts(value, name)[0]


def _token_paths(host: str, universes: tuple[str, ...]) -> tuple[re.Pattern[str], str] | None:
    """The token paths (and their description) of ``host``, if it is one of Google's hosts.

    One of Google's token services in one of ``universes``, or, in ``googleapis.com``, the host
    of an older token URI.
    """
    for universe in universes:
        if universe == GOOGLE_UNIVERSE and host in _LEGACY_TOKEN_PATHS:
            return _LEGACY_TOKEN_PATHS[host]
        suffix = "." + universe
        match = _SERVICE_HOST.fullmatch(host[: -len(suffix)]) if host.endswith(suffix) else None
        if match is not None:
            return _SERVICE_PATHS[match["svc"]]
    return None


def is_google_endpoint(host: str, path: str, universes: tuple[str, ...]) -> bool:
    """Whether ``host`` and ``path`` are a token endpoint of Google's in one of ``universes``.

    The host must be one of Google's token services (or, in ``googleapis.com``, an older token
    URI's host) and the path one of that service's token paths.
    """
    paths = _token_paths(host, universes)
    return paths is not None and paths[0].fullmatch(path) is not None


def check_credential_url(
    value: object,
    name: str,
    *,
    universes: tuple[str, ...] = (GOOGLE_UNIVERSE,),
    allow_custom: bool = False,
    file_universe: str | None = None,
) -> str:
    """A URL from a credential file that a credential will be sent to, checked by the policy.

    Args:
        value: The URL, as the file has it.
        name: The field, for the error (``"credentials.token_url"``).
        universes: The universe domains the caller trusts (``googleapis.com`` and the one the
            caller named).
        allow_custom: The caller's explicit opt-out: any https:// host (http:// still only to
            loopback).
        file_universe: The universe the file names, to suggest trusting it in the error.

    Raises:
        ConfigError: Plain http:// to another machine, or a host that is not one of Google's
            token services (without the opt-out).
    """
    url, _, host, path = _parts(value, name)
    if allow_custom or is_loopback(host) or is_google_endpoint(host, path, universes):
        return url
    paths = _token_paths(host, universes)
    if paths is not None:
        raise ConfigError(
            name,
            f"sends a credential to {host[:100]!r} at {path[:100]!r}, which is not one of its "
            f"token endpoints ({paths[1]}): Google's hosts serve other APIs too (anyone's "
            "Cloud Storage bucket). For a private endpoint (Private Service Connect, a proxy) "
            "you trust, pass allow_custom_endpoints=True",
        )
    trusted = " or ".join(repr(u) for u in universes)
    hint = ""
    if file_universe is not None and file_universe not in universes:
        hint = (
            f"; the credentials name universe_domain {file_universe!r}: pass "
            f"universe_domain={file_universe!r} if it is yours"
        )
    raise ConfigError(
        name,
        f"sends a credential to {host[:100]!r}, which is not one of Google's token services "
        f"(sts, iamcredentials, oauth2) under {trusted} nor loopback{hint}. Load credential "
        "files only from places you trust; for a private endpoint (Private Service Connect, a "
        "proxy) you trust, pass allow_custom_endpoints=True",
    )


@dataclass(frozen=True, slots=True)
class EndpointTrust:
    """A source's universe and which endpoints from its credentials it will send secrets to.

    Build it with `resolve` from the credentials and the caller's keywords.

    Attributes:
        universe_domain: The source's universe: the caller's ``universe_domain=``, else the
            credentials', else ``googleapis.com``.
        universes: The universes whose token services are trusted: ``googleapis.com`` and
            the one the caller named.
        allow_custom: The caller's ``allow_custom_endpoints=True``.
        file_universe: The universe the credentials name, if any.
    """

    universe_domain: str
    universes: tuple[str, ...]
    allow_custom: bool
    file_universe: str | None

    @classmethod
    def resolve(
        cls, credentials: Mapping[str, Any], universe_domain: object, allow_custom: object
    ) -> EndpointTrust:
        """The trust for ``credentials`` given the caller's two keywords; ``ConfigError``."""
        custom = check_allow_custom(allow_custom)
        explicit = None if universe_domain is None else check_universe_domain(universe_domain)
        raw = credentials.get("universe_domain")
        file_universe = (
            None if raw is None else check_universe_domain(raw, "credentials.universe_domain")
        )
        if explicit is not None and file_universe is not None and explicit != file_universe:
            raise ConfigError(
                "universe_domain",
                f"is {explicit!r}, but the credentials are for universe {file_universe!r}",
            )
        universes = tuple(dict.fromkeys((GOOGLE_UNIVERSE, explicit or GOOGLE_UNIVERSE)))
        return cls(explicit or file_universe or GOOGLE_UNIVERSE, universes, custom, file_universe)

    @property
    def trusted(self) -> bool:
        """Whether the source's universe is trusted to receive credentials (see the module)."""
        return self.universe_domain in self.universes

    def bind(self, source: object) -> None:
        """Records the universe in effect and its trust in ``source``'s private fields.

        ``_universe`` and ``_universe_trusted`` (``init=False`` fields): never its public
        ``universe_domain``, which stays what the caller passed, since ``dataclasses.replace``
        passes that back to the constructor as the caller's choice.
        """
        object.__setattr__(source, "_universe", self.universe_domain)
        object.__setattr__(source, "_universe_trusted", self.trusted)

    def endpoint(
        self,
        credentials: Mapping[str, Any],
        key: str,
        service: str,
        path: str,
        explicit: str | None = None,
    ) -> str:
        """Where a credential is sent: the caller's URL, else the credentials', else Google's.

        Args:
            credentials: The credentials, whose ``key`` may name the URL.
            key: The credentials' key (``"token_uri"``, ``"token_url"``).
            service: Google's service when the credentials name none (``"sts"``).
            path: Its path (``"/v1/token"``).
            explicit: The caller's ``url=`` (already checked), which wins.

        Returns:
            ``explicit``, else ``credentials[key]`` under the policy, else Google's URL of
            ``service`` in the source's universe (see `default`).
        """
        if explicit is not None:
            return explicit
        value = credentials.get(key)
        if value is None:
            return self.default(service, path)
        return self.check(value, f"credentials.{key}")

    def default(self, service: str, path: str) -> str:
        """Google's URL of ``service`` (``"sts"``) in the source's universe, checked too.

        A universe that only the credentials name is not trusted to receive a credential.
        """
        url = f"https://{service}.{self.universe_domain}{path}"
        return self.check(url, "credentials.universe_domain")

    def check(self, url: object, name: str) -> str:
        """``url`` from the credentials, checked by the policy (see the module docstring)."""
        return check_credential_url(
            url,
            name,
            universes=self.universes,
            allow_custom=self.allow_custom,
            file_universe=self.file_universe,
        )

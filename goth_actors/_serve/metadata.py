"""The GCE metadata server's protocol: which path answers what, and what is refused.

Paths (under ``/computeMetadata/v1/``), as google-auth, Go's ``compute/metadata``, Java and Node
ask for them; every answer carries ``Metadata-Flavor: Google``:

- ``instance/service-accounts/{default,EMAIL}/token`` (``?scopes=a,b``): ``{"access_token",
  "expires_in", "token_type"}`` as JSON, ``expires_in`` counting down from the held token;
- ``.../identity?audience=A`` (``format=full`` accepted): the ID token as text;
- ``.../email``, ``.../scopes``, ``.../aliases``, ``.../`` (``?recursive=true``: JSON with
  ``aliases``, ``email``, ``scopes``);
- ``project/project-id``, ``project/numeric-project-id`` (where known),
  ``universe/universe-domain``;
- the listings clients probe: ``/`` (answered without ``Metadata-Flavor``, as Google's is: it
  is how clients detect a metadata server), ``/computeMetadata/``, ``v1/``, ``instance/``,
  ``instance/service-accounts/``, ``project/``, ``universe/``; a directory asked for without
  its slash is redirected (301) to it, as Google's is.

Ours: ``/healthz`` (200 once every configured server holds a token, else 503; no header
needed, for probes) and ``/status`` (JSON, never a token; needs ``Metadata-Flavor``).

Refused before anything else, and so before any upstream call: ``X-Forwarded-For`` (403, the
server-side request forgery guard Google applies), a ``Host`` that is neither an IP address nor
one of the metadata server's names nor one allowed with ``--allow-host`` (403: the guard
against DNS rebinding, which would let a web page read tokens; an HTTP/1.0 request without
``Host`` skips this check, and the guard still holds: browsers always send ``Host``), a
missing or wrong ``Metadata-Flavor`` (403), a malformed ``scopes`` or ``audience`` (400),
``wait_for_change`` (400: not supported), an unknown account or path (404).
"""

from __future__ import annotations

import ipaddress
import json
from collections.abc import Awaitable, Callable, Iterable, Mapping
from typing import Any
from urllib.parse import parse_qs, unquote

from goth_actors import ConfigError, FetchTimeout, GothError, Token, TokenError
from goth_actors._serve.pool import Pool, TooManyServers
from goth_actors._serve.request import Answer, Request
from goth_actors._serve.sources import NoIdTokens, Upstream, Want

__all__ = ["HEADERS", "METADATA_NAMES", "MetadataRoutes"]

HEADERS = (
    ("Metadata-Flavor", "Google"),
    ("Server", "Metadata Server for VM"),
    ("X-XSS-Protection", "0"),
    ("X-Frame-Options", "SAMEORIGIN"),
)
"""Sent with every answer, as Google's metadata server does."""

METADATA_NAMES = frozenset({"metadata.google.internal", "metadata", "localhost"})
"""Host names accepted without ``--allow-host`` (any IP address is accepted too)."""

MAX_SCOPES = 64
MAX_PARAMETER = 2048  # characters of one scope or audience
TEXT = "application/text"
JSON = "application/json"

_V1 = "/computeMetadata/v1/"
_ACCOUNTS = _V1 + "instance/service-accounts/"
_MAX_HOSTS_REMEMBERED = 256
_MAX_ENCODED = 256


def _text(status: int, text: str, refused: str = "") -> Answer:
    return Answer(status, text.encode(), TEXT, refused=refused)


def _json(value: object) -> Answer:
    return Answer(200, json.dumps(value, separators=(",", ":")).encode(), JSON)


def _one_line(text: str, limit: int = 500) -> str:
    text = " ".join(text.split())
    text = "".join(c if c.isprintable() else "?" for c in text)
    return text if len(text) <= limit else text[: limit - 3] + "..."


class MetadataRoutes:
    """The request handler of serve (see the module).

    Args:
        pool: The token servers.
        upstream: The credentials' source and identity.
        clock: The wall clock that ``expires_in`` counts down on.
        allowed_hosts: Host names accepted besides IP addresses and `METADATA_NAMES`.
        status: Builds the ``/status`` page.
    """

    def __init__(
        self,
        pool: Pool,
        upstream: Upstream,
        *,
        clock: Callable[[], float],
        allowed_hosts: Iterable[str] = (),
        status: Callable[[], Mapping[str, Any]],
    ) -> None:
        self.pool = pool
        self.upstream = upstream
        self.clock = clock
        self.status = status
        self.allowed = METADATA_NAMES | {_host_name(h) for h in allowed_hosts}
        self._hosts: dict[str, bool] = {}
        identity = upstream.identity
        self.email = identity.email or "default"
        self.accounts = {"default", self.email}
        self._static, self._recursive, self._directories = _tree(upstream, self.email)
        self._encoded: dict[Want, tuple[Token, bytes]] = {}

    # --- the handler --------------------------------------------------------------------------

    def __call__(self, request: Request) -> Answer | Awaitable[Answer]:
        headers = request.headers
        if "x-forwarded-for" in headers:
            return _text(403, "Forbidden\n", "forwarded")
        host = headers.get("host")
        if host is not None and not self._host_ok(host):
            return _text(403, "Forbidden: unknown Host (see --allow-host)\n", "host")
        path = request.path
        if "%" in path:
            path = unquote(path)
        if path == "/healthz":
            if self.pool.ready():
                return _text(200, "ok\n")
            return _text(503, "not ready: no token yet\n")
        if headers.get("metadata-flavor") != "Google":
            if path == "/":
                return self._static["/"]
            return _text(403, 'Missing required header "Metadata-Flavor": "Google"\n', "flavor")
        query: dict[str, list[str]] = {}
        if request.query:
            try:
                query = parse_qs(request.query, max_num_fields=16)
            except ValueError:
                return _text(400, "Too many query parameters\n", "invalid")
            if query.get("wait_for_change", [""])[-1].lower() == "true":
                return _text(400, "wait_for_change is not supported\n", "unsupported")
        if path.startswith(_ACCOUNTS):
            account, _, leaf = path[len(_ACCOUNTS) :].partition("/")
            if leaf in ("token", "identity"):
                if account not in self.accounts:
                    return _text(404, "Not Found\n", "not_found")
                if leaf == "token":
                    return self._token(query)
                return self._identity(query)
        if query.get("recursive", [""])[-1].lower() == "true":
            answer = self._recursive.get(path)
            if answer is not None:
                return answer
        answer = self._static.get(path)
        if answer is not None:
            return answer
        if path in self._directories:
            where = path + "/" + (f"?{request.query}" if request.query else "")
            body = f"{path}/\n".encode()
            return Answer(301, body, "text/html", headers=(("Location", where),))
        if path == "/status":
            return _json(self.status())
        return _text(404, "Not Found\n", "not_found")

    def _host_ok(self, host: str) -> bool:
        known = self._hosts.get(host)
        if known is None:
            known = _acceptable_host(host, self.allowed)
            if len(self._hosts) < _MAX_HOSTS_REMEMBERED:
                self._hosts[host] = known
        return known

    # --- tokens -------------------------------------------------------------------------------

    def _token(self, query: dict[str, list[str]]) -> Answer | Awaitable[Answer]:
        scopes: tuple[str, ...] | None = None
        if "scopes" in query:
            scopes = tuple(
                scope for value in query["scopes"] for scope in value.replace(",", " ").split()
            )
            if not scopes or len(scopes) > MAX_SCOPES or not all(map(_acceptable, scopes)):
                return _text(400, "Invalid scopes parameter\n", "invalid")
        want = self.upstream.token_want(scopes)
        token = self.pool.cached(want)
        if token is not None:
            return self._token_answer(want, token)
        return self._later(want)

    def _token_answer(self, want: Want, token: Token) -> Answer:
        encoded = self._encoded.get(want)
        if encoded is None or encoded[0] is not token:
            if len(self._encoded) >= _MAX_ENCODED:  # wants come and go: keep no stale token
                self._encoded.clear()
            encoded = (token, json.dumps(token.token).encode())
            self._encoded[want] = encoded
        expires_in = max(0, int(token.expires - self.clock()))
        body = b'{"access_token":%s,"expires_in":%d,"token_type":%s}' % (
            encoded[1],
            expires_in,
            json.dumps(token.type).encode(),
        )
        return Answer(200, body, JSON)

    def _identity(self, query: dict[str, list[str]]) -> Answer | Awaitable[Answer]:
        audience = query.get("audience", [""])[-1]
        if not audience:
            return _text(400, "non-empty audience parameter required\n", "invalid")
        if not _acceptable(audience):
            return _text(400, "Invalid audience parameter\n", "invalid")
        if not self.upstream.gives_id_tokens:
            return _text(
                404,
                f"Not Found: ID tokens need a service account ({self.upstream.kind} "
                "credentials cannot give them)\n",
                "no_id_tokens",
            )
        want = Want("identity", audience=audience)
        token = self.pool.cached(want)
        if token is not None:
            return Answer(200, token.token.encode(), TEXT)
        return self._later(want)

    async def _later(self, want: Want) -> Answer:
        try:
            token = await self.pool.token(want)
        except TooManyServers as exc:
            return _text(503, f"{_one_line(str(exc))}\n", "servers")
        except NoIdTokens as exc:
            return _text(404, f"Not Found: {_one_line(str(exc))}\n", "no_id_tokens")
        except ConfigError as exc:
            return _text(400, f"{_one_line(str(exc))}\n", "invalid")
        except FetchTimeout:
            return _text(503, f"no token yet (waited {self.pool.fetch_timeout:g} s)\n")
        except TokenError as exc:
            status = 503 if exc.retryable else 500
            return _text(status, f"no token: {type(exc).__name__}: {_one_line(str(exc))}\n")
        except GothError as exc:
            return _text(503, f"no token: {type(exc).__name__}: {_one_line(str(exc))}\n")
        if want.kind == "identity":
            return Answer(200, token.token.encode(), TEXT)
        return self._token_answer(want, token)


def _acceptable(value: str) -> bool:
    """A scope or audience: printable ASCII without spaces, quotes or backslashes."""
    return (
        0 < len(value) <= MAX_PARAMETER
        and value.isascii()
        and value.isprintable()
        and not any(c in value for c in ' "\\')
    )


def _host_name(host: str) -> str:
    return host.strip().lower().rstrip(".")


def _acceptable_host(host: str, allowed: frozenset[str] | set[str]) -> bool:
    """Whether a ``Host`` header names this server: an IP address, or an allowed name."""
    name = host
    if host.startswith("["):
        end = host.find("]")
        rest = host[end + 1 :]
        if end < 0 or (rest and not (rest.startswith(":") and rest[1:].isdigit())):
            return False
        name = host[1:end]
    elif ":" in host:
        name, _, port = host.rpartition(":")
        if not port.isdigit():
            return False
    try:
        ipaddress.ip_address(name)
    except ValueError:
        return _host_name(name) in allowed
    return True


def _tree(
    upstream: Upstream, email: str
) -> tuple[dict[str, Answer], dict[str, Answer], frozenset[str]]:
    """The fixed answers, the ``?recursive=true`` ones, and the directories.

    The directories without their slash, for the redirect; all known at start.
    """
    identity = upstream.identity
    scopes = list(upstream.scopes)
    account = {"aliases": ["default"], "email": email, "scopes": scopes}
    accounts = {"default": account} | ({email: account} if email != "default" else {})
    project: dict[str, Any] = {}
    if identity.numeric_project_id is not None and identity.numeric_project_id.isdigit():
        project["numericProjectId"] = int(identity.numeric_project_id)
    if identity.project_id is not None:
        project["projectId"] = identity.project_id
    universe = {"universeDomain": identity.universe_domain}
    static: dict[str, Answer] = {
        "/": _text(200, "computeMetadata/\n"),
        "/computeMetadata/": _text(200, "v1/\n"),
        _V1: _text(200, "instance/\nproject/\nuniverse/\n"),
        _V1 + "instance/": _text(200, "service-accounts/\n"),
        _ACCOUNTS: _text(200, "".join(f"{name}/\n" for name in accounts)),
        _V1 + "project/": _text(
            200,
            "".join(
                f"{leaf}\n"
                for leaf, key in (
                    ("numeric-project-id", "numericProjectId"),
                    ("project-id", "projectId"),
                )
                if key in project
            ),
        ),
        _V1 + "universe/": _text(200, "universe-domain\n"),
        _V1 + "universe/universe-domain": _text(200, identity.universe_domain),
    }
    if "projectId" in project:
        static[_V1 + "project/project-id"] = _text(200, project["projectId"])
    if "numericProjectId" in project:
        static[_V1 + "project/numeric-project-id"] = _text(200, str(project["numericProjectId"]))
    recursive: dict[str, Answer] = {
        _V1: _json(
            {"instance": {"serviceAccounts": accounts}, "project": project, "universe": universe}
        ),
        _V1 + "instance/": _json({"serviceAccounts": accounts}),
        _ACCOUNTS: _json(accounts),
        _V1 + "project/": _json(project),
        _V1 + "universe/": _json(universe),
    }
    directories = {
        "/computeMetadata",
        _V1[:-1],
        _V1 + "instance",
        _ACCOUNTS[:-1],
        _V1 + "project",
        _V1 + "universe",
    }
    for name in accounts:
        base = _ACCOUNTS + name + "/"
        directories.add(base[:-1])
        static[base] = _text(200, "aliases\nemail\nidentity\nscopes\ntoken\n")
        static[base + "aliases"] = _text(200, "default\n")
        static[base + "email"] = _text(200, email)
        static[base + "scopes"] = _text(200, "".join(f"{scope}\n" for scope in scopes))
        recursive[base] = _json(account)
    return static, recursive, frozenset(directories)

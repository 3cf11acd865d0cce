"""Google's HTTP surface, mapped onto `FakeGoogle`: which path answers what, and how.

- ``POST /token`` (also ``/oauth2/v4/token``): form (or JSON) parameters to a grant; client
  credentials from the form or HTTP Basic auth. Errors are Google's JSON
  ``{"error", "error_description"}``.
- ``/computeMetadata/v1/...``: ``instance/service-accounts/{default|email}/`` with
  ``token`` (``?scopes=a,b``), ``identity`` (``?audience=&format=full``), ``email``,
  ``scopes``, ``aliases`` and the directory itself (``?recursive=true`` gives JSON);
  ``instance/service-accounts/``, ``project/project-id``, ``project/numeric-project-id``,
  ``universe/universe-domain``. Needs ``Metadata-Flavor: Google`` (else 403); ``GET /`` is
  the ping and needs nothing. Every metadata answer carries ``Metadata-Flavor: Google``.
- ``GET /oauth2/v3/tokeninfo?access_token=`` (or ``id_token=``), also as a POST form.
- ``GET /oauth2/v3/certs``: the JWKS of the ID-token signing key.
- ``POST /v1/token``: the Security Token Service's token exchange (workload identity), with
  OAuth's error shape.
- ``POST /v1/projects/-/serviceAccounts/{email}:generateAccessToken`` and
  ``:generateIdToken``: IAM Credentials, with a bearer token and a JSON body; errors in
  Google APIs' shape ``{"error": {"code", "message", "status"}}``.
- ``GET /subject-token/{n}``: pool ``n``'s subject-token URL, like a CI system's OIDC
  endpoint: needs the pool's ``Authorization: Bearer ...``, answers text or JSON.
- ``POST /v1/oauthtoken`` and ``/v1/introspect``: STS's refresh of a workforce user's token
  (HTTP Basic client authentication) and its token introspection.
- ``POST /v1/projects/-/serviceAccounts/{email}:signBlob``: IAM's signature of a payload.
- ``/latest/...``: an EC2 instance's metadata service (IMDSv2 session tokens, the region, the
  role's temporary credentials).
- ``/api/...``: a Google API: 200 with ``{"email", "quota_project"}`` for a good bearer token
  (``401`` otherwise), but ``403`` for a person's token without ``x-goog-user-project`` (as
  APIs that need a quota project answer).
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import unquote, unquote_plus

from goth_actors.testing._emulator_aws import AWS_PATH, FakeAws
from goth_actors.testing._emulator_federation import STS_PATH, SUBJECT_PATH, FakeFederation
from goth_actors.testing._emulator_google import FakeGoogle
from goth_actors.testing._emulator_grants import jwt_bearer_grant, refresh_grant
from goth_actors.testing._emulator_iam import FakeIam
from goth_actors.testing._emulator_messages import RecordedRequest, Response
from goth_actors.testing._emulator_store import TOKEN_PATHS, ApiRejected, Rejected, split_scopes
from goth_actors.testing._emulator_workforce import INTROSPECT_PATH, OAUTHTOKEN_PATH, FakeWorkforce

__all__ = ["API_PATH", "METADATA_FLAVOR", "Fakes", "answer", "endpoint_of", "issues_token"]

API_PATH = "/api/"


@dataclass(frozen=True, slots=True)
class Fakes:
    """The pieces of the fake Google that answer requests."""

    google: FakeGoogle
    federation: FakeFederation
    iam: FakeIam
    aws: FakeAws
    workforce: FakeWorkforce


METADATA_FLAVOR = {"Metadata-Flavor": "Google"}
JWT_BEARER_GRANT = "urn:ietf:params:oauth:grant-type:jwt-bearer"

_METADATA_ROOT = "/computeMetadata/v1/"
_ACCOUNTS = "instance/service-accounts/"
_IAM_ROOT = "/v1/projects/"
_IAM_PATH = re.compile(
    r"/v1/projects/(?P<project>[^/]+)/serviceAccounts/(?P<name>[^/:]+):(?P<verb>\w+)"
)


def endpoint_of(path: str) -> str:
    """The ``endpoint`` a request to ``path`` is recorded under."""
    if path in TOKEN_PATHS:
        return "token"
    if path == "/" or path.startswith("/computeMetadata/"):
        return "metadata"
    if path == "/oauth2/v3/tokeninfo":
        return "tokeninfo"
    if path == "/oauth2/v3/certs":
        return "certs"
    if path in (STS_PATH, OAUTHTOKEN_PATH, INTROSPECT_PATH):
        return "sts"
    if path.startswith(_IAM_ROOT):
        return "iam"
    if path.startswith(SUBJECT_PATH):
        return "subject"
    if path.startswith(AWS_PATH):
        return "aws"
    if path.startswith(API_PATH):
        return "api"
    return "other"


def issues_token(request: RecordedRequest) -> bool:
    """Whether ``request`` asks for a token.

    It does at the token endpoint, STS, IAM Credentials, or metadata token/identity.
    """
    if request.endpoint in ("token", "iam") or request.path in (STS_PATH, OAUTHTOKEN_PATH):
        return request.method == "POST"
    path = request.path.rstrip("/")
    return path.startswith(_METADATA_ROOT + _ACCOUNTS) and path.endswith(("/token", "/identity"))


def answer(fakes: Fakes, request: RecordedRequest) -> Response:
    """Google's normal answer to ``request``."""
    routes: dict[str, Callable[[Fakes, RecordedRequest], Response]] = {
        "token": _token_endpoint,
        "metadata": _metadata,
        "tokeninfo": _tokeninfo,
        "certs": _certs,
        "sts": _sts,
        "iam": _iam,
        "subject": _subject,
        "aws": _aws,
        "api": _api,
    }
    route = routes.get(request.endpoint)
    if route is None:
        return Response.text(404, "Not Found\n")
    try:
        response = route(fakes, request)
    except Rejected as rejected:
        payload = {"error": rejected.error, "error_description": rejected.description}
        response = Response.json(rejected.status, payload)
    except ApiRejected as rejected:
        response = Response.json(rejected.code, rejected.payload())
    if request.endpoint == "metadata":
        response = response.with_headers(METADATA_FLAVOR)
    return response


def _token_endpoint(fakes: Fakes, request: RecordedRequest) -> Response:
    google = fakes.google
    if request.method != "POST":
        raise Rejected(405, "invalid_request", "The token endpoint only accepts POST.")
    form = request.form
    grant = _required(form, "grant_type")
    if grant == JWT_BEARER_GRANT:
        return Response.json(200, jwt_bearer_grant(google, _required(form, "assertion")))
    if grant == "refresh_token":
        client_id, client_secret = _client_credentials(request)
        if not client_id:
            raise Rejected(400, "invalid_request", "Missing required parameter: client_id")
        body = refresh_grant(
            google,
            client_id,
            client_secret or "",
            _required(form, "refresh_token"),
            split_scopes(form.get("scope")),
            form.get("rapt"),
        )
        return Response.json(200, body)
    raise Rejected(400, "unsupported_grant_type", "Invalid grant_type.")


def _required(form: dict[str, str], name: str) -> str:
    value = form.get(name)
    if not value:
        raise Rejected(400, "invalid_request", f"Missing required parameter: {name}")
    return value


def _client_credentials(request: RecordedRequest) -> tuple[str | None, str | None]:
    """The client id and secret, from HTTP Basic auth if present, else from the form."""
    scheme, _, value = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "basic":
        return request.form.get("client_id"), request.form.get("client_secret")
    try:
        decoded = base64.b64decode(value.strip(), validate=True).decode()
    except (binascii.Error, UnicodeDecodeError):
        raise Rejected(401, "invalid_client", "Malformed Basic credentials.") from None
    client_id, separator, client_secret = decoded.partition(":")
    if not separator:
        raise Rejected(401, "invalid_client", "Malformed Basic credentials.")
    return unquote_plus(client_id), unquote_plus(client_secret)


def _metadata(fakes: Fakes, request: RecordedRequest) -> Response:
    google = fakes.google
    if request.path == "/":
        return Response.text(200, "computeMetadata/\n")
    if request.headers.get("metadata-flavor") != "Google":
        return Response.text(403, "Missing required header: Metadata-Flavor: Google\n")
    if request.method != "GET":
        return Response.text(405, "Method not allowed\n")
    path = request.path.removeprefix(_METADATA_ROOT)
    email = google.metadata_email
    values = {
        "project/project-id": google.project_id,
        "project/numeric-project-id": google.project_number,
        "universe/universe-domain": google.universe_domain,
        "instance/service-accounts": f"default/\n{email}/\n",
        "instance/service-accounts/": f"default/\n{email}/\n",
    }
    if path in values:
        return Response.text(200, values[path])
    account, _, leaf = path.removeprefix(_ACCOUNTS).partition("/")
    if path == request.path or not path.startswith(_ACCOUNTS) or account not in ("default", email):
        return Response.text(404, "Not Found\n")
    scopes = tuple(google.metadata_scopes)
    if leaf == "" and request.query.get("recursive", "").lower() == "true":
        return Response.json(200, {"aliases": ["default"], "email": email, "scopes": scopes})
    texts = {
        "": "aliases\nemail\nidentity\nscopes\ntoken\n",
        "aliases": "default\n",
        "email": email,
        "scopes": "".join(f"{scope}\n" for scope in scopes),
    }
    if leaf in texts:
        return Response.text(200, texts[leaf])
    if leaf == "token":
        return Response.json(
            200, google.metadata_token(split_scopes(request.query.get("scopes"), ","))
        )
    if leaf == "identity":
        audience = request.query.get("audience")
        if not audience:
            return Response.text(400, "non-empty audience parameter required\n")
        full = request.query.get("format") == "full"
        return Response.text(200, google.metadata_identity(audience, full=full))
    return Response.text(404, "Not Found\n")


def _tokeninfo(fakes: Fakes, request: RecordedRequest) -> Response:
    google = fakes.google
    params = {**request.query, **request.form}
    for name, kind in (("access_token", "access"), ("id_token", "id")):
        if params.get(name):
            info = google.token_info(params[name], kind)
            if info is None:
                raise Rejected(400, "invalid_token", "Invalid Value")
            return Response.json(200, info)
    raise Rejected(400, "invalid_request", "Missing access_token or id_token parameter.")


def _certs(fakes: Fakes, request: RecordedRequest) -> Response:  # noqa: ARG001
    return Response.json(200, fakes.google.jwks())


def _sts(fakes: Fakes, request: RecordedRequest) -> Response:
    if request.method != "POST":
        raise Rejected(405, "invalid_request", "The token exchange endpoint only accepts POST.")
    if request.path == OAUTHTOKEN_PATH:
        client_id, client_secret = _client_credentials(request)
        return Response.json(200, fakes.workforce.refresh(request.form, client_id, client_secret))
    if request.path == INTROSPECT_PATH:
        return Response.json(200, fakes.workforce.introspect(_required(request.form, "token")))
    return Response.json(200, fakes.federation.sts_exchange(request.form, request.client_cert))


def _iam(fakes: Fakes, request: RecordedRequest) -> Response:
    iam = fakes.iam
    match = _IAM_PATH.fullmatch(request.path)
    if match is None:
        raise ApiRejected(404, "Method not found.")
    if request.method != "POST":
        raise ApiRejected(405, "Only POST is supported.")
    if match["project"] != "-":
        raise ApiRejected(400, "The project must be the '-' wildcard.")
    authorization = request.headers.get("authorization", "")
    target = unquote(match["name"])
    verbs = {
        "generateAccessToken": iam.generate_access_token,
        "generateIdToken": iam.generate_id_token,
        "signBlob": iam.sign_blob,
    }
    verb = verbs.get(match["verb"])
    if verb is None:
        raise ApiRejected(404, "Method not found.")
    body = verb(authorization, target, request.body)
    return Response.json(200, body)


def _subject(fakes: Fakes, request: RecordedRequest) -> Response:
    federation = fakes.federation
    if request.method != "GET":
        raise ApiRejected(405, "Only GET is supported.")
    number = request.path.removeprefix(SUBJECT_PATH)
    if not number.isdigit():
        raise ApiRejected(404, "No such subject-token source.")
    authorization = request.headers.get("authorization", "")
    pool, token = federation.serve_subject_token(int(number), authorization)
    if pool.format == "json":
        return Response.json(200, {"count": 1, "value": token})
    return Response.text(200, token)


def _aws(fakes: Fakes, request: RecordedRequest) -> Response:
    return fakes.aws.metadata(request)


def _api(fakes: Fakes, request: RecordedRequest) -> Response:
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    info = fakes.google.token_info(token.strip(), "access") if scheme.lower() == "bearer" else None
    if info is None:
        raise ApiRejected(401, "Request had invalid authentication credentials.")
    project = request.headers.get("x-goog-user-project")
    google = fakes.google
    if project is None and google.require_quota_project and google.is_user_token(token.strip()):
        raise ApiRejected(
            403,
            "Your application is authenticating by using local Application Default "
            "Credentials. The emulator API requires a quota project, which is not set by "
            "default.",
        )
    return Response.json(200, {"email": info["email"], "quota_project": project})

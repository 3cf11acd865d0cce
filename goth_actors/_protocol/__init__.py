"""The token protocol: sources, one token exchange, the HTTP client contract, backoff, ADC.

No actors, no threads, no pykka, nothing of ``goth_actors.otp``: one exchange at a time, pure
and testable. `Token.fetch` makes one attempt for one source and returns a ``Token`` or
raises a ``TokenError``. The token server (``goth_actors._server``) schedules, caches and
supervises on top of it. ``goth_actors`` re-exports the public names; the others here are the
protocol's own API to the server layer.
"""

from goth_actors._protocol.adc import default_source, load_credentials
from goth_actors._protocol.backoff import BACKOFF_TYPES, Backoff, BackoffType
from goth_actors._protocol.errors import (
    ResponseTooLarge,
    TokenEndpointError,
    TokenError,
    TransportError,
)
from goth_actors._protocol.exchange import Exchange
from goth_actors._protocol.from_credentials import source_from_credentials
from goth_actors._protocol.http_client import (
    DEFAULT_TIMEOUT,
    MAX_BODY_BYTES,
    HttpClient,
    HttpResponse,
    close_default_client,
    default_http_client,
)
from goth_actors._protocol.impersonated import Impersonated
from goth_actors._protocol.metadata import Metadata
from goth_actors._protocol.project import project_id, universe_domain
from goth_actors._protocol.redact import redact, without_query
from goth_actors._protocol.refresh_token import RefreshToken
from goth_actors._protocol.service_account import ServiceAccount
from goth_actors._protocol.signing import Signer, signer
from goth_actors._protocol.token import Exchanger, Source, Token
from goth_actors._protocol.validate import CLOUD_PLATFORM_SCOPE
from goth_actors._protocol.workforce_user import WorkforceUser
from goth_actors._protocol.workload_identity import WorkloadIdentity

__all__ = [
    "BACKOFF_TYPES",
    "CLOUD_PLATFORM_SCOPE",
    "DEFAULT_TIMEOUT",
    "MAX_BODY_BYTES",
    "Backoff",
    "BackoffType",
    "Exchange",
    "Exchanger",
    "HttpClient",
    "HttpResponse",
    "Impersonated",
    "Metadata",
    "RefreshToken",
    "ResponseTooLarge",
    "ServiceAccount",
    "Signer",
    "Source",
    "Token",
    "TokenEndpointError",
    "TokenError",
    "TransportError",
    "WorkforceUser",
    "WorkloadIdentity",
    "close_default_client",
    "default_http_client",
    "default_source",
    "load_credentials",
    "project_id",
    "redact",
    "signer",
    "source_from_credentials",
    "universe_domain",
    "without_query",
]

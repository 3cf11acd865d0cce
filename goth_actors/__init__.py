"""goth_actors: Google OAuth2 tokens kept fresh by supervised Pykka actors."""

from goth_actors._errors import (
    AlreadyRegistered,
    AlreadyStarted,
    ConfigError,
    FailedToStartChild,
    FetchTimeout,
    GothError,
    MaxRestartsExceeded,
    ServerNotFound,
    TokenEndpointError,
    TokenError,
    TransportError,
)
from goth_actors._http import HttpClient, HttpResponse
from goth_actors._sources import (
    Metadata,
    RefreshToken,
    ServiceAccount,
    Source,
    default_source,
    source_from_credentials,
)
from goth_actors._token import Token

__all__ = [
    "AlreadyRegistered",
    "AlreadyStarted",
    "ConfigError",
    "FailedToStartChild",
    "FetchTimeout",
    "GothError",
    "HttpClient",
    "HttpResponse",
    "MaxRestartsExceeded",
    "Metadata",
    "RefreshToken",
    "ServerNotFound",
    "ServiceAccount",
    "Source",
    "Token",
    "TokenEndpointError",
    "TokenError",
    "TransportError",
    "default_source",
    "source_from_credentials",
]
